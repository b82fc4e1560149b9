"""The daily dose schedule of a patient's active prescriptions, in the patient's own time zone, and the
patient's taken/skipped marks on it.

A prescription's ``dose_times`` are local wall-clock times (``"HH:MM"``) in ``Patient.timezone`` (IANA).
Each local day of the course (``[start_date, start_date + duration_days)``) has one dose per time; as-needed
(PRN) prescriptions have no schedule, and only ``active`` prescriptions are scheduled (see
:func:`is_scheduled`). Every dose is stored and compared as its UTC instant.

Daylight-saving days:

- a time that does not exist (the clocks spring forward over it, e.g. 02:30 in New York on the second
  Sunday of March) moves to the first instant after the gap (03:00 local, the moment of the change);
- a time that exists twice (the clocks fall back over it, e.g. 01:30 in New York on the first Sunday of
  November) is taken once, at its first occurrence (``fold=0``);
- two times that land on the same instant (both inside one gap) make one dose.

The patient marks a dose ``taken`` or ``skipped`` (:func:`mark_dose`, the latest mark wins); a mark must
name a real scheduled instant, at most :data:`MARK_AHEAD` ahead and at most :data:`MARK_WINDOW` old.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from caresync.core import audit, localtime
from caresync.core.auth import Principal
from caresync.core.errors import NotFound, ValidationFailed
from caresync.db import utcnow
from caresync.engagement.streaks import service as streaks
from caresync.identity.models import Patient
from caresync.prescriptions.access import medication_scope, patients_own_prescription
from caresync.prescriptions.models import DoseLog, Prescription
from caresync.prescriptions.rules import Status

MARKS = ("taken", "skipped")
MARK_AHEAD = timedelta(hours=1)  # a dose may be marked up to an hour before its time
MARK_WINDOW = timedelta(days=7)  # and up to a week after it
_ONE_SECOND = timedelta(seconds=1)


# --- pure rules ------------------------------------------------------------------------------------------


def parse_dose_time(text: str) -> time:
    """A stored ``"HH:MM"`` dose time."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def resolve_local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of the local wall time ``at`` on ``day`` in ``zone``: the first occurrence of an
    ambiguous (fall-back) time, and the end of the gap (the moment the clocks changed) for a time that
    does not exist (spring-forward)."""
    wall = datetime.combine(day, at, tzinfo=zone)  # fold=0: the earlier reading
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant  # the wall time exists (once, or for the first time)
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the spring-forward gap ``wall`` falls in.

    In a gap, ``fold=0`` reads the wall time with the offset before the change and ``fold=1`` with the
    offset after it, so the change lies between the two instants; bisect to the second."""
    earlier = wall.replace(fold=1).astimezone(UTC)  # with the later (larger) offset
    later = wall.replace(fold=0).astimezone(UTC)
    after_offset = wall.replace(fold=1).utcoffset()
    low, high = earlier, later  # the offset at ``high`` is the new one; at ``low`` the old one
    while high - low > _ONE_SECOND:
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def dose_instants(dose_times: Iterable[str], day: date, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants of the local ``dose_times`` on ``day``, in order, each once."""
    return sorted({resolve_local(day, parse_dose_time(t), zone) for t in dose_times})


def course_end(prescription: Prescription) -> date:
    """The last day of the prescription's course (inclusive)."""
    return prescription.start_date + timedelta(days=prescription.duration_days - 1)


def on_course(prescription: Prescription, day: date) -> bool:
    """Whether ``day`` lies within the course ``[start_date, start_date + duration_days)``."""
    return prescription.start_date <= day <= course_end(prescription)


def is_scheduled(prescription: Prescription) -> bool:
    """Whether the prescription has a dose schedule at all: active, with set times (not as needed)."""
    return (
        prescription.status == Status.ACTIVE.value
        and prescription.frequency != "PRN"
        and bool(prescription.dose_times)
    )


def prescription_doses(prescription: Prescription, day: date, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants of the prescription's doses on the local ``day`` (none off course, for PRN, or
    when it is not active)."""
    if not is_scheduled(prescription) or not on_course(prescription, day):
        return []
    return dose_instants(prescription.dose_times, day, zone)


def doses_between(
    prescription: Prescription, zone: ZoneInfo, first: date, last: date, until: datetime | None = None
) -> list[datetime]:
    """Every dose instant on the local days ``first`` to ``last`` (inclusive), up to ``until`` if given."""
    found: list[datetime] = []
    day = max(first, prescription.start_date)
    last = min(last, course_end(prescription))
    while day <= last:
        found.extend(t for t in prescription_doses(prescription, day, zone) if until is None or t <= until)
        day += timedelta(days=1)
    return found


def medication_label(prescription: Prescription) -> str:
    """How a medication is named to the patient: ``Amoxicillin 500 mg capsule``."""
    return " ".join(p for p in (prescription.medication_name, prescription.strength, prescription.form) if p)


# --- queries ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dose:
    """One scheduled dose and the patient's mark on it."""

    prescription_id: uuid.UUID
    scheduled_at: datetime  # UTC
    local: datetime  # the same instant in the patient's time zone
    medication: str
    dose: str
    route: str
    reminders_enabled: bool
    mark: str | None  # "taken", "skipped" or None

    def markable(self, now: datetime) -> bool:
        """Whether the patient may mark it now (not too early, not too late)."""
        return now - MARK_WINDOW <= self.scheduled_at <= now + MARK_AHEAD


@dataclass(frozen=True)
class DaySchedule:
    """A patient's doses on one local day."""

    patient_id: uuid.UUID
    day: date
    timezone: str
    doses: list[Dose]
    prescriptions: list[Prescription]  # the scheduled (active) ones, including those with no dose today


def dose_of(prescription: Prescription, at: datetime, zone: ZoneInfo, mark: str | None) -> Dose:
    """The dose of ``prescription`` at the UTC instant ``at``, with its ``mark``."""
    return Dose(
        prescription_id=prescription.id,
        scheduled_at=at,
        local=at.astimezone(zone),
        medication=medication_label(prescription),
        dose=prescription.dose,
        route=prescription.route,
        reminders_enabled=prescription.reminders_enabled,
        mark=mark,
    )


def scheduled_prescriptions(session: Session, patient_id: uuid.UUID) -> list[Prescription]:
    """The patient's prescriptions that have a dose schedule (active, not as needed), by medication."""
    query = (
        select(Prescription)
        .where(Prescription.patient_id == patient_id, Prescription.status == Status.ACTIVE.value)
        .order_by(Prescription.medication_name, Prescription.created_at)
    )
    return [p for p in session.scalars(query).unique() if is_scheduled(p)]


def marks_between(
    session: Session, prescription_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> dict[tuple[uuid.UUID, datetime], str]:
    """The marks on doses of ``prescription_ids`` scheduled in ``[start, end)``."""
    if not prescription_ids:
        return {}
    query = select(DoseLog.prescription_id, DoseLog.scheduled_at, DoseLog.status).where(
        DoseLog.prescription_id.in_(prescription_ids),
        DoseLog.scheduled_at >= start,
        DoseLog.scheduled_at < end,
    )
    return {(pid, at): status for pid, at, status in session.execute(query)}


def build_day(session: Session, patient: Patient, day: date) -> DaySchedule:
    """The patient's doses on the local ``day`` with their marks (no permission check: callers check)."""
    zone = localtime.zone(patient.timezone)
    prescriptions = scheduled_prescriptions(session, patient.id)
    instants = [(p, at) for p in prescriptions for at in prescription_doses(p, day, zone)]
    marks = (
        marks_between(
            session,
            [p.id for p in prescriptions],
            min(at for _p, at in instants),
            max(at for _p, at in instants) + _ONE_SECOND,
        )
        if instants
        else {}
    )
    doses = [dose_of(p, at, zone, marks.get((p.id, at))) for p, at in instants]
    doses.sort(key=lambda d: (d.scheduled_at, d.medication))
    return DaySchedule(patient.id, day, zone.key, doses, prescriptions)


def day_schedule(
    session: Session, principal: Principal, patient_id: uuid.UUID, day: date | None = None
) -> DaySchedule:
    """The patient's doses on the local ``day`` (default: today where the patient lives), for the patient
    and for clinicians whose scope covers medications (404 otherwise). The read is audited (flagged under
    break-glass)."""
    scope = medication_scope(session, principal, patient_id, "dose.schedule")
    patient = session.get(Patient, patient_id)
    if patient is None:  # medication_scope already refused unknown patients; this keeps mypy honest
        raise NotFound("No such patient.")
    day = day or localtime.local_date(patient.timezone)
    schedule = build_day(session, patient, day)
    audit.record(
        session,
        principal,
        "dose.schedule",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        detail={"day": day.isoformat(), "doses": len(schedule.doses), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return schedule


def mark_dose(
    session: Session,
    principal: Principal,
    prescription_id: uuid.UUID,
    scheduled_at: datetime,
    status: str,
    *,
    now: datetime | None = None,
) -> Dose:
    """The patient marks one of their scheduled doses taken or skipped (the latest mark wins). A dose of
    today marked taken also logs today's "medication taken" activity, so the streak follows the schedule
    (a late mark of an earlier day does not back-date the streak)."""
    prescription = patients_own_prescription(
        session, principal, prescription_id, "dose.mark", "Only the patient marks their own doses."
    )
    if status not in MARKS:
        raise ValidationFailed("Mark the dose as taken or skipped.", extra={"field": "status"})
    if scheduled_at.tzinfo is None:
        raise ValidationFailed(
            "Give the dose time with its time zone (e.g. ending in Z).", extra={"field": "scheduled_at"}
        )
    now = now or utcnow()
    zone = localtime.zone(prescription.patient.timezone)
    at = scheduled_at.astimezone(UTC) if _representable(scheduled_at) else None
    if at is None or at not in _doses_around(prescription, at, zone):
        raise ValidationFailed(
            "That is not one of this medication's scheduled doses.", extra={"field": "scheduled_at"}
        )
    if at > now + MARK_AHEAD:
        raise ValidationFailed(
            "This dose is not due yet: you can mark it from an hour before its time.",
            extra={"field": "scheduled_at"},
        )
    if at < now - MARK_WINDOW:
        raise ValidationFailed(
            "This dose is more than 7 days old and can no longer be changed.", extra={"field": "scheduled_at"}
        )
    _upsert_mark(session, prescription, at, status, now)
    if status == "taken" and localtime.local_date(zone, at) == localtime.local_date(zone, now):
        streaks.log_activity(session, principal, "medication", now=now)  # keeps today's streak
    audit.record(
        session,
        principal,
        "dose.mark",
        patient_id=prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"scheduled_at": at.isoformat(), "status": status},
    )
    return dose_of(prescription, at, zone, status)


def _representable(at: datetime) -> bool:
    """Whether ``at`` and the days around it can be computed in every time zone (not at the ends of the
    calendar, where converting would overflow)."""
    return date.min + timedelta(days=2) < at.date() < date.max - timedelta(days=2)


def _doses_around(prescription: Prescription, at: datetime, zone: ZoneInfo) -> set[datetime]:
    """The prescription's doses on the local day of ``at`` and the day before (a dose moved forward by a
    daylight-saving gap at midnight lands on the next day)."""
    local_day = at.astimezone(zone).date()
    return {
        t
        for day in (local_day - timedelta(days=1), local_day)
        for t in prescription_doses(prescription, day, zone)
    }


def _upsert_mark(
    session: Session, prescription: Prescription, at: datetime, status: str, now: datetime
) -> None:
    """Insert the mark, or replace the earlier one (``ON CONFLICT DO UPDATE``, SQLite and PostgreSQL)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(DoseLog).values(
        id=uuid.uuid4(),
        prescription_id=prescription.id,
        patient_id=prescription.patient_id,
        scheduled_at=at,
        status=status,
        logged_at=now,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["prescription_id", "scheduled_at"],
        set_={"status": statement.excluded.status, "logged_at": statement.excluded.logged_at},
    )
    session.execute(statement)
