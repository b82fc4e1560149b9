"""Inventory endpoints for blood bank staff, under ``/api/v1/bloodbank``: receive a unit from outside,
list and read units (with their history), release, discard, move to another storage location, and the
stock dashboard. A unit of another organisation answers 404; a change the unit's status does not allow
answers 409 with the reason."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from caresync.bloodbank.inventory import service
from caresync.bloodbank.inventory.schemas import (
    BloodGroup,
    ComponentName,
    DiscardIn,
    LocationIn,
    StockOut,
    UnitDetailOut,
    UnitIn,
    UnitOut,
    UnitPage,
    UnitStatusName,
)
from caresync.core.pagination import MAX_LIMIT
from caresync.db import utcnow
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank"])
SortName = Annotated[str, Query(pattern=r"^-?(expiry|collection)$")]


@router.post("/units", status_code=status.HTTP_201_CREATED, response_model=UnitOut)
def receive_unit(body: UnitIn, principal: CurrentUser, db: Db) -> UnitOut:
    """Register a unit received from outside (quarantined; expiry from the component's shelf life). 409
    when its donation number and product code are already registered; 422 on a malformed DIN."""
    out = UnitOut.of(service.receive_unit(db, principal, body.incoming()))
    db.commit()
    return out


@router.get("/units", response_model=UnitPage)
def list_units(
    principal: CurrentUser,
    db: Db,
    status: UnitStatusName | None = None,
    blood_group: BloodGroup | None = None,
    component: ComponentName | None = None,
    expiring_within_days: Annotated[int | None, Query(ge=0, le=365)] = None,
    din: Annotated[str | None, Query(max_length=20)] = None,
    sort: SortName = "expiry",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> UnitPage:
    """The blood bank's units, soonest expiry first (``sort``: ``expiry``, ``collection``, ``-`` for the
    reverse), filtered by status, group, component, expiry within N days and part of the DIN."""
    wanted = service.UnitFilter(status, blood_group, component, expiring_within_days, din or None)
    page = service.list_units(db, principal, wanted, sort=sort, limit=limit, cursor=cursor)
    out = UnitPage(items=[UnitOut.of(u) for u in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


@router.get("/units/{unit_id}", response_model=UnitDetailOut)
def unit_detail(unit_id: uuid.UUID, principal: CurrentUser, db: Db) -> UnitDetailOut:
    """A unit with its storage temperature range and full history (who, when, from which status to which)."""
    out = UnitDetailOut.of_detail(service.unit_detail(db, principal, unit_id))
    db.commit()
    return out


@router.post("/units/{unit_id}/release", response_model=UnitOut)
def release_unit(unit_id: uuid.UUID, principal: CurrentUser, db: Db) -> UnitOut:
    """Release a quarantined unit into available stock (409 when it is not quarantined or has expired)."""
    out = UnitOut.of(service.release(db, principal, unit_id))
    db.commit()
    return out


@router.post("/units/{unit_id}/discard", response_model=UnitOut)
def discard_unit(unit_id: uuid.UUID, body: DiscardIn, principal: CurrentUser, db: Db) -> UnitOut:
    """Discard a unit, with the reason (409 when its status does not allow it, e.g. transfused)."""
    out = UnitOut.of(service.discard(db, principal, unit_id, body.reason))
    db.commit()
    return out


@router.patch("/units/{unit_id}", response_model=UnitOut)
def move_unit(unit_id: uuid.UUID, body: LocationIn, principal: CurrentUser, db: Db) -> UnitOut:
    """Record the unit's new storage location (only the location can be changed here)."""
    out = UnitOut.of(service.relocate(db, principal, unit_id, body.storage_location))
    db.commit()
    return out


@router.get("/stock", response_model=StockOut)
def stock(principal: CurrentUser, db: Db) -> StockOut:
    """The blood bank's stock by group x component: available, reserved, quarantined, expiring soon, daily
    use, days of supply and level against the policy's thresholds."""
    now = utcnow()
    cells = service.stock_for(db, principal, now=now)
    assert principal.organisation_id is not None  # stock_for refused anyone without one
    out = StockOut.of(principal.organisation_id, now, cells)
    db.commit()
    return out
