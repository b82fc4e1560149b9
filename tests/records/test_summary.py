"""The consultation summary: current allergies, problems and medications (corrections replace what they
correct), the latest value of each vital sign across readings, recent records, all within consent."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from caresync.core.auth import Principal
from caresync.db import session_factory, transaction
from caresync.records.summary import clinical_summary
from tests.records.test_records import R


def add(
    client: TestClient,
    headers: dict[str, str],
    patient_id: Any,
    category: str,
    title: str,
    day: str,
    **extra: Any,
) -> str:
    form = {
        "patient_id": str(patient_id),
        "category": category,
        "title": title,
        "recorded_on": day,
        "text": title,
        **extra,
    }
    response = client.post(R, data=form, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def principal_of(person: Any) -> Principal:
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
        patient_id=person.patient.id if person.patient else None,
    )


def test_the_summary_shows_what_is_current_and_what_the_reader_may_see(
    client: TestClient, make: Any, sign_in: Any
) -> None:
    patient = make.patient_user()
    doctor = make.staff("doctor")
    make.care(doctor, patient)
    by_doctor = sign_in(doctor)
    pid = patient.patient_id
    add(client, by_doctor, pid, "allergy", "Penicillin: hives", "2022-04-02")
    wrong = add(client, by_doctor, pid, "diagnosis", "E11.9 Type 1 diabetes", "2023-01-10")
    add(
        client,
        by_doctor,
        pid,
        "diagnosis",
        "E11.9 Type 2 diabetes mellitus",
        "2023-01-10",
        supersedes_id=wrong,
    )
    add(client, by_doctor, pid, "medication", "Metformin 500 mg twice daily", "2023-01-10")
    vitals = json.dumps({"systolic": 142, "diastolic": 91, "weight": 88.5})
    add(client, by_doctor, pid, "vitals", "Clinic vitals", "2024-05-01", measurements=vitals)
    add(
        client,
        by_doctor,
        pid,
        "vitals",
        "Clinic vitals",
        "2025-05-01",
        measurements=json.dumps({"systolic": 131, "diastolic": 84}),
    )
    add(client, sign_in(patient), pid, "mental-health", "Therapy summary", "2025-09-01")

    with transaction(session_factory()) as s:
        seen = clinical_summary(s, principal_of(doctor), pid)
        assert [r.title for r in seen.allergies] == ["Penicillin: hives"]
        assert [r.title for r in seen.problems] == ["E11.9 Type 2 diabetes mellitus"]
        assert [r.title for r in seen.medications] == ["Metformin 500 mg twice daily"]
        assert [(v.code, v.value, v.recorded_on.isoformat()) for v in seen.vitals] == [
            ("systolic", 131, "2025-05-01"),
            ("diastolic", 84, "2025-05-01"),
            ("weight", 88.5, "2024-05-01"),
        ]
        assert "Therapy summary" not in [r.title for r in seen.recent]
        own = clinical_summary(s, principal_of(patient), pid)
        assert own.recent[0].title == "Therapy summary"
