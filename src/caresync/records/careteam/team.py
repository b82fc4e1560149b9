"""Who makes up a patient's care team, and the access rule shared by notes, tasks and messages.

The care team is the doctors and nurses with an active care relationship to the patient, for the
organisation they work for now (exactly those :func:`caresync.core.rbac.patient_access` lets in as
``CARE_TEAM``), whose accounts are active.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, exists, select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound
from caresync.core.rbac import (
    CLINICIANS,
    Access,
    Perm,
    authorize_patient,
    break_glass_patient_ids,
    cared_for_patient_ids,
    patient_access,
)
from caresync.identity.models import CareRelationship, Patient, User

TEAM_ACCESS = frozenset({Access.CARE_TEAM, Access.BREAK_GLASS, Access.SYSTEM})


@dataclass(frozen=True)
class Member:
    """One clinician of a patient's care team."""

    user_id: uuid.UUID
    full_name: str
    role: str
    organisation: str
    since: datetime
    reason: str


def _active_links() -> Select[CareRelationship, User]:
    return (
        select(CareRelationship, User)
        .join(User, User.id == CareRelationship.practitioner_id)
        .where(
            CareRelationship.ended_at.is_(None),
            CareRelationship.organisation_id == User.organisation_id,
            User.is_active.is_(True),
            User.role.in_(CLINICIANS),
        )
    )


def members(session: Session, patient_id: uuid.UUID) -> list[Member]:
    """The patient's care team, by name (no permission check: callers have done it)."""
    query = _active_links().where(CareRelationship.patient_id == patient_id).order_by(User.full_name)
    return [
        Member(
            user_id=user.id,
            full_name=user.full_name,
            role=user.role,
            organisation=user.organisation.name if user.organisation else "",
            since=link.created_at,
            reason=link.reason,
        )
        for link, user in session.execute(query).all()
    ]


def member_ids(session: Session, patient_id: uuid.UUID) -> set[uuid.UUID]:
    """The user ids of the patient's care team."""
    return {member.user_id for member in members(session, patient_id)}


def is_member(session: Session, patient_id: uuid.UUID, user_id: uuid.UUID | None) -> bool:
    """Whether ``user_id`` belongs to the patient's care team now."""
    if user_id is None:
        return False
    query = _active_links().where(CareRelationship.patient_id == patient_id, User.id == user_id)
    return bool(session.execute(select(exists(query.subquery()))).scalar())


def team_work_patient_ids(principal: Principal) -> CompoundSelect[Any]:
    """The ids of the patients the principal may coordinate care for now: their care team's patients and
    those they hold an unexpired break-glass grant for (a subquery)."""
    return cared_for_patient_ids(principal).union(break_glass_patient_ids(principal))


def team(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[Member]:
    """The patient's care team with roles, for anyone who may see the patient (the patient included)."""
    access = authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, "careteam.team")
    result = members(session, patient_id)
    audit.record(
        session,
        principal,
        "careteam.team",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        detail={"count": len(result)},
        flagged=access is Access.BREAK_GLASS,
    )
    return result


def require_team_access(
    session: Session, principal: Principal, patient_id: uuid.UUID, action: str, *, write: bool
) -> Access:
    """Let in a doctor or nurse of the patient's care team, or one holding a break-glass grant. Anyone
    else is refused, audited: the patient with 403 (their own record: nothing to hide), a clinician who
    only holds a consent (read-only access to the record) or no access at all with 404."""
    perm = Perm.PATIENT_WRITE if write else Perm.PATIENT_READ
    access = authorize_patient(session, principal, patient_id, perm, action)
    if access in TEAM_ACCESS and (access is Access.SYSTEM or principal.role in CLINICIANS):
        return access
    audit.record_and_commit(
        session,
        principal,
        action,
        outcome="denied",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
    )
    if access is Access.SELF:
        raise Forbidden("This is for the doctors and nurses of your care team.")
    raise NotFound("No such patient.")


def may_coordinate(session: Session, principal: Principal, patient_id: uuid.UUID) -> bool:
    """Whether the principal may write notes and tasks for the patient (for showing forms; no audit)."""
    if principal.role not in CLINICIANS:
        return False
    return patient_access(session, principal, patient_id) in TEAM_ACCESS


def patient_names(session: Session, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of patients by id."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(Patient.id, Patient.given_name, Patient.family_name).where(Patient.id.in_(patient_ids))
    ).all()
    return {row.id: f"{row.given_name} {row.family_name}" for row in rows}


def user_names(session: Session, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of users by id."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids))).all()
    return {row.id: row.full_name for row in rows}
