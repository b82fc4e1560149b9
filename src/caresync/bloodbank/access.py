"""Who acts for which blood bank: the one check every blood bank service starts with, and who its staff
are (to tell them of requests, offers, transfers and alerts)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden
from caresync.core.rbac import Perm, require
from caresync.identity.models import User


def staff_organisation(
    session: Session, principal: Principal, action: str, perm: Perm = Perm.BLOOD_STOCK
) -> uuid.UUID:
    """The organisation the caller acts for, after checking ``perm`` (403, audited, for anyone without it
    or without an organisation)."""
    require(session, principal, perm, action)
    if principal.organisation_id is None:
        audit.record_and_commit(session, principal, action, outcome="denied")
        raise Forbidden("Only staff of an organisation can do this.")
    return principal.organisation_id


def blood_bank_staff(session: Session, organisation_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The active blood bank staff of an organisation: (user id, email), in a stable order."""
    rows = session.execute(
        select(User.id, User.email)
        .where(
            User.organisation_id == organisation_id,
            User.role == "bloodbank_staff",
            User.is_active.is_(True),
        )
        .order_by(User.id)
    ).all()
    return [(row[0], row[1]) for row in rows]
