"""Offering a request the local stock cannot meet to the rest of the network.

The requesting organisation's blood bank staff offer the request: every other hospital or blood bank
holding available, unexpired units of a compatible group is ranked, nearest first, then the one with more
compatible stock, and one :class:`~caresync.bloodbank.models.RequestOffer` row is written per candidate
(rank 1..n, status ``pending``). Only the lowest-ranked pending offer of a request is *live*: that
organisation's staff are told and see it (group, component, units, urgency, needed-by; never the patient).
They accept (the units they choose, or first-expiry-first-out ones, are reserved for a new transfer) or
decline with a note; an offer unanswered for its urgency's time limit expires. Either way the next rank
becomes live, until the request no longer needs units from the network (then the rest are withdrawn).

A queued offer's ``created_at`` is reset when it becomes live: it is the time the offer was made to that
organisation, from which its time limit runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from caresync.bloodbank.access import staff_organisation
from caresync.bloodbank.inventory.service import available_counts
from caresync.bloodbank.models import BloodRequest, BloodTransfer, RequestOffer
from caresync.bloodbank.network import transfers
from caresync.bloodbank.network.service import (
    distance_between,
    donor_groups_for,
    network_organisations,
    newest_first,
    notify_blood_bank,
    organisation_names,
)
from caresync.bloodbank.requests.service import shortfall
from caresync.bloodbank.rules import OFFER_STATUSES, Urgency
from caresync.core import audit
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Organisation

# How long an organisation has to answer an offer before it passes to the next one. Our operational
# choice, scaled to how soon the blood is needed: an emergency cannot wait for a phone call, a routine
# order can wait for a shift's blood bank round.
OFFER_TIMEOUTS: dict[str, timedelta] = {
    Urgency.EMERGENCY.value: timedelta(minutes=10),
    Urgency.URGENT.value: timedelta(minutes=30),
    Urgency.ROUTINE.value: timedelta(hours=4),
}
OPEN_REQUEST_STATUSES = ("open", "allocated")
WITHDRAWN = "Withdrawn: no longer needed."
Direction = Literal["incoming", "outgoing"]


@dataclass(frozen=True)
class Candidate:
    """An organisation that could supply a request."""

    organisation_id: uuid.UUID
    name: str
    distance_km: float | None
    units_available: int


@dataclass
class OfferView:
    """An offer as the two sides see it: what is needed, never who needs it."""

    offer: RequestOffer
    request: BloodRequest
    supplier_name: str
    requester_name: str
    live: bool
    units_needed: int  # still needed from the network (shortfall minus units already on their way)

    @property
    def expires_at(self) -> datetime | None:
        """When a live offer passes to the next organisation if nobody answers."""
        return self.offer.created_at + offer_timeout(self.request.urgency) if self.live else None

    @property
    def state(self) -> str:
        """``offered`` (live), ``queued`` (waiting its turn) or the final status."""
        if self.offer.status == "pending":
            return "offered" if self.live else "queued"
        return self.offer.status


def offer_timeout(urgency: str) -> timedelta:
    """How long an organisation has to answer an offer of this urgency."""
    return OFFER_TIMEOUTS[urgency]


def rank_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """Nearest first (unknown distances last), then more compatible stock first, then by name."""
    return sorted(
        candidates,
        key=lambda c: (c.distance_km is None, c.distance_km or 0.0, -c.units_available, c.name),
    )


def find_candidates(session: Session, request: BloodRequest) -> list[Candidate]:
    """Other hospitals and blood banks holding available compatible units for ``request``, ranked."""
    groups = set(donor_groups_for(request))
    organisations = [o for o in network_organisations(session) if o.id != request.organisation_id]
    counts = available_counts(session, [o.id for o in organisations])
    held: dict[uuid.UUID, int] = {}
    for (org_id, group, component), count in counts.items():
        if component == request.component and group in groups and count > 0:
            held[org_id] = held.get(org_id, 0) + count
    origin = session.get(Organisation, request.organisation_id)
    return rank_candidates(
        [
            Candidate(o.id, o.name, distance_between(origin, o), held[o.id])
            for o in organisations
            if held.get(o.id, 0) > 0
        ]
    )


def units_needed(session: Session, request: BloodRequest) -> int:
    """Units the request still needs from the network: its shortfall less the units on their way."""
    if request.status not in OPEN_REQUEST_STATUSES:
        return 0
    return max(0, shortfall(session, request) - transfers.units_in_transit(session, request.id))


def local_compatible_stock(session: Session, request: BloodRequest) -> int:
    """Available compatible units the requesting organisation holds itself."""
    groups = set(donor_groups_for(request))
    counts = available_counts(session, [request.organisation_id])
    return sum(
        n for (org, group, kind), n in counts.items()
        if org == request.organisation_id and kind == request.component and group in groups
    )  # fmt: skip


def offer_to_network(session: Session, principal: Principal, request_id: uuid.UUID) -> list[OfferView]:
    """Offer one of the caller's organisation's requests to the network (ranks 1..n), and make the
    offer to rank 1. Refused (409) while an offer is live, when nothing is needed from the network, when
    the organisation's own stock can meet it, or when nobody else holds compatible units. Offering again
    later (after every organisation declined, or a transfer was cancelled) ranks the candidates afresh,
    leaving out those that already accepted."""
    own = staff_organisation(session, principal, "bloodbank.offer.create")
    request = session.get(BloodRequest, request_id)
    if request is None or request.organisation_id != own:
        audit.record_and_commit(
            session,
            principal,
            "bloodbank.offer.create",
            outcome="denied",
            resource_type="BloodRequest",
            resource_id=request_id,
        )
        raise NotFound("No such blood request.")
    if _live_offer(session, request.id) is not None:
        raise Conflict("This request is already on offer to the network: wait for the answer.")
    needed = units_needed(session, request)
    if needed <= 0:
        raise Conflict("This request needs no more units from the network.")
    local = local_compatible_stock(session, request)
    if local >= needed:
        raise Conflict(f"Your own stock holds {local} compatible units: allocate them instead.")
    existing = {o.organisation_id: o for o in session.scalars(_offers_of(request.id))}
    accepted = {org for org, o in existing.items() if o.status == "accepted"}
    ranked = [c for c in find_candidates(session, request) if c.organisation_id not in accepted]
    if not ranked:
        raise Conflict(f"No other organisation of the network holds compatible {request.component} units.")
    now = utcnow()
    top_rank = max((o.rank for o in existing.values()), default=0)
    for position, candidate in enumerate(ranked, start=top_rank + 1):
        offer = existing.get(candidate.organisation_id)
        if offer is None:
            offer = RequestOffer(request_id=request.id, organisation_id=candidate.organisation_id)
            session.add(offer)
        offer.rank, offer.distance_km = position, candidate.distance_km
        offer.units_available, offer.status, offer.created_at = candidate.units_available, "pending", now
        offer.responded_at, offer.responded_by, offer.note = None, None, ""
    try:
        session.flush()
    except IntegrityError as exc:  # someone offered the same request at the same moment
        raise Conflict("This request was just offered to the network by someone else.") from exc
    audit.record(
        session,
        principal,
        "bloodbank.offer.create",
        patient_id=request.patient_id,
        resource_type="BloodRequest",
        resource_id=request.id,
        detail={"candidates": len(ranked), "units_needed": needed},
    )
    _announce(session, request)
    return [v for v in offer_views(session, list(session.scalars(_offers_of(request.id))), own)
            if v.offer.status == "pending"]  # fmt: skip


def accept_offer(
    session: Session,
    principal: Principal,
    offer_id: uuid.UUID,
    *,
    unit_ids: list[uuid.UUID] | None = None,
    note: str = "",
) -> transfers.TransferView:
    """The supplier accepts a live offer: the chosen units (or first-expiry-first-out units of the best
    compatible groups, as many as still needed) are reserved for a new transfer to the requester."""
    own = staff_organisation(session, principal, "bloodbank.offer.accept")
    offer, request = _live_offer_for(session, principal, offer_id, own, "bloodbank.offer.accept")
    now = utcnow()
    _respond(session, offer, principal.user_id, "accepted", note, now)
    needed = units_needed(session, request)
    if needed <= 0:
        raise Conflict("The requesting organisation no longer needs these units.")
    names = organisation_names(session, {own, request.organisation_id})
    transfer = BloodTransfer(
        from_organisation_id=own,
        to_organisation_id=request.organisation_id,
        request_id=request.id,
        offer_id=offer.id,
        status="requested",
        note=clean_line(note)[:300],
    )
    session.add(transfer)
    session.flush()
    chosen = transfers.pick_units(
        session, own, donor_groups_for(request), request.component, needed, unit_ids
    )
    transfers.reserve_units(session, principal, transfer, chosen, names[request.organisation_id])
    audit.record(
        session,
        principal,
        "bloodbank.offer.accept",
        patient_id=request.patient_id,
        resource_type="RequestOffer",
        resource_id=offer.id,
        detail={"transfer_id": str(transfer.id), "units": len(chosen)},
    )
    notify_blood_bank(
        session,
        request.organisation_id,
        "blood_offer",
        f"{names[own]} accepted your request: {len(chosen)} units reserved for you",
        link=f"/bloodbank/transfers/{transfer.id}",
    )
    _advance(session, request, now)
    return transfers.get_transfer(session, principal, transfer.id)


def decline_offer(session: Session, principal: Principal, offer_id: uuid.UUID, *, note: str) -> OfferView:
    """The supplier declines a live offer, saying why; the next organisation is offered it."""
    own = staff_organisation(session, principal, "bloodbank.offer.decline")
    offer, request = _live_offer_for(session, principal, offer_id, own, "bloodbank.offer.decline")
    note = clean_line(note)[:300]
    if not note:
        raise ValidationFailed("Say why you decline (the requester sees it).", extra={"field": "note"})
    now = utcnow()
    _respond(session, offer, principal.user_id, "declined", note, now)
    audit.record(
        session,
        principal,
        "bloodbank.offer.decline",
        patient_id=request.patient_id,
        resource_type="RequestOffer",
        resource_id=offer.id,
        detail={"note": note},
    )
    supplier = organisation_names(session, {own})[own]
    notify_blood_bank(
        session,
        request.organisation_id,
        "blood_offer",
        f"{supplier} declined your request",
        note,
        link="/bloodbank/transfers",
    )
    _advance(session, request, now)
    return offer_views(session, [offer], own)[0]


def expire_offers(session: Session, now: datetime | None = None) -> int:
    """Expire every live offer left unanswered past its urgency's time limit and pass each request to its
    next candidate; withdraw at once the offers of requests that no longer need the network (cancelled,
    or met meanwhile). Returns how many offers it closed. Idempotent: a re-run finds nothing more to do."""
    now = now or utcnow()
    actor = system_principal("Blood bank network")
    closed = 0
    live = session.scalars(_live_offers_query().order_by(RequestOffer.created_at, RequestOffer.id)).all()
    for offer in live:
        request = session.get_one(BloodRequest, offer.request_id)
        if units_needed(session, request) <= 0:
            closed += _advance(session, request, now)
            continue
        limit = offer_timeout(request.urgency)
        if offer.created_at + limit > now:
            continue
        try:
            _respond(session, offer, None, "expired", f"No answer within {_duration(limit)}.", now)
        except Conflict:
            continue  # answered meanwhile
        audit.record(
            session,
            actor,
            "bloodbank.offer.expire",
            patient_id=request.patient_id,
            resource_type="RequestOffer",
            resource_id=offer.id,
        )
        closed += 1 + _advance(session, request, now)
    return closed


def list_offers(
    session: Session,
    principal: Principal,
    direction: Direction,
    *,
    status: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[OfferView]:
    """Offers made to the caller's organisation (``incoming``: live ones and those it answered; never the
    queued ones) or made by it (``outgoing``: every rank and its state), newest first."""
    own = staff_organisation(session, principal, "bloodbank.offer.list")
    if direction == "incoming":
        query = select(RequestOffer).where(RequestOffer.organisation_id == own, ~_queued())
    else:
        query = (
            select(RequestOffer)
            .join(BloodRequest, BloodRequest.id == RequestOffer.request_id)
            .where(BloodRequest.organisation_id == own)
        )
    page = newest_first(
        session, query, RequestOffer, status=status, statuses=OFFER_STATUSES, limit=limit, cursor=cursor
    )
    return Page(items=offer_views(session, page.items, own), next_cursor=page.next_cursor)


def offer_views(session: Session, offers: list[RequestOffer], viewer: uuid.UUID) -> list[OfferView]:
    """Views of offers, in the given order."""
    request_ids = {o.request_id for o in offers}
    requests = {
        r.id: r for r in session.scalars(select(BloodRequest).where(BloodRequest.id.in_(request_ids)))
    }
    live = {
        o.id for o in session.scalars(_live_offers_query().where(RequestOffer.request_id.in_(request_ids)))
    }
    names = organisation_names(
        session, {o.organisation_id for o in offers} | {r.organisation_id for r in requests.values()}
    )
    needs = {rid: units_needed(session, r) for rid, r in requests.items()}
    return [
        OfferView(
            offer=o,
            request=requests[o.request_id],
            supplier_name=names.get(o.organisation_id, ""),
            requester_name=names.get(requests[o.request_id].organisation_id, ""),
            live=o.id in live,
            units_needed=needs[o.request_id],
        )
        for o in offers
    ]


# --- internals --------------------------------------------------------------------------------------------


def _offers_of(request_id: uuid.UUID) -> Select[RequestOffer]:
    return select(RequestOffer).where(RequestOffer.request_id == request_id).order_by(RequestOffer.rank)


def _queued() -> ColumnElement[bool]:
    """A pending offer behind a lower-ranked pending offer of the same request (not yet made)."""
    earlier = aliased(RequestOffer)
    return and_(
        RequestOffer.status == "pending",
        exists().where(
            earlier.request_id == RequestOffer.request_id,
            earlier.status == "pending",
            earlier.rank < RequestOffer.rank,
        ),
    )


def _live_offers_query() -> Select[RequestOffer]:
    return select(RequestOffer).where(RequestOffer.status == "pending", ~_queued())


def _live_offer(session: Session, request_id: uuid.UUID) -> RequestOffer | None:
    return session.scalars(_live_offers_query().where(RequestOffer.request_id == request_id)).first()


def _live_offer_for(
    session: Session, principal: Principal, offer_id: uuid.UUID, own: uuid.UUID, action: str
) -> tuple[RequestOffer, BloodRequest]:
    """The offer made to the caller's organisation (404, audited, for anyone else's or a queued one) and
    its request; 409 when it was already answered or expired."""
    offer = session.get(RequestOffer, offer_id)
    visible = offer is not None and offer.organisation_id == own
    live = _live_offer(session, offer.request_id) if offer is not None and visible else None
    if offer is None or not visible or (offer.status == "pending" and live is not offer):
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="RequestOffer", resource_id=offer_id
        )
        raise NotFound("No such offer.")
    if offer.status != "pending":
        raise Conflict(f"This offer was already {offer.status}.")
    return offer, session.get_one(BloodRequest, offer.request_id)


def _respond(
    session: Session, offer: RequestOffer, actor_id: uuid.UUID | None, status: str, note: str, now: datetime
) -> None:
    """Close a pending offer with a compare-and-set UPDATE: when two people answer at once (or the expiry
    job runs meanwhile) exactly one wins; the other gets Conflict."""
    changed = session.execute(
        update(RequestOffer)
        .where(RequestOffer.id == offer.id, RequestOffer.status == "pending")
        .values(status=status, responded_at=now, responded_by=actor_id, note=clean_line(note)[:300])
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(offer)
        raise Conflict("Someone answered this offer first, or it expired: reload the page.")
    session.refresh(offer)


def _advance(session: Session, request: BloodRequest, now: datetime) -> int:
    """After an answer or an expiry: withdraw the pending offers if the network owes nothing more (returns
    how many), else make the offer to the next organisation in rank (its time limit starts now)."""
    session.flush()
    pending = list(session.scalars(_offers_of(request.id).where(RequestOffer.status == "pending")))
    if not pending:
        return 0
    if units_needed(session, request) <= 0:
        for offer in pending:
            offer.status, offer.responded_at, offer.note = "expired", now, WITHDRAWN
        session.flush()
        return len(pending)
    pending[0].created_at = now
    session.flush()
    _announce(session, request)
    return 0


def _announce(session: Session, request: BloodRequest) -> None:
    """Tell the live offer's organisation's blood bank staff (no patient identity in the message)."""
    offer = _live_offer(session, request.id)
    if offer is None:
        return
    requester = organisation_names(session, {request.organisation_id})[request.organisation_id]
    group = request.patient_group or "group unknown"
    what = f"{units_needed(session, request)} x {request.component.replace('_', ' ')} for {group}"
    notify_blood_bank(
        session,
        offer.organisation_id,
        "blood_offer",
        f"{request.urgency.capitalize()} request from {requester}: {what}",
        f"Answer within {_duration(offer_timeout(request.urgency))}.",
        link="/bloodbank/transfers",
    )


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
