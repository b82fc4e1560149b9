"""The hospital network's API, under ``/api/v1/bloodbank``: the network's available stock (anyone with the
network permission), offering a request to the network and answering offers, and transfers between
organisations (blood bank staff). No payload names a patient."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from caresync.bloodbank.network import offers, service, transfers
from caresync.bloodbank.network.schemas import (
    AcceptIn,
    BloodGroup,
    CancelIn,
    ComponentName,
    DeclineIn,
    DispatchIn,
    NetworkStockOut,
    OfferListOut,
    OfferOut,
    SiteOut,
    TransferIn,
    TransferListOut,
    TransferOut,
)
from caresync.core.auth import Principal
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank network"])
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


def _viewer(principal: Principal) -> uuid.UUID:
    assert principal.organisation_id is not None  # the services refuse callers without one
    return principal.organisation_id


@router.get("/network/stock", response_model=NetworkStockOut)
def network_stock(
    principal: CurrentUser,
    db: Db,
    blood_group: BloodGroup | None = None,
    component: ComponentName | None = None,
) -> NetworkStockOut:
    """Every hospital and blood bank with its available, unexpired units by group and component, nearest
    to the caller's organisation first (no patient data)."""
    sites = service.network_stock(db, principal, blood_group=blood_group, component=component)
    out = NetworkStockOut(items=[SiteOut.of(s) for s in sites])
    db.commit()
    return out


@router.post(
    "/requests/{request_id}/offers", status_code=status.HTTP_201_CREATED, response_model=OfferListOut
)
def offer_request(request_id: uuid.UUID, principal: CurrentUser, db: Db) -> OfferListOut:
    """Blood bank staff: offer one of their organisation's requests, which their stock cannot meet, to
    the network. Answers the ranked candidates; rank 1 is asked first."""
    views = offers.offer_to_network(db, principal, request_id)
    out = OfferListOut(items=[OfferOut.of(v, _viewer(principal)) for v in views])
    db.commit()
    return out


@router.get("/offers", response_model=OfferListOut)
def list_offers(
    principal: CurrentUser,
    db: Db,
    direction: Literal["incoming", "outgoing"] = "incoming",
    offer_status: Annotated[
        Literal["pending", "accepted", "declined", "expired"] | None, Query(alias="status")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> OfferListOut:
    """Blood bank staff: offers made to their organisation (``incoming``) or by it (``outgoing``)."""
    page = offers.list_offers(db, principal, direction, status=offer_status, limit=limit, cursor=cursor)
    out = OfferListOut(
        items=[OfferOut.of(v, _viewer(principal)) for v in page.items], next_cursor=page.next_cursor
    )
    db.commit()
    return out


@router.post("/offers/{offer_id}/accept", status_code=status.HTTP_201_CREATED, response_model=TransferOut)
def accept_offer(offer_id: uuid.UUID, body: AcceptIn, principal: CurrentUser, db: Db) -> TransferOut:
    """The supplier accepts an offer made to it: the units (chosen, or first-expiry-first-out) are
    reserved for a new transfer, answered here."""
    view = offers.accept_offer(db, principal, offer_id, unit_ids=body.unit_ids, note=body.note)
    out = TransferOut.of(view)
    db.commit()
    return out


@router.post("/offers/{offer_id}/decline", response_model=OfferOut)
def decline_offer(offer_id: uuid.UUID, body: DeclineIn, principal: CurrentUser, db: Db) -> OfferOut:
    """The supplier declines an offer with a note; the next organisation in rank is asked."""
    out = OfferOut.of(offers.decline_offer(db, principal, offer_id, note=body.note), _viewer(principal))
    db.commit()
    return out


@router.post("/transfers", status_code=status.HTTP_201_CREATED, response_model=TransferOut)
def create_transfer(body: TransferIn, principal: CurrentUser, db: Db) -> TransferOut:
    """Blood bank staff: ask another organisation for stock (your organisation receives) or send it
    units (your organisation supplies; chosen units or first-expiry-first-out, reserved at once)."""
    view = transfers.create_transfer(
        db,
        principal,
        from_organisation_id=body.from_organisation_id,
        to_organisation_id=body.to_organisation_id,
        blood_group=body.blood_group,
        component=body.component,
        units_wanted=body.units,
        unit_ids=body.unit_ids,
        note=body.note,
    )
    out = TransferOut.of(view)
    db.commit()
    return out


@router.get("/transfers", response_model=TransferListOut)
def list_transfers(
    principal: CurrentUser,
    db: Db,
    direction: Literal["incoming", "outgoing"] | None = None,
    transfer_status: Annotated[
        Literal["requested", "dispatched", "received", "cancelled"] | None, Query(alias="status")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> TransferListOut:
    """Blood bank staff: their organisation's transfers (in, out or both), newest first."""
    page = transfers.list_transfers(
        db, principal, direction=direction, status=transfer_status, limit=limit, cursor=cursor
    )
    out = TransferListOut(items=[TransferOut.of(v) for v in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


@router.get("/transfers/{transfer_id}", response_model=TransferOut)
def get_transfer(transfer_id: uuid.UUID, principal: CurrentUser, db: Db) -> TransferOut:
    """One transfer of the caller's organisation, with its units and their history."""
    out = TransferOut.of(transfers.get_transfer(db, principal, transfer_id))
    db.commit()
    return out


@router.post("/transfers/{transfer_id}/dispatch", response_model=TransferOut)
def dispatch_transfer(
    transfer_id: uuid.UUID, body: DispatchIn, principal: CurrentUser, db: Db
) -> TransferOut:
    """The supplier hands the units to a courier (the units stay reserved in transit)."""
    view = transfers.dispatch_transfer(
        db, principal, transfer_id, courier=body.courier, unit_ids=body.unit_ids
    )
    out = TransferOut.of(view)
    db.commit()
    return out


@router.post("/transfers/{transfer_id}/receive", response_model=TransferOut)
def receive_transfer(transfer_id: uuid.UUID, principal: CurrentUser, db: Db) -> TransferOut:
    """The receiver confirms the units arrived: they join its stock (and the request they were sent for)."""
    out = TransferOut.of(transfers.receive_transfer(db, principal, transfer_id))
    db.commit()
    return out


@router.post("/transfers/{transfer_id}/cancel", response_model=TransferOut)
def cancel_transfer(transfer_id: uuid.UUID, body: CancelIn, principal: CurrentUser, db: Db) -> TransferOut:
    """Either side cancels a transfer before dispatch; reserved units return to the supplier's shelf."""
    out = TransferOut.of(transfers.cancel_transfer(db, principal, transfer_id, reason=body.reason))
    db.commit()
    return out
