"""Sign-up, sign-in, lockout, sessions, MFA and passwords over the API."""

from __future__ import annotations

import email
import email.policy
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from caresync.core.audit import AuditEntry
from caresync.core.crypto import token_digest
from caresync.db import utcnow
from caresync.identity.models import AuthSession, PasswordReset, User
from caresync.identity.rules import normalise_health_id
from caresync.identity.service import request_password_reset
from tests.conftest import API, PASSWORD, bearer, login, next_otp

PROBLEM = "application/problem+json"


def _register(client: TestClient, **overrides: Any) -> Any:
    body = {
        "role": "patient",
        "email": f"ana-{uuid.uuid4().hex[:8]}@example.org",
        "password": PASSWORD,
        "full_name": "Ana Sofia Ferreira",
        "birth_date": "1990-04-02",
        "sex": "female",
    }
    body.update(overrides)
    return client.post(f"{API}/auth/register", json=body)


def _token_login(client: TestClient, email_: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(f"{API}/auth/login", json={"email": email_, "password": password, **extra})


def _audit(tx: Any, **where: Any) -> list[AuditEntry]:
    with tx() as s:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return list(s.execute(query).scalars())


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


# --- registration -----------------------------------------------------------------------------------------


def test_register_patient_gets_a_profile_with_a_valid_health_id(client: TestClient, tx: Any) -> None:
    response = _register(client, email="Ana.Ferreira@Example.org")
    assert response.status_code == 201, response.text
    me = response.json()
    assert me["role"] == "patient"
    assert me["email"] == "ana.ferreira@example.org"  # normalised
    assert me["patient_id"]
    assert "password_hash" not in me
    assert "mfa_secret_encrypted" not in me

    headers = login(client, "ana.ferreira@example.org", PASSWORD)
    profile = client.get(f"{API}/patients/{me['patient_id']}", headers=headers)
    assert profile.status_code == 200, profile.text
    data = profile.json()
    assert normalise_health_id(data["health_id"]) == data["health_id"]
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", data["health_id_display"])
    assert (data["given_name"], data["family_name"]) == ("Ana Sofia", "Ferreira")
    assert data["birth_date"] == "1990-04-02"
    assert data["has_account"] is True
    assert [e.action for e in _audit(tx, action="auth.register")] == ["auth.register"]


def test_register_donor_has_no_patient_profile(client: TestClient) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={
            "role": "donor",
            "email": "donor@example.org",
            "password": PASSWORD,
            "full_name": "Dan Donor",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "donor"
    assert response.json()["patient_id"] is None
    headers = login(client, "donor@example.org", PASSWORD)
    assert client.get(f"{API}/auth/me", headers=headers).json()["role"] == "donor"


def test_register_duplicate_email_is_409_and_leaves_no_orphan_profile(client: TestClient, tx: Any) -> None:
    assert _register(client, email="same@example.org").status_code == 201
    body = _assert_problem(_register(client, email="SAME@example.org"), 409)
    assert "already exists" in body["detail"]
    with tx() as s:
        from caresync.identity.models import Patient

        assert s.execute(select(func.count(Patient.id))).scalar_one() == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short9", "at least 10 characters"),
        ("password123", "too common"),
        ("my-weakling-secret", "email name"),
    ],
)
def test_register_weak_password_is_422_with_a_reason(client: TestClient, password: str, reason: str) -> None:
    response = _register(client, email="weakling@example.org", password=password)
    body = _assert_problem(response, 422)
    assert reason in body["detail"]
    assert body.get("field") == "password"


def test_staff_role_cannot_self_register(client: TestClient) -> None:
    body = _assert_problem(_register(client, role="doctor"), 422)
    assert "role" in body["detail"]


def test_register_patient_needs_birth_date_and_sex(client: TestClient) -> None:
    body = _assert_problem(_register(client, birth_date=None), 422)
    assert "birth date" in body["detail"]


# --- sign-in, lockout -------------------------------------------------------------------------------------


def test_login_ok_returns_a_full_bearer_token(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    response = _token_login(client, person.email.upper())
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["stage"] == "full"
    assert data["token_type"] == "bearer"
    me = client.get(f"{API}/auth/me", headers=bearer(data["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(person.id)
    assert me.json()["patient_id"] == str(person.patient_id)
    with tx() as s:  # only the token's digest is stored
        digests = list(s.execute(select(AuthSession.token_digest)).scalars())
    assert data["access_token"] not in digests
    assert len(digests) == 1


def test_wrong_password_is_401_problem_json(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    body = _assert_problem(_token_login(client, person.email, "Not-The-Password-1"), 401)
    assert body["detail"] == "Email or password is incorrect."
    unknown = _assert_problem(_token_login(client, "nobody@example.org", "Not-The-Password-1"), 401)
    assert unknown["detail"] == body["detail"]  # no account enumeration
    failures = _audit(tx, action="auth.login", outcome="failure")
    assert len(failures) == 2
    assert failures[0].actor_id == person.id


def test_lockout_after_threshold_failures(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    for attempt in range(1, 6):
        response = _token_login(client, person.email, f"Wrong-password-{attempt}")
        assert response.status_code == 401, (attempt, response.text)
    locked = _token_login(client, person.email, PASSWORD)
    body = _assert_problem(locked, 423)
    assert "Try again after" in body["detail"]
    failures = [json.loads(f.detail) for f in _audit(tx, action="auth.login", outcome="failure")]
    assert [f["failures"] for f in failures] == [1, 2, 3, 4, 5]
    assert [f.get("locked_minutes") for f in failures] == [None] * 4 + [15]
    assert len(_audit(tx, action="auth.login", outcome="denied", actor_id=person.id)) == 1
    with tx() as s:
        user = s.get(User, person.id)
        assert user is not None
        assert user.locked_until is not None
        assert user.locked_until > utcnow() + timedelta(minutes=14)
    # the user was told, and once the lock has passed the right password works again
    with tx() as s:
        s.execute(
            update(User).where(User.id == person.id).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    headers = login(client, person.email, PASSWORD)
    notes = client.get(f"{API}/notifications", headers=headers).json()
    assert [n["title"] for n in notes["items"]] == ["Your account was locked"]


def test_lockout_threshold_is_configurable(client: TestClient, make: Any, settings_env: Any) -> None:
    settings_env(lockout_threshold=2)
    person = make.patient_user()
    assert _token_login(client, person.email, "Wrong-password-1").status_code == 401
    assert _token_login(client, person.email, "Wrong-password-2").status_code == 401
    assert _token_login(client, person.email, PASSWORD).status_code == 423


# --- sessions -----------------------------------------------------------------------------------------------


def test_logout_revokes_the_token(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    headers = login(client, person.email, PASSWORD)
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    response = client.get(f"{API}/auth/me", headers=headers)
    _assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert len(_audit(tx, action="auth.logout", actor_id=person.id)) == 1


def test_revoking_a_session_by_id(client: TestClient, make: Any) -> None:
    person = make.patient_user()
    first = login(client, person.email, PASSWORD)
    second = login(client, person.email, PASSWORD)
    listed = client.get(f"{API}/auth/sessions", headers=first).json()
    assert len(listed) == 2
    assert sum(s["current"] for s in listed) == 1
    other_id = next(s["id"] for s in listed if not s["current"])
    assert client.delete(f"{API}/auth/sessions/{other_id}", headers=first).status_code == 204
    _assert_problem(client.get(f"{API}/auth/me", headers=second), 401)
    assert client.get(f"{API}/auth/me", headers=first).status_code == 200
    assert len(client.get(f"{API}/auth/sessions", headers=first).json()) == 1


def test_cannot_revoke_someone_elses_session(client: TestClient, make: Any) -> None:
    alice, bob = make.patient_user(), make.patient_user()
    alice_headers = login(client, alice.email, PASSWORD)
    bob_headers = login(client, bob.email, PASSWORD)
    bob_session = client.get(f"{API}/auth/sessions", headers=bob_headers).json()[0]["id"]
    _assert_problem(client.delete(f"{API}/auth/sessions/{bob_session}", headers=alice_headers), 404)
    assert client.get(f"{API}/auth/me", headers=bob_headers).status_code == 200


def test_expired_session_is_401(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    headers = login(client, person.email, PASSWORD)
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 200
    with tx() as s:
        s.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    _assert_problem(client.get(f"{API}/auth/me", headers=headers), 401)


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer not-a-real-token", "Basic dXNlcjpwYXNz"])
def test_missing_or_bad_credentials_are_401(client: TestClient, header: str) -> None:
    headers = {"Authorization": header} if header else {}
    body = _assert_problem(client.get(f"{API}/patients", headers=headers), 401)
    assert "Sign in" in body["detail"]


def test_deactivated_user_token_stops_working(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    headers = login(client, person.email, PASSWORD)
    with tx() as s:
        s.execute(update(User).where(User.id == person.id).values(is_active=False))
    _assert_problem(client.get(f"{API}/auth/me", headers=headers), 401)
    _assert_problem(_token_login(client, person.email), 401)


# --- MFA ----------------------------------------------------------------------------------------------------


def _enrol(client: TestClient, headers: dict[str, str]) -> tuple[str, list[str]]:
    """Enrol MFA; returns the code that confirmed it and the recovery codes."""
    start = client.post(f"{API}/auth/mfa/enrol", headers=headers)
    assert start.status_code == 200, start.text
    data = start.json()
    assert data["otpauth_uri"].startswith("otpauth://totp/CareSync:")
    assert data["qr_svg"].startswith("<svg")
    code = pyotp.TOTP(data["secret"]).now()
    verify = client.post(f"{API}/auth/mfa/verify", json={"code": code}, headers=headers)
    assert verify.status_code == 200, verify.text
    return code, verify.json()["recovery_codes"]


def test_mfa_enrolment_gives_ten_single_use_recovery_codes(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    headers = login(client, person.email, PASSWORD)
    _code, codes = _enrol(client, headers)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}", c) for c in codes)
    assert client.get(f"{API}/auth/me", headers=headers).json()["mfa_enabled"] is True
    with tx() as s:
        user = s.get(User, person.id)
        assert user is not None
        assert user.mfa_enabled
        assert user.mfa_secret_encrypted
        assert not re.fullmatch(r"[A-Z2-7]{32}", user.mfa_secret_encrypted)  # encrypted at rest
    # a wrong code during enrolment is refused with a clear message
    other = make.patient_user()
    other_headers = login(client, other.email, PASSWORD)
    assert client.post(f"{API}/auth/mfa/enrol", headers=other_headers).status_code == 200
    wrong = client.post(f"{API}/auth/mfa/verify", json={"code": "abcdef"}, headers=other_headers)
    assert "does not match" in _assert_problem(wrong, 422)["detail"]


def test_mfa_login_stage_and_replay(client: TestClient, make: Any) -> None:
    person = make.patient_user()
    enrol_code, _codes = _enrol(client, login(client, person.email, PASSWORD))
    first = _token_login(client, person.email)
    assert first.status_code == 200
    assert first.json()["stage"] == "mfa"
    partial = bearer(first.json()["access_token"])
    denied = _assert_problem(client.get(f"{API}/patients", headers=partial), 403)
    assert denied["stage"] == "mfa"
    assert client.get(f"{API}/auth/me", headers=partial).json()["session_stage"] == "mfa"
    # the code used to confirm enrolment cannot be replayed
    replay = client.post(f"{API}/auth/mfa/challenge", json={"code": enrol_code}, headers=partial)
    _assert_problem(replay, 401)
    code = next_otp(person.email)
    ok = client.post(f"{API}/auth/mfa/challenge", json={"code": code}, headers=partial)
    assert ok.status_code == 200, ok.text
    assert client.get(f"{API}/patients", headers=partial).status_code == 200
    # neither can the code that completed sign-in
    again = _token_login(client, person.email, otp=code)
    _assert_problem(again, 401)
    # a fresh code works directly at login
    direct = _token_login(client, person.email, otp=next_otp(person.email))
    assert direct.status_code == 200
    assert direct.json()["stage"] == "full"


def test_recovery_code_works_once(client: TestClient, make: Any) -> None:
    person = make.patient_user()
    _code, codes = _enrol(client, login(client, person.email, PASSWORD))
    used = _token_login(client, person.email, otp=codes[3].upper())
    assert used.status_code == 200
    assert used.json()["stage"] == "full"
    _assert_problem(_token_login(client, person.email, otp=codes[3]), 401)
    pending = bearer(_token_login(client, person.email).json()["access_token"])
    _assert_problem(client.post(f"{API}/auth/mfa/challenge", json={"code": codes[3]}, headers=pending), 401)
    ok = client.post(f"{API}/auth/mfa/challenge", json={"code": codes[4]}, headers=pending)
    assert ok.status_code == 200, ok.text


PARTIAL_OK = {
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/mfa/challenge"),
    ("POST", "/api/v1/auth/mfa/enrol"),
    ("POST", "/api/v1/auth/mfa/verify"),
}
PUBLIC = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/password/reset-request"),
    ("POST", "/api/v1/auth/password/reset"),
    ("GET", "/api/v1/health"),
    # a share link or code is the credential (records sharing)
    ("GET", "/api/v1/records/shared/{token}"),
    ("GET", "/api/v1/records/shared/{token}/records/{record_id}/file"),
    ("POST", "/api/v1/records/shared/redeem"),
}


def _api_routes(app: Any) -> list[tuple[str, str]]:
    from fastapi.routing import APIRoute, iter_route_contexts

    found = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path.startswith("/api/v1"):
            for method in context.methods or ():
                found.add((method, context.path))
    return sorted(found)


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)


def test_staff_created_by_admin_must_enrol_mfa_first(client: TestClient, app: Any, make: Any) -> None:
    admin = make.staff("admin")
    admin_headers = login(client, admin.email, admin.password)
    created = client.post(
        f"{API}/admin/users",
        headers=admin_headers,
        json={
            "email": "new.doctor@example.org",
            "full_name": "Dr. New",
            "role": "doctor",
            "password": PASSWORD,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["organisation_id"] == str(admin.organisation.id)
    first = _token_login(client, "new.doctor@example.org")
    assert first.status_code == 200
    assert first.json()["stage"] == "enrol"
    headers = bearer(first.json()["access_token"])

    routes = _api_routes(app)
    gated = [r for r in routes if r not in PARTIAL_OK | PUBLIC]
    assert len(gated) >= 20
    for method, path in gated:
        response = client.request(method, _fill(path), headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["stage"] == "enrol"
    assert client.get(f"{API}/auth/me", headers=headers).json()["session_stage"] == "enrol"

    start = client.post(f"{API}/auth/mfa/enrol", headers=headers)
    assert start.status_code == 200, start.text
    totp = pyotp.TOTP(start.json()["secret"])
    verify = client.post(f"{API}/auth/mfa/verify", json={"code": totp.now()}, headers=headers)
    assert verify.status_code == 200
    assert len(verify.json()["recovery_codes"]) == 10
    assert client.get(f"{API}/auth/me", headers=headers).json()["session_stage"] == "full"
    assert client.get(f"{API}/patients", headers=headers).status_code == 200
    # staff cannot switch MFA off again
    off = client.post(f"{API}/auth/mfa/disable", json={"password": PASSWORD}, headers=headers)
    _assert_problem(off, 403)


def test_a_session_waiting_for_its_mfa_code_can_do_nothing_else(
    client: TestClient, app: Any, make: Any
) -> None:
    nurse = make.staff("nurse")
    first = _token_login(client, nurse.email)
    assert first.json()["stage"] == "mfa"
    headers = bearer(first.json()["access_token"])
    for method, path in _api_routes(app):
        if (method, path) in PARTIAL_OK | PUBLIC:
            continue
        response = client.request(method, _fill(path), headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["stage"] == "mfa"
    # and MFA enrolment is no way around the code: the account already has MFA
    assert client.post(f"{API}/auth/mfa/enrol", headers=headers).status_code == 409


def test_patient_may_switch_mfa_off_with_password(client: TestClient, make: Any) -> None:
    person = make.patient_user(mfa=True)
    headers = login(client, person.email, PASSWORD)
    wrong = client.post(f"{API}/auth/mfa/disable", json={"password": "Not-it-at-all-1"}, headers=headers)
    _assert_problem(wrong, 422)
    assert (
        client.post(f"{API}/auth/mfa/disable", json={"password": PASSWORD}, headers=headers).status_code
        == 204
    )
    assert _token_login(client, person.email).json()["stage"] == "full"


def test_regenerated_recovery_codes_replace_the_old_ones(client: TestClient, make: Any) -> None:
    person = make.patient_user()
    headers = login(client, person.email, PASSWORD)
    _code, old = _enrol(client, headers)
    new = client.post(f"{API}/auth/mfa/recovery-codes", headers=headers).json()["recovery_codes"]
    assert len(new) == 10
    assert not set(old) & set(new)
    _assert_problem(_token_login(client, person.email, otp=old[0]), 401)
    assert _token_login(client, person.email, otp=new[0]).json()["stage"] == "full"


# --- passwords ----------------------------------------------------------------------------------------------


def test_password_change_signs_out_other_sessions(client: TestClient, make: Any) -> None:
    person = make.patient_user()
    here = login(client, person.email, PASSWORD)
    elsewhere = login(client, person.email, PASSWORD)
    wrong = client.post(
        f"{API}/auth/password/change",
        headers=here,
        json={"current_password": "Not-it-at-all-1", "new_password": "Brand-New-Secret-77"},
    )
    assert "current password" in _assert_problem(wrong, 422)["detail"]
    weak = client.post(
        f"{API}/auth/password/change",
        headers=here,
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    _assert_problem(weak, 422)
    assert client.get(f"{API}/auth/me", headers=elsewhere).status_code == 200  # failures changed nothing
    ok = client.post(
        f"{API}/auth/password/change",
        headers=here,
        json={"current_password": PASSWORD, "new_password": "Brand-New-Secret-77"},
    )
    assert ok.status_code == 204, ok.text
    _assert_problem(client.get(f"{API}/auth/me", headers=elsewhere), 401)
    assert client.get(f"{API}/auth/me", headers=here).status_code == 200
    _assert_problem(_token_login(client, person.email, PASSWORD), 401)
    assert _token_login(client, person.email, "Brand-New-Secret-77").status_code == 200


def _reset_token_from(outbox: Any, to: str) -> str:
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(outbox.glob("*.eml"))
    ]
    mine = [m for m in messages if m["To"] == to]
    assert len(mine) == 1, [m["To"] for m in messages]
    assert mine[0]["Subject"] == "Reset your CareSync password"
    match = re.search(r"/password/reset\?token=([\w-]+)", mine[0].get_content())
    assert match, mine[0].get_content()
    return match.group(1)


def test_password_reset_by_email_works_once(client: TestClient, make: Any, outbox: Any, tx: Any) -> None:
    person = make.patient_user()
    signed_in = login(client, person.email, PASSWORD)
    response = client.post(f"{API}/auth/password/reset-request", json={"email": person.email.upper()})
    assert response.status_code == 202, response.text
    token = _reset_token_from(outbox, person.email)
    # the token is never stored in clear
    with tx() as s:
        assert list(s.execute(select(PasswordReset.token_digest)).scalars()) == [token_digest(token)]
    weak = client.post(f"{API}/auth/password/reset", json={"token": token, "new_password": "password123"})
    _assert_problem(weak, 422)
    done = client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": "Fresh-Start-2031"}
    )
    assert done.status_code == 204, done.text
    _assert_problem(client.get(f"{API}/auth/me", headers=signed_in), 401)  # signed out everywhere
    assert _token_login(client, person.email, "Fresh-Start-2031").status_code == 200
    used = client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": "Other-Start-2032"}
    )
    assert "invalid or has expired" in _assert_problem(used, 422)["detail"]
    assert len(_audit(tx, action="auth.password_reset", outcome="success")) == 1
    assert len(_audit(tx, action="auth.password_reset", outcome="failure")) == 1


def test_password_reset_clears_a_lockout(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    for attempt in range(5):
        _token_login(client, person.email, f"Wrong-password-{attempt}")
    assert _token_login(client, person.email).status_code == 423
    with tx() as s:
        token = request_password_reset(s, person.email, "127.0.0.1")
    assert token
    done = client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": "Fresh-Start-2031"}
    )
    assert done.status_code == 204
    assert _token_login(client, person.email, "Fresh-Start-2031").status_code == 200


def test_expired_reset_token_is_422(client: TestClient, make: Any, tx: Any) -> None:
    person = make.patient_user()
    with tx() as s:
        token = request_password_reset(s, person.email, "127.0.0.1")
    assert token
    with tx() as s:
        s.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": "Fresh-Start-2031"}
    )
    _assert_problem(expired, 422)
    assert _token_login(client, person.email, PASSWORD).status_code == 200


def test_reset_request_for_unknown_email_looks_the_same(client: TestClient, outbox: Any, tx: Any) -> None:
    response = client.post(f"{API}/auth/password/reset-request", json={"email": "ghost@example.org"})
    assert response.status_code == 202
    assert "If an account exists" in response.json()["detail"]
    assert list(outbox.glob("*.eml")) == []
    assert len(_audit(tx, action="auth.password_reset_request", outcome="failure")) == 1
