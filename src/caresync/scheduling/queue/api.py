"""Clinic queue endpoints under ``/api/v1/scheduling/queue`` (the board's WebSocket is in ``pages``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from caresync.scheduling.queue import service
from caresync.scheduling.queue.schemas import (
    BoardOut,
    CallIn,
    EntryOut,
    LocationOut,
    OwnPlaceOut,
    QueueOut,
    SettingsIn,
    SettingsOut,
    TriageIn,
    WalkInIn,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/scheduling/queue", tags=["queue"])


@router.get("/locations", response_model=list[LocationOut])
def list_locations(principal: CurrentUser, db: Db) -> list[LocationOut]:
    """The caller's organisation's locations (where queues run)."""
    out = [LocationOut.model_validate(loc) for loc in service.locations(db, principal)]
    db.rollback()
    return out


@router.get("/settings", response_model=SettingsOut)
def get_settings(principal: CurrentUser, db: Db) -> SettingsOut:
    """The organisation's triage scale and maximum waits."""
    out = SettingsOut.of(service.get_settings(db, principal))
    db.rollback()
    return out


@router.put("/settings", response_model=SettingsOut)
def put_settings(body: SettingsIn, principal: CurrentUser, db: Db) -> SettingsOut:
    """Administrators: choose the triage scale and, optionally, the maximum waits."""
    policy = service.update_settings(db, principal, body.scale, body.max_wait_minutes)
    db.commit()
    return SettingsOut.of(policy)


@router.get("/me", response_model=list[OwnPlaceOut])
def my_places(principal: CurrentUser, db: Db) -> list[OwnPlaceOut]:
    """Patients: their own place in any clinic queue, with the estimated wait."""
    out = [OwnPlaceOut.of(p) for p in service.own_places(db, principal)]
    db.commit()  # the read is audited
    return out


@router.get("/{location_id}", response_model=QueueOut)
def read_queue(location_id: uuid.UUID, principal: CurrentUser, db: Db) -> QueueOut:
    """The open queue in call order (escalating patients found overdue)."""
    out = QueueOut.of(service.read_queue(db, principal, location_id))
    db.commit()
    return out


@router.get("/{location_id}/board", response_model=BoardOut)
def board(location_id: uuid.UUID, principal: CurrentUser, db: Db) -> BoardOut:
    """The waiting-room board: tickets and calls only (any staff of the organisation)."""
    out = BoardOut.of(service.board(db, principal, location_id))
    db.rollback()
    return out


@router.post("/{location_id}/entries", status_code=status.HTTP_201_CREATED, response_model=EntryOut)
def join(location_id: uuid.UUID, body: WalkInIn, principal: CurrentUser, db: Db) -> EntryOut:
    """Add a walk-in by Health ID (409 if already waiting here)."""
    entry = service.join_walk_in(db, principal, location_id, body.health_id, body.complaint)
    out = EntryOut.model_validate(entry)
    db.commit()
    return out


@router.post("/{location_id}/call-next", response_model=EntryOut)
def call_next(location_id: uuid.UUID, body: CallIn, principal: CurrentUser, db: Db) -> EntryOut:
    """Call the first patient in call order to a room (409 if nobody is waiting)."""
    entry = service.call_next(db, principal, location_id, body.room)
    out = EntryOut.model_validate(entry)
    db.commit()
    return out


@router.post("/entries/{entry_id}/triage", response_model=EntryOut)
def triage(entry_id: uuid.UUID, body: TriageIn, principal: CurrentUser, db: Db) -> EntryOut:
    """Set or change a waiting patient's triage level."""
    out = EntryOut.model_validate(service.triage(db, principal, entry_id, body.level))
    db.commit()
    return out


@router.post("/entries/{entry_id}/start", response_model=EntryOut)
def start(entry_id: uuid.UUID, principal: CurrentUser, db: Db) -> EntryOut:
    """The called patient is being seen."""
    out = EntryOut.model_validate(service.start_consultation(db, principal, entry_id))
    db.commit()
    return out


@router.post("/entries/{entry_id}/finish", response_model=EntryOut)
def finish(entry_id: uuid.UUID, principal: CurrentUser, db: Db) -> EntryOut:
    """The consultation is over."""
    out = EntryOut.model_validate(service.finish_consultation(db, principal, entry_id))
    db.commit()
    return out


@router.post("/entries/{entry_id}/left", response_model=EntryOut)
def left(entry_id: uuid.UUID, principal: CurrentUser, db: Db) -> EntryOut:
    """The patient left without being seen."""
    out = EntryOut.model_validate(service.mark_left(db, principal, entry_id))
    db.commit()
    return out
