"""Network pages: the network's stock (a sortable, filterable table and an offline map drawn as inline SVG),
the blood bank's transfers console (offers made to it with accept/decline, its own offers and their state,
transfers in and out with dispatch/receive/cancel, a form to ask for or send stock) and one transfer's
page. The "Offer to network" button of a request page posts to ``/bloodbank/requests/{id}/offer``.

Actions post normally and are redirected on success (so reloading cannot post them twice); a refusal
shows the page again with the reason (and the refusal's status)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from caresync.bloodbank.access import staff_organisation
from caresync.bloodbank.network import offers, service, transfers
from caresync.bloodbank.network.schemas import TransferIn
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS
from caresync.core.auth import Principal
from caresync.core.errors import DomainError
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import (
    PageUser,
    clean_form,
    domain_field_errors,
    form_field_errors,
    redirect,
    render_page,
)

router = APIRouter(include_in_schema=False)
TEMPLATE_DIR = "bloodbank/network"
PAGE_SIZE = 20
SORTS: dict[str, Callable[[service.Site], Any]] = {
    "distance": service.nearest_first,
    "name": lambda s: s.name.lower(),
    "stock": lambda s: (-s.total, s.name.lower()),
}
DIRECTIONS: dict[str, transfers.Direction] = {"incoming": "incoming", "outgoing": "outgoing"}
MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN = 640, 420, 40
LABEL_WIDTH, LABEL_HEIGHT = 180, 16  # room a name takes under its circle


def component_options() -> list[tuple[str, str]]:
    """(value, label) of every component, for a select."""
    return [(c, c.replace("_", " ").capitalize()) for c in COMPONENTS]


# --- network stock ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapPoint:
    """One organisation on the map; ``labelled`` when its name fits without covering another's."""

    site: service.Site
    x: float
    y: float
    radius: float
    labelled: bool = True


def map_points(sites: list[service.Site]) -> list[MapPoint]:
    """Place the organisations with coordinates on the map (equirectangular, scaled to fit and centred,
    north up), circles' areas proportional to their available stock. Drawn in this order: the caller's
    organisation last (on top); names shown biggest stock first where they do not overlap."""
    placed = [
        (s, s.latitude, s.longitude) for s in sites if s.latitude is not None and s.longitude is not None
    ]
    lats = [lat for _s, lat, _lon in placed if lat is not None]
    lons = [lon for _s, _lat, lon in placed if lon is not None]
    if not lats or not lons:
        return []
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x, span_y = (max(lons) - min(lons)) * squeeze, max(lats) - min(lats)
    scale = min(
        (MAP_WIDTH - 2 * MAP_MARGIN) / max(span_x, 1e-6), (MAP_HEIGHT - 2 * MAP_MARGIN) / max(span_y, 1e-6)
    )
    left = (MAP_WIDTH - span_x * scale) / 2
    top = (MAP_HEIGHT - span_y * scale) / 2
    most = max(site.total for site, _lat, _lon in placed) or 1
    points: list[MapPoint] = []
    labels: list[tuple[float, float]] = []
    for site, lat, lon in sorted(placed, key=lambda p: -p[0].total):
        if lat is None or lon is None:
            continue
        x = round(left + (lon - min(lons)) * squeeze * scale, 1)
        y = round(top + (max(lats) - lat) * scale, 1)
        radius = round(5 + 25 * math.sqrt(site.total / most), 1)
        label = (x, y + radius + 13)
        free = all(abs(label[0] - lx) > LABEL_WIDTH or abs(label[1] - ly) > LABEL_HEIGHT for lx, ly in labels)
        if free:
            labels.append(label)
        points.append(MapPoint(site, x, y, radius, free))
    return sorted(points, key=lambda p: p.site.is_own)


@router.get("/bloodbank/network")
def network_page(
    request: Request,
    db: Db,
    principal: PageUser,
    blood_group: str = "",
    component: str = "",
    sort: str = "distance",
) -> Response:
    """The network's available stock: table (sortable, filterable) and map."""
    group = blood_group if blood_group in BLOOD_GROUPS else None
    kind = component if component in COMPONENTS else None
    sites = service.network_stock(db, principal, blood_group=group, component=kind)
    sort = sort if sort in SORTS else "distance"
    sites.sort(key=SORTS[sort])
    context = {
        "sites": sites,
        "points": map_points(sites),
        "unplaced": [s for s in sites if s.latitude is None or s.longitude is None],
        "groups": BLOOD_GROUPS,
        "component_options": component_options(),
        "filters": {"blood_group": group or "", "component": kind or ""},
        "sort": sort,
        "map_size": (MAP_WIDTH, MAP_HEIGHT),
    }
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/network.html", context)


# --- transfers console ------------------------------------------------------------------------------------


def _console(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    direction: str = "",
    cursor: str | None = None,
    offers_cursor: str | None = None,
    error: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    side = DIRECTIONS.get(direction)
    incoming = offers.list_offers(db, principal, "incoming", status="pending", limit=50)
    outgoing = offers.list_offers(db, principal, "outgoing", limit=PAGE_SIZE, cursor=offers_cursor)
    moves = transfers.list_transfers(db, principal, direction=side, limit=PAGE_SIZE, cursor=cursor)
    own = principal.organisation_id
    partners = [s for s in service.network_organisations(db) if s.id != own]
    context = {
        "incoming": incoming.items,
        "outgoing": outgoing,
        "outgoing_rows": by_request_then_rank(outgoing.items),
        "transfers": moves,
        "direction": side or "",
        "cursor": cursor,
        "offers_cursor": offers_cursor,
        "partner_options": [(str(o.id), f"{o.name} ({o.city})" if o.city else o.name) for o in partners],
        "group_options": [(g, g) for g in BLOOD_GROUPS],
        "component_options": component_options(),
        "error": error,
        "errors": errors or {},
        "values": values or {},
        "notice": notice,
    }
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/transfers.html", context, status)


def by_request_then_rank(views: list[offers.OfferView]) -> list[offers.OfferView]:
    """One page of offers grouped by request (newest request first), each request's in rank order."""
    return sorted(views, key=lambda v: (-v.request.created_at.timestamp(), str(v.request.id), v.offer.rank))


NOTICES = {
    "offered": "The request is on offer to the network: the nearest organisation with compatible stock "
    "has been asked.",
    "declined": "Offer declined; the next organisation has been asked.",
}


@router.get("/bloodbank/transfers")
def transfers_page(
    request: Request,
    db: Db,
    principal: PageUser,
    direction: str = "",
    cursor: str | None = None,
    offers_cursor: str | None = None,
    done: str = "",
) -> Response:
    """Offers to answer, the organisation's own offers, and transfers in and out."""
    return _console(
        request,
        db,
        principal,
        direction=direction,
        cursor=cursor,
        offers_cursor=offers_cursor,
        notice=NOTICES.get(done, ""),
    )


def _refused(request: Request, db: Session, principal: Principal, exc: DomainError) -> Response:
    """Show the console again with why the action was refused (permission errors get the error page)."""
    db.rollback()
    if exc.status in (401, 403):
        raise exc
    return _console(request, db, principal, error=exc.detail, status=exc.status)


@router.post("/bloodbank/requests/{request_id}/offer")
def offer_request(request: Request, db: Db, principal: PageUser, request_id: uuid.UUID) -> Response:
    """Offer a request the organisation's stock cannot meet to the network."""
    try:
        offers.offer_to_network(db, principal, request_id)
    except DomainError as exc:
        return _refused(request, db, principal, exc)
    db.commit()
    return redirect("/bloodbank/transfers?done=offered#outgoing-offers")


@router.post("/bloodbank/offers/{offer_id}/accept")
def accept_offer(
    request: Request, db: Db, principal: PageUser, offer_id: uuid.UUID, values: FormValues
) -> Response:
    """Accept an offer: first-expiry-first-out units are reserved for a new transfer."""
    try:
        view = offers.accept_offer(db, principal, offer_id, note=values.get("note", ""))
    except DomainError as exc:
        return _refused(request, db, principal, exc)
    transfer_id = view.transfer.id
    db.commit()
    return redirect(f"/bloodbank/transfers/{transfer_id}")


@router.post("/bloodbank/offers/{offer_id}/decline")
def decline_offer(
    request: Request, db: Db, principal: PageUser, offer_id: uuid.UUID, values: FormValues
) -> Response:
    """Decline an offer with a note."""
    try:
        offers.decline_offer(db, principal, offer_id, note=values.get("note", ""))
    except DomainError as exc:
        return _refused(request, db, principal, exc)
    db.commit()
    return redirect("/bloodbank/transfers?done=declined")


@router.post("/bloodbank/transfers")
def create_transfer(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Ask another organisation for stock, or send it units (first-expiry-first-out)."""
    own = staff_organisation(db, principal, "bloodbank.transfer.create")
    other = values.get("organisation_id", "")
    sending = values.get("direction") == "send"
    fields = clean_form(values, TransferIn) | {
        "from_organisation_id": str(own) if sending else other,
        "to_organisation_id": other if sending else str(own),
    }
    try:
        body = TransferIn.model_validate(fields)
    except ValidationError as exc:
        errors = form_field_errors(exc)
        if {"from_organisation_id", "to_organisation_id"} & errors.keys():
            errors["organisation_id"] = "Choose a hospital or blood bank."
        return _console(request, db, principal, errors=errors, values=values, status=422)
    try:
        view = transfers.create_transfer(
            db,
            principal,
            from_organisation_id=body.from_organisation_id,
            to_organisation_id=body.to_organisation_id,
            blood_group=body.blood_group,
            component=body.component,
            units_wanted=body.units,
            note=body.note,
        )
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403):
            raise
        return _console(
            request, db, principal, errors=domain_field_errors(exc), values=values, status=exc.status
        )
    transfer_id = view.transfer.id
    db.commit()
    return redirect(f"/bloodbank/transfers/{transfer_id}")


# --- one transfer ------------------------------------------------------------------------------------------


def _detail(
    request: Request,
    db: Session,
    principal: Principal,
    transfer_id: uuid.UUID,
    *,
    error: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    view = transfers.get_transfer(db, principal, transfer_id)
    context = {"view": view, "error": error, "errors": errors or {}}
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/transfer.html", context, status)


@router.get("/bloodbank/transfers/{transfer_id}")
def transfer_page(request: Request, db: Db, principal: PageUser, transfer_id: uuid.UUID) -> Response:
    """One transfer: what travels, its steps, its units' history and the actions open to this side."""
    return _detail(request, db, principal, transfer_id)


def _step(
    request: Request, db: Session, principal: Principal, transfer_id: uuid.UUID, action: Callable[[], object]
) -> Response:
    """Run one step of a transfer, then show it again (a redirect), or show why it was refused."""
    try:
        action()
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404):
            raise
        return _detail(request, db, principal, transfer_id, error=exc.detail, errors=domain_field_errors(exc),
                       status=exc.status)  # fmt: skip
    db.commit()
    return redirect(f"/bloodbank/transfers/{transfer_id}")


@router.post("/bloodbank/transfers/{transfer_id}/dispatch")
def dispatch(
    request: Request, db: Db, principal: PageUser, transfer_id: uuid.UUID, values: FormValues
) -> Response:
    """The supplier hands the units to a courier."""
    courier = values.get("courier", "")
    return _step(
        request, db, principal, transfer_id,
        lambda: transfers.dispatch_transfer(db, principal, transfer_id, courier=courier),
    )  # fmt: skip


@router.post("/bloodbank/transfers/{transfer_id}/receive")
def receive(request: Request, db: Db, principal: PageUser, transfer_id: uuid.UUID) -> Response:
    """The receiver confirms the units arrived."""
    return _step(
        request, db, principal, transfer_id, lambda: transfers.receive_transfer(db, principal, transfer_id)
    )


@router.post("/bloodbank/transfers/{transfer_id}/cancel")
def cancel(
    request: Request, db: Db, principal: PageUser, transfer_id: uuid.UUID, values: FormValues
) -> Response:
    """Either side cancels the transfer before dispatch."""
    reason = values.get("reason", "")[:200]
    return _step(
        request, db, principal, transfer_id,
        lambda: transfers.cancel_transfer(db, principal, transfer_id, reason=reason),
    )  # fmt: skip
