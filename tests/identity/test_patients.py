"""Patient profiles over the API: create, validate, edit, search, paginate, care teams, access history."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.identity.models import Patient
from caresync.identity.rules import format_health_id, normalise_health_id
from tests.conftest import API

NEW_PATIENT = {
    "given_name": "Amara",
    "family_name": "Okafor",
    "birth_date": "1987-11-30",
    "sex": "female",
    "phone": "+351 912 345 678",
    "city": "Lisbon",
    "country": "PT",
    "blood_group": "O-",
    "allergies": "penicillin",
}


def _count_patients(tx: Any) -> int:
    with tx() as s:
        return int(s.execute(select(func.count(Patient.id))).scalar_one())


def test_doctor_creates_a_patient_who_joins_the_care_list(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    doctor = make.staff("doctor")
    headers = sign_in(doctor)
    response = client.post(f"{API}/patients", json=NEW_PATIENT, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    for key, value in NEW_PATIENT.items():
        assert created[key] == value, key
    assert normalise_health_id(created["health_id"]) == created["health_id"]
    assert created["has_account"] is False

    listed = client.get(f"{API}/patients", headers=headers).json()["items"]
    assert [p["id"] for p in listed] == [created["id"]]
    team = client.get(f"{API}/patients/{created['id']}/care-team", headers=headers).json()
    assert team == [{"id": str(doctor.id), "full_name": doctor.full_name, "role": "doctor"}]
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "patient.create")).scalar_one()
    assert str(entry.patient_id) == created["id"]
    assert entry.actor_id == doctor.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"birth_date": (date.today() + timedelta(days=1)).isoformat()}, "birth_date"),
        ({"birth_date": "1899-12-31"}, "birth_date"),
        ({"birth_date": "30/11/1987"}, "birth_date"),
        ({"sex": "robot"}, "sex"),
        ({"blood_group": "C+"}, "blood_group"),
        ({"blood_group": "o-"}, "blood_group"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
        ({"health_id": "123456789012"}, "health_id"),
        ({"family_name": "   "}, "family_name"),
        ({"phone": "call me maybe"}, "phone"),
        ({"country": "Portugal"}, "country"),
        ({"latitude": 91}, "latitude"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_create_patient_validation(
    client: TestClient, make: Any, sign_in: Any, tx: Any, change: dict[str, Any], field: str
) -> None:
    headers = sign_in(make.staff("nurse"))
    response = client.post(f"{API}/patients", json={**NEW_PATIENT, **change}, headers=headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in problem["detail"]
    assert problem["errors"]
    assert all(e["field"].split(".")[0] == field for e in problem["errors"])
    assert _count_patients(tx) == 0


@pytest.mark.parametrize("missing", ["given_name", "family_name", "birth_date", "sex"])
def test_create_patient_requires_the_core_fields(
    client: TestClient, make: Any, sign_in: Any, missing: str
) -> None:
    body = {k: v for k, v in NEW_PATIENT.items() if k != missing}
    response = client.post(f"{API}/patients", json=body, headers=sign_in(make.staff("doctor")))
    assert response.status_code == 422
    assert missing in response.json()["detail"]


@pytest.mark.parametrize("field", ["given_name", "family_name", "sex", "birth_date"])
def test_null_for_a_required_field_is_422(
    client: TestClient, make: Any, sign_in: Any, tx: Any, field: str
) -> None:
    doctor = make.staff("doctor")
    patient = make.patient()
    make.care(doctor, patient)
    headers = sign_in(doctor)
    patched = client.patch(f"{API}/patients/{patient.id}", json={field: None}, headers=headers)
    assert patched.status_code == 422, patched.text
    assert field in patched.json()["detail"].replace(" ", "_").lower()
    created = client.post(f"{API}/patients", json={**NEW_PATIENT, field: None}, headers=headers)
    assert created.status_code == 422, created.text
    assert _count_patients(tx) == 1


def test_null_clears_an_optional_field(client: TestClient, make: Any, sign_in: Any) -> None:
    doctor = make.staff("doctor")
    patient = make.patient(phone="+351 900 000 000", city="Porto", allergies="latex", latitude=38.7)
    make.care(doctor, patient)
    headers = sign_in(doctor)
    cleared = {"phone": None, "email": None, "city": None, "allergies": None, "latitude": None}
    patched = client.patch(f"{API}/patients/{patient.id}", json=cleared, headers=headers)
    assert patched.status_code == 200, patched.text
    data = patched.json()
    assert (data["phone"], data["email"], data["city"], data["allergies"]) == ("", "", "", "")
    assert data["latitude"] is None
    created = client.post(f"{API}/patients", json={**NEW_PATIENT, **cleared}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["phone"] == ""
    assert created.json()["city"] == ""


@pytest.mark.parametrize(
    ("sent", "status", "stored"),
    [
        ("Asia/Tokyo", 200, "Asia/Tokyo"),
        ("America/Los_Angeles", 200, "America/Los_Angeles"),
        (None, 200, "UTC"),
        ("Mars/Olympus_Mons", 422, "Europe/Lisbon"),
        ("europe/lisbon", 422, "Europe/Lisbon"),
        ("", 422, "Europe/Lisbon"),
    ],
    ids=["tokyo", "los-angeles", "cleared-to-utc", "unknown", "wrong-case", "empty"],
)
def test_patients_set_their_time_zone(
    client: TestClient, make: Any, sign_in: Any, sent: str | None, status: int, stored: str
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    patient_id = patient.patient.id
    assert (
        client.patch(
            f"{API}/patients/{patient_id}", json={"timezone": "Europe/Lisbon"}, headers=headers
        ).json()["timezone"]
        == "Europe/Lisbon"
    )
    patched = client.patch(f"{API}/patients/{patient_id}", json={"timezone": sent}, headers=headers)
    assert patched.status_code == status, patched.text
    assert client.get(f"{API}/patients/{patient_id}", headers=headers).json()["timezone"] == stored


def test_clinician_may_clear_blood_group(client: TestClient, make: Any, sign_in: Any) -> None:
    doctor = make.staff("doctor")
    patient = make.patient(blood_group="AB+")
    make.care(doctor, patient)
    response = client.patch(
        f"{API}/patients/{patient.id}", json={"blood_group": None}, headers=sign_in(doctor)
    )
    assert response.status_code == 200, response.text
    assert response.json()["blood_group"] is None


def test_patient_edits_own_profile(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    person = make.patient_user(blood_group="A+")
    headers = sign_in(person)
    url = f"{API}/patients/{person.patient_id}"
    changes = {"phone": "+351 965 111 222", "address_line": "12 Rua Nova", "emergency_contact_name": "Rui"}
    response = client.patch(url, json=changes, headers=headers)
    assert response.status_code == 200, response.text
    again = client.get(url, headers=headers).json()
    for key, value in changes.items():
        assert again[key] == value
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "patient.update")).scalar_one()
    detail = json.loads(entry.detail)
    assert detail == {"access": "self", "fields": sorted(changes)}
    assert "Rua Nova" not in entry.detail  # the audit log names fields, not values

    refused = client.patch(url, json={"blood_group": "O-"}, headers=headers)
    assert refused.status_code == 422
    assert "care team" in refused.json()["detail"]
    assert refused.json()["field"] == "blood_group"
    assert client.get(url, headers=headers).json()["blood_group"] == "A+"
    same = client.patch(url, json={"blood_group": "A+", "city": "Braga"}, headers=headers)
    assert same.status_code == 200
    assert same.json()["city"] == "Braga"


def test_doctor_sets_blood_group(client: TestClient, make: Any, sign_in: Any) -> None:
    doctor = make.staff("doctor")
    person = make.patient_user()
    make.care(doctor, person)
    response = client.patch(
        f"{API}/patients/{person.patient_id}", json={"blood_group": "B-"}, headers=sign_in(doctor)
    )
    assert response.status_code == 200
    assert response.json()["blood_group"] == "B-"


def test_search_by_name_and_health_id(client: TestClient, make: Any, sign_in: Any) -> None:
    doctor = make.staff("doctor")
    ana = make.patient(given_name="Ana", family_name="Silva")
    bea = make.patient(given_name="Beatriz", family_name="Silveira")
    kwame = make.patient(given_name="Kwame", family_name="Mensah")
    hidden = make.patient(given_name="Ana", family_name="Silvestre")  # not in the doctor's care
    for p in (ana, bea, kwame):
        make.care(doctor, p)
    headers = sign_in(doctor)

    def search(q: str) -> list[str]:
        response = client.get(f"{API}/patients", params={"q": q}, headers=headers)
        assert response.status_code == 200, response.text
        return [p["family_name"] for p in response.json()["items"]]

    assert search("silv") == ["Silva", "Silveira"]
    assert search("SILVEIRA") == ["Silveira"]
    assert search("ana silva") == ["Silva"]
    assert search("kwame") == ["Mensah"]
    assert search("nobody") == []
    assert search(format_health_id(kwame.health_id)) == ["Mensah"]
    assert search(" ".join(format_health_id(bea.health_id).split("-"))) == ["Silveira"]
    assert search(hidden.health_id) == []
    assert hidden.family_name not in client.get(f"{API}/patients", headers=headers).text


def test_cursor_pagination_is_complete_and_stable(client: TestClient, make: Any, sign_in: Any) -> None:
    doctor = make.staff("doctor")
    births = [date(1950, 1, 1) + timedelta(days=400 * i) for i in range(8)]
    names = ["Costa", "Costa", "Costa", "Almeida", "Zhang", "Patel", "Costa", "Rossi"]  # ties on purpose
    made = [make.patient(family_name=n, birth_date=b) for n, b in zip(names, births, strict=True)]
    for p in made:
        make.care(doctor, p)
    headers = sign_in(doctor)

    def walk(sort: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = client.get(f"{API}/patients", params=params, headers=headers)
            assert page.status_code == 200, page.text
            data = page.json()
            assert len(data["items"]) <= 3
            items += data["items"]
            pages += 1
            cursor = data["next_cursor"]
            if not cursor:
                return items
            assert pages < 10

    by_name = walk("family_name")
    ids = [p["id"] for p in by_name]
    assert len(ids) == 8
    assert len(set(ids)) == 8
    assert sorted(ids) == sorted(str(p.id) for p in made)
    keys = [(p["family_name"], p["id"]) for p in by_name]
    assert keys == sorted(keys)
    assert walk("family_name") == by_name  # stable

    by_created = walk("-created_at")  # a timestamp cursor
    assert sorted(p["id"] for p in by_created) == sorted(ids)

    by_age = walk("-birth_date")
    assert [p["birth_date"] for p in by_age] == [b.isoformat() for b in sorted(births, reverse=True)]

    first = client.get(f"{API}/patients", params={"limit": 3}, headers=headers).json()
    make.care(doctor, make.patient(family_name="Aaronson"))  # added before the cursor: not seen
    rest = client.get(
        f"{API}/patients", params={"limit": 50, "cursor": first["next_cursor"]}, headers=headers
    )
    assert [p["id"] for p in rest.json()["items"]] == ids[3:]


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMiwzXQ"}, "cursor"),  # base64 of [1,2,3]
        ({"cursor": "WyJ4IiwiIG5vdC1hLXV1aWQiXQ"}, "cursor"),  # ["x", " not-a-uuid"]
        ({"sort": "password"}, "Cannot sort by"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
    ],
)
def test_bad_list_parameters_are_422(
    client: TestClient, make: Any, sign_in: Any, params: dict[str, Any], text: str
) -> None:
    doctor = make.staff("doctor")
    make.care(doctor, make.patient())
    response = client.get(f"{API}/patients", params=params, headers=sign_in(doctor))
    assert response.status_code == 422, response.text
    assert text in response.json()["detail"]


def test_access_history_shows_the_doctors_read_to_the_patient(
    client: TestClient, make: Any, sign_in: Any
) -> None:
    doctor = make.staff("doctor", full_name="Dr. Grace Mensah")
    person = make.patient_user()
    make.care(doctor, person)
    assert client.get(f"{API}/patients/{person.patient_id}", headers=sign_in(doctor)).status_code == 200
    history = client.get(f"{API}/patients/{person.patient_id}/access-history", headers=sign_in(person))
    assert history.status_code == 200, history.text
    reads = [(e["actor_name"], e["actor_role"], e["action"], e["outcome"]) for e in history.json()["items"]]
    assert ("Dr. Grace Mensah", "doctor", "patient.read", "success") in reads
    seqs = [e["seq"] for e in history.json()["items"]]
    assert seqs == sorted(seqs, reverse=True)  # newest first


def test_care_team_add(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    doctor = make.staff("doctor")
    nurse = make.staff("nurse")
    pharmacist = make.staff("pharmacist")
    foreign = make.staff("doctor", make.org("Harbour Family Clinic", kind="clinic"))
    patient = make.patient()
    make.care(doctor, patient)
    doctor_headers, nurse_headers = sign_in(doctor), sign_in(nurse)
    url = f"{API}/patients/{patient.id}"
    assert client.get(url, headers=nurse_headers).status_code == 404

    added = client.post(
        f"{url}/care-team",
        json={"practitioner_id": str(nurse.id), "reason": "night shift"},
        headers=doctor_headers,
    )
    assert added.status_code == 201, added.text
    assert {m["id"] for m in added.json()} == {str(doctor.id), str(nurse.id)}
    assert client.get(url, headers=nurse_headers).status_code == 200
    again = client.post(f"{url}/care-team", json={"practitioner_id": str(nurse.id)}, headers=doctor_headers)
    assert again.status_code == 201
    assert len(again.json()) == 2

    for colleague in (pharmacist, foreign):
        refused = client.post(
            f"{url}/care-team", json={"practitioner_id": str(colleague.id)}, headers=doctor_headers
        )
        assert refused.status_code == 422
        assert refused.json()["field"] == "practitioner_id"
    with tx() as s:
        actions = s.execute(select(AuditEntry.action).where(AuditEntry.action == "patient.care_team_add"))
        assert len(list(actions)) == 2
