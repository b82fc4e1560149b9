"""Consent, enforced in the records service: a table of real situations (granted, revoked, expired,
category excluded, organisation-wide, break-glass, the organisation's care-team policy) and what each
clinician then reads; who may grant; validation; notification; the patient seeing every access; and the
permission matrix of the consent and policy routes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import utcnow
from caresync.records.models import RecordConsent
from tests.conftest import API, ROLES, login
from tests.records.test_records import PDF, upload

R = f"{API}/records"
CATEGORIES_ON_FILE = ("lab", "diagnosis", "mental-health")


@dataclass
class Chart:
    """A patient with one record of each of ``CATEGORIES_ON_FILE``, their care-team doctor (same hospital)
    and an outside doctor of another hospital with no care relationship."""

    patient: Any
    patient_headers: dict[str, str]
    records: dict[str, str]  # category -> record id
    carer: Any
    outsider: Any


@pytest.fixture
def chart(client: TestClient, make: Any, sign_in: Any) -> Chart:
    patient = make.patient_user()
    headers = sign_in(patient)
    records = {}
    for category in CATEGORIES_ON_FILE:
        content = PDF + f"% {category} {uuid.uuid4()}\n".encode()
        response = upload(client, headers, patient.patient_id, category=category, content=content)
        assert response.status_code == 201, response.text
        records[category] = response.json()["id"]
    carer = make.staff("doctor")
    make.care(carer, patient)
    outsider = make.staff("doctor", make.org())
    return Chart(patient, headers, records, carer, outsider)


def grant(client: TestClient, chart: Chart, categories: list[str], **fields: Any) -> Any:
    body = {"patient_id": str(chart.patient.patient_id), "categories": categories, **fields}
    if "organisation_id" not in fields:
        body.setdefault("practitioner_id", str(chart.outsider.id))
    return client.post(f"{R}/consents", json=body, headers=chart.patient_headers)


def readable(client: TestClient, chart: Chart, person: Any, sign_in: Any) -> set[str] | None:
    """The categories ``person`` finds on the timeline (``None``: the patient does not exist for them),
    checked against reading each record one by one."""
    headers = sign_in(person)
    listed = client.get(R, params={"patient_id": str(chart.patient.patient_id)}, headers=headers)
    one_by_one = {
        category
        for category, record_id in chart.records.items()
        if client.get(f"{R}/{record_id}", headers=headers).status_code == 200
    }
    if listed.status_code == 404:
        assert one_by_one == set()
        return None
    assert listed.status_code == 200, listed.text
    on_timeline = {item["category"] for item in listed.json()["items"]}
    assert on_timeline == one_by_one, "the timeline and single reads disagree"
    return on_timeline


def set_policy(client: TestClient, make: Any, sign_in: Any, org: Any, policy: str) -> None:
    admin = make.staff("admin", org)
    response = client.put(f"{R}/policy", json={"care_team": policy}, headers=sign_in(admin))
    assert response.status_code == 200, response.text


def _expire(chart: Chart, tx: Any) -> None:
    with tx() as s:
        for consent in s.execute(
            select(RecordConsent).where(RecordConsent.patient_id == chart.patient.patient_id)
        ).scalars():
            consent.created_at = utcnow() - timedelta(days=10)
            consent.expires_at = utcnow() - timedelta(minutes=1)


Setup = Callable[[TestClient, Chart, Any, Any, Any], None]


def _labs_to_outsider(client: TestClient, chart: Chart, *_: Any) -> None:
    assert grant(client, chart, ["lab"]).status_code == 201


def _labs_to_outsiders_hospital(client: TestClient, chart: Chart, *_: Any) -> None:
    org_id = str(chart.outsider.user.organisation_id)
    assert grant(client, chart, ["lab"], organisation_id=org_id).status_code == 201


def _labs_then_revoked(client: TestClient, chart: Chart, *_: Any) -> None:
    consent = grant(client, chart, ["lab"]).json()
    revoked = client.post(f"{R}/consents/{consent['id']}/revoke", headers=chart.patient_headers)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"


def _labs_expired(client: TestClient, chart: Chart, make: Any, sign_in: Any, tx: Any) -> None:
    _labs_to_outsider(client, chart)
    _expire(chart, tx)


def _all_but_mental_health(client: TestClient, chart: Chart, *_: Any) -> None:
    assert grant(client, chart, ["lab", "diagnosis"]).status_code == 201


def _mental_health_too(client: TestClient, chart: Chart, *_: Any) -> None:
    assert grant(client, chart, ["lab", "mental-health"]).status_code == 201


def _outsider_breaks_glass(client: TestClient, chart: Chart, make: Any, sign_in: Any, tx: Any) -> None:
    body = {"health_id": chart.patient.patient.health_id, "reason": "Unconscious in the emergency room"}
    response = client.post(f"{API}/patients/break-glass", json=body, headers=sign_in(chart.outsider))
    assert response.status_code == 200, response.text


def _carer_policy(policy: str) -> Setup:
    def apply(client: TestClient, chart: Chart, make: Any, sign_in: Any, tx: Any) -> None:
        set_policy(client, make, sign_in, chart.carer.organisation, policy)

    return apply


def _carer_gets_mental_health(client: TestClient, chart: Chart, *_: Any) -> None:
    assert grant(client, chart, ["mental-health"], practitioner_id=str(chart.carer.id)).status_code == 201


NOTHING: set[str] = set()
CASES: list[tuple[str, Setup | None, set[str] | None, set[str] | None]] = [
    # (id, setup, what the care-team doctor reads, what the outside doctor reads; None = no access at all)
    ("no-consent", None, {"lab", "diagnosis"}, None),
    ("labs-to-outsider", _labs_to_outsider, {"lab", "diagnosis"}, {"lab"}),
    ("labs-to-outsiders-hospital", _labs_to_outsiders_hospital, {"lab", "diagnosis"}, {"lab"}),
    ("revoked", _labs_then_revoked, {"lab", "diagnosis"}, None),
    ("expired", _labs_expired, {"lab", "diagnosis"}, None),
    ("mental-health-excluded", _all_but_mental_health, {"lab", "diagnosis"}, {"lab", "diagnosis"}),
    ("mental-health-included", _mental_health_too, {"lab", "diagnosis"}, {"lab", "mental-health"}),
    ("break-glass", _outsider_breaks_glass, {"lab", "diagnosis"}, set(CATEGORIES_ON_FILE)),
    ("policy-consent-only", _carer_policy("consent-only"), NOTHING, None),
    ("policy-full", _carer_policy("full"), set(CATEGORIES_ON_FILE), None),
    ("carer-consented-mental-health", _carer_gets_mental_health, set(CATEGORIES_ON_FILE), None),
]


@pytest.mark.parametrize(
    ("setup", "carer_reads", "outsider_reads"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_consent_decides_what_each_clinician_reads(
    client: TestClient,
    chart: Chart,
    make: Any,
    sign_in: Any,
    tx: Any,
    setup: Setup | None,
    carer_reads: set[str] | None,
    outsider_reads: set[str] | None,
) -> None:
    if setup is not None:
        setup(client, chart, make, sign_in, tx)
    assert readable(client, chart, chart.carer, sign_in) == carer_reads
    assert readable(client, chart, chart.outsider, sign_in) == outsider_reads
    assert readable(client, chart, chart.patient, sign_in) == set(CATEGORIES_ON_FILE)


def test_reads_under_break_glass_are_flagged_and_consented_reads_are_not(
    client: TestClient, chart: Chart, sign_in: Any, tx: Any
) -> None:
    _labs_to_outsider(client, chart)
    assert client.get(f"{R}/{chart.records['lab']}", headers=sign_in(chart.outsider)).status_code == 200
    _outsider_breaks_glass(client, chart, None, sign_in, tx)
    mental = chart.records["mental-health"]
    assert client.get(f"{R}/{mental}", headers=sign_in(chart.outsider)).status_code == 200
    with tx() as s:
        reads = s.execute(
            select(AuditEntry.resource_id, AuditEntry.flagged, AuditEntry.detail)
            .where(AuditEntry.action == "record.read", AuditEntry.actor_id == chart.outsider.id)
            .order_by(AuditEntry.seq)
        ).all()
    assert [(r.resource_id, r.flagged) for r in reads] == [(chart.records["lab"], False), (mental, True)]


def test_a_consent_lets_the_clinician_read_but_never_write(
    client: TestClient, chart: Chart, sign_in: Any
) -> None:
    _labs_to_outsider(client, chart)
    refused = upload(client, sign_in(chart.outsider), chart.patient.patient_id)
    assert refused.status_code == 404
    profile = client.get(f"{API}/patients/{chart.patient.patient_id}", headers=sign_in(chart.outsider))
    assert profile.status_code == 200  # they know whose labs they read


def test_a_consented_patient_is_listed_for_the_clinician_until_revoked(
    client: TestClient, chart: Chart, sign_in: Any
) -> None:
    def listed() -> bool:
        page = client.get(f"{API}/patients", headers=sign_in(chart.outsider)).json()
        return str(chart.patient.patient_id) in {p["id"] for p in page["items"]}

    assert not listed()
    consent = grant(client, chart, ["lab"]).json()
    assert listed()
    client.post(f"{R}/consents/{consent['id']}/revoke", headers=chart.patient_headers)
    assert not listed()


def test_the_practitioner_is_notified_and_the_patient_sees_their_reads(
    client: TestClient, chart: Chart, sign_in: Any, tx: Any
) -> None:
    _labs_to_outsider(client, chart)
    with tx() as s:
        notes = (
            s.execute(select(Notification).where(Notification.user_id == chart.outsider.id)).scalars().all()
        )
    assert [n.kind for n in notes] == ["consent"]
    assert "Lab result" in notes[0].body
    client.get(f"{R}/{chart.records['lab']}", headers=sign_in(chart.outsider))
    history = client.get(
        f"{API}/patients/{chart.patient.patient_id}/access-history", headers=chart.patient_headers
    )
    assert history.status_code == 200, history.text
    actions = {(e["actor_name"], e["action"]) for e in history.json()["items"]}
    assert (chart.outsider.full_name, "record.read") in actions
    assert (chart.patient.full_name, "consent.grant") in actions


def test_only_the_patient_grants_and_revokes(
    client: TestClient, chart: Chart, make: Any, sign_in: Any
) -> None:
    body = {
        "patient_id": str(chart.patient.patient_id),
        "categories": ["lab"],
        "practitioner_id": str(chart.outsider.id),
    }
    by_carer = client.post(f"{R}/consents", json=body, headers=sign_in(chart.carer))
    assert by_carer.status_code == 403  # the care team cannot widen its own access
    by_stranger = client.post(f"{R}/consents", json=body, headers=sign_in(make.patient_user()))
    assert by_stranger.status_code == 404
    consent = grant(client, chart, ["lab"]).json()
    for person in (chart.carer, chart.outsider, make.patient_user()):
        assert client.post(f"{R}/consents/{consent['id']}/revoke", headers=sign_in(person)).status_code == 404
    twice = [
        client.post(f"{R}/consents/{consent['id']}/revoke", headers=chart.patient_headers) for _ in range(2)
    ]
    assert [r.status_code for r in twice] == [200, 200]
    assert twice[0].json()["revoked_at"] == twice[1].json()["revoked_at"]


BAD_GRANTS = [
    ("no-category", {"categories": []}, "categories"),
    ("unknown-category", {"categories": ["astrology"]}, "categories"),
    ("past-expiry", {"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ("no-grantee", {"practitioner_id": None}, "practitioner_id"),
    ("not-a-clinician", {"practitioner_id": "ADMIN"}, "practitioner_id"),
    (
        "unknown-organisation",
        {"practitioner_id": None, "organisation_id": str(uuid.UUID(int=7))},
        "organisation_id",
    ),
]


@pytest.mark.parametrize(("fields", "field"), [c[1:] for c in BAD_GRANTS], ids=[c[0] for c in BAD_GRANTS])
def test_bad_grants_are_refused_with_the_field_named(
    client: TestClient, chart: Chart, make: Any, tx: Any, fields: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {
        "patient_id": str(chart.patient.patient_id),
        "categories": ["lab"],
        "practitioner_id": str(chart.outsider.id),
        **fields,
    }
    if body.get("practitioner_id") == "ADMIN":
        body["practitioner_id"] = str(make.staff("admin").id)
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post(f"{R}/consents", json=body, headers=chart.patient_headers)
    assert response.status_code == 422, response.text
    assert field in response.text
    with tx() as s:
        assert (
            s.execute(
                select(RecordConsent).where(RecordConsent.patient_id == chart.patient.patient_id)
            ).first()
            is None
        )


def test_listed_consents_show_their_status(client: TestClient, chart: Chart, tx: Any) -> None:
    kept = grant(client, chart, ["lab"]).json()
    gone = grant(client, chart, ["diagnosis"]).json()
    client.post(f"{R}/consents/{gone['id']}/revoke", headers=chart.patient_headers)
    listed = client.get(
        f"{R}/consents", params={"patient_id": str(chart.patient.patient_id)}, headers=chart.patient_headers
    )
    assert {c["id"]: c["status"] for c in listed.json()} == {kept["id"]: "active", gone["id"]: "revoked"}
    _expire(chart, tx)
    listed = client.get(
        f"{R}/consents", params={"patient_id": str(chart.patient.patient_id)}, headers=chart.patient_headers
    )
    assert {c["id"]: c["status"] for c in listed.json()} == {kept["id"]: "expired", gone["id"]: "revoked"}


def test_the_policy_is_the_administrators_choice(client: TestClient, make: Any, sign_in: Any) -> None:
    doctor = make.staff("doctor")
    shown = client.get(f"{R}/policy", headers=sign_in(doctor)).json()
    assert shown["care_team"] == "standard"
    assert "mental-health" not in shown["categories"]
    assert client.put(f"{R}/policy", json={"care_team": "full"}, headers=sign_in(doctor)).status_code == 403
    admin = make.staff("admin")
    bad = client.put(f"{R}/policy", json={"care_team": "everyone"}, headers=sign_in(admin))
    assert bad.status_code == 422
    set_policy(client, make, sign_in, admin.organisation, "full")
    assert client.get(f"{R}/policy", headers=sign_in(doctor)).json()["care_team"] == "full"
    other_hospital_doctor = make.staff("doctor", make.org())
    assert client.get(f"{R}/policy", headers=sign_in(other_hospital_doctor)).json()["care_team"] == "standard"


# --- permissions

ANON = "anonymous"


def _statuses(default: int, **overrides: int) -> dict[str, int]:
    return {**dict.fromkeys(ROLES, default), ANON: 401, **overrides}


CONSENT_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    # the cast's patient's consents; staff who care for them may list them, only the patient grants
    ("POST", "/api/v1/records/consents"): _statuses(404, patient=201, doctor=403, nurse=403),
    ("GET", "/api/v1/records/consents"): _statuses(404, patient=200, doctor=200, nurse=200),
    ("POST", "/api/v1/records/consents/{consent_id}/revoke"): _statuses(404, patient=200),
    ("GET", "/api/v1/records/policy"): _statuses(200),
    ("PUT", "/api/v1/records/policy"): _statuses(403, admin=200),
}


def test_consent_permission_matrix(client: TestClient, cast: Any, make: Any, sign_in: Any) -> None:
    patient = cast["patient"]
    outsider = make.staff("doctor", make.org())
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    problems = []
    for (method, path), expected in CONSENT_ROUTES.items():
        for role in (*ROLES, ANON):
            body = {
                "patient_id": str(patient.patient_id),
                "categories": ["lab"],
                "practitioner_id": str(outsider.id),
            }
            if path.endswith("/revoke"):
                consent = client.post(f"{R}/consents", json=body, headers=sign_in(patient)).json()
                response = client.post(path.format(consent_id=consent["id"]), headers=tokens[role])
            elif path.endswith("/policy"):
                response = client.request(method, path, json={"care_team": "standard"}, headers=tokens[role])
            elif method == "POST":
                response = client.post(path, json=body, headers=tokens[role])
            else:
                response = client.get(
                    path, params={"patient_id": str(patient.patient_id)}, headers=tokens[role]
                )
            if response.status_code != expected[role]:
                problems.append(f"{method} {path} as {role}: {response.status_code} != {expected[role]}")
    assert not problems, "\n".join(problems)


def test_a_consent_note_is_stored_without_control_characters(client: TestClient, chart: Chart) -> None:
    granted = grant(client, chart, ["lab"], note="Second\x00 opinion\t on\x1b labs")
    assert granted.status_code == 201, granted.text
    assert granted.json()["note"] == "Second opinion on labs"
