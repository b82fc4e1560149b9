"""App tokens: a signed-in user issues a bearer token limited to SMART scopes for a FHIR app; it is listed
and revoked like a session, and its scopes decide what it may do on the FHIR API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.fhir.tokens import MAX_HOURS
from tests.conftest import API, Cast, Person, bearer
from tests.fhir.conftest import FhirApi, ids

SignIn = Callable[[Person], dict[str, str]]
TOKENS = f"{API}/auth/app-tokens"


def issue(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(TOKENS, json={"scope": "patient/*.read", **body}, headers=headers)


def audit(tx: Any, action: str) -> list[AuditEntry]:
    with tx() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_a_patient_issues_an_app_token(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn, tx: Any
) -> None:
    me = cast["patient"]
    response = issue(client, sign_in(me), scope="openid  patient/*.read", label="My health app", hours=48)
    assert response.status_code == 201, response.text
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["scope"] == "openid patient/*.read"
    assert token["patient"] == str(me.patient_id)
    expires = datetime.fromisoformat(token["expires_at"])
    now = datetime.now(expires.tzinfo)
    assert timedelta(hours=47) < expires - now <= timedelta(hours=48)
    headers = bearer(token["access_token"])
    assert ids(fhir.get("Patient", headers).json()) == [str(me.patient_id)]
    (entry,) = audit(tx, "auth.app_token")
    assert entry.actor_id == me.id
    assert json.loads(entry.detail) == {
        "scope": "openid patient/*.read",
        "label": "My health app",
        "hours": 48,
    }
    assert token["access_token"] not in entry.detail


def test_staff_issue_user_scopes(fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn) -> None:
    response = issue(client, sign_in(cast["doctor"]), scope="user/Patient.read user/Appointment.write")
    assert response.status_code == 201, response.text
    assert response.json()["patient"] is None
    headers = bearer(response.json()["access_token"])
    assert ids(fhir.get("Patient", headers).json()) == [str(cast["patient"].patient_id)]


def test_patient_scopes_are_for_patients_only(client: TestClient, cast: Cast, sign_in: SignIn) -> None:
    for role in ("doctor", "admin"):
        response = issue(client, sign_in(cast[role]), scope="patient/*.read")
        assert response.status_code == 422, role
        assert "only patients" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"scope": "patient/*.admin"}, "is not a scope"),
        ({"scope": "system/*.read"}, "context must be"),
        ({"scope": "patient/Spaceship.read"}, "no Spaceship resource"),
        ({"scope": "openid fhirUser"}, "at least one data scope"),
        ({"scope": ""}, ""),
        ({"hours": 0}, ""),
        ({"hours": MAX_HOURS + 1}, ""),
        ({"expires": "never"}, ""),
    ],
)
def test_bad_requests_are_refused(
    client: TestClient, cast: Cast, sign_in: SignIn, tx: Any, body: dict[str, Any], words: str
) -> None:
    response = issue(client, sign_in(cast["patient"]), **body)
    assert response.status_code == 422, response.text
    assert words in json.dumps(response.json())
    assert audit(tx, "auth.app_token") == []


@pytest.mark.parametrize("hours", [1, MAX_HOURS])
def test_hours_bounds(client: TestClient, cast: Cast, sign_in: SignIn, hours: int) -> None:
    response = issue(client, sign_in(cast["patient"]), hours=hours)
    assert response.status_code == 201, response.text
    expires = datetime.fromisoformat(response.json()["expires_at"])
    left = expires - datetime.now(expires.tzinfo)
    assert timedelta(hours=hours) - timedelta(minutes=5) < left <= timedelta(hours=hours)


def test_default_lifetime_is_thirty_days(client: TestClient, cast: Cast, sign_in: SignIn) -> None:
    response = issue(client, sign_in(cast["patient"]))
    expires = datetime.fromisoformat(response.json()["expires_at"])
    left = expires - datetime.now(expires.tzinfo)
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)


def test_listed_with_the_sessions_and_revocable(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn
) -> None:
    me = cast["patient"]
    own = sign_in(me)
    token = issue(client, own, scope="patient/Patient.rs", label="Step counter").json()
    app = bearer(token["access_token"])
    assert fhir.get(f"Patient/{me.patient_id}", app).status_code == 200
    sessions = client.get(f"{API}/auth/sessions", headers=own).json()
    (listed,) = [s for s in sessions if s["scope"] is not None]
    assert (listed["scope"], listed["label"], listed["kind"]) == ("patient/Patient.rs", "Step counter", "api")
    assert listed["current"] is False
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    assert current[0]["scope"] is None
    assert client.delete(f"{API}/auth/sessions/{listed['id']}", headers=own).status_code == 204
    response = fhir.get(f"Patient/{me.patient_id}", app)
    assert response.status_code == 401
    assert response.json()["issue"][0]["code"] == "login"
    # the user's own session is untouched
    assert fhir.get(f"Patient/{me.patient_id}", own).status_code == 200


def test_a_label_defaults(client: TestClient, cast: Cast, sign_in: SignIn) -> None:
    own = sign_in(cast["patient"])
    assert issue(client, own).status_code == 201
    (listed,) = [s for s in client.get(f"{API}/auth/sessions", headers=own).json() if s["scope"]]
    assert listed["label"] == "FHIR app"


def test_scopes_that_do_not_cover_the_type_are_forbidden_and_audited(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn, tx: Any
) -> None:
    doctor = cast["doctor"]
    token = issue(client, sign_in(doctor), scope="user/Appointment.read").json()
    headers = bearer(token["access_token"])
    for path in ("Patient", f"Patient/{cast['patient'].patient_id}", "Patient?gender=female"):
        response = fhir.get(path, headers)
        assert response.status_code == 403, path
        issue_ = response.json()["issue"][0]
        assert issue_["code"] == "forbidden"
        assert "user/Appointment.read" in issue_["diagnostics"]
    denied = audit(tx, "fhir.scope")
    assert len(denied) == 3
    for entry in denied:
        assert (entry.outcome, entry.actor_id, entry.resource_type) == ("denied", doctor.id, "Patient")
        assert json.loads(entry.detail)["scope"] == "user/Appointment.read"
    assert {json.loads(e.detail)["interaction"] for e in denied} == {"r", "s"}
    # nothing about patients was read
    assert audit(tx, "patient.read") == []
    assert audit(tx, "patient.list") == []


def test_a_read_scope_cannot_create(fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn) -> None:
    token = issue(client, sign_in(cast["doctor"]), scope="user/Patient.read").json()
    resource = {
        "resourceType": "Patient",
        "name": [{"family": "Nwosu", "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1992-01-02",
    }
    response = fhir.post("Patient", resource, bearer(token["access_token"]))
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    writer = issue(client, sign_in(cast["doctor"]), scope="user/Patient.c").json()
    assert fhir.post("Patient", resource, bearer(writer["access_token"])).status_code == 201


def test_an_app_token_cannot_issue_app_tokens(
    client: TestClient, cast: Cast, sign_in: SignIn, tx: Any
) -> None:
    token = issue(client, sign_in(cast["patient"]), scope="patient/*.*").json()
    response = issue(client, bearer(token["access_token"]))
    assert response.status_code == 403
    assert len(audit(tx, "auth.app_token")) == 1


def test_issuing_needs_a_full_sign_in(client: TestClient, cast: Cast) -> None:
    assert issue(client, {}).status_code == 401
    assert issue(client, bearer("made-up")).status_code == 401
    doctor = cast["doctor"]
    login = client.post(f"{API}/auth/login", json={"email": doctor.email, "password": doctor.password})
    assert login.json()["stage"] == "mfa"
    response = issue(client, bearer(login.json()["access_token"]), scope="user/*.read")
    assert response.status_code == 403
