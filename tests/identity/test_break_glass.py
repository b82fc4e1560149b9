"""Emergency ("break-glass") access to a patient without a care relationship."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from caresync.core.audit import AuditEntry
from caresync.db import utcnow
from caresync.identity.models import BreakGlassGrant
from caresync.identity.rules import format_health_id
from tests.conftest import API

REASON = "Unconscious on arrival in the emergency room"


def test_break_glass_grants_flagged_access_and_tells_the_patient(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    doctor = make.staff("doctor")
    patient = make.patient_user()
    headers = sign_in(doctor)
    url = f"{API}/patients/{patient.patient_id}"
    assert client.get(url, headers=headers).status_code == 404

    display_id = format_health_id(patient.patient.health_id)  # typed with dashes and spaces
    response = client.post(
        f"{API}/patients/break-glass",
        headers=headers,
        json={"health_id": f" {display_id.replace('-', ' - ')} ", "reason": REASON},
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(patient.patient_id)

    read = client.get(url, headers=headers)
    assert read.status_code == 200
    assert read.json()["health_id"] == patient.patient.health_id
    listed = client.get(f"{API}/patients", headers=headers).json()["items"]
    assert [p["id"] for p in listed] == [str(patient.patient_id)]

    with tx() as s:
        entries = list(
            s.execute(
                select(AuditEntry).where(AuditEntry.patient_id == patient.patient_id).order_by(AuditEntry.seq)
            ).scalars()
        )
        grant = s.execute(select(BreakGlassGrant)).scalar_one()
    assert [(e.action, e.outcome, e.flagged) for e in entries] == [
        ("patient.read", "denied", False),
        ("patient.break_glass", "success", True),
        ("patient.read", "success", True),
    ]
    assert json.loads(entries[1].detail)["reason"] == REASON
    assert json.loads(entries[2].detail)["access"] == "break_glass"
    assert grant.user_id == doctor.id
    assert grant.reason == REASON
    hours = (grant.expires_at - grant.created_at) / timedelta(hours=1)
    assert hours == pytest.approx(4)

    patient_headers = sign_in(patient)
    notes = client.get(f"{API}/notifications", headers=patient_headers).json()
    assert notes["unread"] == 1
    note = notes["items"][0]
    assert note["kind"] == "break_glass"
    assert note["title"] == "Emergency access to your record"
    assert doctor.full_name in note["body"]
    assert REASON in note["body"]
    history = client.get(f"{url}/access-history", headers=patient_headers).json()["items"]
    assert [h["flagged"] for h in history if h["action"] == "patient.break_glass"] == [True]

    # the admin sees the flagged entries in the audit search
    admin = make.staff("admin")
    found = client.get(f"{API}/admin/audit", params={"flagged": "true"}, headers=sign_in(admin)).json()
    assert {e["action"] for e in found["items"]} == {"patient.break_glass", "patient.read"}
    assert all(e["flagged"] for e in found["items"])


def test_break_glass_expires(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    nurse = make.staff("nurse")
    patient = make.patient()
    headers = sign_in(nurse)
    body = {"health_id": patient.health_id, "reason": REASON}
    assert client.post(f"{API}/patients/break-glass", headers=headers, json=body).status_code == 200
    assert client.get(f"{API}/patients/{patient.id}", headers=headers).status_code == 200
    with tx() as s:
        s.execute(update(BreakGlassGrant).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(f"{API}/patients/{patient.id}", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "too short"}, "reason"),
        ({"reason": "          padded    "}, "reason"),
        ({"health_id": "1234-5678-9012"}, "health_id"),  # wrong check digit
        ({"health_id": "12345"}, "health_id"),
        ({"health_id": "abcd-efgh-ijkl"}, "health_id"),
    ],
)
def test_break_glass_validation(
    client: TestClient, make: Any, sign_in: Any, body: dict[str, str], field: str
) -> None:
    doctor = make.staff("doctor")
    patient = make.patient()
    request = {"health_id": patient.health_id, "reason": REASON, **body}
    if field == "health_id":
        digits = request["health_id"].replace("-", "")
        if digits.isdigit() and len(digits) == 12:
            assert digits != patient.health_id
    response = client.post(f"{API}/patients/break-glass", headers=sign_in(doctor), json=request)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in problem["detail"].lower().replace(" ", "_") or problem.get("field") == field
    assert client.get(f"{API}/patients/{patient.id}", headers=sign_in(doctor)).status_code == 404


def test_break_glass_unknown_health_id_is_404_and_audited(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    from caresync.identity.rules import verhoeff_check_digit

    doctor = make.staff("doctor")
    unused = "98765432101" + verhoeff_check_digit("98765432101")
    response = client.post(
        f"{API}/patients/break-glass", headers=sign_in(doctor), json={"health_id": unused, "reason": REASON}
    )
    assert response.status_code == 404
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "patient.break_glass")).scalar_one()
    assert (entry.outcome, entry.flagged, entry.actor_id) == ("failure", True, doctor.id)
