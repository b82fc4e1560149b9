"""Appointment reminders, follow-up prompts and the missed-appointment rate.

A periodic job (``scheduling.jobs``) calls :func:`send_due_reminders` every few minutes with the current time.
Each organisation chooses its reminder offsets (``ClinicSettings.reminder_hours``, default ``"24,2"``): a
booked appointment gets the reminder of an offset once ``start - offset`` has passed, provided it was
already booked at that moment (an appointment booked 3 h ahead gets only the 2 h reminder) and has not
started. When a worker was down and several offsets passed, only the latest one is sent. Each reminder is
an in-app notification to the patient's account (if any) and an email to the patient's address (if any).

Sending is idempotent: the ``ReminderSent`` row (primary key appointment + kind) is inserted *before*
anything is sent, with ``ON CONFLICT DO NOTHING``, so a re-run skips it, and of two workers racing on
PostgreSQL the second blocks on the key until the first commits, then inserts nothing and skips.

Messages name the practitioner, the place and the local time, and link to ``/appointments/{id}``; they
never carry the reason for the visit or anything else clinical.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import audit
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import ValidationFailed
from caresync.core.notify import notify, queue_email
from caresync.core.rbac import Perm, require_any
from caresync.db import utcnow
from caresync.identity.models import Patient
from caresync.scheduling.models import Appointment, ClinicSettings, Practitioner, ReminderSent
from caresync.scheduling.rules import AppointmentStatus, ConsultationMode

DEFAULT_REMINDER_HOURS: tuple[int, ...] = (24, 2)
MAX_REMINDER_HOURS = 24 * 14
FOLLOWUP_KIND = "followup"
FOLLOWUP_AFTER = timedelta(hours=24)
# A follow-up prompt that could not be sent within this time after it was due is dropped (so that turning
# the feature on, or a long outage, does not prompt patients about visits long past).
FOLLOWUP_WINDOW = timedelta(days=7)
FALLBACK_TIMEZONE = "UTC"
SENDER = "CareSync reminders"


def reminder_kind(hours: int) -> str:
    """The ``ReminderSent.kind`` of the reminder ``hours`` before the start, e.g. ``"24h"``."""
    return f"{hours}h"


def parse_reminder_hours(text: str | None) -> tuple[int, ...]:
    """An organisation's reminder offsets in hours, largest first. ``None`` (no settings row) gives the
    defaults; an empty string means no reminders. Entries that are not whole hours between 1 and
    ``MAX_REMINDER_HOURS`` are ignored, duplicates collapse."""
    if text is None:
        return DEFAULT_REMINDER_HOURS
    hours = {int(part) for part in (p.strip() for p in text.split(",")) if part.isdigit()}
    return tuple(sorted((h for h in hours if 1 <= h <= MAX_REMINDER_HOURS), reverse=True))


def due_reminder(
    start_at: datetime, booked_at: datetime, now: datetime, offsets: tuple[int, ...]
) -> int | None:
    """The offset (hours) whose reminder is due at ``now``: the smallest offset whose moment
    (``start - offset``) has passed while the appointment was already booked; ``None`` once the appointment
    has started or while no moment has passed."""
    if now >= start_at:
        return None
    due = [
        hours
        for hours in offsets
        if booked_at <= start_at - timedelta(hours=hours) <= now  # booked before the moment, which passed
    ]
    return min(due) if due else None


def local_datetime(at: datetime, timezone: str | None) -> datetime:
    """``at`` in ``timezone`` (UTC when the zone is missing or unknown)."""
    try:
        zone = ZoneInfo(timezone or FALLBACK_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(FALLBACK_TIMEZONE)
    return at.astimezone(zone)


def local_time_text(at: datetime, timezone: str | None) -> str:
    """``at`` as a person reads it in ``timezone``: ``Tuesday 3 March 2026 at 14:30 GMT``."""
    local = local_datetime(at, timezone)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} {local.tzname()}"


def practitioner_label(practitioner: Practitioner) -> str:
    """How patients see the practitioner named: ``Dr Ada Lovelace``."""
    name, title = practitioner.display_name.strip(), practitioner.title.strip()
    if title and not name.lower().startswith(title.lower()):
        return f"{title} {name}"
    return name


def place_label(appointment: Appointment) -> str:
    """Where the appointment takes place: the location's name and address, or ``Video consultation``."""
    if appointment.mode == ConsultationMode.VIDEO.value:
        return "Video consultation"
    location = appointment.location
    if location is None:
        return ""
    return ", ".join(part for part in (location.name, location.address, location.city) if part.strip())


def appointment_link(appointment_id: uuid.UUID) -> str:
    """The app-relative link to an appointment's page."""
    return f"/appointments/{appointment_id}"


def _when(appointment: Appointment) -> str:
    zone = appointment.location.timezone if appointment.location else None
    return local_time_text(appointment.start_at, zone)


def _claim(session: Session, appointment_id: uuid.UUID, kind: str, now: datetime) -> bool:
    """Record that ``kind`` is being sent; ``False`` if another run or worker already did.

    ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL): a second worker inserting the same key
    waits for the first to commit, then inserts nothing."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(ReminderSent)
        .values(appointment_id=appointment_id, kind=kind, sent_at=now)
        .on_conflict_do_nothing(index_elements=["appointment_id", "kind"])
        .returning(ReminderSent.kind)
    )
    return session.execute(statement).first() is not None  # no row back: it was there already


def _deliver(
    session: Session, appointment: Appointment, *, kind: str, title: str, body: str, email: bool
) -> None:
    """Send one message to the patient (in-app and, if ``email``, by email) and audit it."""
    patient: Patient = appointment.patient
    link = appointment_link(appointment.id)
    actor = system_principal(SENDER)
    in_app = patient.user_id is not None
    if patient.user_id is not None:
        category = "appointment.followup" if kind == FOLLOWUP_KIND else "appointment.reminder"
        notify(session, patient.user_id, category, title, body, link)
    emailed = bool(email and patient.email)
    if emailed:
        url = f"{get_settings().base_url.rstrip('/')}{link}"
        text = f"Hello {patient.given_name},\n\n{body}\n\nSee the details, reschedule or cancel: {url}\n"
        queue_email(session, actor, patient.email, title, text)
    audit.record(
        session,
        actor,
        "appointment.reminder",
        patient_id=patient.id,
        resource_type="Appointment",
        resource_id=appointment.id,
        detail={"kind": kind, "in_app": in_app, "email": emailed},
    )


def _reminder_text(appointment: Appointment) -> tuple[str, str]:
    who, where, when = (
        practitioner_label(appointment.practitioner),
        place_label(appointment),
        _when(appointment),
    )
    title = f"Appointment reminder: {when}"
    if appointment.mode == ConsultationMode.VIDEO.value:
        body = f"Your video appointment with {who} is on {when}. Join it from the appointment page."
    else:
        body = f"Your appointment with {who} is on {when}" + (f" at {where}." if where else ".")
    return title, body + " If you cannot come, please cancel so that someone else can have the time."


def _followup_text(appointment: Appointment) -> tuple[str, str]:
    who, where = practitioner_label(appointment.practitioner), place_label(appointment)
    zone = appointment.location.timezone if appointment.location else None
    local = local_datetime(appointment.start_at, zone)
    at = f" ({where})" if where else ""
    body = (
        f"How was your visit with {who}{at} on {local:%A} {local.day} {local:%B}? "
        "If you need a follow-up appointment, you can book it from the appointment page."
    )
    return "How was your visit?", body


def _send_appointment_reminders(session: Session, now: datetime) -> int:
    offsets_by_org = {
        org_id: parse_reminder_hours(hours)
        for org_id, hours in session.execute(
            select(ClinicSettings.organisation_id, ClinicSettings.reminder_hours)
        )
    }
    horizon = max(
        (h for offsets in (*offsets_by_org.values(), DEFAULT_REMINDER_HOURS) for h in offsets), default=0
    )
    window = (
        Appointment.status == AppointmentStatus.BOOKED.value,
        Appointment.start_at > now,
        Appointment.start_at <= now + timedelta(hours=horizon),
    )
    sent_before = set(
        session.execute(
            select(ReminderSent.appointment_id, ReminderSent.kind).join(Appointment).where(*window)
        )
    )
    sent = 0
    candidates = session.scalars(select(Appointment).where(*window).order_by(Appointment.start_at)).all()
    for appointment in candidates:
        offsets = offsets_by_org.get(appointment.practitioner.organisation_id, DEFAULT_REMINDER_HOURS)
        hours = due_reminder(appointment.start_at, appointment.created_at, now, offsets)
        if hours is None:
            continue
        kind = reminder_kind(hours)
        if (appointment.id, kind) in sent_before or not _claim(session, appointment.id, kind, now):
            continue
        title, body = _reminder_text(appointment)
        _deliver(session, appointment, kind=kind, title=title, body=body, email=True)
        sent += 1
    return sent


def _send_followups(session: Session, now: datetime, after: timedelta) -> int:
    already = exists().where(
        ReminderSent.appointment_id == Appointment.id, ReminderSent.kind == FOLLOWUP_KIND
    )
    query = (
        select(Appointment)
        .join(Patient, Patient.id == Appointment.patient_id)
        .where(
            Appointment.status == AppointmentStatus.FULFILLED.value,
            Appointment.end_at <= now - after,
            Appointment.end_at > now - after - FOLLOWUP_WINDOW,
            Patient.user_id.is_not(None),
            ~already,
        )
        .order_by(Appointment.end_at)
    )
    sent = 0
    for appointment in session.scalars(query).all():
        if not _claim(session, appointment.id, FOLLOWUP_KIND, now):
            continue
        title, body = _followup_text(appointment)
        _deliver(session, appointment, kind=FOLLOWUP_KIND, title=title, body=body, email=False)
        sent += 1
    return sent


def send_due_reminders(session: Session, now: datetime, *, followup_after: timedelta = FOLLOWUP_AFTER) -> int:
    """Send every reminder and follow-up prompt due at ``now`` (in the caller's transaction; emails go out
    once it commits). Returns how many were sent. Safe to run again, and from several workers at once."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    return _send_appointment_reminders(session, now) + _send_followups(session, now, followup_after)


class MissedRate(TypedDict):
    """No-shows among appointments that were due to take place (fulfilled or no-show)."""

    noshow: int
    fulfilled: int
    total: int
    rate: float | None  # noshow / total; None when nothing was due


def missed_appointment_rate(
    session: Session,
    *,
    organisation_id: uuid.UUID | None = None,
    practitioner_id: uuid.UUID | None = None,
    since: datetime,
    until: datetime,
) -> MissedRate:
    """The missed-appointment (no-show) rate of appointments starting in ``[since, until)``, optionally of
    one organisation or one practitioner: ``noshow / (noshow + fulfilled)``, with the counts. Cancelled
    and still-open appointments do not count."""
    counted = (AppointmentStatus.NOSHOW.value, AppointmentStatus.FULFILLED.value)
    query = (
        select(Appointment.status, func.count())
        .where(Appointment.status.in_(counted), Appointment.start_at >= since, Appointment.start_at < until)
        .group_by(Appointment.status)
    )
    if organisation_id is not None:
        query = query.join(Practitioner, Practitioner.id == Appointment.practitioner_id).where(
            Practitioner.organisation_id == organisation_id
        )
    if practitioner_id is not None:
        query = query.where(Appointment.practitioner_id == practitioner_id)
    return _rate({status: int(n) for status, n in session.execute(query)})


def _rate(counts: dict[str, int]) -> MissedRate:
    """The rate from counts per status."""
    noshow = counts.get(AppointmentStatus.NOSHOW.value, 0)
    fulfilled = counts.get(AppointmentStatus.FULFILLED.value, 0)
    total = noshow + fulfilled
    return MissedRate(noshow=noshow, fulfilled=fulfilled, total=total, rate=noshow / total if total else None)


def organisation_missed_rates(
    session: Session, principal: Principal, *, days: int = 30, now: datetime | None = None
) -> tuple[MissedRate, dict[uuid.UUID, MissedRate]]:
    """The organisation's missed-appointment rate over the last ``days`` days, overall and per
    practitioner (staff who manage schedules or appointments of the organisation)."""
    require_any(session, principal, (Perm.SCHEDULE_MANAGE, Perm.APPOINTMENT_MANAGE), "appointment.stats")
    if not 1 <= days <= 366:
        raise ValidationFailed("days must be between 1 and 366.", extra={"field": "days"})
    until = now or utcnow()
    since = until - timedelta(days=days)
    counted = (AppointmentStatus.NOSHOW.value, AppointmentStatus.FULFILLED.value)
    rows = session.execute(  # one grouped query, not one per practitioner
        select(Practitioner.id, Appointment.status, func.count(Appointment.id))
        .outerjoin(
            Appointment,
            (Appointment.practitioner_id == Practitioner.id)
            & Appointment.status.in_(counted)
            & (Appointment.start_at >= since)
            & (Appointment.start_at < until),
        )
        .where(Practitioner.organisation_id == principal.organisation_id)
        .group_by(Practitioner.id, Appointment.status)
    ).all()
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for practitioner_id, status, n in rows:
        counts.setdefault(practitioner_id, {})
        if status is not None:
            counts[practitioner_id][status] = int(n)
    per = {pid: _rate(c) for pid, c in counts.items()}
    overall: dict[str, int] = {}
    for c in counts.values():
        for status, n in c.items():
            overall[status] = overall.get(status, 0) + n
    return _rate(overall), per
