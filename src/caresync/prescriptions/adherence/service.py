"""Adherence per medication, and the care team's list of patients below the threshold.

Two measures, side by side:

- **Proportion of Days Covered** (PDC, ``rules.proportion_of_days_covered``) from the pharmacy's dispense
  history: the objective measure, flagged below ``rules.ADHERENCE_THRESHOLD`` (80 %). The period is the
  last ``days`` local days up to today, clipped to the prescription's course (it cannot be missing doses
  before it started or after its course ended).
- The **dose-log rate**: doses the patient marked taken among the doses scheduled so far in the same
  period. Patient-reported, so shown as a second opinion, never used for the flag.

Only active prescriptions are measured: they are the therapy the patient is on now.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core import audit, localtime
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound, ValidationFailed
from caresync.core.rbac import CLINICIANS, cared_for_patient_ids
from caresync.db import utcnow
from caresync.identity.models import Patient
from caresync.prescriptions.access import CATEGORY, medication_scope
from caresync.prescriptions.adherence.schedule import (
    course_end,
    doses_between,
    medication_label,
)
from caresync.prescriptions.models import Dispense, DoseLog, Prescription
from caresync.prescriptions.rules import ADHERENCE_THRESHOLD, Status, proportion_of_days_covered
from caresync.records.consent import ReadScope, read_scope

DEFAULT_DAYS = 90
MAX_DAYS = 366
CHART_WEEKS = 12
# Prescriptions younger than this are not flagged: over a few days PDC mostly measures when the first fill
# happened to be collected (a patient who started three days ago and collected on day two shows 67 %), so
# the flag would be noise. Thirty days lets one full monthly supply and its refill show.
MIN_FLAG_AGE_DAYS = 30


@dataclass(frozen=True)
class WeekCoverage:
    """PDC over one week of the chart (``None`` when the week lies outside the course)."""

    first: date
    last: date
    pdc: float | None


@dataclass(frozen=True)
class MedicationAdherence:
    """Adherence to one prescription over a period."""

    prescription: Prescription
    medication: str
    period_start: date
    period_end: date
    pdc: float | None  # None while the period is empty (the course starts later)
    below_threshold: bool
    dispenses: int
    doses_scheduled: int  # scheduled so far in the period
    doses_taken: int
    doses_skipped: int
    weeks: list[WeekCoverage]

    @property
    def dose_rate(self) -> float | None:
        """Doses marked taken among those scheduled so far (``None`` when none were due)."""
        return self.doses_taken / self.doses_scheduled if self.doses_scheduled else None


@dataclass(frozen=True)
class AdherenceReport:
    """One patient's adherence per active medication."""

    patient: Patient
    today: date  # the patient's local today
    days: int
    threshold: float
    medications: list[MedicationAdherence]


def measurement_period(prescription: Prescription, today: date, days: int) -> tuple[date, date]:
    """The last ``days`` days up to ``today`` clipped to the course; ``start > end`` when it is empty."""
    start = max(today - timedelta(days=days - 1), prescription.start_date)
    end = min(today, course_end(prescription))
    return start, end


def weekly_coverage(
    supplies: Sequence[tuple[date, int]], prescription: Prescription, today: date, weeks: int = CHART_WEEKS
) -> list[WeekCoverage]:
    """PDC per week over the last ``weeks`` weeks ending ``today`` (oldest first), each week clipped to the
    course."""
    found = []
    for n in range(weeks - 1, -1, -1):
        last = today - timedelta(days=7 * n)
        first = last - timedelta(days=6)
        start, end = max(first, prescription.start_date), min(last, course_end(prescription), today)
        pdc = proportion_of_days_covered(supplies, start, end) if start <= end else None
        found.append(WeekCoverage(first, last, pdc))
    return found


def _supplies(
    session: Session, prescription_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[date, int]]]:
    """``(dispensed_on, days_supply)`` of each prescription's dispenses."""
    found: dict[uuid.UUID, list[tuple[date, int]]] = defaultdict(list)
    if prescription_ids:
        query = select(Dispense.prescription_id, Dispense.dispensed_on, Dispense.days_supply).where(
            Dispense.prescription_id.in_(prescription_ids)
        )
        for pid, on, supply in session.execute(query):
            found[pid].append((on, supply))
    return found


def measure(
    session: Session,
    prescription: Prescription,
    supplies: Sequence[tuple[date, int]],
    today: date,
    days: int,
    now: datetime,
) -> MedicationAdherence:
    """Both measures for one prescription of a patient whose local day is ``today``."""
    start, end = measurement_period(prescription, today, days)
    pdc = proportion_of_days_covered(supplies, start, end) if start <= end else None
    zone = localtime.zone(prescription.patient.timezone)
    due = doses_between(prescription, zone, start, end, until=now) if start <= end else []
    marks: dict[str, int] = defaultdict(int)
    if due:
        query = select(DoseLog.scheduled_at, DoseLog.status).where(
            DoseLog.prescription_id == prescription.id,
            DoseLog.scheduled_at >= due[0],
            DoseLog.scheduled_at <= due[-1],
        )
        scheduled = set(due)
        for at, status in session.execute(query):
            if at in scheduled:
                marks[status] += 1
    return MedicationAdherence(
        prescription=prescription,
        medication=medication_label(prescription),
        period_start=start,
        period_end=end,
        pdc=pdc,
        below_threshold=pdc is not None and pdc < ADHERENCE_THRESHOLD,
        dispenses=len(supplies),
        doses_scheduled=len(due),
        doses_taken=marks["taken"],
        doses_skipped=marks["skipped"],
        weeks=weekly_coverage(supplies, prescription, today),
    )


def check_days(days: int) -> int:
    """The period length, or 422 naming the ``days`` field."""
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(f"days must be between 1 and {MAX_DAYS}.", extra={"field": "days"})
    return days


def patient_adherence(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    days: int = DEFAULT_DAYS,
    *,
    now: datetime | None = None,
) -> AdherenceReport:
    """Adherence per active medication over the last ``days`` days, for the patient and for clinicians
    whose scope covers medications (404 otherwise). The read is audited (flagged under break-glass)."""
    check_days(days)
    scope = medication_scope(session, principal, patient_id, "adherence.read")
    patient = session.get(Patient, patient_id)
    if patient is None:  # medication_scope already refused unknown patients
        raise NotFound("No such patient.")
    now = now or utcnow()
    today = localtime.local_date(patient.timezone, now)
    query = (
        select(Prescription)
        .where(Prescription.patient_id == patient_id, Prescription.status == Status.ACTIVE.value)
        .order_by(Prescription.medication_name, Prescription.created_at)
    )
    prescriptions = list(session.scalars(query).unique())
    supplies = _supplies(session, [p.id for p in prescriptions])
    medications = [measure(session, p, supplies[p.id], today, days, now) for p in prescriptions]
    audit.record(
        session,
        principal,
        "adherence.read",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        detail={"days": days, "medications": len(medications), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return AdherenceReport(patient, today, days, ADHERENCE_THRESHOLD, medications)


# --- the care team's list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """An active prescription below the adherence threshold, for the care team."""

    patient: Patient
    prescription: Prescription
    medication: str
    pdc: float
    period_start: date
    period_end: date
    last_dispensed_on: date | None


@dataclass(frozen=True)
class FlagPage:
    """One page of flags, newest prescriptions first, and the cursor of the next page."""

    items: list[Flag]
    next_cursor: str | None


def _cursor(flag: Flag) -> str:
    raw = f"{flag.prescription.start_date.isoformat()}|{flag.prescription.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[date, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, pid = raw.split("|")
        return date.fromisoformat(day), uuid.UUID(pid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "The cursor is not valid; start again without it.", extra={"field": "cursor"}
        ) from None


def low_adherence(
    session: Session,
    principal: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    now: datetime | None = None,
) -> FlagPage:
    """Doctors and nurses: the active prescriptions of the patients they care for whose PDC over the last
    ``DEFAULT_DAYS`` days is below the threshold, newest prescriptions first. Prescriptions younger than
    ``MIN_FLAG_AGE_DAYS`` are left out (see there), and so are patients whose medications the clinician
    may not read under the organisation's policy and the patient's consents. Each patient listed is an
    audited read (flagged under break-glass)."""
    if principal.role not in CLINICIANS:
        audit.record_and_commit(session, principal, "adherence.flags", outcome="denied")
        raise Forbidden("Only doctors and nurses see their patients' adherence.")
    if not 1 <= limit <= 200:
        raise ValidationFailed("limit must be between 1 and 200.", extra={"field": "limit"})
    after = _after(cursor) if cursor else None
    now = now or utcnow()
    query = (
        select(Prescription)
        .where(
            Prescription.patient_id.in_(cared_for_patient_ids(principal)),
            Prescription.status == Status.ACTIVE.value,
            # coarse (UTC) cut; the exact one below uses each patient's own today
            Prescription.start_date <= now.date() + timedelta(days=1 - MIN_FLAG_AGE_DAYS),
        )
        .order_by(Prescription.start_date.desc(), Prescription.id.desc())
    )
    candidates = list(session.scalars(query).unique())
    supplies = _supplies(session, [p.id for p in candidates])
    flags: list[Flag] = []
    for p in candidates:
        today = localtime.local_date(p.patient.timezone, now)
        if (today - p.start_date).days < MIN_FLAG_AGE_DAYS:
            continue
        start, end = measurement_period(p, today, DEFAULT_DAYS)
        if start > end:
            continue
        pdc = proportion_of_days_covered(supplies[p.id], start, end)
        if pdc < ADHERENCE_THRESHOLD:
            last = max((on for on, _n in supplies[p.id]), default=None)
            flags.append(Flag(p.patient, p, medication_label(p), pdc, start, end, last))
    scopes = _scopes(session, principal, {f.patient.id for f in flags})
    flags = [f for f in flags if scopes[f.patient.id].allows(CATEGORY)]
    if after is not None:
        flags = [f for f in flags if (f.prescription.start_date, f.prescription.id) < after]
    page = flags[:limit]
    audit.record(session, principal, "adherence.flags", detail={"shown": len(page)})
    for patient_id in dict.fromkeys(f.patient.id for f in page):
        audit.record(
            session,
            principal,
            "adherence.flags",
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=patient_id,
            detail={"flags": sum(1 for f in page if f.patient.id == patient_id)},
            flagged=scopes[patient_id].break_glass,
        )
    return FlagPage(page, _cursor(page[-1]) if len(flags) > limit else None)


def _scopes(
    session: Session, principal: Principal, patient_ids: set[uuid.UUID]
) -> dict[uuid.UUID, ReadScope]:
    """What the principal reads of each patient's record (the records consent rule, asked only for
    patients with a flag)."""
    return {pid: read_scope(session, principal, pid, "adherence.flags") for pid in patient_ids}
