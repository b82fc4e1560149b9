"""Consent: which parts of a patient's record a clinician reads, decided in one place so that the API, the
web pages and the FHIR facade all obey it.

A patient reads all of their own record. A clinician reads the union of
- what their organisation's policy lets an active care relationship read (by default everything except
  sensitive categories such as mental health),
- the categories the patient consented to, for them or their whole organisation (until the consent expires
  or is revoked), and
- everything, while they hold a break-glass grant (audited, flagged, and the patient notified when it was
  declared).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound, ValidationFailed
from caresync.core.notify import notify
from caresync.core.rbac import CLINICIANS, Access, Perm, active_consents, authorize_patient, has_break_glass
from caresync.core.rbac import require as require_perm
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Organisation, Patient, User
from caresync.records.models import RecordConsent, RecordPolicy
from caresync.records.rules import (
    CARE_TEAM_POLICIES,
    CATEGORIES,
    DEFAULT_CARE_TEAM_POLICY,
    care_team_categories,
    grant_status,
    parse_categories,
)
from caresync.scheduling.models import Practitioner

ALL_CATEGORIES = frozenset(CATEGORIES)


@dataclass(frozen=True)
class ReadScope:
    """What the principal reads of one patient's record, and on what basis."""

    access: Access
    categories: frozenset[str]
    break_glass: bool = False  # reading beyond consent under an emergency grant (audit entries are flagged)

    def allows(self, category: str) -> bool:
        """Whether records of ``category`` are readable."""
        return category in self.categories


def read_scope(
    session: Session, principal: Principal, patient_id: uuid.UUID, action: str = "record.list"
) -> ReadScope:
    """The categories of the patient's record the principal may read (404, audited, when none at all)."""
    access = authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, action)
    if access in (Access.SELF, Access.SYSTEM):
        return ReadScope(access, ALL_CATEGORIES)
    # patient_access names the care relationship before any break-glass grant, so look for one here
    if access is Access.BREAK_GLASS or (
        access is Access.CARE_TEAM and has_break_glass(session, principal, patient_id)
    ):
        return ReadScope(Access.BREAK_GLASS, ALL_CATEGORIES, break_glass=True)
    granted: set[str] = set()
    for consent in session.execute(active_consents(principal, patient_id)).scalars():
        granted.update(consent.categories)
    if access is Access.CARE_TEAM:
        granted.update(care_team_categories(care_team_policy(session, principal.organisation_id)))
    return ReadScope(access, frozenset(granted))


def care_team_policy(session: Session, organisation_id: uuid.UUID | None) -> str:
    """The organisation's care-team policy code (the default when it has not chosen one)."""
    if organisation_id is None:
        return DEFAULT_CARE_TEAM_POLICY
    policy = session.get(RecordPolicy, organisation_id)
    return policy.care_team if policy else DEFAULT_CARE_TEAM_POLICY


def set_care_team_policy(session: Session, principal: Principal, policy: str) -> str:
    """An administrator chooses what their organisation's care relationships read without consent."""
    require_perm(session, principal, Perm.USER_MANAGE, "record.policy_update")
    if policy not in CARE_TEAM_POLICIES:
        raise ValidationFailed(f"Unknown policy {policy!r}.", extra={"field": "care_team"})
    assert principal.organisation_id is not None  # administrators belong to an organisation
    row = session.get(RecordPolicy, principal.organisation_id)
    if row is None:
        row = RecordPolicy(organisation_id=principal.organisation_id, care_team=policy)
        session.add(row)
    else:
        row.care_team = policy
    audit.record(
        session, principal, "record.policy_update", resource_type="RecordPolicy", detail={"care_team": policy}
    )
    return policy


@dataclass(frozen=True)
class Grant:
    """What a patient consents to: a practitioner or an organisation, some categories, until when."""

    patient_id: uuid.UUID
    categories: tuple[str, ...]
    practitioner_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    note: str = ""


def grant(session: Session, principal: Principal, request: Grant) -> RecordConsent:
    """The patient lets a practitioner or an organisation read the chosen categories of their record.
    Only the patient decides: their care team cannot grant themselves consent."""
    require_patient_self(session, principal, request.patient_id, "consent.grant")
    try:
        categories = parse_categories(request.categories)
    except ValueError as error:
        raise ValidationFailed(str(error), extra={"field": "categories"}) from None
    if not categories:
        raise ValidationFailed("Choose at least one category to share.", extra={"field": "categories"})
    if (request.practitioner_id is None) == (request.organisation_id is None):
        raise ValidationFailed(
            "Choose either one practitioner or one organisation.", extra={"field": "practitioner_id"}
        )
    now = utcnow()
    if request.expires_at is not None and request.expires_at <= now:
        raise ValidationFailed("The expiry must be in the future.", extra={"field": "expires_at"})
    grantee_name = _grantee_name(session, request)
    assert principal.user_id is not None
    consent = RecordConsent(
        patient_id=request.patient_id,
        grantee_user_id=request.practitioner_id,
        grantee_organisation_id=request.organisation_id,
        categories=sorted(categories),
        note=clean_line(request.note)[:200],
        created_by=principal.user_id,
        created_at=now,
        expires_at=request.expires_at,
    )
    session.add(consent)
    session.flush()
    audit.record(
        session,
        principal,
        "consent.grant",
        patient_id=request.patient_id,
        resource_type="RecordConsent",
        resource_id=consent.id,
        detail={
            "grantee": grantee_name,
            "categories": sorted(categories),
            "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        },
    )
    if request.practitioner_id is not None:
        patient = session.get(Patient, request.patient_id)
        assert patient is not None
        notify(
            session,
            request.practitioner_id,
            "consent",
            "A patient shared records with you",
            f"{patient.given_name} {patient.family_name} shared: "
            + ", ".join(CATEGORIES[c] for c in sorted(categories)),
            link=f"/patients/{patient.id}/records",
        )
    return consent


def _grantee_name(session: Session, request: Grant) -> str:
    if request.practitioner_id is not None:
        user = session.get(User, request.practitioner_id)
        if user is None or user.role not in CLINICIANS or not user.is_active:
            raise ValidationFailed("Choose an active doctor or nurse.", extra={"field": "practitioner_id"})
        return user.full_name
    organisation = session.get(Organisation, request.organisation_id)
    if organisation is None:
        raise ValidationFailed("No such organisation.", extra={"field": "organisation_id"})
    return organisation.name


def revoke(session: Session, principal: Principal, consent_id: uuid.UUID) -> RecordConsent:
    """The patient withdraws a consent; it stops counting at once. Revoking twice is harmless."""
    consent = session.get(RecordConsent, consent_id)
    if consent is None or principal.role != "patient" or consent.patient_id != principal.patient_id:
        audit.record_and_commit(
            session,
            principal,
            "consent.revoke",
            outcome="denied",
            resource_type="RecordConsent",
            resource_id=consent_id,
        )
        raise NotFound("No such consent.")
    if consent.revoked_at is None:
        consent.revoked_at = utcnow()
        audit.record(
            session,
            principal,
            "consent.revoke",
            patient_id=consent.patient_id,
            resource_type="RecordConsent",
            resource_id=consent.id,
        )
    return consent


def list_consents(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[RecordConsent]:
    """Every consent the patient has given, newest first, including expired and revoked ones."""
    authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, "consent.list")
    query = (
        select(RecordConsent)
        .where(RecordConsent.patient_id == patient_id)
        .order_by(RecordConsent.created_at.desc())
    )
    return list(session.execute(query).scalars())


def get_consent(session: Session, principal: Principal, consent_id: uuid.UUID) -> RecordConsent:
    """One consent, for whoever may list the patient's consents (404 otherwise, audited)."""
    consent = session.get(RecordConsent, consent_id)
    if consent is None:
        audit.record_and_commit(
            session,
            principal,
            "consent.read",
            outcome="denied",
            resource_type="RecordConsent",
            resource_id=consent_id,
        )
        raise NotFound("No such consent.")
    try:
        authorize_patient(session, principal, consent.patient_id, Perm.PATIENT_READ, "consent.read")
    except NotFound:
        raise NotFound("No such consent.") from None
    return consent


@dataclass(frozen=True)
class Grantee:
    """Who a consent names: a practitioner (with their directory profile, if any) or an organisation."""

    name: str
    user_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None  # the practitioner's directory profile
    organisation_id: uuid.UUID | None = None


def grantees(session: Session, consents: list[RecordConsent]) -> dict[uuid.UUID, Grantee]:
    """The grantee of each consent, by consent id (two queries, however many consents)."""
    user_ids = {c.grantee_user_id for c in consents if c.grantee_user_id is not None}
    org_ids = {c.grantee_organisation_id for c in consents if c.grantee_organisation_id is not None}
    users: dict[uuid.UUID, tuple[str, uuid.UUID | None]] = {}
    if user_ids:
        query = (
            select(User.id, User.full_name, Practitioner.id)
            .outerjoin(Practitioner, Practitioner.user_id == User.id)
            .where(User.id.in_(user_ids))
        )
        users = {user_id: (name, profile) for user_id, name, profile in session.execute(query)}
    orgs: dict[uuid.UUID, str] = {}
    if org_ids:
        query_orgs = select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))
        orgs = {row.id: row.name for row in session.execute(query_orgs)}
    found: dict[uuid.UUID, Grantee] = {}
    for consent in consents:
        if consent.grantee_user_id is not None:
            name, profile = users.get(consent.grantee_user_id, ("", None))
            found[consent.id] = Grantee(name, user_id=consent.grantee_user_id, practitioner_id=profile)
        elif consent.grantee_organisation_id is not None:
            name = orgs.get(consent.grantee_organisation_id, "")
            found[consent.id] = Grantee(name, organisation_id=consent.grantee_organisation_id)
    return found


def consent_status(consent: RecordConsent) -> str:
    """``active``, ``expired`` or ``revoked``."""
    return grant_status(consent.revoked_at, consent.expires_at, utcnow())


def require_patient_self(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    action: str,
    message: str = "Only the patient decides who reads their record.",
) -> None:
    """Let only the patient themself through: their clinicians get 403 with ``message``, anyone who may
    not see the patient 404 (both audited)."""
    access = authorize_patient(session, principal, patient_id, Perm.PATIENT_WRITE, action)
    if access is not Access.SELF:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=patient_id,
        )
        raise Forbidden(message)
