"""The clinical summary a doctor reads at the start of a visit: allergies, problems, medications, the
latest value of each vital sign and the most recent records, all filtered by the reader's consent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.identity.models import Patient
from caresync.records.consent import ReadScope, read_scope
from caresync.records.models import HealthRecord
from caresync.records.rules import VITAL_SIGNS

RECENT = 8
VITALS_LOOKBACK = 50  # vital-sign records searched for each sign's latest value


@dataclass(frozen=True)
class VitalSign:
    """The latest reading of one vital sign."""

    code: str
    label: str
    value: float
    unit: str
    recorded_on: date


@dataclass
class Summary:
    """What the reader may see of the patient at a glance."""

    patient: Patient
    scope: ReadScope
    allergies: list[HealthRecord] = field(default_factory=list)
    problems: list[HealthRecord] = field(default_factory=list)
    medications: list[HealthRecord] = field(default_factory=list)
    vitals: list[VitalSign] = field(default_factory=list)
    recent: list[HealthRecord] = field(default_factory=list)


def clinical_summary(session: Session, principal: Principal, patient_id: uuid.UUID) -> Summary:
    """The patient's current allergies, problems and medications (newest versions only), the latest of
    each vital sign and the most recent records, within the reader's consent (audited)."""
    scope = read_scope(session, principal, patient_id, "record.summary")
    patient = session.get(Patient, patient_id)
    assert patient is not None  # read_scope found them
    summary = Summary(patient, scope)
    summary.allergies = _current(session, patient_id, scope, "allergy")
    summary.problems = _current(session, patient_id, scope, "diagnosis")
    summary.medications = _current(session, patient_id, scope, "medication")
    if scope.allows("vitals"):
        summary.vitals = _latest_vitals(session, patient_id)
    readable = sorted(scope.categories)
    summary.recent = list(
        session.execute(
            select(HealthRecord)
            .where(HealthRecord.patient_id == patient_id, HealthRecord.category.in_(readable))
            .order_by(HealthRecord.recorded_on.desc(), HealthRecord.id.desc())
            .limit(RECENT)
        ).scalars()
    )
    audit.record(
        session,
        principal,
        "record.summary",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        detail={"access": scope.access.value},
        flagged=scope.break_glass,
    )
    return summary


def _current(session: Session, patient_id: uuid.UUID, scope: ReadScope, category: str) -> list[HealthRecord]:
    """The patient's records of ``category`` that no newer version supersedes, newest first."""
    if not scope.allows(category):
        return []
    query = (
        select(HealthRecord)
        .where(HealthRecord.patient_id == patient_id, HealthRecord.category == category, _not_superseded())
        .order_by(HealthRecord.recorded_on.desc())
    )
    return list(session.execute(query).scalars())


def _not_superseded() -> ColumnElement[bool]:
    newer = aliased(HealthRecord)
    return ~select(newer.id).where(newer.supersedes_id == HealthRecord.id).exists()


def _latest_vitals(session: Session, patient_id: uuid.UUID) -> list[VitalSign]:
    query = (
        select(HealthRecord.recorded_on, HealthRecord.measurements)
        .where(
            HealthRecord.patient_id == patient_id,
            HealthRecord.category == "vitals",
            HealthRecord.measurements.is_not(None),
            _not_superseded(),
        )
        .order_by(HealthRecord.recorded_on.desc(), HealthRecord.created_at.desc())
        .limit(VITALS_LOOKBACK)
    )
    latest: dict[str, VitalSign] = {}
    for recorded_on, measurements in session.execute(query):
        for code, value in (measurements or {}).items():
            if code in VITAL_SIGNS and code not in latest:
                label, unit, _low, _high = VITAL_SIGNS[code]
                latest[code] = VitalSign(code, label, value, unit, recorded_on)
    return [latest[code] for code in VITAL_SIGNS if code in latest]
