"""Unlicensed clinicians are blocked everywhere: a doctor or nurse without an approved, unexpired licence
sees no patient (care team, consent or break-glass alike), prescribes nothing and is not listed in the
directory; a pharmacist without one dispenses nothing. Approval unblocks; expiry and suspension block
again."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from caresync.db import session_factory, transaction
from caresync.identity.credentials.models import PractitionerCredential
from tests.conftest import API, Factory, Person, login
from tests.identity.test_credentials import add_credential
from tests.prescriptions.conftest import rx_body
from tests.scheduling.conftest import SchedulingFactory

SEARCH = f"{API}/scheduling/practitioners"


def approve(client: TestClient, admin: Person, credential_id: Any) -> None:
    headers = login(client, admin.email, admin.password)
    decided = client.post(
        f"{API}/credentials/{credential_id}/review", json={"decision": "approve"}, headers=headers
    )
    assert decided.status_code == 200, decided.text


def set_credential(credential_id: Any, **values: Any) -> None:
    with transaction(session_factory()) as s:
        s.execute(
            update(PractitionerCredential).where(PractitionerCredential.id == credential_id).values(**values)
        )


def test_a_doctor_sees_and_treats_patients_only_while_licensed(
    client: TestClient, make: Factory, sign_in: Any
) -> None:
    admin = make.staff("admin")
    doctor = make.staff("doctor", verified=False)
    patient = make.patient_user()
    make.care(doctor, patient)
    pid = patient.patient_id
    headers = sign_in(doctor)

    def blocked() -> bool:
        reads = client.get(f"{API}/patients/{pid}", headers=headers).status_code
        listed = {p["id"] for p in client.get(f"{API}/patients", headers=headers).json()["items"]}
        prescribed = client.post(f"{API}/prescriptions", json=rx_body(patient), headers=headers).status_code
        assert (reads == 404) == (str(pid) not in listed) == (prescribed == 404), (reads, listed, prescribed)
        return reads == 404

    assert blocked()  # no licence yet
    credential_id = add_credential(doctor, "pending")
    assert blocked()  # submitted, not reviewed
    approve(client, admin, credential_id)
    assert not blocked()
    set_credential(
        credential_id,
        issued_on=date.today() - timedelta(days=800),
        expires_on=date.today() - timedelta(days=1),
    )
    assert blocked()  # lapsed
    set_credential(
        credential_id, expires_on=date.today() + timedelta(days=30), status="suspended", review_reason="x"
    )
    assert blocked()  # suspended


def test_consent_and_break_glass_need_a_licence_too(client: TestClient, make: Factory, sign_in: Any) -> None:
    patient = make.patient_user()
    unlicensed = make.staff("doctor", make.org(), verified=False)
    grant = {
        "patient_id": str(patient.patient_id),
        "categories": ["lab"],
        "practitioner_id": str(unlicensed.id),
    }
    assert client.post(f"{API}/records/consents", json=grant, headers=sign_in(patient)).status_code == 201
    headers = sign_in(unlicensed)
    assert client.get(f"{API}/patients/{patient.patient_id}", headers=headers).status_code == 404
    emergency = {"health_id": patient.patient.health_id, "reason": "Unconscious in the emergency room"}
    client.post(f"{API}/patients/break-glass", json=emergency, headers=headers)
    assert client.get(f"{API}/patients/{patient.patient_id}", headers=headers).status_code == 404


def test_only_licensed_practitioners_are_listed(client: TestClient, make: Factory, sign_in: Any) -> None:
    sched = SchedulingFactory(make)
    admin = make.staff("admin")
    newcomer = make.staff("doctor", verified=False, full_name="Dr Quillon Newcomer")
    clinician = sched.practitioner(person=newcomer, specialties=("cardiology",))
    sched.hours(clinician, sched.location())
    patient = sign_in(make.patient_user())

    def listed() -> bool:
        found = client.get(SEARCH, params={"q": "quillon"}, headers=patient).json()["items"]
        profile = client.get(f"{SEARCH}/{clinician.id}", headers=patient).status_code
        assert bool(found) == (profile == 200), (found, profile)
        return bool(found)

    assert not listed()
    approve(client, admin, add_credential(newcomer, "pending"))
    assert listed()


def test_an_unlicensed_pharmacist_dispenses_nothing(client: TestClient, make: Factory, sign_in: Any) -> None:
    pharmacist = make.staff("pharmacist", verified=False)
    refused = client.post(f"{API}/pharmacy/verify", json={"code": "CSRX1.x.y"}, headers=sign_in(pharmacist))
    assert refused.status_code == 403
    assert "licence" in refused.json()["detail"]
    licensed = make.staff("pharmacist")
    malformed = client.post(f"{API}/pharmacy/verify", json={"code": "CSRX1.x.y"}, headers=sign_in(licensed))
    assert malformed.status_code == 422  # past the licence check: the code itself is refused
