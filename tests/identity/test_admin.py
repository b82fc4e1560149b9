"""Organisation administration over the API: staff accounts, the audit search, the directory."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.identity.rules import format_health_id
from tests.conftest import API, PASSWORD, bearer


def _new_staff(client: TestClient, headers: dict[str, str], **overrides: Any) -> Any:
    body = {
        "email": "colleague@example.org",
        "full_name": "New Colleague",
        "role": "nurse",
        "password": PASSWORD,
    }
    body.update(overrides)
    return client.post(f"{API}/admin/users", json=body, headers=headers)


def test_create_staff(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    admin = make.staff("admin")
    headers = sign_in(admin)
    created = _new_staff(client, headers)
    assert created.status_code == 201, created.text
    user = created.json()
    assert (user["role"], user["organisation_id"], user["mfa_enabled"]) == (
        "nurse",
        str(admin.organisation.id),
        False,
    )
    assert "password" not in created.text
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "user.create")).scalar_one()
    assert entry.actor_id == admin.id
    assert json.loads(entry.detail) == {"role": "nurse"}

    duplicate = _new_staff(client, headers, email="COLLEAGUE@example.org")
    assert duplicate.status_code == 409


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"role": "patient"}, "role"),
        ({"role": "superuser"}, "role"),
        ({"email": "not-an-email"}, "email"),
        ({"full_name": "X"}, "full_name"),
        ({"password": "short"}, "at least 10 characters"),
        ({"organisation_id": "00000000-0000-0000-0000-000000000000"}, "organisation_id"),
    ],
)
def test_create_staff_validation(
    client: TestClient, make: Any, sign_in: Any, overrides: dict[str, Any], text: str
) -> None:
    response = _new_staff(client, sign_in(make.staff("admin")), **overrides)
    assert response.status_code == 422, response.text
    assert text in response.json()["detail"]


def test_an_organisation_only_employs_its_kinds_of_staff(client: TestClient, make: Any, sign_in: Any) -> None:
    pharmacy = make.org("Central Pharmacy", kind="pharmacy")
    admin = make.staff("admin", pharmacy)
    pharmacist = make.staff("pharmacist", pharmacy)
    headers = sign_in(admin)
    refused = _new_staff(client, headers, role="doctor")
    assert refused.status_code == 422
    assert "pharmacy cannot employ the role doctor" in refused.json()["detail"]
    assert _new_staff(client, headers, role="pharmacist").status_code == 201
    # the same rule holds when changing someone's role
    changed = client.patch(f"{API}/admin/users/{pharmacist.id}", json={"role": "nurse"}, headers=headers)
    assert changed.status_code == 422, changed.text
    assert "cannot employ the role nurse" in changed.json()["detail"]


def test_list_search_and_sort_staff(client: TestClient, make: Any, sign_in: Any) -> None:
    admin = make.staff("admin", full_name="Ines Admin")
    make.staff("doctor", full_name="Dr. Zora Petrov")
    make.staff("doctor", full_name="Dr. Arjun Patel")
    make.staff("nurse", full_name="Nadia Costa")
    make.staff("doctor", make.org("Elsewhere Clinic", kind="clinic"), full_name="Dr. Elsewhere")
    make.patient_user()
    headers = sign_in(admin)

    def names(**params: Any) -> list[str]:
        response = client.get(f"{API}/admin/users", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [u["full_name"] for u in response.json()["items"]]

    assert names() == ["Dr. Arjun Patel", "Dr. Zora Petrov", "Ines Admin", "Nadia Costa"]
    assert names(role="doctor") == ["Dr. Arjun Patel", "Dr. Zora Petrov"]
    assert names(q="PETROV") == ["Dr. Zora Petrov"]
    assert names(sort="-full_name", limit=2) == ["Nadia Costa", "Ines Admin"]
    assert (
        client.get(f"{API}/admin/users", params={"sort": "password_hash"}, headers=headers).status_code == 422
    )


def test_deactivate_signs_the_user_out(client: TestClient, make: Any, sign_in: Any) -> None:
    admin, nurse = make.staff("admin"), make.staff("nurse")
    admin_headers, nurse_headers = sign_in(admin), sign_in(nurse)
    off = client.patch(f"{API}/admin/users/{nurse.id}", json={"is_active": False}, headers=admin_headers)
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert client.get(f"{API}/auth/me", headers=nurse_headers).status_code == 401
    login = client.post(f"{API}/auth/login", json={"email": nurse.email, "password": nurse.password})
    assert login.status_code == 401
    on = client.patch(f"{API}/admin/users/{nurse.id}", json={"is_active": True}, headers=admin_headers)
    assert on.status_code == 200
    assert sign_in(nurse)


def test_admin_cannot_lock_themselves_out(client: TestClient, make: Any, sign_in: Any) -> None:
    admin = make.staff("admin")
    headers = sign_in(admin)
    for change in ({"is_active": False}, {"role": "doctor"}):
        response = client.patch(f"{API}/admin/users/{admin.id}", json=change, headers=headers)
        assert response.status_code == 422
        assert "yourself" in response.json()["detail"]


def test_reset_mfa_forces_enrolment_again(client: TestClient, make: Any, sign_in: Any) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor")
    doctor_headers = sign_in(doctor)
    reset = client.patch(f"{API}/admin/users/{doctor.id}", json={"reset_mfa": True}, headers=sign_in(admin))
    assert reset.status_code == 200
    assert reset.json()["mfa_enabled"] is False
    assert client.get(f"{API}/auth/me", headers=doctor_headers).status_code == 401
    again = client.post(f"{API}/auth/login", json={"email": doctor.email, "password": doctor.password})
    assert again.json()["stage"] == "enrol"
    assert client.get(f"{API}/patients", headers=bearer(again.json()["access_token"])).status_code == 403


def test_change_role(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    admin, nurse = make.staff("admin"), make.staff("nurse")
    response = client.patch(f"{API}/admin/users/{nurse.id}", json={"role": "doctor"}, headers=sign_in(admin))
    assert response.status_code == 200
    assert response.json()["role"] == "doctor"
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "user.update")).scalar_one()
    assert json.loads(entry.detail) == {"role": ["nurse", "doctor"]}
    assert client.get(f"{API}/auth/me", headers=sign_in(nurse)).json()["role"] == "doctor"


def test_audit_search(client: TestClient, make: Any, sign_in: Any) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor", full_name="Dr. Kenji Nakamura")
    outsider = make.staff("doctor", make.org("Other Hospital"), full_name="Dr. Outsider")
    mine, hidden = make.patient(), make.patient()
    make.care(doctor, mine)
    doctor_headers = sign_in(doctor)
    assert client.get(f"{API}/patients/{mine.id}", headers=doctor_headers).status_code == 200
    assert client.get(f"{API}/patients/{hidden.id}", headers=doctor_headers).status_code == 404
    sign_in(outsider)
    headers = sign_in(admin)

    def search(**params: Any) -> list[tuple[str, str, str]]:
        response = client.get(f"{API}/admin/audit", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [(e["actor_name"], e["action"], e["outcome"]) for e in response.json()["items"]]

    everything = search()
    assert ("Dr. Outsider", "auth.login", "success") not in everything  # other organisations stay out
    assert search(action="patient.read") == [
        ("Dr. Kenji Nakamura", "patient.read", "denied"),
        ("Dr. Kenji Nakamura", "patient.read", "success"),
    ]
    assert search(action="patient.", outcome="denied") == [("Dr. Kenji Nakamura", "patient.read", "denied")]
    assert {a for a, _, _ in search(actor="nakamura")} == {"Dr. Kenji Nakamura"}
    assert search(health_id=format_health_id(mine.health_id)) == [
        ("Dr. Kenji Nakamura", "patient.read", "success")
    ]
    assert search(flagged="true") == []
    bad = client.get(f"{API}/admin/audit", params={"health_id": "1234-5678-9012"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["field"] == "health_id"
    paged = client.get(f"{API}/admin/audit", params={"limit": 2}, headers=headers).json()
    rest = client.get(
        f"{API}/admin/audit", params={"limit": 200, "cursor": paged["next_cursor"]}, headers=headers
    )
    seqs = [e["seq"] for e in paged["items"] + rest.json()["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)


def test_organisation_directory(client: TestClient, make: Any, sign_in: Any) -> None:
    make.org("Alpha Blood Centre", kind="blood_bank")
    make.org("Beta Pharmacy", kind="pharmacy")
    donor = make.donor()
    headers = sign_in(donor)
    listed = client.get(f"{API}/organisations", headers=headers).json()
    assert [o["name"] for o in listed] == ["Alpha Blood Centre", "Beta Pharmacy"]
    banks = client.get(f"{API}/organisations", params={"kind": "blood_bank"}, headers=headers).json()
    assert [o["kind"] for o in banks] == ["blood_bank"]
