"""Adherence over the API: PDC per medication from the dispense history (period clipped to the course),
the dose-log rate, who may read it (consent scope), and the care team's low-adherence list (only their own
patients, only what the consent policy lets them read, young prescriptions left out, newest first, paged),
with the audit entries every read writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from caresync.prescriptions.models import Dispense, DoseLog, Prescription
from caresync.records.models import RecordConsent, RecordPolicy
from tests.conftest import API, Cast, Person
from tests.prescriptions.conftest import PrescriptionFactory

ADHERENCE = f"{API}/prescriptions/adherence"
FLAGS = f"{ADHERENCE}/flags"
Headers = Callable[[Person], dict[str, str]]


def today() -> date:
    """Today for the cast's patient, who lives in UTC."""
    return utcnow().date()


def ago(days: int) -> date:
    return today() - timedelta(days=days)


def dispense(p: Prescription, pharmacist: Person, on: date, days_supply: int) -> None:
    """A dispense row of ``p`` (the pharmacist's organisation is the pharmacy)."""
    with transaction(session_factory()) as s:
        fill = len(s.scalars(select(Dispense.id).where(Dispense.prescription_id == p.id)).all()) + 1
        s.add(
            Dispense(
                prescription_id=p.id,
                patient_id=p.patient_id,
                fill_number=fill,
                pharmacist_id=pharmacist.id,
                pharmacy_id=pharmacist.user.organisation_id,
                quantity=30,
                days_supply=days_supply,
                lot=f"LOT{fill}",
                dispensed_on=on,
            )
        )
        row = s.get(Prescription, p.id)
        assert row is not None
        row.dispense_count = fill


@pytest.fixture
def chronic(cast: Cast, prescription_factory: PrescriptionFactory) -> Callable[..., Prescription]:
    """A daily prescription of the cast's doctor, started ``started`` days ago, with up to 11 refills."""

    def create(started: int, patient: Any = None, **fields: Any) -> Prescription:
        values: dict[str, Any] = {
            "frequency": "QD",
            "medication_name": "Amlodipine",
            "strength": "5 mg",
            "form": "tablet",
            "dose": "1 tablet",
            "quantity": 30,
            "days_supply": 30,
            "duration_days": 365,
            "refills": 11,
            "start_date": ago(started),
            **fields,
        }
        return prescription_factory(cast["doctor"], patient or cast["patient"], **values)

    return create


def test_pdc_and_dose_rate_from_dispenses_and_marks(
    client: TestClient, cast: Cast, sign_in: Headers, chronic: Callable[..., Prescription], tx: Any
) -> None:
    p = chronic(60)
    dispense(p, cast["pharmacist"], ago(60), 30)  # covers 60..31 days ago
    dispense(p, cast["pharmacist"], ago(10), 30)  # covers 10 days ago .. today (and beyond)
    with tx() as s:
        for days, status in ((1, "taken"), (2, "taken"), (3, "skipped"), (4, "taken"), (70, "taken")):
            at = datetime.combine(ago(days), time(8), tzinfo=UTC)
            s.add(DoseLog(prescription_id=p.id, patient_id=p.patient_id, scheduled_at=at, status=status))
    me = sign_in(cast["patient"])
    response = client.get(ADHERENCE, headers=me)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == 90
    assert body["threshold"] == 0.8
    assert body["today"] == today().isoformat()
    [m] = body["medications"]
    assert m["prescription_id"] == str(p.id)
    assert m["medication"] == "Amlodipine 5 mg tablet"
    # the 90 days are clipped to the start: 61 days, of which 30 + 11 are covered
    assert (m["period_start"], m["period_end"]) == (ago(60).isoformat(), today().isoformat())
    assert m["pdc"] == pytest.approx(41 / 61)
    assert m["below_threshold"] is True
    assert m["dispenses"] == 2
    due_today = utcnow() >= datetime.combine(today(), time(8), tzinfo=UTC)
    assert m["doses_scheduled"] == 60 + int(due_today)  # 08:00 of each day since the start, up to now
    assert (m["doses_taken"], m["doses_skipped"]) == (3, 1)  # the mark before the start does not count
    assert m["dose_rate"] == pytest.approx(3 / m["doses_scheduled"])
    assert len(m["weeks"]) == 12
    assert m["weeks"][-1]["pdc"] == 1.0  # the last week: covered by the second fill
    assert m["weeks"][0]["pdc"] is None  # twelve weeks ago the course had not started
    month = client.get(ADHERENCE, params={"days": 30}, headers=me).json()["medications"][0]
    assert month["pdc"] == pytest.approx(11 / 30)
    for days in (0, 367, "x"):
        bad = client.get(ADHERENCE, params={"days": days}, headers=me)
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
    with tx() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "adherence.read")).all()
        assert [(e.actor_id, e.patient_id, e.outcome) for e in entries] == [
            (cast["patient"].id, cast["patient"].patient_id, "success")
        ] * 2


def test_period_is_clipped_to_the_course_end(
    client: TestClient, cast: Cast, sign_in: Headers, chronic: Callable[..., Prescription]
) -> None:
    p = chronic(40, duration_days=20)  # the course ended 20 days ago
    dispense(p, cast["pharmacist"], ago(40), 10)
    [m] = client.get(ADHERENCE, headers=sign_in(cast["patient"])).json()["medications"]
    assert (m["period_start"], m["period_end"]) == (ago(40).isoformat(), ago(21).isoformat())
    assert m["pdc"] == pytest.approx(10 / 20)
    assert m["doses_scheduled"] == 20


def test_a_course_starting_later_has_nothing_to_measure(
    client: TestClient, cast: Cast, sign_in: Headers, chronic: Callable[..., Prescription]
) -> None:
    chronic(-5)
    [m] = client.get(ADHERENCE, headers=sign_in(cast["patient"])).json()["medications"]
    assert m["pdc"] is None
    assert m["below_threshold"] is False
    assert m["dose_rate"] is None


def test_only_active_prescriptions_are_measured(
    client: TestClient, cast: Cast, sign_in: Headers, chronic: Callable[..., Prescription]
) -> None:
    chronic(40, status="stopped")
    chronic(40, status="draft")
    assert client.get(ADHERENCE, headers=sign_in(cast["patient"])).json()["medications"] == []


def test_who_reads_a_patients_adherence(
    client: TestClient, cast: Cast, make: Any, sign_in: Headers, chronic: Callable[..., Prescription], tx: Any
) -> None:
    chronic(40)
    patient_id = str(cast["patient"].patient_id)
    params = {"patient_id": patient_id}
    assert client.get(ADHERENCE, params=params, headers=sign_in(cast["nurse"])).status_code == 200
    assert client.get(ADHERENCE, headers=sign_in(cast["nurse"])).status_code == 422  # whose?
    for role in ("pharmacist", "admin", "donor", "bloodbank_staff"):
        assert client.get(ADHERENCE, params=params, headers=sign_in(cast[role])).status_code == 404, role
    stranger = make.patient_user()
    assert client.get(ADHERENCE, params=params, headers=sign_in(stranger)).status_code == 404
    # a doctor elsewhere reads with a consent for medications, not with one for lab results only
    meds, labs = make.staff("doctor", make.org()), make.staff("doctor", make.org())
    with tx() as s:
        for grantee, category in ((meds, "medication"), (labs, "lab")):
            s.add(
                RecordConsent(
                    patient_id=cast["patient"].patient_id,
                    grantee_user_id=grantee.id,
                    categories=[category],
                    created_by=cast["patient"].id,
                )
            )
    assert client.get(ADHERENCE, params=params, headers=sign_in(meds)).status_code == 200
    assert client.get(ADHERENCE, params=params, headers=sign_in(labs)).status_code == 404
    with tx() as s:
        denied = s.scalars(
            select(AuditEntry.actor_id).where(
                AuditEntry.action == "adherence.read", AuditEntry.outcome == "denied"
            )
        ).all()
        assert labs.id in denied
        assert cast["pharmacist"].id in denied


# --- the care team's list -----------------------------------------------------------------------------------


@pytest.fixture
def flagged(cast: Cast, chronic: Callable[..., Prescription]) -> dict[str, Prescription]:
    """The cast patient's prescriptions in every situation the list must tell apart."""
    pharmacist = cast["pharmacist"]
    made = {
        "low-older": chronic(60),  # 30 of 61 days covered
        "low-newer": chronic(40, medication_name="Ramipril"),  # 10 of 41 days
        "good": chronic(60, medication_name="Atorvastatin"),  # every day covered
        "young": chronic(10, medication_name="Metformin"),  # nothing dispensed, but only 10 days old
        "on-hold": chronic(60, medication_name="Apixaban", status="on-hold"),
        "stranger": chronic(60, patient=cast.other_patient, medication_name="Bisoprolol"),
    }
    dispense(made["low-older"], pharmacist, ago(60), 30)
    dispense(made["low-newer"], pharmacist, ago(40), 10)
    dispense(made["good"], pharmacist, ago(60), 30)
    dispense(made["good"], pharmacist, ago(30), 31)
    return made


def flag_ids(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get(FLAGS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["prescription_id"] for item in response.json()["items"]]


def test_low_adherence_list_for_the_care_team(
    client: TestClient, cast: Cast, sign_in: Headers, flagged: dict[str, Prescription], tx: Any
) -> None:
    expected = [str(flagged["low-newer"].id), str(flagged["low-older"].id)]  # newest prescription first
    nurse = sign_in(cast["nurse"])
    response = client.get(FLAGS, headers=nurse)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["prescription_id"] for i in items] == expected
    assert items[0]["pdc"] == pytest.approx(10 / 41)
    assert items[0]["patient_id"] == str(cast["patient"].patient_id)
    assert items[1]["last_dispensed_on"] == ago(60).isoformat()
    assert flag_ids(client, sign_in(cast["doctor"])) == expected
    # paged
    first = client.get(FLAGS, params={"limit": 1}, headers=nurse).json()
    assert [i["prescription_id"] for i in first["items"]] == expected[:1]
    assert first["next_cursor"]
    second = client.get(FLAGS, params={"limit": 1, "cursor": first["next_cursor"]}, headers=nurse).json()
    assert [i["prescription_id"] for i in second["items"]] == expected[1:]
    assert second["next_cursor"] is None
    assert client.get(FLAGS, params={"cursor": "not-a-cursor"}, headers=nurse).status_code == 422
    with tx() as s:
        reads = s.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "adherence.flags", AuditEntry.actor_id == cast["nurse"].id
            )
        ).all()
        assert {e.patient_id for e in reads} == {None, cast["patient"].patient_id}
        assert cast.other_patient.id not in {e.patient_id for e in reads}


def test_a_clinician_with_no_patients_sees_nothing(
    client: TestClient, make: Any, sign_in: Headers, flagged: dict[str, Prescription]
) -> None:
    assert flag_ids(client, sign_in(make.staff("doctor"))) == []


@pytest.mark.parametrize("role", ["patient", "pharmacist", "admin", "donor", "bloodbank_staff"])
def test_only_doctors_and_nurses_get_the_list(
    client: TestClient, cast: Cast, sign_in: Headers, flagged: dict[str, Prescription], role: str, tx: Any
) -> None:
    response = client.get(FLAGS, headers=sign_in(cast[role]))
    assert response.status_code == 403
    with tx() as s:
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "adherence.flags")).all()
        assert (entry.actor_id, entry.outcome) == (cast[role].id, "denied")


def test_consent_only_policy_hides_the_list_until_the_patient_consents(
    client: TestClient, cast: Cast, sign_in: Headers, flagged: dict[str, Prescription], tx: Any
) -> None:
    with tx() as s:
        s.add(RecordPolicy(organisation_id=cast.org.id, care_team="consent-only"))
    nurse, doctor = sign_in(cast["nurse"]), sign_in(cast["doctor"])
    assert flag_ids(client, nurse) == []
    assert flag_ids(client, doctor) == []
    params = {"patient_id": str(cast["patient"].patient_id)}
    assert client.get(ADHERENCE, params=params, headers=nurse).status_code == 404
    with tx() as s:
        s.add(
            RecordConsent(
                patient_id=cast["patient"].patient_id,
                grantee_user_id=cast["nurse"].id,
                categories=["medication"],
                created_by=cast["patient"].id,
            )
        )
    assert len(flag_ids(client, nurse)) == 2
    assert flag_ids(client, doctor) == []
    with tx() as s:
        consent = s.scalars(select(RecordConsent)).one()
        consent.revoked_at = utcnow()
    assert flag_ids(client, nurse) == []


def test_ended_care_relationship_drops_the_patient(
    client: TestClient, cast: Cast, sign_in: Headers, flagged: dict[str, Prescription], tx: Any
) -> None:
    from caresync.identity.models import CareRelationship

    with tx() as s:
        for link in s.scalars(
            select(CareRelationship).where(CareRelationship.practitioner_id == cast["nurse"].id)
        ):
            link.ended_at = utcnow()
    assert flag_ids(client, sign_in(cast["nurse"])) == []
    assert len(flag_ids(client, sign_in(cast["doctor"]))) == 2


def test_unknown_patient_is_not_found(client: TestClient, cast: Cast, sign_in: Headers) -> None:
    response = client.get(
        ADHERENCE, params={"patient_id": str(uuid.uuid4())}, headers=sign_in(cast["doctor"])
    )
    assert response.status_code == 404
