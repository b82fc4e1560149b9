"""Permissions: what each role may do, plus the object rule for patient data.

Role permissions answer "may a nurse ever do this?"; :func:`patient_access` answers "may this person see
this patient now?". A patient sees only their own data; a doctor or nurse sees patients of their
organisation with whom they have an active care relationship, patients who consented to them reading part
of their record (read only), or any patient after a break-glass declaration; everyone else is told the
patient does not exist (404), so existence never leaks. Which *parts* of the record a clinician reads is
the records domain's consent rule, built on this one.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound
from caresync.db import utcnow


class Perm(StrEnum):
    """Coarse permissions granted by role."""

    PATIENT_READ = "patient:read"
    PATIENT_WRITE = "patient:write"
    PATIENT_CREATE = "patient:create"
    PATIENT_BREAK_GLASS = "patient:break_glass"
    OWN_PROFILE = "own:profile"
    USER_MANAGE = "user:manage"
    AUDIT_READ = "audit:read"
    ORG_READ = "org:read"
    DIRECTORY_READ = "directory:read"  # the provider directory and free slots
    APPOINTMENT_BOOK = "appointment:book"  # book, reschedule, cancel (patients: their own)
    APPOINTMENT_MANAGE = "appointment:manage"  # arrive, check in, no-show, fulfil; cancel at short notice
    SCHEDULE_MANAGE = "schedule:manage"  # working hours, leave and blocks of the organisation's staff
    QUEUE_MANAGE = "queue:manage"  # add walk-ins, triage, call the next patient
    PRESCRIBE = "prescription:write"  # prescribe, change status, decide refill and renewal requests
    DISPENSE = "prescription:dispense"  # verify a prescription's QR code and dispense it
    ARTICLE_WRITE = "article:write"  # write, publish and archive health articles
    ARTICLE_READ = "article:read"  # read published health articles
    ACTIVITY_LOG = "activity:log"  # log one's own daily activities and see one's streaks and badges
    BACKUP_MANAGE = "backup:manage"  # list, make and verify backups of the whole platform
    BLOOD_STOCK = "blood:stock"  # run a blood bank: units, donors, donations, matching, transfers, call-outs
    BLOOD_ORDER = "blood:order"  # order blood for a patient in one's care, track it, confirm transfusion
    BLOOD_NETWORK = "blood:network"  # see the network's stock by group and component (no patient data)
    BLOOD_POLICY = "blood:policy"  # set the organisation's blood bank rules, thresholds and call-outs
    BLOOD_REPORTS = "blood:reports"  # blood bank reports and their CSV/PDF exports
    DONATE = "donor:self"  # a donor's own portal: eligibility, appointments, history, call-outs
    ENCOUNTER_RECORD = "encounter:record"  # record a visit's diagnoses, vitals and outcome (patients in care)
    ANALYTICS_VIEW = "analytics:view"  # the organisation's trends, demographics, forecasts and surges
    ANALYTICS_MANAGE = "analytics:manage"  # train and choose risk models, run forecasts for the organisation
    IMAGING_ANALYSE = "imaging:analyse"  # upload imaging studies of patients in care and have AI analyse them
    IMAGING_REVIEW = "imaging:review"  # confirm or correct an AI finding (kept for retraining)
    IMAGING_MODELS = "imaging:models"  # choose which imaging model version serves each task


_CLINICIAN = frozenset(
    {
        Perm.PATIENT_READ,
        Perm.PATIENT_WRITE,
        Perm.PATIENT_CREATE,
        Perm.PATIENT_BREAK_GLASS,
        Perm.ORG_READ,
        Perm.DIRECTORY_READ,
        Perm.APPOINTMENT_BOOK,
        Perm.APPOINTMENT_MANAGE,
        Perm.QUEUE_MANAGE,
        Perm.ENCOUNTER_RECORD,
        Perm.ANALYTICS_VIEW,
        Perm.IMAGING_ANALYSE,
    }
)
_STAFF_ARTICLES = frozenset({Perm.ARTICLE_READ, Perm.ARTICLE_WRITE})
_BLOOD_ORDERING = frozenset({Perm.BLOOD_ORDER, Perm.BLOOD_NETWORK})
ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    "admin": frozenset(
        {
            Perm.USER_MANAGE,
            Perm.AUDIT_READ,
            Perm.ORG_READ,
            Perm.DIRECTORY_READ,
            Perm.SCHEDULE_MANAGE,
            Perm.BACKUP_MANAGE,
            Perm.BLOOD_NETWORK,
            Perm.BLOOD_POLICY,
            Perm.BLOOD_REPORTS,
            Perm.ANALYTICS_VIEW,
            Perm.ANALYTICS_MANAGE,
            Perm.IMAGING_MODELS,
        }
    )
    | _STAFF_ARTICLES,
    "doctor": _CLINICIAN | _STAFF_ARTICLES | _BLOOD_ORDERING | {Perm.PRESCRIBE, Perm.IMAGING_REVIEW},
    "nurse": _CLINICIAN | _STAFF_ARTICLES | _BLOOD_ORDERING,
    "patient": frozenset(
        {
            Perm.PATIENT_READ,
            Perm.PATIENT_WRITE,
            Perm.OWN_PROFILE,
            Perm.DIRECTORY_READ,
            Perm.APPOINTMENT_BOOK,
            Perm.ARTICLE_READ,
            Perm.ACTIVITY_LOG,
        }
    ),
    "donor": frozenset({Perm.OWN_PROFILE, Perm.DIRECTORY_READ, Perm.ARTICLE_READ, Perm.DONATE}),
    "bloodbank_staff": frozenset(
        {Perm.ORG_READ, Perm.DIRECTORY_READ, Perm.BLOOD_STOCK, Perm.BLOOD_NETWORK, Perm.BLOOD_REPORTS}
    ),
    "pharmacist": frozenset({Perm.ORG_READ, Perm.DIRECTORY_READ, Perm.DISPENSE}) | _STAFF_ARTICLES,
    "system": frozenset(Perm),
}
CLINICIANS = frozenset({"doctor", "nurse"})


def has_perm(principal: Principal, perm: Perm) -> bool:
    """Whether the principal's role carries ``perm``."""
    return perm in ROLE_PERMISSIONS.get(principal.role, frozenset())


def require(session: Session, principal: Principal, perm: Perm, action: str) -> None:
    """Raise 403 (audited) unless the role carries ``perm``. For actions whose existence is public."""
    require_any(session, principal, (perm,), action)


def require_any(
    session: Session,
    principal: Principal,
    perms: tuple[Perm, ...],
    action: str,
    message: str = "Your role does not allow this action.",
) -> None:
    """Raise 403 (audited) unless the role carries at least one of ``perms``."""
    if not any(has_perm(principal, perm) for perm in perms):
        missing = " | ".join(perm.value for perm in perms)
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"missing": missing})
        raise Forbidden(message)


class Access(StrEnum):
    """Why access to a patient was granted."""

    SELF = "self"
    CARE_TEAM = "care_team"
    CONSENT = "consent"  # read only, and only the consented categories of the record
    BREAK_GLASS = "break_glass"
    SYSTEM = "system"


def patient_access(session: Session, principal: Principal, patient_id: uuid.UUID) -> Access | None:
    """The basis on which ``principal`` may access the patient, or ``None``."""
    if principal.is_system:
        return Access.SYSTEM
    if principal.role == "patient":
        return Access.SELF if principal.patient_id == patient_id else None
    if principal.role not in CLINICIANS or principal.user_id is None:
        return None
    if _includes(session, cared_for_patient_ids(principal), patient_id):
        return Access.CARE_TEAM
    if has_break_glass(session, principal, patient_id):
        return Access.BREAK_GLASS
    if _includes(session, consented_patient_ids(principal), patient_id):
        return Access.CONSENT
    return None


def _includes(session: Session, patient_ids: Select[Any], patient_id: uuid.UUID) -> bool:
    column = patient_ids.selected_columns[0]
    return bool(session.execute(select(patient_ids.where(column == patient_id).exists())).scalar())


def has_break_glass(session: Session, principal: Principal, patient_id: uuid.UUID) -> bool:
    """Whether the principal holds an unexpired break-glass grant for the patient."""
    return _includes(session, break_glass_patient_ids(principal), patient_id)


def licensed(principal: Principal) -> ColumnElement[bool]:
    """Whether the principal holds an approved, unexpired licence (``identity.credentials``), as a SQL
    condition: clinicians act on patients only while licensed, whatever else grants them access."""
    from caresync.identity.credentials.service import verified_user_ids

    holders = verified_user_ids()
    return holders.where(holders.selected_columns[0] == principal.user_id).exists()


def cared_for_patient_ids(principal: Principal) -> Select[Any]:
    """The ids of the patients whose care team the principal belongs to, on behalf of their current
    organisation, while licensed (a subquery)."""
    from caresync.identity.models import CareRelationship

    return select(CareRelationship.patient_id).where(
        CareRelationship.practitioner_id == principal.user_id,
        CareRelationship.organisation_id == principal.organisation_id,
        CareRelationship.ended_at.is_(None),
        licensed(principal),
    )


def break_glass_patient_ids(principal: Principal) -> Select[Any]:
    """The ids of the patients the principal holds an unexpired break-glass grant for, while licensed (a
    subquery)."""
    from caresync.identity.models import BreakGlassGrant

    return select(BreakGlassGrant.patient_id).where(
        BreakGlassGrant.user_id == principal.user_id,
        BreakGlassGrant.expires_at > utcnow(),
        licensed(principal),
    )


def active_consents(principal: Principal, patient_id: uuid.UUID | None = None) -> Select[Any]:
    """The patient's unexpired, unrevoked consents naming the principal or the principal's organisation
    (any patient's when ``patient_id`` is ``None``)."""
    from caresync.records.models import RecordConsent

    now = utcnow()
    grantee = RecordConsent.grantee_user_id == principal.user_id
    if principal.organisation_id is not None:
        grantee = or_(grantee, RecordConsent.grantee_organisation_id == principal.organisation_id)
    query = select(RecordConsent).where(
        grantee,
        RecordConsent.revoked_at.is_(None),
        or_(RecordConsent.expires_at.is_(None), RecordConsent.expires_at > now),
        licensed(principal),
    )
    return query if patient_id is None else query.where(RecordConsent.patient_id == patient_id)


def consented_patient_ids(principal: Principal) -> Select[Any]:
    """The ids of the patients whose consents name the principal or their organisation (a subquery)."""
    from caresync.records.models import RecordConsent

    return active_consents(principal).with_only_columns(RecordConsent.patient_id)


def authorize_patient(
    session: Session, principal: Principal, patient_id: uuid.UUID, perm: Perm, action: str
) -> Access:
    """Check role permission and the object rule; on failure audit the denial and raise 404."""
    access = patient_access(session, principal, patient_id) if has_perm(principal, perm) else None
    if access is Access.CONSENT and perm is not Perm.PATIENT_READ:
        access = None  # a consent lets the clinician read, never change
    if access is None:
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
    return access
