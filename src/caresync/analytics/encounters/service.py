"""Recording and reading encounters (visits).

A doctor or nurse records a visit for a patient in their care (or under break-glass, flagged): one to ten
ICD-10 codes of :data:`caresync.analytics.rules.CONDITIONS` (the first is the principal diagnosis), the
department, the outcome, when it started (never in the future, never before the patient was born),
optional vital signs within the database's plausible ranges and optionally the patient's appointment it
came from (one visit per appointment). Once committed, every active analytics viewer of the organisation
is told over the WebSocket (counts only: no patient), so dashboards refresh.

Reading a patient's visits follows the records consent rule for the ``diagnosis`` category; visits with a
mental-health diagnosis (ICD-10 chapter F) also need the ``mental-health`` category.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, contains_eager

from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.analytics.rules import CONDITION_BY_CODE, CONDITIONS, Department, Outcome
from caresync.core import audit, realtime
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import MAX_LIMIT, Page, paginate
from caresync.core.rbac import ROLE_PERMISSIONS, Access, Perm, authorize_patient, require
from caresync.db import on_commit, utcnow
from caresync.identity.models import Patient, User
from caresync.records.consent import ReadScope, read_scope
from caresync.scheduling import booking

MAX_DIAGNOSES = 10
CLOCK_SKEW = timedelta(minutes=5)  # a device clock slightly ahead is not "the future"
# Plausible ranges, the same as the table's check constraints: (low, high, unit).
VITAL_RANGES: dict[str, tuple[float, float, str]] = {
    "systolic_mmhg": (40, 300, "mmHg"),
    "heart_rate_bpm": (20, 250, "beats per minute"),
    "temperature_c": (25, 45, "°C"),
    "spo2_pct": (50, 100, "%"),
}
CATEGORY = "diagnosis"  # the records category encounters belong to, for consent
SENSITIVE_CATEGORY = "mental-health"
MENTAL_HEALTH_CODES = tuple(c.code for c in CONDITIONS if c.code.startswith("F"))
EVENT_TYPE = "analytics.encounter"
VIEWER_ROLES = tuple(
    role for role, perms in ROLE_PERMISSIONS.items() if Perm.ANALYTICS_VIEW in perms and role != "system"
)


@dataclass(frozen=True)
class Draft:
    """A visit to record."""

    patient_id: uuid.UUID
    codes: list[str]
    department: str
    outcome: str
    started_at: datetime
    appointment_id: uuid.UUID | None = None
    vitals: dict[str, float | None] = field(default_factory=dict)


def record_encounter(session: Session, principal: Principal, draft: Draft) -> Encounter:
    """Record a visit for a patient in the clinician's care: 403 for roles that do not record visits, 404
    (audited) for a patient out of their care, 422 naming the field for invalid input, 409 when the
    appointment already has its visit. Analytics viewers of the organisation are told after commit."""
    action = "encounter.create"
    require(session, principal, Perm.ENCOUNTER_RECORD, action)
    access = authorize_patient(session, principal, draft.patient_id, Perm.ENCOUNTER_RECORD, action)
    if principal.organisation_id is None:
        raise Forbidden("Visits are recorded by the staff of an organisation.")
    patient = session.get(Patient, draft.patient_id)
    if patient is None:
        raise NotFound("No such patient.")
    codes = _codes(draft.codes)
    _check_choices(draft.department, draft.outcome)
    _check_time(draft.started_at, patient)
    vitals = _vitals(draft.vitals)
    if draft.appointment_id is not None:
        _check_appointment(session, draft.appointment_id, patient.id)
    encounter = Encounter(
        patient_id=patient.id,
        organisation_id=principal.organisation_id,
        appointment_id=draft.appointment_id,
        department=draft.department,
        started_at=draft.started_at,
        outcome=draft.outcome,
        recorded_by=principal.user_id,
        source="app",
        created_at=utcnow(),
        **vitals,
    )
    encounter.diagnoses = [EncounterDiagnosis(code=code, principal=i == 0) for i, code in enumerate(codes)]
    session.add(encounter)
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=patient.id,
        resource_type="Encounter",
        resource_id=encounter.id,
        detail={
            "codes": codes,
            "department": draft.department,
            "outcome": draft.outcome,
            "access": access.value,
        },
        flagged=access is Access.BREAK_GLASS,
    )
    _announce(session, encounter, codes)
    return encounter


def _codes(codes: list[str]) -> list[str]:
    cleaned = [code.strip().upper() for code in codes if code.strip()]
    if not 1 <= len(cleaned) <= MAX_DIAGNOSES:
        raise ValidationFailed(
            f"Give between 1 and {MAX_DIAGNOSES} diagnoses, the principal one first.",
            extra={"field": "codes"},
        )
    unknown = [code for code in cleaned if code not in CONDITION_BY_CODE]
    if unknown:
        raise ValidationFailed(
            f"Unknown diagnosis code {unknown[0]!r}: use an ICD-10 code CareSync counts "
            f"({', '.join(CONDITION_BY_CODE)}).",
            extra={"field": "codes"},
        )
    if len(set(cleaned)) != len(cleaned):
        raise ValidationFailed("Give each diagnosis once.", extra={"field": "codes"})
    return cleaned


def _check_choices(department: str, outcome: str) -> None:
    for name, value, allowed in (
        ("department", department, [d.value for d in Department]),
        ("outcome", outcome, [o.value for o in Outcome]),
    ):
        if value not in allowed:
            raise ValidationFailed(f"Choose the {name}: one of {', '.join(allowed)}.", extra={"field": name})


def _check_time(started_at: datetime, patient: Patient) -> None:
    if started_at.tzinfo is None:
        raise ValidationFailed(
            "Give the time with its time zone, e.g. 2026-03-02T09:30:00+00:00.", extra={"field": "started_at"}
        )
    if started_at > utcnow() + CLOCK_SKEW:
        raise ValidationFailed("A visit cannot start in the future.", extra={"field": "started_at"})
    if started_at.date() < patient.birth_date:
        raise ValidationFailed("The visit is before the patient was born.", extra={"field": "started_at"})


def _vitals(vitals: dict[str, float | None]) -> dict[str, float | int | None]:
    checked: dict[str, float | int | None] = {}
    for name, value in vitals.items():
        if name not in VITAL_RANGES:
            raise ValidationFailed(f"Unknown vital sign {name!r}.", extra={"field": name})
        if value is None:
            checked[name] = None
            continue
        low, high, unit = VITAL_RANGES[name]
        if not low <= value <= high:
            raise ValidationFailed(f"Enter a value from {low:g} to {high:g} {unit}.", extra={"field": name})
        checked[name] = round(value, 1) if name == "temperature_c" else round(value)
    return checked


def _check_appointment(session: Session, appointment_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    if not booking.appointment_belongs_to(session, appointment_id, patient_id):
        raise ValidationFailed("This appointment is not the patient's.", extra={"field": "appointment_id"})
    taken = select(Encounter.id).where(Encounter.appointment_id == appointment_id)
    if session.execute(taken).first() is not None:
        raise Conflict("A visit is already recorded for this appointment.", extra={"field": "appointment_id"})


def analytics_viewers(session: Session, organisation_id: uuid.UUID) -> list[uuid.UUID]:
    """The active users of the organisation whose role sees its analytics."""
    query = select(User.id).where(
        User.organisation_id == organisation_id, User.is_active.is_(True), User.role.in_(VIEWER_ROLES)
    )
    return sorted(session.execute(query).scalars())


def _announce(session: Session, encounter: Encounter, codes: list[str]) -> None:
    """After commit, tell the organisation's analytics viewers that activity changed (no patient data)."""
    event = {
        "type": EVENT_TYPE,
        "organisation_id": str(encounter.organisation_id),
        "started_at": encounter.started_at.isoformat(),
        "codes": codes,
    }
    viewers = analytics_viewers(session, encounter.organisation_id)

    def publish() -> None:
        for user_id in viewers:
            realtime.publish(user_id, event)

    on_commit(session, publish)


# --- reading ----------------------------------------------------------------------------------------------


def _hidden(scope: ReadScope) -> bool:
    """Whether the scope hides visits with a mental-health diagnosis."""
    return not scope.allows(SENSITIVE_CATEGORY)


def _scope(session: Session, principal: Principal, patient_id: uuid.UUID, action: str) -> ReadScope:
    scope = read_scope(session, principal, patient_id, action)
    if not scope.allows(CATEGORY):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=patient_id,
        )
        raise NotFound("No such patient.")
    return scope


# "this visit has a mental-health diagnosis", correlated with the encounter of the outer query
MENTAL_HEALTH_VISIT = exists().where(
    EncounterDiagnosis.encounter_id == Encounter.id, EncounterDiagnosis.code.in_(MENTAL_HEALTH_CODES)
)


def _filtered(
    query: Select[Any],
    scope: ReadScope,
    *,
    started_from: datetime | None,
    started_before: datetime | None,
    departments: Collection[str] | None,
    organisation_ids: Collection[uuid.UUID] | None,
    codes: Collection[str] | None,
    encounter_ids: Collection[uuid.UUID] | None,
) -> Select[Any]:
    """``query`` (over encounters, maybe joined to their diagnoses) narrowed to what the scope shows and the
    filters ask for. The diagnosis conditions use their own alias, so that they look at the whole visit even
    when the query selects single diagnoses."""
    diagnosis = aliased(EncounterDiagnosis)
    if _hidden(scope):
        mental_health = exists().where(
            diagnosis.encounter_id == Encounter.id, diagnosis.code.in_(MENTAL_HEALTH_CODES)
        )
        query = query.where(~mental_health)
    if started_from is not None:
        query = query.where(Encounter.started_at >= started_from)
    if started_before is not None:
        query = query.where(Encounter.started_at < started_before)
    if departments is not None:
        query = query.where(Encounter.department.in_(list(departments)))
    if organisation_ids is not None:
        query = query.where(Encounter.organisation_id.in_(list(organisation_ids)))
    if encounter_ids is not None:
        query = query.where(Encounter.id.in_(list(encounter_ids)))
    if codes is not None:
        diagnosed = exists().where(diagnosis.encounter_id == Encounter.id, diagnosis.code.in_(list(codes)))
        query = query.where(diagnosed)
    return query


def list_encounters(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    departments: Collection[str] | None = None,
    organisation_ids: Collection[uuid.UUID] | None = None,
    codes: Collection[str] | None = None,
    count_total: bool = False,
) -> Page[Encounter]:
    """One page of the patient's visits, newest first, for those who may read their diagnoses (the read
    audited; flagged under break-glass). Optional filters: started in [``started_from``,
    ``started_before``), in one of ``departments``, at one of ``organisation_ids``, with a diagnosis among
    ``codes``; ``count_total`` fills ``Page.total``."""
    action = "encounter.list"
    scope = _scope(session, principal, patient_id, action)
    query = _filtered(
        select(Encounter).where(Encounter.patient_id == patient_id),
        scope,
        started_from=started_from,
        started_before=started_before,
        departments=departments,
        organisation_ids=organisation_ids,
        codes=codes,
        encounter_ids=None,
    )
    page = paginate(
        session,
        query,
        sort_column=Encounter.started_at,
        id_column=Encounter.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="Encounter",
        detail={"count": len(page.items), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return page


def _diagnosis_cursor(diagnosis: EncounterDiagnosis) -> str:
    values = [diagnosis.encounter.started_at.isoformat(), str(diagnosis.encounter_id), diagnosis.code]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _after_diagnosis(cursor: str) -> ColumnElement[bool]:
    """Rows after the cursor in the order (visit start descending, visit id descending, code)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        started_at, encounter_id, code = datetime.fromisoformat(raw[0]), uuid.UUID(raw[1]), str(raw[2])
    except (ValueError, TypeError, IndexError, KeyError, binascii.Error):
        raise ValidationFailed("The cursor is not valid; start again without it.") from None
    return or_(
        Encounter.started_at < started_at,
        and_(Encounter.started_at == started_at, Encounter.id < encounter_id),
        and_(
            Encounter.started_at == started_at, Encounter.id == encounter_id, EncounterDiagnosis.code > code
        ),
    )


def list_diagnoses(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    codes: Collection[str] | None = None,
    encounter_ids: Collection[uuid.UUID] | None = None,
    count_total: bool = False,
) -> Page[EncounterDiagnosis]:
    """One page of the diagnoses of the patient's visits (newest visit first, then by code), each with its
    visit loaded, under the same rule as :func:`list_encounters` (a visit hidden by consent hides all its
    diagnoses). Filters: the visit started in [``started_from``, ``started_before``), the code is one of
    ``codes``, the visit is one of ``encounter_ids``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}.")
    action = "encounter.list"
    scope = _scope(session, principal, patient_id, action)
    query = _filtered(
        select(EncounterDiagnosis)
        .join(EncounterDiagnosis.encounter)
        .options(contains_eager(EncounterDiagnosis.encounter))
        .where(Encounter.patient_id == patient_id),
        scope,
        started_from=started_from,
        started_before=started_before,
        departments=None,
        organisation_ids=None,
        codes=None,
        encounter_ids=encounter_ids,
    )
    if codes is not None:
        query = query.where(EncounterDiagnosis.code.in_(list(codes)))
    total = None
    if count_total:
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if cursor:
        query = query.where(_after_diagnosis(cursor))
    order = (Encounter.started_at.desc(), Encounter.id.desc(), EncounterDiagnosis.code.asc())
    rows = list(session.execute(query.order_by(*order).limit(limit + 1)).scalars().unique())
    items = rows[:limit]
    next_cursor = _diagnosis_cursor(items[-1]) if len(rows) > limit else None
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="Condition",
        detail={"count": len(items), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return Page(items=items, next_cursor=next_cursor, total=total)


def whole_history(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[Encounter]:
    """Every visit of the patient the caller may see, newest first, with their diagnoses (two queries
    however long the history), for an export such as FHIR ``Patient/$everything``; audited once."""
    action = "encounter.list"
    scope = _scope(session, principal, patient_id, action)
    query = _filtered(
        select(Encounter).where(Encounter.patient_id == patient_id),
        scope,
        started_from=None,
        started_before=None,
        departments=None,
        organisation_ids=None,
        codes=None,
        encounter_ids=None,
    )
    encounters = list(
        session.execute(query.order_by(Encounter.started_at.desc(), Encounter.id.desc())).scalars()
    )
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="Encounter",
        detail={"count": len(encounters), "access": scope.access.value, "whole": True},
        flagged=scope.break_glass,
    )
    return encounters


def get_encounter(session: Session, principal: Principal, encounter_id: uuid.UUID) -> Encounter:
    """One visit, for those who may read the patient's diagnoses; 404 (audited) otherwise."""
    action = "encounter.read"
    encounter = session.get(Encounter, encounter_id)
    if encounter is None:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="Encounter", resource_id=encounter_id
        )
        raise NotFound("No such encounter.")
    try:
        scope = _scope(session, principal, encounter.patient_id, action)
    except NotFound:
        raise NotFound("No such encounter.") from None
    if _hidden(scope) and any(d.code in MENTAL_HEALTH_CODES for d in encounter.diagnoses):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=encounter.patient_id,
            resource_type="Encounter",
            resource_id=encounter.id,
        )
        raise NotFound("No such encounter.")
    audit.record(
        session,
        principal,
        action,
        patient_id=encounter.patient_id,
        resource_type="Encounter",
        resource_id=encounter.id,
        detail={"access": scope.access.value},
        flagged=scope.break_glass,
    )
    return encounter
