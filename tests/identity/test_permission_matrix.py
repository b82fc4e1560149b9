"""Every ``/api/v1`` route x every role x own/other/missing patient -> the expected status (domains listed
in ``OWN_MATRICES`` keep a matrix of their own).

The table must name every route the app serves under ``/api/v1``: adding an endpoint without adding it
here fails ``test_matrix_covers_every_api_route``, so the matrix cannot silently rot.

Rules checked: anonymous callers get 401 on everything but the public endpoints; a patient sees their own
profile and gets 404 for anyone else's; a doctor or nurse with a care relationship gets 2xx, without one
404 with exactly the body a truly missing id gives (no existence leak); roles without patient access get
404 on patient endpoints and 403 where the role lacks the permission; ``/api/v1/admin/*`` is 403 for all
but admins. No response ever contains the uncared-for patient's family name or Health ID, and every
denied patient or permission check leaves a ``denied`` audit entry by the caller.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.identity.rules import format_health_id
from tests.conftest import PASSWORD, ROLES, Cast, login

ANON = "anonymous"
ALL_ROLES = (*ROLES, ANON)
CLINICIANS = ("doctor", "nurse")
CARERS = ("doctor", "nurse", "patient")  # those who may see the cast's patient
TARGETS = ("own", "other", "missing")


@dataclass
class World:
    """What the requests refer to."""

    cast: Cast
    glass_health_id: str
    admin_job_id: str
    admin_notification_id: str
    own: uuid.UUID
    other: uuid.UUID
    missing: uuid.UUID = field(default_factory=uuid.uuid4)

    def patient(self, target: str) -> uuid.UUID:
        return {"own": self.own, "other": self.other, "missing": self.missing}[target]


Expect = Callable[[str, str | None], int]
Body = Callable[[World, str], Any]


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: Expect
    body: Body | None = None
    path_args: Callable[[World, str | None], dict[str, Any]] | None = None
    patient_scoped: bool = False
    audited_denial: bool = False  # a 403/404 must leave a 'denied' audit entry by the caller
    fresh_token: bool = False  # the call ends the session: use a throwaway one


def public(code: int) -> Expect:
    return lambda role, _t: code


def signed_in(code: int | dict[str, int]) -> Expect:
    def expect(role: str, _target: str | None) -> int:
        if role == ANON:
            return 401
        return code if isinstance(code, int) else code[role]

    return expect


def for_roles(allowed: tuple[str, ...], ok: int, denied: int = 403) -> Expect:
    return signed_in({r: ok if r in allowed else denied for r in ROLES})


def patient_rule(ok: int, overrides: dict[str, int] | None = None) -> Expect:
    """2xx for the carers of the own patient, 404 otherwise (401 anonymous)."""

    def expect(role: str, target: str | None) -> int:
        if role == ANON:
            return 401
        if target == "own" and role in CARERS:
            return (overrides or {}).get(role, ok)
        return 404

    return expect


STAFF_409 = {"admin": 409, "doctor": 409, "nurse": 409, "bloodbank_staff": 409, "pharmacist": 409}


def _unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.org"


def _pid(world: World, target: str | None) -> dict[str, Any]:
    assert target is not None
    return {"patient_id": world.patient(target)}


CASES: dict[tuple[str, str], Case] = {
    # --- auth: public -------------------------------------------------------------------------------------
    ("POST", "/api/v1/auth/register"): Case(
        public(201),
        body=lambda _w, r: {
            "role": "donor",
            "email": _unique_email(f"reg-{r}"),
            "password": PASSWORD,
            "full_name": "Registered Donor",
        },
    ),
    ("POST", "/api/v1/auth/login"): Case(
        public(401), body=lambda _w, _r: {"email": "nobody@example.org", "password": "Wrong-password-1"}
    ),
    ("POST", "/api/v1/auth/password/reset-request"): Case(
        public(202), body=lambda _w, _r: {"email": "nobody@example.org"}
    ),
    ("POST", "/api/v1/auth/password/reset"): Case(
        public(422), body=lambda _w, _r: {"token": "x" * 30, "new_password": "Fresh-Start-2031"}
    ),
    ("GET", "/api/v1/health"): Case(public(200)),
    # --- auth: signed in ----------------------------------------------------------------------------------
    ("POST", "/api/v1/auth/logout"): Case(signed_in(204), fresh_token=True),
    ("GET", "/api/v1/auth/me"): Case(signed_in(200)),
    ("POST", "/api/v1/auth/mfa/challenge"): Case(signed_in(422), body=lambda _w, _r: {"code": "123456"}),
    ("POST", "/api/v1/auth/mfa/enrol"): Case(signed_in({**STAFF_409, "patient": 200, "donor": 200})),
    ("POST", "/api/v1/auth/mfa/verify"): Case(
        signed_in({**STAFF_409, "patient": 422, "donor": 422}), body=lambda _w, _r: {"code": "abcdef"}
    ),
    ("POST", "/api/v1/auth/mfa/recovery-codes"): Case(
        for_roles(("admin", *CLINICIANS, "bloodbank_staff", "pharmacist"), 200, 422)
    ),
    ("POST", "/api/v1/auth/mfa/disable"): Case(
        for_roles(("patient", "donor"), 422, 403), body=lambda _w, _r: {"password": "Wrong-password-1"}
    ),
    ("GET", "/api/v1/auth/sessions"): Case(signed_in(200)),
    ("DELETE", "/api/v1/auth/sessions/{session_id}"): Case(
        signed_in(404), path_args=lambda _w, _t: {"session_id": uuid.uuid4()}
    ),
    ("POST", "/api/v1/auth/app-tokens"): Case(signed_in(201), body=lambda _w, _r: {"scope": "user/*.read"}),
    ("POST", "/api/v1/auth/password/change"): Case(
        signed_in(422),
        body=lambda _w, _r: {"current_password": "Wrong-password-1", "new_password": "Fresh-Start-2031"},
    ),
    # --- patients -----------------------------------------------------------------------------------------
    ("GET", "/api/v1/patients"): Case(for_roles(CARERS, 200), audited_denial=True),
    ("POST", "/api/v1/patients"): Case(
        for_roles(CLINICIANS, 201),
        body=lambda _w, r: {
            "given_name": "New",
            "family_name": f"Created-by-{r}",
            "birth_date": "2001-02-03",
            "sex": "male",
        },
        audited_denial=True,
    ),
    ("POST", "/api/v1/patients/break-glass"): Case(
        for_roles(CLINICIANS, 200),
        body=lambda w, _r: {"health_id": w.glass_health_id, "reason": "Unconscious in the emergency room"},
        audited_denial=True,
    ),
    ("GET", "/api/v1/patients/{patient_id}"): Case(
        patient_rule(200), path_args=_pid, patient_scoped=True, audited_denial=True
    ),
    ("PATCH", "/api/v1/patients/{patient_id}"): Case(
        patient_rule(200),
        body=lambda _w, _r: {"phone": "+351 912 000 000"},
        path_args=_pid,
        patient_scoped=True,
        audited_denial=True,
    ),
    ("GET", "/api/v1/patients/{patient_id}/care-team"): Case(
        patient_rule(200), path_args=_pid, patient_scoped=True, audited_denial=True
    ),
    ("POST", "/api/v1/patients/{patient_id}/care-team"): Case(
        patient_rule(201, {"patient": 403}),
        body=lambda w, _r: {"practitioner_id": str(w.cast["nurse"].id)},
        path_args=_pid,
        patient_scoped=True,
        audited_denial=True,
    ),
    ("GET", "/api/v1/patients/{patient_id}/access-history"): Case(
        patient_rule(200), path_args=_pid, patient_scoped=True, audited_denial=True
    ),
    # --- organisation admin -------------------------------------------------------------------------------
    ("GET", "/api/v1/admin/users"): Case(for_roles(("admin",), 200), audited_denial=True),
    ("POST", "/api/v1/admin/users"): Case(
        for_roles(("admin",), 201),
        body=lambda _w, r: {
            "email": _unique_email(f"staff-{r}"),
            "full_name": "New Colleague",
            "role": "nurse",
            "password": PASSWORD,
        },
        audited_denial=True,
    ),
    ("PATCH", "/api/v1/admin/users/{user_id}"): Case(
        for_roles(("admin",), 200),
        body=lambda _w, _r: {"is_active": True},
        path_args=lambda w, _t: {"user_id": w.cast["pharmacist"].id},
        audited_denial=True,
    ),
    ("GET", "/api/v1/admin/audit"): Case(for_roles(("admin",), 200), audited_denial=True),
    ("POST", "/api/v1/admin/audit/verify"): Case(for_roles(("admin",), 202), audited_denial=True),
    # --- platform -----------------------------------------------------------------------------------------
    ("GET", "/api/v1/organisations"): Case(signed_in(200)),
    ("GET", "/api/v1/notifications"): Case(signed_in(200)),
    ("POST", "/api/v1/notifications/{notification_id}/read"): Case(
        for_roles(("admin",), 204, 404), path_args=lambda w, _t: {"notification_id": w.admin_notification_id}
    ),
    ("POST", "/api/v1/notifications/read-all"): Case(signed_in(204)),
    ("GET", "/api/v1/jobs"): Case(signed_in(200)),
    ("GET", "/api/v1/jobs/{job_id}"): Case(
        for_roles(("admin",), 200, 404), path_args=lambda w, _t: {"job_id": w.admin_job_id}
    ),
}


# Domains whose routes have a permission matrix of their own (tests/<domain>/test_permissions.py).
OWN_MATRICES = (
    "/api/v1/scheduling/",
    "/api/v1/records",
    "/api/v1/care/",
    "/api/v1/prescriptions",
    "/api/v1/pharmacy/",
    "/api/v1/articles",
    "/api/v1/activities",
    "/api/v1/credentials",
    "/api/v1/bloodbank",
    "/api/v1/analytics",
    "/api/v1/encounters",
    "/api/v1/documents",
    "/api/v1/imaging",
)


def api_routes(
    app: Any, prefix: str = "/api/v1", excluding: tuple[str, ...] = OWN_MATRICES
) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves under ``prefix``, except under ``excluding``."""
    found = set()
    for context in iter_route_contexts(app.routes):
        path = context.path
        if (
            isinstance(context.original_route, APIRoute)
            and path.startswith(prefix)
            and not path.startswith(excluding)
        ):
            found.update((method, path) for method in context.methods or ())
    return found


def test_matrix_covers_every_api_route(app: Any) -> None:
    served = api_routes(app)
    missing = sorted(served - set(CASES))
    stale = sorted(set(CASES) - served)
    assert not missing, f"add these routes to the permission matrix: {missing}"
    assert not stale, f"these matrix rows name routes that no longer exist: {stale}"


def _denials(tx: Any, actor_id: uuid.UUID) -> tuple[int, uuid.UUID | None]:
    """How many 'denied' entries the actor has, and the patient named by the latest."""
    with tx() as s:
        mine = (AuditEntry.actor_id == actor_id, AuditEntry.outcome == "denied")
        count = int(s.execute(select(func.count()).where(*mine)).scalar_one())
        last = s.execute(select(AuditEntry.patient_id).where(*mine).order_by(AuditEntry.seq.desc())).first()
        return count, last[0] if last else None


def _without_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "instance"}


def test_permission_matrix(client: TestClient, app: Any, cast: Cast, make: Any, tx: Any) -> None:
    assert set(CASES) == api_routes(app)  # (see the coverage test for a readable message)
    glass_patient = make.patient(given_name="Glass", family_name="Emergencia")
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    job = client.post("/api/v1/admin/audit/verify", headers=tokens["admin"])
    assert job.status_code == 202, job.text
    from caresync.core.notify import notify

    with tx() as s:
        note = notify(s, cast["admin"].id, "test", "For the admin only")
    world = World(
        cast=cast,
        glass_health_id=glass_patient.health_id,
        admin_job_id=job.json()["id"],
        admin_notification_id=str(note.id),
        own=cast["patient"].patient_id,
        other=cast.other_patient.id,
    )
    secrets_of_other = (
        cast.other_patient.family_name,
        cast.other_patient.health_id,
        format_health_id(cast.other_patient.health_id),
    )

    problems: list[str] = []
    checked = 0
    for (method, path), case in CASES.items():
        for role in ALL_ROLES:
            bodies_by_target: dict[str, dict[str, Any]] = {}
            for target in TARGETS if case.patient_scoped else (None,):
                expected = case.expect(role, target)
                url = path.format(**case.path_args(world, target)) if case.path_args else path
                headers = tokens[role]
                if case.fresh_token and role != ANON:
                    headers = login(client, cast[role].email, cast[role].password)
                json_body = case.body(world, role) if case.body else None
                person = cast[role] if role != ANON else None
                watch_audit = case.audited_denial and person is not None and expected in (403, 404)
                before = _denials(tx, person.id)[0] if watch_audit and person else 0
                response = client.request(method, url, headers=headers, json=json_body)
                checked += 1
                where = f"{method} {path} as {role}" + (f" ({target} patient)" if target else "")
                if response.status_code != expected:
                    problems.append(
                        f"{where}: expected {expected}, got {response.status_code} {response.text}"
                    )
                    continue
                leaked = [s for s in secrets_of_other if s in response.text]
                if leaked:
                    problems.append(f"{where}: response leaks {leaked}")
                if response.status_code >= 400:
                    if not response.headers["content-type"].startswith("application/problem+json"):
                        problems.append(f"{where}: error is not problem+json")
                    if target:
                        bodies_by_target[target] = _without_instance(response.json())
                if watch_audit and person:
                    count, patient_id = _denials(tx, person.id)
                    if count != before + 1:
                        problems.append(f"{where}: no 'denied' audit entry written")
                    elif target and patient_id != world.patient(target):
                        problems.append(f"{where}: the 'denied' entry does not name the patient")
                is_profile_read = method == "GET" and re.fullmatch(r"/api/v1/patients/\{patient_id\}", path)
                if (
                    is_profile_read
                    and response.status_code == 200
                    and response.json()["id"] != str(world.own)
                ):
                    problems.append(f"{where}: returned another patient")
            hidden, missing = bodies_by_target.get("other"), bodies_by_target.get("missing")
            if hidden is not None and missing is not None and hidden != missing:
                problems.append(
                    f"{method} {path} as {role}: a hidden patient and a missing one answer differently: "
                    f"{hidden} vs {missing}"
                )
    assert not problems, f"{len(problems)} of {checked} checks failed:\n" + "\n".join(problems)
    assert checked >= 300


def test_denied_patient_reads_are_audited_with_the_patient(client: TestClient, cast: Cast, tx: Any) -> None:
    headers = login(client, cast["doctor"].email, cast["doctor"].password)
    other = cast.other_patient.id
    assert client.get(f"/api/v1/patients/{other}", headers=headers).status_code == 404
    with tx() as s:
        entries = list(s.execute(select(AuditEntry).where(AuditEntry.patient_id == other)).scalars())
    assert [(e.action, e.outcome, e.actor_id) for e in entries] == [
        ("patient.read", "denied", cast["doctor"].id)
    ]


def test_clinician_of_another_organisation_does_not_inherit_access(
    client: TestClient, cast: Cast, make: Any
) -> None:
    elsewhere = make.org("Harbour Family Clinic", kind="clinic")
    outsider = make.staff("doctor", elsewhere)
    headers = login(client, outsider.email, outsider.password)
    assert client.get(f"/api/v1/patients/{cast['patient'].patient_id}", headers=headers).status_code == 404
    listed = client.get("/api/v1/patients", headers=headers).json()["items"]
    assert listed == []


def test_admin_cannot_manage_users_of_another_organisation(client: TestClient, cast: Cast, make: Any) -> None:
    elsewhere = make.org("Central Pharmacy", kind="pharmacy")
    foreign = make.staff("pharmacist", elsewhere)
    cast.everyone()
    headers = login(client, cast["admin"].email, cast["admin"].password)
    response = client.patch(f"/api/v1/admin/users/{foreign.id}", json={"is_active": False}, headers=headers)
    assert response.status_code == 404
    listed = client.get("/api/v1/admin/users", headers=headers).json()["items"]
    assert foreign.email not in {u["email"] for u in listed}
    assert {u["role"] for u in listed} == {"admin", "doctor", "nurse", "bloodbank_staff", "pharmacist"}
