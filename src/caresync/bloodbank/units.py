"""The one way a blood unit is created or changes status: a compare-and-set UPDATE plus a history event.

Every domain use case (receiving a donation, reserving for a request, issuing, transferring, expiring)
calls :func:`move`. The UPDATE only succeeds while the unit is still in the status the caller saw, so
when two requests race for the same unit exactly one wins, on SQLite and on PostgreSQL alike; the loser
gets :class:`~caresync.core.errors.Conflict`. Permissions and auditing are the callers' job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from caresync.bloodbank.models import BloodUnit, UnitEvent
from caresync.bloodbank.rules import UnitStatus, can_transition
from caresync.core.auth import Principal
from caresync.core.errors import Conflict
from caresync.db import utcnow

# The request a unit is held for stays attached while it is in one of these statuses.
_HELD = frozenset({UnitStatus.RESERVED, UnitStatus.CROSSMATCHED, UnitStatus.ISSUED, UnitStatus.TRANSFUSED})


def add(session: Session, actor: Principal, unit: BloodUnit, *, note: str = "") -> BloodUnit:
    """Insert a new unit (status already set, normally ``quarantined``) and its first history event."""
    session.add(unit)
    session.flush()
    session.add(
        UnitEvent(
            unit_id=unit.id,
            from_status=None,
            to_status=unit.status,
            actor_id=actor.user_id,
            organisation_id=unit.organisation_id,
            note=note,
        )
    )
    return unit


def move(
    session: Session,
    actor: Principal,
    unit: BloodUnit,
    target: UnitStatus,
    *,
    request_id: uuid.UUID | None = None,
    transfer_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    note: str = "",
    at: datetime | None = None,
) -> BloodUnit:
    """Move ``unit`` from the status it has in memory to ``target``, atomically, and log the step.

    ``request_id`` is the request the unit is held for (kept while held, cleared otherwise);
    ``organisation_id`` moves the unit to another holder (a received transfer). Raises Conflict when the
    transition is not allowed or when someone else changed the unit first."""
    current = UnitStatus(unit.status)
    if not can_transition(current, target):
        raise Conflict(f"Unit {unit.din} is {current.value}: it cannot become {target.value}.")
    when = at or utcnow()
    held_for = (request_id or unit.request_id) if target in _HELD else None
    holder = organisation_id or unit.organisation_id
    values: dict[str, Any] = {"status": target.value, "request_id": held_for, "organisation_id": holder}
    if target is UnitStatus.ISSUED:
        values["issued_at"] = when
    if target is UnitStatus.TRANSFUSED:
        values["transfused_at"] = when
    if current is UnitStatus.ISSUED and target is UnitStatus.AVAILABLE:
        values["issued_at"] = None
    changed = session.execute(
        update(BloodUnit)
        .where(BloodUnit.id == unit.id, BloodUnit.status == current.value)
        .values(**values, updated_at=when)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(unit)
        raise Conflict(f"Unit {unit.din} was changed by someone else; reload and try again.")
    session.add(
        UnitEvent(
            unit_id=unit.id,
            at=when,
            from_status=current.value,
            to_status=target.value,
            actor_id=actor.user_id,
            organisation_id=holder,
            request_id=request_id or unit.request_id,
            transfer_id=transfer_id,
            note=note,
        )
    )
    session.flush()
    session.refresh(unit)
    return unit
