"""Dose reminders at dose times in the patient's time zone, and the patient's switch for them.

A periodic job (``prescriptions.adherence.jobs``) calls :func:`send_due_dose_reminders` every five minutes.
A dose is reminded once its instant has come, within :data:`REMINDER_WINDOW` of it (a worker that was down
longer does not send stale reminders), for active prescriptions with reminders on, of patients with a
portal account, unless the patient already marked it. The reminder is an in-app notification linking to
``/me/medications/schedule`` and, when the patient has an email address, an email.

Sending is idempotent in the way of ``scheduling.reminders``: the ``DoseReminder`` row (primary key
prescription + dose instant) is inserted *before* anything is sent, with ``ON CONFLICT DO NOTHING``, so a
re-run or a second worker skips it.

Messages name the medication, the dose and the local time, and nothing else clinical (no instructions, no
prescriber, no condition).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import audit, localtime
from caresync.core.auth import Principal, system_principal
from caresync.core.notify import notify, queue_email
from caresync.identity.models import Patient
from caresync.prescriptions.access import patients_own_prescription
from caresync.prescriptions.adherence.schedule import medication_label, prescription_doses
from caresync.prescriptions.models import DoseLog, DoseReminder, Prescription
from caresync.prescriptions.rules import Status

REMINDER_WINDOW = timedelta(minutes=30)
SCHEDULE_LINK = "/me/medications/schedule"
SENDER = "CareSync medication reminders"


def reminder_text(prescription: Prescription, at: datetime) -> tuple[str, str]:
    """The reminder's title and body: the medication, the dose and the local time (``at`` in UTC)."""
    local = at.astimezone(localtime.zone(prescription.patient.timezone))
    clock = f"{local:%H:%M}"
    title = f"Time for your {clock} medication"
    body = f"It is time for your {clock} dose of {medication_label(prescription)}: {prescription.dose}."
    return title, body


def _due(prescription: Prescription, start: datetime, now: datetime) -> list[datetime]:
    """The prescription's dose instants in ``(start, now]``."""
    zone = localtime.zone(prescription.patient.timezone)
    days = {start.astimezone(zone).date(), now.astimezone(zone).date()}
    return sorted(
        {at for day in days for at in prescription_doses(prescription, day, zone) if start < at <= now}
    )


def _claim(session: Session, prescription_id: uuid.UUID, at: datetime, now: datetime) -> bool:
    """Record that the reminder of this dose is being sent; ``False`` if another run already did."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(DoseReminder)
        .values(prescription_id=prescription_id, scheduled_at=at, sent_at=now)
        .on_conflict_do_nothing(index_elements=["prescription_id", "scheduled_at"])
        .returning(DoseReminder.prescription_id)
    )
    return session.execute(statement).first() is not None


def _deliver(session: Session, prescription: Prescription, at: datetime, actor: Principal) -> None:
    patient: Patient = prescription.patient
    title, body = reminder_text(prescription, at)
    assert patient.user_id is not None  # candidates have a portal account
    notify(session, patient.user_id, "medication.reminder", title, body, SCHEDULE_LINK)
    if patient.email:
        url = f"{get_settings().base_url.rstrip('/')}{SCHEDULE_LINK}"
        text = (
            f"Hello {patient.given_name},\n\n{body}\n\nMark it as taken or skipped: {url}\n\n"
            "You can turn these reminders off on the same page.\n"
        )
        queue_email(session, actor, patient.email, title, text)
    audit.record(
        session,
        actor,
        "dose.reminder",
        patient_id=patient.id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"scheduled_at": at.isoformat(), "email": bool(patient.email)},
    )


def send_due_dose_reminders(session: Session, now: datetime) -> int:
    """Send every dose reminder due at ``now`` (in the caller's transaction; emails go out once it commits).
    Returns how many were sent. Safe to run again, and from several workers at once."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    start = now - REMINDER_WINDOW
    query = (
        select(Prescription)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(
            Prescription.status == Status.ACTIVE.value,
            Prescription.reminders_enabled.is_(True),
            Patient.user_id.is_not(None),
            # coarse: local days differ from UTC days by at most one
            Prescription.start_date <= (now + timedelta(days=1)).date(),
        )
        .order_by(Prescription.id)
    )
    due = [(p, at) for p in session.scalars(query).unique() for at in _due(p, start, now)]
    if not due:
        return 0
    ids = list({p.id for p, _at in due})
    done: set[tuple[uuid.UUID, datetime]] = set()
    for model in (DoseReminder, DoseLog):  # reminded already, or marked by the patient
        rows = session.execute(
            select(model.prescription_id, model.scheduled_at).where(
                model.prescription_id.in_(ids), model.scheduled_at > start, model.scheduled_at <= now
            )
        )
        done.update((pid, at) for pid, at in rows)
    actor = system_principal(SENDER)
    sent = 0
    for prescription, at in due:
        if (prescription.id, at) in done or not _claim(session, prescription.id, at, now):
            continue
        _deliver(session, prescription, at, actor)
        sent += 1
    return sent


def set_reminders(
    session: Session, principal: Principal, prescription_id: uuid.UUID, enabled: bool
) -> Prescription:
    """The patient turns dose reminders of one of their prescriptions on or off."""
    prescription = patients_own_prescription(
        session,
        principal,
        prescription_id,
        "dose.reminders",
        "Only the patient chooses whether they get dose reminders.",
    )
    if prescription.reminders_enabled != enabled:
        prescription.reminders_enabled = enabled
        session.flush()
    audit.record(
        session,
        principal,
        "dose.reminders",
        patient_id=prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"enabled": enabled},
    )
    return prescription
