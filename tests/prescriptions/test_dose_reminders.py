"""Dose reminders on a fake clock: due once in the patient's time zone, idempotent re-runs, switched off,
already marked, no portal account, no email; the message names the medication, dose and local time and
nothing else clinical; the periodic job; the patient's switch over the API."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Patient
from caresync.prescriptions.adherence import jobs
from caresync.prescriptions.adherence.reminders import send_due_dose_reminders
from caresync.prescriptions.models import DoseLog, DoseReminder, Prescription
from tests.conftest import API, Cast, Person
from tests.prescriptions.conftest import PrescriptionFactory

# 08:00 in Lisbon on a summer day is 07:00 UTC (WEST, UTC+1)
DOSE = datetime(2031, 7, 15, 7, 0, tzinfo=UTC)
M = timedelta(minutes=1)
INSTRUCTIONS = "Take with food; stop if a rash appears."


def run(at: datetime) -> int:
    """One run of the job at ``at`` (its own committed transaction, as the worker does)."""
    with transaction(session_factory()) as session:
        return send_due_dose_reminders(session, at)


def notifications(user_id: uuid.UUID) -> list[Notification]:
    with transaction(session_factory()) as s:
        return list(s.scalars(select(Notification).where(Notification.user_id == user_id)))


def read_outbox(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def set_patient(person: Person, **fields: Any) -> None:
    with transaction(session_factory()) as s:
        row = s.get(Patient, person.patient_id)
        assert row is not None
        for key, value in fields.items():
            setattr(row, key, value)


@pytest.fixture
def lisbon_patient(make: Any) -> Person:
    """A patient with a portal account and an email address, living in Lisbon."""
    person: Person = make.patient_user()
    set_patient(person, timezone="Europe/Lisbon")
    return person


@pytest.fixture
def daily(
    cast: Cast, lisbon_patient: Person, prescription_factory: PrescriptionFactory
) -> Callable[..., Prescription]:
    """A once-daily (08:00 local) prescription of the Lisbon patient, running over ``DOSE``."""

    def create(patient: Person | None = None, **fields: Any) -> Prescription:
        values: dict[str, Any] = {
            "frequency": "QD",
            "start_date": date(2031, 7, 1),
            "duration_days": 30,
            "medication_name": "Metformin",
            "strength": "1000 mg",
            "form": "tablet",
            "dose": "1 tablet",
            "instructions": INSTRUCTIONS,
            **fields,
        }
        return prescription_factory(cast["doctor"], patient or lisbon_patient, **values)

    return create


def test_due_once_with_in_app_and_email(
    daily: Callable[..., Prescription], lisbon_patient: Person, cast: Cast, outbox: Path, tx: Any
) -> None:
    p = daily()
    assert run(DOSE - M) == 0  # not yet
    assert run(DOSE) == 1  # the moment itself
    assert run(DOSE + 5 * M) == 0  # re-run: nothing twice
    assert run(DOSE + 29 * M) == 0
    [note] = notifications(lisbon_patient.id)
    assert note.kind == "medication.reminder"
    assert note.link == "/me/medications/schedule"
    assert "08:00" in note.title
    assert note.body == "It is time for your 08:00 dose of Metformin 1000 mg tablet: 1 tablet."
    [message] = read_outbox(outbox)
    assert message["To"] == lisbon_patient.email
    text = message.get_content()
    assert "Metformin 1000 mg tablet" in text
    assert "08:00" in text
    assert "/me/medications/schedule" in text
    for leaked in (
        INSTRUCTIONS,
        cast["doctor"].full_name,
        "rash",
        "07:00",
    ):  # nothing else clinical; local time only
        assert leaked not in text
        assert leaked not in note.body
        assert leaked not in note.title
    with tx() as s:
        assert s.scalars(select(DoseReminder.scheduled_at)).all() == [DOSE]
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "dose.reminder")).all()
        assert entry.patient_id == lisbon_patient.patient_id
        assert entry.resource_id == str(p.id)


def test_late_worker_sends_within_half_an_hour_only(daily: Callable[..., Prescription]) -> None:
    daily()
    assert run(DOSE + 29 * M) == 1  # the window is (now - 30 min, now]
    daily(medication_name="Atorvastatin")
    assert run(DOSE + 30 * M) == 0  # too late for the second one: a stale reminder helps nobody


def test_local_time_of_a_patient_in_tokyo(
    daily: Callable[..., Prescription], make: Any, outbox: Path
) -> None:
    tokyo: Person = make.patient_user()
    set_patient(tokyo, timezone="Asia/Tokyo")
    daily(patient=tokyo)  # 08:00 JST on 15 July = 23:00 UTC on the 14th
    due = datetime(2031, 7, 14, 23, 0, tzinfo=UTC)
    assert run(due - M) == 0
    assert run(due + 2 * M) == 1
    [note] = notifications(tokyo.id)
    assert "08:00" in note.body


@pytest.mark.parametrize(
    "fields",
    [{"reminders_enabled": False}, {"status": "on-hold"}, {"frequency": "PRN", "dose_times": []}],
    ids=["switched-off", "not-active", "as-needed"],
)
def test_no_reminder(
    daily: Callable[..., Prescription], lisbon_patient: Person, fields: dict[str, Any]
) -> None:
    daily(**fields)
    assert run(DOSE + M) == 0
    assert notifications(lisbon_patient.id) == []


def test_no_reminder_for_a_dose_already_marked(
    daily: Callable[..., Prescription], lisbon_patient: Person, tx: Any
) -> None:
    p = daily()
    with tx() as s:
        s.add(
            DoseLog(
                prescription_id=p.id, patient_id=lisbon_patient.patient_id, scheduled_at=DOSE, status="taken"
            )
        )
    assert run(DOSE + M) == 0
    assert notifications(lisbon_patient.id) == []


def test_no_reminder_when_another_worker_sent_it(daily: Callable[..., Prescription], tx: Any) -> None:
    p = daily()
    with tx() as s:
        s.add(DoseReminder(prescription_id=p.id, scheduled_at=DOSE, sent_at=DOSE))
    assert run(DOSE + M) == 0


def test_no_reminder_without_a_portal_account(
    daily: Callable[..., Prescription],
    make: Any,
    cast: Cast,
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    offline = make.patient(timezone="Europe/Lisbon", email="offline@test.caresync.dev")
    prescription_factory(
        cast["doctor"], offline, frequency="QD", start_date=date(2031, 7, 1), duration_days=30
    )
    assert run(DOSE + M) == 0
    with tx() as s:
        assert s.scalars(select(DoseReminder)).all() == []


def test_in_app_only_without_an_email_address(
    daily: Callable[..., Prescription], lisbon_patient: Person, outbox: Path
) -> None:
    set_patient(lisbon_patient, email="")
    daily()
    assert run(DOSE + M) == 1
    assert len(notifications(lisbon_patient.id)) == 1
    assert list(outbox.glob("*.eml")) == []


def test_each_dose_of_the_day_is_reminded(daily: Callable[..., Prescription], lisbon_patient: Person) -> None:
    daily(frequency="BID", dose_times=["08:00", "20:00"])
    assert run(DOSE + M) == 1
    assert run(DOSE + 12 * timedelta(hours=1) + M) == 1  # 20:00 Lisbon
    assert sorted(n.body for n in notifications(lisbon_patient.id)) == [
        "It is time for your 08:00 dose of Metformin 1000 mg tablet: 1 tablet.",
        "It is time for your 20:00 dose of Metformin 1000 mg tablet: 1 tablet.",
    ]


def test_naive_time_is_refused(tx: Any) -> None:
    with tx() as s, pytest.raises(ValueError, match="timezone-aware"):
        send_due_dose_reminders(s, datetime(2031, 7, 15, 7))


def test_periodic_job_runs_every_five_minutes_on_the_real_clock(
    cast: Cast, prescription_factory: PrescriptionFactory, tx: Any
) -> None:
    validate = jobs.send_dose_reminders.task_class().validate_datetime
    assert [validate(DOSE.replace(minute=m)) for m in (0, 5, 7, 55)] == [True, True, False, True]
    now = utcnow()
    due = (now - 2 * M).strftime("%H:%M")  # a dose two minutes ago, local = UTC for the cast's patient
    p = prescription_factory(
        cast["doctor"],
        cast["patient"],
        frequency="QD",
        dose_times=[due],
        start_date=now.date() - timedelta(days=1),
        duration_days=5,
    )
    assert jobs.send_dose_reminders.call_local() == 1
    assert jobs.send_dose_reminders.call_local() == 0
    with tx() as s:
        assert s.scalars(select(DoseReminder.prescription_id)).all() == [p.id]


# --- the patient's switch -----------------------------------------------------------------------------------


def test_patient_switches_reminders_off_and_on(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    p = prescription_factory(cast["doctor"], cast["patient"])
    url = f"{API}/prescriptions/{p.id}/reminders"
    me = sign_in(cast["patient"])
    off = client.put(url, json={"enabled": False}, headers=me)
    assert off.status_code == 200, off.text
    assert off.json() == {"prescription_id": str(p.id), "reminders_enabled": False}
    with tx() as s:
        assert s.get(Prescription, p.id).reminders_enabled is False  # type: ignore[union-attr]
    assert client.put(url, json={"enabled": True}, headers=me).json()["reminders_enabled"] is True
    assert client.put(url, json={"enabled": "maybe"}, headers=me).status_code == 422
    assert client.put(url, json={"enabled": False}, headers=sign_in(cast["doctor"])).status_code == 403
    assert (
        client.put(
            f"{API}/prescriptions/{uuid.uuid4()}/reminders", json={"enabled": False}, headers=me
        ).status_code
        == 404
    )
    with tx() as s:
        assert s.get(Prescription, p.id).reminders_enabled is True  # type: ignore[union-attr]
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "dose.reminders").order_by(AuditEntry.seq)
        ).all()
        assert [(e.outcome, e.actor_id) for e in entries] == [
            ("success", cast["patient"].id),
            ("success", cast["patient"].id),
            ("denied", cast["doctor"].id),
            ("denied", cast["patient"].id),
        ]
