"""Alert and donor call-out endpoints under ``/api/v1/bloodbank``.

Blood bank staff (their own organisation): list alerts and scan now; create call-outs, list and read them
(contacted donors with their replies), send the next wave, close. Donors: the calls sent to them and their
reply (accepting books a donation appointment)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from caresync.bloodbank.alerts import callouts, service
from caresync.bloodbank.alerts.schemas import (
    AlertOut,
    AlertPage,
    CalloutDetailOut,
    CalloutIn,
    CalloutOut,
    CalloutPage,
    ContactOut,
    MyCallOut,
    ReplyIn,
    ReplyOut,
    ScanOut,
    WaveOut,
)
from caresync.db import utcnow
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank"])
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    principal: CurrentUser,
    db: Db,
    state: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
    kind: Annotated[str | None, Query(pattern="^(low_stock|expiring|unmet_request)$")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AlertPage:
    """Staff: their organisation's alerts, newest first (open ones by default; filter by kind)."""
    page = service.list_alerts(db, principal, state=state, kind=kind, limit=limit, cursor=cursor)
    out = AlertPage(items=[AlertOut.of(a) for a in page.items], next_cursor=page.next_cursor)
    db.rollback()
    return out


@router.post("/alerts/scan", response_model=ScanOut)
def scan_now(principal: CurrentUser, db: Db) -> ScanOut:
    """Staff: check stock, expiry and urgent requests now (the job does it every 15 minutes)."""
    out = ScanOut.of(service.scan_now(db, principal, utcnow()))
    db.commit()
    return out


@router.get("/callouts", response_model=CalloutPage)
def list_callouts(
    principal: CurrentUser,
    db: Db,
    state: Annotated[str, Query(pattern="^(active|closed|all)$")] = "all",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CalloutPage:
    """Staff: their organisation's call-outs with progress (contacted / accepted / needed), newest first."""
    rows, next_cursor = callouts.list_callouts(db, principal, state=state, limit=limit, cursor=cursor)
    out = CalloutPage(items=[CalloutOut.of(p) for p in rows], next_cursor=next_cursor)
    db.rollback()
    return out


@router.post("/callouts", status_code=status.HTTP_201_CREATED, response_model=CalloutOut)
def create_callout(body: CalloutIn, principal: CurrentUser, db: Db) -> CalloutOut:
    """Staff: call donors of compatible groups; the first wave (nearest eligible, available donors) goes
    out at once."""
    callout = callouts.create_callout(
        db,
        principal,
        donors_needed=body.donors_needed,
        now=utcnow(),
        needed_group=body.needed_group,
        blood_groups=list(body.blood_groups) if body.blood_groups else None,
        alert_id=body.alert_id,
        request_id=body.request_id,
        donation_type=body.donation_type,
        reason=body.reason,
    )
    out = CalloutOut.of(callouts.progress_of(db, [callout])[0])
    db.commit()
    return out


@router.get("/callouts/{callout_id}", response_model=CalloutDetailOut)
def callout_detail(callout_id: uuid.UUID, principal: CurrentUser, db: Db) -> CalloutDetailOut:
    """Staff: a call-out with every contacted donor and their reply."""
    progress, contacts = callouts.callout_detail(db, principal, callout_id)
    out = CalloutDetailOut(
        **CalloutOut.of(progress).model_dump(), contacts=[ContactOut.of(c) for c in contacts]
    )
    db.commit()
    return out


@router.post("/callouts/{callout_id}/waves", response_model=WaveOut)
def send_wave(callout_id: uuid.UUID, principal: CurrentUser, db: Db) -> WaveOut:
    """Staff: contact the next wave of donors now."""
    contacted = callouts.send_wave(db, principal, callout_id, utcnow())
    out = WaveOut(contacted=contacted, callout=CalloutOut.of(callouts.progress(db, principal, callout_id)))
    db.commit()
    return out


@router.post("/callouts/{callout_id}/close", response_model=CalloutOut)
def close_callout(callout_id: uuid.UUID, principal: CurrentUser, db: Db) -> CalloutOut:
    """Staff: stop calling donors."""
    callout = callouts.close_callout(db, principal, callout_id, utcnow())
    out = CalloutOut.of(callouts.progress_of(db, [callout])[0])
    db.commit()
    return out


@router.get("/me/callouts", response_model=list[MyCallOut])
def my_callouts(principal: CurrentUser, db: Db) -> list[MyCallOut]:
    """Donors: the active calls sent to me, with my reply so far."""
    out = [MyCallOut.of(call) for call in callouts.my_calls(db, principal)]
    db.rollback()
    return out


@router.post("/me/callouts/{callout_id}/reply", response_model=ReplyOut)
def reply(callout_id: uuid.UUID, body: ReplyIn, principal: CurrentUser, db: Db) -> ReplyOut:
    """Donors: accept a call by choosing a free donation slot (``starts_at``: see
    ``GET /api/v1/bloodbank/donation-slots``), which books the appointment; or decline."""
    contact = callouts.reply(
        db, principal, callout_id, accept=body.accept, starts_at=body.starts_at, now=utcnow()
    )
    out = ReplyOut.of(contact)
    db.commit()
    return out
