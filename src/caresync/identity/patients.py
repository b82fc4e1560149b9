"""Patient profile use cases: register, read, edit, list and search, care teams, break-glass access and
each patient's access history. Every read and write passes ``core.rbac`` and lands in ``core.audit``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from caresync.config import get_settings
from caresync.core import audit
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.notify import notify
from caresync.core.pagination import Page, paginate, parse_sort
from caresync.core.rbac import (
    CLINICIANS,
    Access,
    Perm,
    authorize_patient,
    break_glass_patient_ids,
    cared_for_patient_ids,
    consented_patient_ids,
    require,
)
from caresync.db import utcnow
from caresync.identity.models import BreakGlassGrant, CareRelationship, Patient, User
from caresync.identity.rules import new_health_id, normalise_health_id

PATIENT_SORTS = {
    "family_name": Patient.family_name,
    "birth_date": Patient.birth_date,
    "created_at": Patient.created_at,
    "updated_at": Patient.updated_at,
}
EDITABLE_FIELDS = frozenset(
    {
        "given_name",
        "family_name",
        "birth_date",
        "sex",
        "phone",
        "email",
        "address_line",
        "city",
        "postal_code",
        "country",
        "latitude",
        "longitude",
        "insurance_provider",
        "insurance_number",
        "emergency_contact_name",
        "emergency_contact_phone",
        "emergency_contact_relation",
        "allergies",
        "blood_group",
        "timezone",
    }
)
REQUIRED_FIELDS = frozenset({"given_name", "family_name", "birth_date", "sex"})
# Fields only clinicians may change: a patient's own claim about their blood group is not clinical truth.
CLINICIAN_ONLY_FIELDS = frozenset({"blood_group"})
# Columns that may hold NULL. For every other optional field an explicit null means "clear it" (stored as
# ''), instead of reaching the NOT NULL constraint as a 500.
NULLABLE_FIELDS = frozenset({"latitude", "longitude", "blood_group"})
CLEARED_VALUES = {"timezone": "UTC"}  # what a cleared field becomes when it is not the empty string


StrColumn = ColumnElement[str] | InstrumentedAttribute[str]


def _nulls_cleared(fields: dict[str, Any]) -> dict[str, Any]:
    keep_null = NULLABLE_FIELDS | REQUIRED_FIELDS
    return {
        k: CLEARED_VALUES.get(k, "") if v is None and k not in keep_null else v for k, v in fields.items()
    }


def new_patient(**fields: Any) -> Patient:
    """A ``Patient`` object with a fresh Health ID (not yet added to a session)."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    return Patient(health_id=new_health_id(), **_nulls_cleared(fields))


def _add_with_unique_health_id(session: Session, patient: Patient) -> None:
    for _ in range(5):  # 9e10 ids: a clash is rare, but the unique constraint is the judge
        if not session.execute(select(Patient.id).where(Patient.health_id == patient.health_id)).first():
            session.add(patient)
            session.flush()
            return
        patient.health_id = new_health_id()
    raise Conflict("Could not allocate a Health ID; try again.")


def create_patient(session: Session, principal: Principal, fields: dict[str, Any]) -> Patient:
    """A clinician registers a patient, who joins the clinician's care list."""
    require(session, principal, Perm.PATIENT_CREATE, "patient.create")
    patient = new_patient(**fields)
    _add_with_unique_health_id(session, patient)
    link_care(session, patient.id, principal.user_id, principal.organisation_id, "registered the patient")
    audit.record(
        session,
        principal,
        "patient.create",
        patient_id=patient.id,
        resource_type="Patient",
        resource_id=patient.id,
    )
    return patient


def register_own_profile(session: Session, fields: dict[str, Any]) -> Patient:
    """The profile for a self-registering patient (added to the session; the account links it)."""
    patient = new_patient(**fields)
    _add_with_unique_health_id(session, patient)
    return patient


def patient_by_health_id(session: Session, health_id: str) -> Patient | None:
    """The patient with this Health ID (any formatting), or ``None``; 422 if it is not a valid Health ID
    (wrong length or check digit). No permission check: callers decide what may follow a match."""
    canonical = normalise_health_id(health_id)
    if canonical is None:
        raise ValidationFailed("That Health ID is not valid; check the digits.", extra={"field": "health_id"})
    return session.execute(select(Patient).where(Patient.health_id == canonical)).scalar_one_or_none()


def link_care(
    session: Session,
    patient_id: uuid.UUID,
    practitioner_id: uuid.UUID | None,
    organisation_id: uuid.UUID | None,
    reason: str,
    *,
    actor: Principal | None = None,
    audit_unchanged: bool = False,
) -> CareRelationship:
    """Make (or re-activate) a clinician's care relationship with a patient, for an organisation. Callers
    decide whether the reason justifies it (registration, a booking, a walk-in); with ``actor``, a new or
    re-activated link (or, with ``audit_unchanged``, any request for one) is audited as that person's
    ``patient.care_team_add``."""
    assert practitioner_id is not None
    assert organisation_id is not None
    existing = session.execute(
        select(CareRelationship).where(
            CareRelationship.patient_id == patient_id, CareRelationship.practitioner_id == practitioner_id
        )
    ).scalar_one_or_none()
    changed = existing is None or existing.ended_at is not None or existing.organisation_id != organisation_id
    if existing:
        existing.ended_at = None
        existing.organisation_id = organisation_id
        link = existing
    else:
        link = CareRelationship(
            patient_id=patient_id,
            practitioner_id=practitioner_id,
            organisation_id=organisation_id,
            reason=reason,
            created_at=utcnow(),
        )
        session.add(link)
        session.flush()
    if actor is not None and (changed or audit_unchanged):
        audit.record(
            session,
            actor,
            "patient.care_team_add",
            patient_id=patient_id,
            resource_type="CareRelationship",
            resource_id=link.id,
            detail={"practitioner_id": str(practitioner_id), "reason": reason},
        )
    return link


def get_patient(session: Session, principal: Principal, patient_id: uuid.UUID) -> Patient:
    """Read a profile. Break-glass reads are flagged in the audit log."""
    access = authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, "patient.read")
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient.")
    audit.record(
        session,
        principal,
        "patient.read",
        patient_id=patient.id,
        resource_type="Patient",
        resource_id=patient.id,
        detail={"access": access.value},
        flagged=access is Access.BREAK_GLASS,
    )
    return patient


def update_patient(
    session: Session, principal: Principal, patient_id: uuid.UUID, changes: dict[str, Any]
) -> Patient:
    """Edit a profile. The audit entry names the changed fields, not their values."""
    access = authorize_patient(session, principal, patient_id, Perm.PATIENT_WRITE, "patient.update")
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient.")
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    changes = _nulls_cleared(changes)
    missing = sorted(k for k in REQUIRED_FIELDS & set(changes) if changes[k] in (None, ""))
    if missing:
        raise ValidationFailed(
            f"{missing[0].replace('_', ' ').capitalize()} is required.", extra={"field": missing[0]}
        )
    if principal.role == "patient":
        locked = {k for k in CLINICIAN_ONLY_FIELDS & set(changes) if changes[k] != getattr(patient, k)}
        if locked:
            raise ValidationFailed(
                f"Only your care team can change: {', '.join(sorted(locked))}.",
                extra={"field": sorted(locked)[0]},
            )
    changed = sorted(k for k, v in changes.items() if getattr(patient, k) != v)
    for key in changed:
        setattr(patient, key, changes[key])
    patient.updated_at = utcnow()
    audit.record(
        session,
        principal,
        "patient.update",
        patient_id=patient.id,
        resource_type="Patient",
        resource_id=patient.id,
        detail={"fields": changed, "access": access.value},
        flagged=access is Access.BREAK_GLASS,
    )
    return patient


def _visible_patients(principal: Principal) -> Select[Patient]:
    query = select(Patient)
    if principal.role == "patient":
        return query.where(Patient.id == principal.patient_id)
    return query.where(
        or_(
            Patient.id.in_(cared_for_patient_ids(principal)),
            Patient.id.in_(break_glass_patient_ids(principal)),
            Patient.id.in_(consented_patient_ids(principal)),
        )
    )


def _contains(columns: Sequence[StrColumn], alternatives: Sequence[str]) -> ColumnElement[bool]:
    """Case-insensitive "contains" of any alternative in any of the columns."""
    likes = [f"%{term.strip().lower()}%" for term in alternatives if term.strip()]
    return or_(false(), *(func.lower(column).like(like) for column in columns for like in likes))


def _digits(column: StrColumn) -> ColumnElement[str]:
    """A phone column without the separators people type (spaces, dashes, dots, brackets)."""
    stripped: ColumnElement[str] = func.replace(column, " ", "")
    for separator in ("-", ".", "(", ")"):
        stripped = func.replace(stripped, separator, "")
    return stripped


def _phone_key(phone: str) -> str:
    return "".join(char for char in phone if char.isdigit() or char == "+")


def _filtered(
    query: Select[Patient],
    *,
    health_ids: Sequence[str] | None,
    names: Sequence[Sequence[str]],
    families: Sequence[Sequence[str]],
    givens: Sequence[Sequence[str]],
    born_from: date | None,
    born_before: date | None,
    sexes: Sequence[str] | None,
    phones: Sequence[str] | None,
    emails: Sequence[str] | None,
) -> Select[Patient]:
    if health_ids is not None:
        canonical = {c for c in (normalise_health_id(h) for h in health_ids) if c}
        query = query.where(Patient.health_id.in_(sorted(canonical)) if canonical else false())
    full_name = Patient.given_name + " " + Patient.family_name
    for alternatives in names:
        query = query.where(_contains([Patient.family_name, Patient.given_name, full_name], alternatives))
    for alternatives in families:
        query = query.where(_contains([Patient.family_name], alternatives))
    for alternatives in givens:
        query = query.where(_contains([Patient.given_name], alternatives))
    if born_from is not None:
        query = query.where(Patient.birth_date >= born_from)
    if born_before is not None:
        query = query.where(Patient.birth_date < born_before)
    if sexes is not None:
        query = query.where(Patient.sex.in_(sorted(set(sexes))) if sexes else false())
    if phones is not None:
        keys = sorted({k for k in (_phone_key(p) for p in phones) if k})
        query = query.where(_digits(Patient.phone).in_(keys) if keys else false())
    if emails is not None:
        wanted = sorted({e.strip().lower() for e in emails if e.strip()})
        query = query.where(func.lower(Patient.email).in_(wanted) if wanted else false())
    return query


def list_patients(
    session: Session,
    principal: Principal,
    *,
    q: str = "",
    sort: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    health_ids: Sequence[str] | None = None,
    names: Sequence[Sequence[str]] = (),
    families: Sequence[Sequence[str]] = (),
    givens: Sequence[Sequence[str]] = (),
    born_from: date | None = None,
    born_before: date | None = None,
    sexes: Sequence[str] | None = None,
    phones: Sequence[str] | None = None,
    emails: Sequence[str] | None = None,
    count_total: bool = False,
) -> Page[Patient]:
    """The patients this user may see, filtered by name or Health ID (``q``).

    Structured filters (the FHIR search uses them): ``health_ids``, ``sexes``, ``phones`` and ``emails``
    match any of their values exactly (Health IDs and phones ignoring separators, emails ignoring case;
    ``None`` means no filter, an empty list matches nothing); ``names``, ``families`` and ``givens`` are
    groups of alternatives that must all match (any alternative of a group, contained in the name, ignoring
    case); ``born_from`` / ``born_before`` bound the birth date (inclusive / exclusive). ``count_total``
    fills ``Page.total``."""
    require(session, principal, Perm.PATIENT_READ, "patient.list")
    query = _filtered(
        _visible_patients(principal),
        health_ids=health_ids,
        names=names,
        families=families,
        givens=givens,
        born_from=born_from,
        born_before=born_before,
        sexes=sexes,
        phones=phones,
        emails=emails,
    )
    filtered = any(
        (
            health_ids is not None,
            names,
            families,
            givens,
            born_from,
            born_before,
            sexes is not None,
            phones is not None,
            emails is not None,
        )
    )
    term = q.strip()
    if term:
        health_id = normalise_health_id(term)
        if health_id:
            query = query.where(Patient.health_id == health_id)
        else:
            like = f"%{term.lower()}%"
            query = query.where(
                or_(
                    func.lower(Patient.family_name).like(like),
                    func.lower(Patient.given_name).like(like),
                    func.lower(Patient.given_name + " " + Patient.family_name).like(like),
                )
            )
    key, desc = parse_sort(sort, PATIENT_SORTS, "family_name")
    page = paginate(
        session,
        query,
        sort_column=PATIENT_SORTS[key],
        id_column=Patient.id,
        descending=desc,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    audit.record(
        session,
        principal,
        "patient.list",
        resource_type="Patient",
        detail={"count": len(page.items), "query": bool(term) or filtered},
    )
    return page


def break_glass(session: Session, principal: Principal, health_id: str, reason: str) -> Patient:
    """Emergency access to any patient by Health ID: granted for a few hours, flagged in the audit log,
    and the patient is told who opened their record and why."""
    require(session, principal, Perm.PATIENT_BREAK_GLASS, "patient.break_glass")
    reason = reason.strip()
    if len(reason) < 10:
        raise ValidationFailed(
            "Give a reason of at least 10 characters; it is shown to the patient.", extra={"field": "reason"}
        )
    patient = patient_by_health_id(session, health_id)
    canonical = normalise_health_id(health_id)
    if patient is None:
        audit.record_and_commit(
            session,
            principal,
            "patient.break_glass",
            outcome="failure",
            detail={"reason": reason, "health_id": canonical},
            flagged=True,
        )
        raise NotFound("No patient has this Health ID.")
    now = utcnow()
    hours = get_settings().break_glass_hours
    session.add(
        BreakGlassGrant(
            patient_id=patient.id,
            user_id=principal.user_id,
            reason=reason,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    audit.record(
        session,
        principal,
        "patient.break_glass",
        patient_id=patient.id,
        resource_type="Patient",
        resource_id=patient.id,
        detail={"reason": reason, "hours": hours},
        flagged=True,
    )
    if patient.user_id:
        notify(
            session,
            patient.user_id,
            "break_glass",
            "Emergency access to your record",
            f"{principal.full_name} ({principal.role}) opened your record without a care relationship. "
            f"Reason given: {reason}",
            link="/me/access",
        )
    return patient


def add_to_care_team(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    reason: str = "",
) -> CareRelationship:
    """A clinician caring for the patient adds a colleague of the same organisation."""
    authorize_patient(session, principal, patient_id, Perm.PATIENT_WRITE, "patient.care_team_add")
    if principal.role not in CLINICIANS:  # patients may edit their profile, not choose who reads it
        audit.record_and_commit(
            session,
            principal,
            "patient.care_team_add",
            outcome="denied",
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=patient_id,
        )
        raise Forbidden("Only the patient's doctors and nurses can add to the care team.")
    colleague = session.get(User, practitioner_id)
    if (
        colleague is None
        or colleague.role not in CLINICIANS
        or not colleague.is_active
        or colleague.organisation_id != principal.organisation_id
    ):
        raise ValidationFailed(
            "Choose an active doctor or nurse of your organisation.", extra={"field": "practitioner_id"}
        )
    return link_care(
        session,
        patient_id,
        colleague.id,
        colleague.organisation_id,
        reason or "added",
        actor=principal,
        audit_unchanged=True,
    )


def care_team(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[User]:
    """The clinicians with an active care relationship to the patient."""
    authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, "patient.care_team")
    query = (
        select(User)
        .join(CareRelationship, CareRelationship.practitioner_id == User.id)
        .where(CareRelationship.patient_id == patient_id, CareRelationship.ended_at.is_(None))
        .order_by(User.full_name)
    )
    return list(session.execute(query).scalars())


def access_history(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AuditEntry]:
    """Who accessed this patient's data, newest first. Patients see their own; clinicians with access see
    the patient's."""
    authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, "patient.access_history")
    query = select(AuditEntry).where(AuditEntry.patient_id == patient_id)
    page = paginate(
        session,
        query,
        sort_column=AuditEntry.seq,
        id_column=AuditEntry.seq,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    audit.record(
        session,
        principal,
        "patient.access_history",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
    )
    return page


def search_audit(
    session: Session,
    principal: Principal,
    *,
    action: str = "",
    outcome: str = "",
    actor: str = "",
    health_id: str = "",
    flagged: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AuditEntry]:
    """Admins search the audit entries of their organisation's users, newest first."""
    require(session, principal, Perm.AUDIT_READ, "audit.search")
    query = select(AuditEntry).where(AuditEntry.organisation_id == principal.organisation_id)
    if action:
        query = query.where(AuditEntry.action.startswith(action.strip()))
    if outcome:
        query = query.where(AuditEntry.outcome == outcome)
    if actor:
        query = query.where(func.lower(AuditEntry.actor_name).like(f"%{actor.strip().lower()}%"))
    if health_id:
        canonical = normalise_health_id(health_id)
        if canonical is None:
            raise ValidationFailed(
                "That Health ID is not valid; check the digits.", extra={"field": "health_id"}
            )
        query = query.where(
            AuditEntry.patient_id.in_(select(Patient.id).where(Patient.health_id == canonical))
        )
    if flagged is not None:
        query = query.where(AuditEntry.flagged.is_(flagged))
    page = paginate(
        session,
        query,
        sort_column=AuditEntry.seq,
        id_column=AuditEntry.seq,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    audit.record(session, principal, "audit.search", detail={"count": len(page.items)})
    return page
