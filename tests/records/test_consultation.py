"""The consultation page: the care-team doctor sees the summary, notes and tasks, imaging findings and
scanned documents; an outside doctor with a labs-only consent sees the labs and nothing else; break-glass
is announced; patients are refused."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import API, web_login
from tests.imaging.conftest import dicom_bytes, register_model, upload_study
from tests.prescriptions.conftest import rx_body
from tests.records.test_summary import add

NOTE = {
    "subjective": "Tired",
    "objective": "BP 150/95",
    "assessment": "Poorly controlled hypertension",
    "plan": "Titrate amlodipine",
}


def test_the_consultation_view_follows_consent(client: TestClient, make: Any, sign_in: Any) -> None:
    patient = make.patient_user(allergies="Latex")
    doctor = make.staff("doctor")
    make.care(doctor, patient)
    pid = patient.patient_id
    headers = sign_in(doctor)
    add(client, headers, pid, "diagnosis", "I10 Essential hypertension", "2021-03-04")
    add(client, headers, pid, "lab", "Lipid panel", "2025-10-01")
    add(client, sign_in(patient), pid, "mental-health", "Anxiety follow-up", "2025-11-01")
    note = client.post(f"{API}/care/patients/{pid}/notes", json=NOTE, headers=headers)
    assert note.status_code == 201, note.text
    prescribed = client.post(f"{API}/prescriptions", json=rx_body(patient), headers=headers)
    assert prescribed.status_code == 201, prescribed.text
    register_model("chest_xray")
    study = upload_study(doctor, pid, dicom_bytes(), "chest.dcm")
    analysed = client.post(f"{API}/imaging/studies/{study}/analyses", json={}, headers=headers)
    assert analysed.status_code == 202, analysed.text

    web_login(client, doctor)
    page = client.get(f"/patients/{pid}/consult")
    assert page.status_code == 200, page.text
    for expected in ("Latex", "I10 Essential hypertension", "Lipid panel", "Poorly controlled hypertension"):
        assert expected in page.text
    assert page.text.count('data-testid="prescription"') == 1
    assert f'href="/prescriptions/{prescribed.json()["id"]}"' in page.text
    assert "Amoxicillin 500 mg" in page.text
    assert "Anxiety follow-up" not in page.text
    assert 'data-testid="hidden-categories"' in page.text
    assert 'data-testid="tasks"' in page.text
    assert page.text.count('data-testid="imaging-study"') == 1
    assert f'href="/imaging/analyses/{analysed.json()["id"]}"' in page.text
    assert 'data-testid="top-finding"' in page.text
    assert "Demonstration only" in page.text
    assert "No scanned documents" in page.text

    outsider = make.staff("doctor", make.org())
    body = {"patient_id": str(pid), "categories": ["lab"], "practitioner_id": str(outsider.id)}
    assert client.post(f"{API}/records/consents", json=body, headers=sign_in(patient)).status_code == 201
    client.cookies.clear()
    web_login(client, outsider)
    page = client.get(f"/patients/{pid}/consult")
    assert page.status_code == 200, page.text
    assert "Lipid panel" in page.text
    for hidden in (
        "I10 Essential hypertension",
        "Anxiety follow-up",
        "Poorly controlled hypertension",
        "Amoxicillin",
    ):
        assert hidden not in page.text
    assert "Medications are not shared with you." in page.text
    assert 'data-testid="imaging-study"' not in page.text  # imaging is not among the consented categories
    assert 'data-testid="tasks"' not in page.text  # a consent reads, it does not join the care team

    client.cookies.clear()
    web_login(client, patient)
    assert client.get(f"/patients/{pid}/consult").status_code == 403


def test_break_glass_is_announced_on_the_page(client: TestClient, make: Any, sign_in: Any) -> None:
    patient = make.patient_user()
    add(client, sign_in(patient), patient.patient_id, "mental-health", "Crisis plan", "2025-11-01")
    stranger = make.staff("doctor", make.org())
    web_login(client, stranger)
    assert client.get(f"/patients/{patient.patient_id}/consult").status_code == 404
    body = {"health_id": patient.patient.health_id, "reason": "Found unresponsive, needs history"}
    assert client.post(f"{API}/patients/break-glass", json=body, headers=sign_in(stranger)).status_code == 200
    page = client.get(f"/patients/{patient.patient_id}/consult")
    assert 'data-testid="break-glass"' in page.text
    assert "Crisis plan" in page.text
