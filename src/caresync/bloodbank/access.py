"""Who acts for which blood bank: the one check every blood bank service starts with."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden
from caresync.core.rbac import Perm, require


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
