"""The medications and engagement demo: prescriptions that agree with the records, real dispense histories,
a pending renewal, dose marks, articles and streaks, all usable through the API as the demo logins."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.demo import DEMO_LOGINS, DEMO_PASSWORD, demo_totp_secret, load_demo
from caresync.prescriptions.models import Dispense, DoseLog, Prescription, PrescriptionRequest
from caresync.prescriptions.rules import fills_allowed
from tests.conftest import API, login

PATIENTS = 6


def _demo_login(client: TestClient, role: str) -> dict[str, str]:
    email = dict(DEMO_LOGINS)[role]
    otp = None if role in ("patient", "donor") else pyotp.TOTP(demo_totp_secret(email)).now()
    return login(client, email, DEMO_PASSWORD, otp)


def test_demo_prescriptions_dispenses_and_marks_are_consistent(tx: Any) -> None:
    load_demo(patients=PATIENTS, seed=7, documents=False, imaging=False)
    with tx() as s:
        prescriptions = s.execute(select(Prescription)).scalars().all()
        dispenses = s.execute(select(Dispense)).scalars().all()
        marks = s.execute(select(DoseLog)).scalars().all()
        statuses = Counter(p.status for p in prescriptions)
        assert statuses["active"] >= 2, statuses
        fills: dict[Any, list[int]] = {}
        for dispense in dispenses:
            fills.setdefault(dispense.prescription_id, []).append(dispense.fill_number)
        for prescription in prescriptions:
            numbers = sorted(fills.get(prescription.id, []))
            assert numbers == list(range(1, prescription.dispense_count + 1)), prescription.medication_name
            assert prescription.dispense_count <= fills_allowed(prescription.refills)
            assert prescription.start_date <= prescription.valid_until
        started = {p.id: p.start_date for p in prescriptions}
        assert all(d.dispensed_on >= started[d.prescription_id] for d in dispenses)
        assert marks, "portal patients have dose marks"
        assert {m.status for m in marks} <= {"taken", "skipped"}


def test_the_demo_patient_sees_a_renewal_due_a_refill_left_and_a_working_qr_code(client: TestClient) -> None:
    load_demo(patients=PATIENTS, seed=7, documents=False, imaging=False)
    patient = _demo_login(client, "patient")
    mine = client.get(f"{API}/prescriptions", headers=patient)
    assert mine.status_code == 200, mine.text
    by_name = {item["medication_name"]: item for item in mine.json()["items"]}
    assert by_name["Cetirizine"]["next_step"] == "renewal"
    assert by_name["Salbutamol"]["next_step"] == "refill"
    assert by_name["Salbutamol"]["refills_left"] == 5
    pending = client.get(f"{API}/prescriptions/requests", headers=patient).json()["items"]
    assert [(r["kind"], r["status"]) for r in pending] == [("renewal", "pending")]

    code = client.get(f"{API}/prescriptions/{by_name['Salbutamol']['id']}/qr", headers=patient).json()["code"]
    pharmacist = _demo_login(client, "pharmacist")
    verified = client.post(f"{API}/pharmacy/verify", json={"code": code}, headers=pharmacist)
    assert verified.status_code == 200, verified.text
    used_up = client.get(f"{API}/prescriptions/{by_name['Cetirizine']['id']}/qr", headers=patient)
    assert used_up.status_code == 409


def test_demo_articles_feed_and_streaks(client: TestClient, tx: Any) -> None:
    load_demo(patients=PATIENTS, seed=7, documents=False, imaging=False)
    patient = _demo_login(client, "patient")
    articles = client.get(f"{API}/articles", params={"limit": 50}, headers=patient)
    assert articles.status_code == 200, articles.text
    assert len(articles.json()["items"]) >= 15
    assert client.get(f"{API}/articles/feed", headers=patient).json()
    streaks = client.get(f"{API}/activities/streaks", headers=patient)
    assert streaks.status_code == 200, streaks.text
    longest = {s["activity"]: s["longest"] for s in streaks.json()["streaks"]}
    assert longest["water"] >= 90
    with tx() as s:
        assert s.execute(select(PrescriptionRequest)).scalars().all()
