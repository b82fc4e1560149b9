"""Transfers of units between two organisations of the network, tracked step by step.

Lifecycle: ``requested`` (the receiver asked for stock, or the supplier chose units to send, or the
supplier accepted an offer) -> ``dispatched`` (the supplier's chosen units stay ``reserved`` while in
transit; courier, who and when) -> ``received`` (every unit moves to the receiver as ``available``, or
``expired`` when it expired on the way; units sent for a request are then allocated to it); or
``cancelled`` before dispatch (reserved units go back on the supplier's shelf). Each step is audited and
the other side's blood bank staff are told. Units change status only through :mod:`caresync.bloodbank.units`.

A stock request names what it wants before any unit is chosen (``blood_group``, ``component`` and
``units_wanted`` of the transfer); its note is plain free text."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from caresync.bloodbank import rules, units
from caresync.bloodbank.access import staff_organisation
from caresync.bloodbank.models import BloodRequest, BloodTransfer, BloodUnit, TransferUnit, UnitEvent
from caresync.bloodbank.network.service import (
    newest_first,
    notify_blood_bank,
    organisation_names,
)
from caresync.bloodbank.requests.service import ACTIVE, allocate, shortfall
from caresync.bloodbank.rules import UnitStatus
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Organisation, User
from caresync.identity.rules import OrganisationKind

Direction = Literal["incoming", "outgoing"]
ACTIVE_STATUSES = ("requested", "dispatched")
MAX_UNITS = 50


@dataclass(frozen=True)
class Wanted:
    """What a stock request asks for before units are chosen."""

    units: int
    blood_group: str
    component: str


@dataclass
class TransferView:
    """A transfer as either side sees it: the two organisations' names, its units and history. The
    request it serves is named only to the receiver (whose request it is); never the patient."""

    transfer: BloodTransfer
    from_name: str
    to_name: str
    viewer_organisation_id: uuid.UUID
    units: list[BloodUnit] = field(default_factory=list)
    events: list[UnitEvent] = field(default_factory=list)
    staff_names: dict[uuid.UUID, str] = field(default_factory=dict)  # who asked, dispatched, received

    def by(self, user_id: uuid.UUID | None) -> str:
        """The name of the staff member who took a step ("" when unknown or done by the system)."""
        return self.staff_names.get(user_id, "") if user_id else ""

    @property
    def direction(self) -> Direction:
        """``incoming`` for the receiver, ``outgoing`` for the supplier."""
        return "incoming" if self.transfer.to_organisation_id == self.viewer_organisation_id else "outgoing"

    @property
    def wanted(self) -> Wanted | None:
        """What a stock request asked for (None for units sent or offered)."""
        transfer = self.transfer
        if transfer.units_wanted is None or transfer.blood_group is None or transfer.component is None:
            return None
        return Wanted(transfer.units_wanted, transfer.blood_group, transfer.component)

    @property
    def note(self) -> str:
        """The free-text note."""
        return self.transfer.note

    @property
    def request_id(self) -> uuid.UUID | None:
        """The receiver's request these units are for (hidden from the supplier)."""
        return self.transfer.request_id if self.direction == "incoming" else None

    @property
    def contents(self) -> list[tuple[str, str, int]]:
        """(group, component, units): what travels, or what was asked for while no unit is chosen."""
        if not self.units and self.wanted is not None:
            return [(self.wanted.blood_group, self.wanted.component, self.wanted.units)]
        counts = Counter((u.blood_group, u.component) for u in self.units)
        return [(group, kind, n) for (group, kind), n in sorted(counts.items())]

    @property
    def unit_count(self) -> int:
        """Units chosen (or, for a stock request, asked for)."""
        return sum(n for _g, _c, n in self.contents)

    def can(self, action: str) -> bool:
        """Whether the viewer's side may take ``action`` (dispatch, receive, cancel) now."""
        status, outgoing = self.transfer.status, self.direction == "outgoing"
        return {
            "dispatch": status == "requested" and outgoing,
            "receive": status == "dispatched" and not outgoing,
            "cancel": status == "requested",
        }.get(action, False)


# --- choosing units ---------------------------------------------------------------------------------------


def pick_units(
    session: Session,
    organisation_id: uuid.UUID,
    donor_groups: tuple[str, ...],
    component: str,
    count: int,
    unit_ids: list[uuid.UUID] | None = None,
    *,
    now: datetime | None = None,
) -> list[BloodUnit]:
    """Units of ``organisation_id`` to send: the chosen ``unit_ids`` (each checked: held here, available,
    unexpired, the right component and a compatible group; at most ``count``), or else up to ``count``
    available units, best group first (``donor_groups`` order) then first-expiry-first-out. Raises
    Conflict when none qualifies."""
    now = now or utcnow()
    if unit_ids:
        return _chosen_units(session, organisation_id, donor_groups, component, count, unit_ids, now)
    preference = case({g: i for i, g in enumerate(donor_groups)}, value=BloodUnit.blood_group)
    query = (
        select(BloodUnit)
        .where(
            BloodUnit.organisation_id == organisation_id,
            BloodUnit.status == UnitStatus.AVAILABLE.value,
            BloodUnit.component == component,
            BloodUnit.blood_group.in_(donor_groups),
            BloodUnit.expires_at > now,
        )
        .order_by(preference, BloodUnit.expires_at, BloodUnit.id)
        .limit(count)
    )
    found = list(session.scalars(query))
    if not found:
        groups = ", ".join(donor_groups) or "no group"
        raise Conflict(f"No available, unexpired {component} units of {groups} to send.")
    return found


def _chosen_units(
    session: Session,
    organisation_id: uuid.UUID,
    donor_groups: tuple[str, ...],
    component: str,
    count: int,
    unit_ids: list[uuid.UUID],
    now: datetime,
) -> list[BloodUnit]:
    wanted_ids = list(dict.fromkeys(unit_ids))
    if len(wanted_ids) > count:
        raise ValidationFailed(f"Choose at most {count} units.", extra={"field": "unit_ids"})
    rows = session.scalars(
        select(BloodUnit).where(BloodUnit.id.in_(wanted_ids), BloodUnit.organisation_id == organisation_id)
    )
    found = {u.id: u for u in rows}
    for unit_id in wanted_ids:
        unit = found.get(unit_id)
        if unit is None:
            raise ValidationFailed(f"Unit {unit_id} is not held here.", extra={"field": "unit_ids"})
        problem = (
            f"is {unit.status}" if unit.status != UnitStatus.AVAILABLE.value
            else "has expired" if unit.expires_at <= now
            else f"is {unit.component}, not {component}" if unit.component != component
            else f"is group {unit.blood_group}, not compatible" if unit.blood_group not in donor_groups
            else ""
        )  # fmt: skip
        if problem:
            raise ValidationFailed(f"Unit {unit.din} {problem}.", extra={"field": "unit_ids"})
    return [found[i] for i in wanted_ids]


def reserve_units(
    session: Session, principal: Principal, transfer: BloodTransfer, chosen: list[BloodUnit], to_name: str
) -> None:
    """Reserve the chosen units for the transfer (Conflict when someone took one first) and list them."""
    for unit in chosen:
        units.move(
            session,
            principal,
            unit,
            UnitStatus.RESERVED,
            transfer_id=transfer.id,
            note=f"Reserved for transfer to {to_name}",
        )
        session.add(TransferUnit(transfer_id=transfer.id, unit_id=unit.id))
    session.flush()


# --- use cases --------------------------------------------------------------------------------------------


def create_transfer(
    session: Session,
    principal: Principal,
    *,
    from_organisation_id: uuid.UUID,
    to_organisation_id: uuid.UUID,
    blood_group: str,
    component: str,
    units_wanted: int,
    unit_ids: list[uuid.UUID] | None = None,
    note: str = "",
) -> TransferView:
    """Rebalance stock between two organisations. When the caller's organisation receives, it asks the
    supplier for ``units_wanted`` units of a group and component (the supplier chooses them when
    dispatching); when it supplies, it sends units now: the chosen ``unit_ids`` or first-expiry-first-out
    units of that exact group, which are reserved at once."""
    own = staff_organisation(session, principal, "bloodbank.transfer.create")
    if own not in (from_organisation_id, to_organisation_id):
        raise ValidationFailed(
            "Your organisation must be the supplier or the receiver.", extra={"field": "from_organisation_id"}
        )
    if from_organisation_id == to_organisation_id:
        raise ValidationFailed("Choose another organisation.", extra={"field": "to_organisation_id"})
    if blood_group not in rules.BLOOD_GROUPS:
        raise ValidationFailed(f"Unknown blood group {blood_group!r}.", extra={"field": "blood_group"})
    if component not in rules.COMPONENTS:
        raise ValidationFailed(f"Unknown component {component!r}.", extra={"field": "component"})
    if not 1 <= units_wanted <= MAX_UNITS:
        raise ValidationFailed(f"Ask for 1 to {MAX_UNITS} units.", extra={"field": "units"})
    other_id = to_organisation_id if own == from_organisation_id else from_organisation_id
    other = session.get(Organisation, other_id)
    network = (OrganisationKind.HOSPITAL.value, OrganisationKind.BLOOD_BANK.value)
    if other is None or other.kind not in network:
        raise ValidationFailed("No such hospital or blood bank.", extra={"field": "organisation"})
    sending = own == from_organisation_id
    if unit_ids and not sending:
        raise ValidationFailed("Only the supplier chooses the units.", extra={"field": "unit_ids"})
    transfer = BloodTransfer(
        from_organisation_id=from_organisation_id,
        to_organisation_id=to_organisation_id,
        status="requested",
        requested_by=principal.user_id,
        note=clean_line(note)[:300],
    )
    if not sending:  # the supplier chooses the units when dispatching
        transfer.blood_group, transfer.component, transfer.units_wanted = blood_group, component, units_wanted
    session.add(transfer)
    session.flush()
    if sending:
        chosen = pick_units(session, own, (blood_group,), component, units_wanted, unit_ids)
        reserve_units(session, principal, transfer, chosen, other.name)
    audit.record(
        session,
        principal,
        "bloodbank.transfer.create",
        resource_type="BloodTransfer",
        resource_id=transfer.id,
        detail={"sending": sending, "group": blood_group, "component": component, "units": units_wanted},
    )
    view = _view(session, transfer, own)
    what = f"{units_wanted} x {blood_group} {component.replace('_', ' ')}"
    title = f"{view.from_name} is sending you {what}" if sending else f"{view.to_name} asks you for {what}"
    notify_blood_bank(session, other_id, "blood_transfer", title, link=f"/bloodbank/transfers/{transfer.id}")
    return view


def dispatch_transfer(
    session: Session,
    principal: Principal,
    transfer_id: uuid.UUID,
    *,
    courier: str,
    unit_ids: list[uuid.UUID] | None = None,
) -> TransferView:
    """The supplier hands the units to a courier. For a stock request without units yet, the ``unit_ids``
    chosen now (or first-expiry-first-out units of the group asked for) are reserved first."""
    own = staff_organisation(session, principal, "bloodbank.transfer.dispatch")
    transfer = _transfer_for(session, principal, transfer_id, own, "bloodbank.transfer.dispatch")
    if transfer.from_organisation_id != own:
        raise Conflict("Only the supplier dispatches a transfer.")
    _claim(session, transfer, "requested", "dispatched")
    courier = clean_line(courier)[:120]
    if not courier:
        raise ValidationFailed("Name the courier taking the units.", extra={"field": "courier"})
    view = _view(session, transfer, own)
    if not view.units:
        wish = view.wanted
        if wish is None:
            raise Conflict("This transfer has no units to dispatch.")
        chosen = pick_units(session, own, (wish.blood_group,), wish.component, wish.units, unit_ids)
        reserve_units(session, principal, transfer, chosen, view.to_name)
    elif unit_ids:
        raise ValidationFailed("The units of this transfer are already chosen.", extra={"field": "unit_ids"})
    transfer.courier = courier
    transfer.dispatched_at = utcnow()
    transfer.dispatched_by = principal.user_id
    session.flush()
    _audit_step(session, principal, transfer, "bloodbank.transfer.dispatch", {"courier": transfer.courier})
    view = _view(session, transfer, own)
    notify_blood_bank(
        session,
        transfer.to_organisation_id,
        "blood_transfer",
        f"{view.unit_count} units dispatched to you by {view.from_name} ({transfer.courier})",
        link=f"/bloodbank/transfers/{transfer.id}",
    )
    return view


def receive_transfer(session: Session, principal: Principal, transfer_id: uuid.UUID) -> TransferView:
    """The receiver takes the units in: each becomes the receiver's, ``available`` (``expired`` if it
    expired on the way). Units sent for one of the receiver's requests are then allocated to it, as many
    as it still needs, through the requests service."""
    own = staff_organisation(session, principal, "bloodbank.transfer.receive")
    transfer = _transfer_for(session, principal, transfer_id, own, "bloodbank.transfer.receive")
    if transfer.to_organisation_id != own:
        raise Conflict("Only the receiving organisation confirms receipt.")
    _claim(session, transfer, "dispatched", "received")
    now = utcnow()
    view = _view(session, transfer, own)
    usable: list[uuid.UUID] = []
    for unit in view.units:
        target = UnitStatus.AVAILABLE if unit.expires_at > now else UnitStatus.EXPIRED
        units.move(
            session,
            principal,
            unit,
            target,
            organisation_id=own,
            transfer_id=transfer.id,
            note=f"Received from {view.from_name}",
            at=now,
        )
        if target is UnitStatus.AVAILABLE:
            usable.append(unit.id)
    transfer.received_at = now
    transfer.received_by = principal.user_id
    session.flush()
    allocated = _allocate_to_request(session, principal, transfer, usable)
    _audit_step(
        session,
        principal,
        transfer,
        "bloodbank.transfer.receive",
        {"units": len(view.units), "usable": len(usable), "allocated": allocated},
    )
    notify_blood_bank(
        session,
        transfer.from_organisation_id,
        "blood_transfer",
        f"{view.to_name} received the {len(view.units)} units you sent",
        link=f"/bloodbank/transfers/{transfer.id}",
    )
    return _view(session, transfer, own)


def cancel_transfer(
    session: Session, principal: Principal, transfer_id: uuid.UUID, *, reason: str = ""
) -> TransferView:
    """Either side cancels a transfer before it is dispatched; its reserved units go back on the
    supplier's shelf as ``available``."""
    own = staff_organisation(session, principal, "bloodbank.transfer.cancel")
    transfer = _transfer_for(session, principal, transfer_id, own, "bloodbank.transfer.cancel")
    _claim(session, transfer, "requested", "cancelled")
    view = _view(session, transfer, own)
    for unit in view.units:
        if unit.status == UnitStatus.RESERVED.value:
            units.move(
                session,
                principal,
                unit,
                UnitStatus.AVAILABLE,
                transfer_id=transfer.id,
                note="Transfer cancelled",
            )
    reason = clean_line(reason)
    if reason:
        transfer.note = f"{transfer.note} (cancelled: {reason})".strip()[:300]
    session.flush()
    _audit_step(session, principal, transfer, "bloodbank.transfer.cancel", {"reason": reason})
    other = (
        transfer.to_organisation_id if own == transfer.from_organisation_id else transfer.from_organisation_id
    )
    own_name = view.from_name if own == transfer.from_organisation_id else view.to_name
    notify_blood_bank(
        session,
        other,
        "blood_transfer",
        f"{own_name} cancelled a transfer",
        reason,
        link=f"/bloodbank/transfers/{transfer.id}",
    )
    return _view(session, transfer, own)


def get_transfer(session: Session, principal: Principal, transfer_id: uuid.UUID) -> TransferView:
    """One transfer of the caller's organisation (either side) with its units and their history."""
    own = staff_organisation(session, principal, "bloodbank.transfer.read")
    transfer = _transfer_for(session, principal, transfer_id, own, "bloodbank.transfer.read")
    view = _view(session, transfer, own)
    view.events = list(
        session.scalars(
            select(UnitEvent).where(UnitEvent.transfer_id == transfer.id).order_by(UnitEvent.at, UnitEvent.id)
        )
    )
    return view


def list_transfers(
    session: Session,
    principal: Principal,
    *,
    direction: Direction | None = None,
    status: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[TransferView]:
    """The caller's organisation's transfers (in, out or both; optionally one status), newest first."""
    own = staff_organisation(session, principal, "bloodbank.transfer.list")
    sides = {
        "incoming": BloodTransfer.to_organisation_id == own,
        "outgoing": BloodTransfer.from_organisation_id == own,
        None: or_(BloodTransfer.to_organisation_id == own, BloodTransfer.from_organisation_id == own),
    }
    query = select(BloodTransfer).where(sides[direction])
    page = newest_first(
        session,
        query,
        BloodTransfer,
        status=status,
        statuses=rules.TRANSFER_STATUSES,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=views(session, page.items, own), next_cursor=page.next_cursor)


def units_in_transit(session: Session, request_id: uuid.UUID) -> int:
    """Units on their way (a transfer requested or dispatched) for a request."""
    query = (
        select(TransferUnit.unit_id)
        .join(BloodTransfer, BloodTransfer.id == TransferUnit.transfer_id)
        .where(BloodTransfer.request_id == request_id, BloodTransfer.status.in_(ACTIVE_STATUSES))
    )
    return len(session.scalars(query).all())


def views(session: Session, transfers: list[BloodTransfer], viewer: uuid.UUID) -> list[TransferView]:
    """Views of several transfers (four queries in all)."""
    ids = [t.id for t in transfers]
    names = organisation_names(
        session, {o for t in transfers for o in (t.from_organisation_id, t.to_organisation_id)}
    )
    actors = {u for t in transfers for u in (t.requested_by, t.dispatched_by, t.received_by) if u}
    staff_names = (
        {
            row.id: row.full_name
            for row in session.execute(select(User.id, User.full_name).where(User.id.in_(actors)))
        }
        if actors
        else {}
    )
    carried: dict[uuid.UUID, list[BloodUnit]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(TransferUnit.transfer_id, BloodUnit)
            .join(BloodUnit, BloodUnit.id == TransferUnit.unit_id)
            .where(TransferUnit.transfer_id.in_(ids))
            .order_by(BloodUnit.blood_group, BloodUnit.expires_at, BloodUnit.id)
        )
        for transfer_id, unit in rows:
            carried[transfer_id].append(unit)
    return [
        TransferView(
            transfer=t,
            from_name=names.get(t.from_organisation_id, ""),
            to_name=names.get(t.to_organisation_id, ""),
            viewer_organisation_id=viewer,
            units=carried[t.id],
            staff_names=staff_names,
        )
        for t in transfers
    ]


def _view(session: Session, transfer: BloodTransfer, viewer: uuid.UUID) -> TransferView:
    return views(session, [transfer], viewer)[0]


def _transfer_for(
    session: Session, principal: Principal, transfer_id: uuid.UUID, own: uuid.UUID, action: str
) -> BloodTransfer:
    """The transfer if the caller's organisation is one of its two sides; else 404 (audited)."""
    transfer = session.get(BloodTransfer, transfer_id)
    if transfer is None or own not in (transfer.from_organisation_id, transfer.to_organisation_id):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            resource_type="BloodTransfer",
            resource_id=transfer_id,
        )
        raise NotFound("No such transfer.")
    return transfer


def _claim(session: Session, transfer: BloodTransfer, expected: str, target: str) -> None:
    """Move the transfer from ``expected`` to ``target`` with a compare-and-set UPDATE, so that a step is
    never taken twice when two people click at once (the second gets Conflict)."""
    if transfer.status != expected:
        raise Conflict(f"This transfer is {transfer.status}: it cannot become {target}.")
    changed = session.execute(
        update(BloodTransfer)
        .where(BloodTransfer.id == transfer.id, BloodTransfer.status == expected)
        .values(status=target, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(transfer)
        raise Conflict("Someone else changed this transfer first: reload it.")
    session.refresh(transfer)


def _request_patient(session: Session, transfer: BloodTransfer) -> uuid.UUID | None:
    if transfer.request_id is None:
        return None
    query = select(BloodRequest.patient_id).where(BloodRequest.id == transfer.request_id)
    return session.execute(query).scalar_one_or_none()


def _audit_step(
    session: Session, principal: Principal, transfer: BloodTransfer, action: str, detail: dict[str, object]
) -> None:
    audit.record(
        session,
        principal,
        action,
        patient_id=_request_patient(session, transfer),
        resource_type="BloodTransfer",
        resource_id=transfer.id,
        detail=detail,
    )


def _allocate_to_request(
    session: Session, principal: Principal, transfer: BloodTransfer, unit_ids: list[uuid.UUID]
) -> int:
    """Allocate received units to the request they were sent for, as many as it still needs."""
    if transfer.request_id is None or not unit_ids:
        return 0
    request = session.get(BloodRequest, transfer.request_id)
    if request is None or request.status not in ACTIVE or request.patient_group is None:
        return 0  # cancelled or fulfilled meanwhile, or still to be typed: the units stay in stock
    needed = shortfall(session, request)
    if needed <= 0:
        return 0
    return len(allocate(session, principal, request.id, unit_ids[:needed]))
