"""The audit log as people review it: who accessed a patient's record, and an organisation's audit trail.

The same rules as :func:`caresync.identity.patients.access_history` and
:func:`caresync.identity.patients.search_audit`, with the filters an interoperable client needs (period,
actors, actions, outcomes, resource types), page totals and single-entry reads:

- a patient sees the entries about their own record; a doctor or nurse with access to a patient (care
  team, consent, break-glass) sees that patient's entries (both through the object rule, audited as
  ``patient.access_history``);
- an administrator (``audit:read``) searches the entries of their organisation's users (``audit.search``);
- everyone else is refused: 404 for a patient they may not see, 403 for the whole log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import NotFound
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, authorize_patient, has_perm, require_any
from caresync.identity.models import Patient

READ_ACTION = "audit.read"
WHOLE_LOG_MESSAGE = (
    "Only administrators search the audit log; give a patient (your own record, or a patient in your care)."
)


@dataclass(frozen=True)
class AuditFilter:
    """What to look for; empty collections mean "any". ``[start, end)`` bounds the time of the entry."""

    patient_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None
    actor_ids: Collection[uuid.UUID] = ()
    actor_name: str = ""
    actor_roles: Collection[str] = ()
    actions: Collection[str] = ()
    outcomes: Collection[str] = ()
    resource_types: Collection[str] = ()
    resource: tuple[str, str] | None = None  # (resource type, resource id)


def _scope(
    session: Session, principal: Principal, patient_id: uuid.UUID | None
) -> tuple[ColumnElement[bool], str]:
    """The entries this principal may review for this request, and the action that audits the review.

    Raises 404 (audited) for a patient the caller may not see and 403 (audited) for the whole log."""
    if has_perm(principal, Perm.AUDIT_READ):
        if principal.is_system:
            visible: ColumnElement[bool] = true()
        elif principal.organisation_id is None:
            visible = AuditEntry.organisation_id.is_(None)
        else:
            visible = AuditEntry.organisation_id == principal.organisation_id
        if patient_id is not None:
            visible = and_(visible, AuditEntry.patient_id == patient_id)
        return visible, "audit.search"
    if patient_id is None and principal.role == "patient":
        patient_id = principal.patient_id
    if patient_id is None:
        require_any(session, principal, (Perm.AUDIT_READ,), "audit.search", WHOLE_LOG_MESSAGE)
        raise AssertionError("unreachable: require_any refuses roles without audit:read")
    authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, "patient.access_history")
    return AuditEntry.patient_id == patient_id, "patient.access_history"


def _conditions(filters: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.start is not None:
        conditions.append(AuditEntry.at >= filters.start)
    if filters.end is not None:
        conditions.append(AuditEntry.at < filters.end)
    if filters.actor_ids:
        conditions.append(AuditEntry.actor_id.in_(list(filters.actor_ids)))
    if filters.actor_name.strip():
        conditions.append(func.lower(AuditEntry.actor_name).like(f"%{filters.actor_name.strip().lower()}%"))
    if filters.actor_roles:
        conditions.append(AuditEntry.actor_role.in_(list(filters.actor_roles)))
    if filters.actions:
        conditions.append(AuditEntry.action.in_(list(filters.actions)))
    if filters.outcomes:
        conditions.append(AuditEntry.outcome.in_(list(filters.outcomes)))
    if filters.resource_types:
        conditions.append(AuditEntry.resource_type.in_(list(filters.resource_types)))
    if filters.resource is not None:
        conditions.append(
            and_(
                AuditEntry.resource_type == filters.resource[0], AuditEntry.resource_id == filters.resource[1]
            )
        )
    return conditions


def search_entries(
    session: Session,
    principal: Principal,
    filters: AuditFilter,
    *,
    action_matches: Callable[[str], bool] | None = None,
    limit: int = 50,
    cursor: str | None = None,
    count_total: bool = False,
) -> Page[AuditEntry]:
    """The audit entries the caller may review that match ``filters``, newest first (keyset on ``seq``).

    ``action_matches`` keeps only the entries whose action name it accepts (e.g. every action that is a
    read), decided over the distinct action names in view: one small extra query."""
    visible, review_action = _scope(session, principal, filters.patient_id)
    query = select(AuditEntry).where(visible, *_conditions(filters))
    if action_matches is not None:
        names = session.execute(
            select(AuditEntry.action).where(visible, *_conditions(filters)).distinct()
        ).scalars()
        query = query.where(AuditEntry.action.in_([name for name in names if action_matches(name)]))
    page = paginate(
        session,
        query,
        sort_column=AuditEntry.seq,
        id_column=AuditEntry.seq,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    patient_id = filters.patient_id
    if review_action == "patient.access_history" and patient_id is None:
        patient_id = principal.patient_id
    detail: dict[str, Any] = {"count": len(page.items), "via": "fhir"}
    if review_action == "patient.access_history":
        audit.record(
            session,
            principal,
            review_action,
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=patient_id or "",
            detail=detail,
        )
    else:
        audit.record(session, principal, review_action, patient_id=patient_id, detail=detail)
    return page


def get_entry(session: Session, principal: Principal, entry_hash: str) -> AuditEntry:
    """One audit entry by its hash, if the caller may review it (the rules of :func:`search_entries`);
    404 otherwise, whether it exists or not. The read is audited as ``audit.read``."""
    entry = session.execute(select(AuditEntry).where(AuditEntry.hash == entry_hash)).scalar_one_or_none()
    if entry is not None and has_perm(principal, Perm.AUDIT_READ):
        mine = principal.is_system or entry.organisation_id == principal.organisation_id
    elif entry is not None and entry.patient_id is not None and has_perm(principal, Perm.PATIENT_READ):
        authorize_patient(session, principal, entry.patient_id, Perm.PATIENT_READ, READ_ACTION)
        mine = True
    else:
        mine = False
    if entry is None or not mine:
        audit.record_and_commit(
            session,
            principal,
            READ_ACTION,
            outcome="denied",
            resource_type="AuditEntry",
            resource_id=entry_hash[:64],
        )
        raise NotFound("No such audit event.")
    audit.record(
        session,
        principal,
        READ_ACTION,
        patient_id=entry.patient_id,
        resource_type="AuditEntry",
        resource_id=str(entry.seq),
    )
    return entry


def patient_ids_of_users(session: Session, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The patient profile of each of these accounts that has one (to show a patient as the actor)."""
    if not user_ids:
        return {}
    rows = session.execute(select(Patient.user_id, Patient.id).where(Patient.user_id.in_(list(user_ids))))
    return {user_id: patient_id for user_id, patient_id in rows if user_id is not None}


def user_of_patient(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    """The account of a patient profile (``None`` without a portal account), to search by a patient actor."""
    return session.execute(select(Patient.user_id).where(Patient.id == patient_id)).scalar_one_or_none()
