"""Blood requests: clinicians order blood for a patient in their care and track it; blood bank staff match
compatible units, allocate them atomically, release group O in an emergency, crossmatch, issue and take
units back; clinicians confirm each transfusion.

Who sees what: a request belongs to the ordering clinician's organisation. Its blood bank staff see the
organisation's whole queue; its doctors and nurses see the requests of patients they care for (or broke
the glass for). Anyone else is told the request does not exist (404, audited). Every read or change is
audited with the patient's id.

A request's status follows its units: ``open`` until enough units are held, ``allocated`` while they
wait in the blood bank, ``issued`` once all have left for the ward, ``completed`` when every issued unit
was transfused or returned; ``cancelled`` (with a reason) releases the units still held. Unit status
changes go through :func:`caresync.bloodbank.units.move` only (compare-and-set), so two requests can never
hold the same unit; each use case runs in the caller's single transaction, so a lost race leaves nothing
half-done.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from caresync.bloodbank import rules, units
from caresync.bloodbank.access import staff_organisation
from caresync.bloodbank.models import BloodRequest, BloodUnit, UnitEvent
from caresync.bloodbank.network.service import notify_blood_bank
from caresync.bloodbank.policy.service import get_policy
from caresync.bloodbank.requests import matching
from caresync.bloodbank.rules import Component, UnitStatus, Urgency
from caresync.core import audit, notify
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import MAX_LIMIT, Page
from caresync.core.rbac import (
    Access,
    Perm,
    authorize_patient,
    break_glass_patient_ids,
    cared_for_patient_ids,
    has_perm,
    patient_access,
    require,
    require_any,
)
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Patient
from caresync.identity.rules import normalise_health_id

RESOURCE = "BloodRequest"
ACTIVE = ("open", "allocated")  # still being filled: units can be allocated, the request cancelled
OPEN_QUEUE = ("open", "allocated", "issued")  # what the blood bank still has to act on
ON_SHELF = (UnitStatus.RESERVED.value, UnitStatus.CROSSMATCHED.value)
HELD = (*ON_SHELF, UnitStatus.ISSUED.value, UnitStatus.TRANSFUSED.value)
URGENCY_RANK = {Urgency.EMERGENCY.value: 0, Urgency.URGENT.value: 1, Urgency.ROUTINE.value: 2}
ORDERING_ACCESS = frozenset({Access.CARE_TEAM, Access.BREAK_GLASS})
NEEDED_BY_GRACE = timedelta(minutes=5)  # "now" typed on a form is a few seconds old when it arrives
NEEDED_BY_HORIZON = timedelta(days=90)
# Components that must be crossmatched against the patient's sample before issue (they carry red cells):
# AABB Standards 5.16 (serologic crossmatch or computer crossmatch before issuing red cells / whole blood).
CROSSMATCH_REQUIRED = frozenset({Component.RED_CELLS.value, Component.WHOLE_BLOOD.value})


@dataclass
class RequestView:
    """A request with what it holds now and every unit step taken for it."""

    request: BloodRequest
    units: list[BloodUnit]
    history: list[UnitEvent]
    shortfall: int
    dins: dict[uuid.UUID, str]  # the donation number of every unit in the history

    @property
    def ready(self) -> list[BloodUnit]:
        """The units waiting in the blood bank that may be issued now."""
        return [u for u in self.units if ready_to_issue(self.request, u)]


@dataclass(frozen=True)
class Filters:
    """What a request list is narrowed to (``status`` may also be ``"queue"``: open, allocated, issued)."""

    status: str | None = None
    urgency: str | None = None


# --- looking requests up ----------------------------------------------------------------------------------


def _audit(
    session: Session,
    principal: Principal,
    action: str,
    request: BloodRequest,
    detail: dict[str, Any] | None = None,
    *,
    flagged: bool = False,
) -> None:
    audit.record(
        session,
        principal,
        action,
        patient_id=request.patient_id,
        resource_type=RESOURCE,
        resource_id=request.id,
        detail=detail,
        flagged=flagged,
    )


def _hidden(session: Session, principal: Principal, action: str, request_id: uuid.UUID) -> NotFound:
    """Audit a refused look-up (missing, or not the caller's to see) and return the 404 to raise."""
    audit.record_and_commit(
        session, principal, action, outcome="denied", resource_type=RESOURCE, resource_id=request_id
    )
    return NotFound("No such blood request.")


def _fetch(session: Session, request_id: uuid.UUID, *, lock: bool) -> BloodRequest | None:
    query = select(BloodRequest).where(BloodRequest.id == request_id)
    if lock:  # serialise changes to one request (PostgreSQL row lock; SQLite transactions are exclusive)
        query = query.with_for_update(of=BloodRequest).execution_options(populate_existing=True)
    return session.execute(query).unique().scalar_one_or_none()


def _for_staff(
    session: Session, principal: Principal, request_id: uuid.UUID, action: str, *, lock: bool = True
) -> BloodRequest:
    """A request of the staff member's organisation (locked for a change unless ``lock`` is false): 403
    for other roles, 404 for another organisation's (both audited)."""
    organisation_id = staff_organisation(session, principal, action)
    request = _fetch(session, request_id, lock=lock)
    if request is None or request.organisation_id != organisation_id:
        raise _hidden(session, principal, action, request_id)
    return request


def _for_clinician(
    session: Session, principal: Principal, request_id: uuid.UUID, action: str, *, lock: bool = False
) -> tuple[BloodRequest, Access]:
    """A request of the clinician's organisation for a patient they care for or broke the glass for."""
    require(session, principal, Perm.BLOOD_ORDER, action)
    request = _fetch(session, request_id, lock=lock)
    access = None
    if request is not None and request.organisation_id == principal.organisation_id:
        access = patient_access(session, principal, request.patient_id)
    if request is None or access not in ORDERING_ACCESS:
        raise _hidden(session, principal, action, request_id)
    assert access is not None
    return request, access


def _visible(
    session: Session, principal: Principal, request_id: uuid.UUID, action: str, *, lock: bool = False
) -> tuple[BloodRequest, bool]:
    """A request the caller may see (staff of its organisation, or its patient's clinicians), and whether
    the access is by break-glass."""
    require_any(session, principal, (Perm.BLOOD_STOCK, Perm.BLOOD_ORDER), action)
    if has_perm(principal, Perm.BLOOD_STOCK):
        return _for_staff(session, principal, request_id, action, lock=lock), False
    request, access = _for_clinician(session, principal, request_id, action, lock=lock)
    return request, access is Access.BREAK_GLASS


def held_units(session: Session, request: BloodRequest) -> list[BloodUnit]:
    """The units held for ``request`` now (reserved, crossmatched, issued or transfused), by DIN."""
    query = select(BloodUnit).where(BloodUnit.request_id == request.id, BloodUnit.status.in_(HELD))
    return list(session.scalars(query.order_by(BloodUnit.din, BloodUnit.product_code)))


def shortfall(session: Session, request: BloodRequest) -> int:
    """How many more units ``request`` needs (0 once enough are held, issued or transfused)."""
    query = select(func.count()).where(BloodUnit.request_id == request.id, BloodUnit.status.in_(HELD))
    return max(0, request.units_requested - int(session.execute(query).scalar_one()))


def get_request(session: Session, principal: Principal, request_id: uuid.UUID) -> RequestView:
    """One request with its units and history (audited; break-glass reads flagged)."""
    request, glass = _visible(session, principal, request_id, "bloodbank.request.read")
    history = list(
        session.scalars(
            select(UnitEvent).where(UnitEvent.request_id == request.id).order_by(UnitEvent.at, UnitEvent.id)
        )
    )
    seen = {e.unit_id for e in history}
    rows = session.execute(select(BloodUnit.id, BloodUnit.din).where(BloodUnit.id.in_(seen))).all()
    dins = dict(rows)  # a list of (id, din) rows
    _audit(session, principal, "bloodbank.request.read", request, flagged=glass)
    return RequestView(request, held_units(session, request), history, shortfall(session, request), dins)


# --- listing ------------------------------------------------------------------------------------------------


def _rank() -> Any:
    return case(
        *((BloodRequest.urgency == name, rank) for name, rank in URGENCY_RANK.items()),
        else_=len(URGENCY_RANK),
    )


def _cursor(request: BloodRequest) -> str:
    values = [URGENCY_RANK[request.urgency], request.needed_by.isoformat(), str(request.id)]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _after(cursor: str) -> Any:
    """The keyset condition for the rows after ``cursor`` in (urgency, needed by, id) order."""
    try:
        rank, needed_by, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        rank, needed_by, last_id = int(rank), datetime.fromisoformat(needed_by), uuid.UUID(last_id)
        if needed_by.tzinfo is None:
            raise ValueError("a cursor's time carries its zone")
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("The cursor is not valid; start again without it.") from exc
    same_rank = _rank() == rank
    return or_(
        _rank() > rank,
        and_(same_rank, BloodRequest.needed_by > needed_by),
        and_(same_rank, BloodRequest.needed_by == needed_by, BloodRequest.id > last_id),
    )


def _visible_requests(session: Session, principal: Principal, action: str) -> Select[Any]:
    require_any(session, principal, (Perm.BLOOD_STOCK, Perm.BLOOD_ORDER), action)
    if principal.organisation_id is None:
        audit.record_and_commit(session, principal, action, outcome="denied")
        raise Forbidden("Only staff of an organisation can see its blood requests.")
    query = select(BloodRequest).where(BloodRequest.organisation_id == principal.organisation_id)
    if has_perm(principal, Perm.BLOOD_STOCK):
        return query
    return query.where(
        or_(
            BloodRequest.patient_id.in_(cared_for_patient_ids(principal)),
            BloodRequest.patient_id.in_(break_glass_patient_ids(principal)),
        )
    )


def list_requests(
    session: Session, principal: Principal, filters: Filters, *, limit: int = 50, cursor: str | None = None
) -> Page[BloodRequest]:
    """The organisation's requests the caller may see, emergency first, then by the time they are
    needed by. Each patient on the page is audited."""
    query = _visible_requests(session, principal, "bloodbank.request.list")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}.", extra={"field": "limit"})
    if filters.status == "queue":
        query = query.where(BloodRequest.status.in_(OPEN_QUEUE))
    elif filters.status is not None:
        query = query.where(BloodRequest.status == filters.status)
    if filters.urgency is not None:
        query = query.where(BloodRequest.urgency == filters.urgency)
    if cursor:
        query = query.where(_after(cursor))
    query = query.order_by(_rank(), BloodRequest.needed_by, BloodRequest.id).limit(limit + 1)
    rows = list(session.execute(query).unique().scalars())
    items = rows[:limit]
    for patient_id in sorted({r.patient_id for r in items}, key=str):
        ids = [str(r.id) for r in items if r.patient_id == patient_id]
        audit.record(
            session,
            principal,
            "bloodbank.request.list",
            patient_id=patient_id,
            resource_type=RESOURCE,
            detail={"requests": ids},
        )
    return Page(items=items, next_cursor=_cursor(items[-1]) if len(rows) > limit else None)


def held_counts(session: Session, request_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many units each request holds now (for lists)."""
    ids = list(request_ids)
    if not ids:
        return {}
    query = (
        select(BloodUnit.request_id, func.count())
        .where(BloodUnit.request_id.in_(ids), BloodUnit.status.in_(HELD))
        .group_by(BloodUnit.request_id)
    )
    return {rid: int(count) for rid, count in session.execute(query) if rid is not None}


def orderable_patients(session: Session, principal: Principal, q: str = "", limit: int = 20) -> list[Patient]:
    """The patients the clinician may order blood for (care team or break-glass), by name or Health ID."""
    require(session, principal, Perm.BLOOD_ORDER, "bloodbank.request.patients")
    query = select(Patient).where(
        or_(
            Patient.id.in_(cared_for_patient_ids(principal)),
            Patient.id.in_(break_glass_patient_ids(principal)),
        )
    )
    term = clean_line(q)
    if term:
        health_id = normalise_health_id(term)
        like = f"%{term.lower()}%"
        query = query.where(
            Patient.health_id == health_id
            if health_id
            else or_(
                func.lower(Patient.family_name).like(like),
                func.lower(Patient.given_name).like(like),
                func.lower(Patient.given_name + " " + Patient.family_name).like(like),
            )
        )
    rows = list(
        session.scalars(query.order_by(Patient.family_name, Patient.given_name, Patient.id).limit(limit))
    )
    audit.record(
        session,
        principal,
        "bloodbank.request.patients",
        resource_type="Patient",
        detail={"count": len(rows), "query": bool(term)},
    )
    return rows


# --- ordering and cancelling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """What a clinician orders (``patient_group`` is only needed when the record has none)."""

    patient_id: uuid.UUID
    component: str
    units: int
    urgency: str
    needed_by: datetime
    indication: str = ""
    patient_group: str | None = None


def _patient_group(patient: Patient, given: str | None) -> str | None:
    if patient.blood_group is not None and given is not None and given != patient.blood_group:
        raise ValidationFailed(
            f"The patient's record says {patient.blood_group}; correct the record before ordering "
            f"{given} blood.",
            extra={"field": "patient_group"},
        )
    return patient.blood_group or given


def create_request(session: Session, principal: Principal, order: Order) -> BloodRequest:
    """Order blood for a patient the clinician cares for (or broke the glass for; consent to read the
    record is not enough). The blood bank staff of the clinician's organisation are told at once."""
    action = "bloodbank.request.create"
    require(session, principal, Perm.BLOOD_ORDER, action)
    access = authorize_patient(session, principal, order.patient_id, Perm.BLOOD_ORDER, action)
    patient = session.get(Patient, order.patient_id)
    if patient is None or principal.organisation_id is None:
        raise NotFound("No such patient.")
    now = utcnow()
    if order.needed_by.tzinfo is None:
        raise ValidationFailed("Give the time with its time zone.", extra={"field": "needed_by"})
    if not now - NEEDED_BY_GRACE <= order.needed_by <= now + NEEDED_BY_HORIZON:
        raise ValidationFailed(
            "The time needed by must be from now to 90 days ahead.", extra={"field": "needed_by"}
        )
    request = BloodRequest(
        organisation_id=principal.organisation_id,
        patient_id=patient.id,
        requested_by=principal.user_id,
        component=Component(order.component).value,
        patient_group=_patient_group(patient, order.patient_group),
        units_requested=order.units,
        urgency=Urgency(order.urgency).value,
        needed_by=max(order.needed_by, now),
        indication=clean_line(order.indication)[:300],
    )
    session.add(request)
    session.flush()
    session.refresh(request)
    detail = {"component": request.component, "units": request.units_requested, "urgency": request.urgency}
    _audit(
        session,
        principal,
        action,
        request,
        {**detail, "access": access.value},
        flagged=access is Access.BREAK_GLASS,
    )
    what = request.component.replace("_", " ")
    title = f"New {request.urgency} blood request: {request.units_requested} unit(s) of {what}"
    notify_blood_bank(
        session, request.organisation_id, "blood_request", title, link=f"/bloodbank/requests/{request.id}"
    )
    return request


def _release(session: Session, principal: Principal, unit: BloodUnit, note: str) -> None:
    units.move(session, principal, unit, UnitStatus.AVAILABLE, note=note)


def cancel(session: Session, principal: Principal, request_id: uuid.UUID, reason: str) -> BloodRequest:
    """Cancel an open or allocated request (its clinicians or the blood bank), releasing the units it
    holds back to stock. A request with units already issued cannot be cancelled: return them first."""
    action = "bloodbank.request.cancel"
    request, glass = _visible(session, principal, request_id, action, lock=True)
    reason = clean_line(reason)[:300]
    if not reason:
        raise ValidationFailed("Say why the request is cancelled.", extra={"field": "reason"})
    if request.status not in ACTIVE:
        raise Conflict(f"The request is {request.status}: only open or allocated requests can be cancelled.")
    held = held_units(session, request)
    if any(u.status not in ON_SHELF for u in held):
        raise Conflict("Units of this request were already issued: return them before cancelling.")
    for unit in held:
        _release(session, principal, unit, f"Request cancelled: {reason}"[:300])
    request.status, request.status_reason = "cancelled", reason[:300]
    session.flush()
    _audit(session, principal, action, request, {"reason": reason, "released": len(held)}, flagged=glass)
    if principal.user_id != request.requested_by:
        notify.notify(
            session,
            request.requested_by,
            "blood_request",
            "A blood request was cancelled",
            link=f"/blood-requests/{request.id}",
        )
    return request


# --- matching and allocation -------------------------------------------------------------------------------


def _available(
    session: Session, organisation_id: uuid.UUID, component: str, groups: Sequence[str], now: datetime
) -> list[BloodUnit]:
    query = select(BloodUnit).where(
        BloodUnit.organisation_id == organisation_id,
        BloodUnit.status == UnitStatus.AVAILABLE.value,
        BloodUnit.component == component,
        BloodUnit.blood_group.in_(groups),
        BloodUnit.expires_at > now,
    )
    return list(session.scalars(query))


def proposals(
    session: Session, principal: Principal, request_id: uuid.UUID, *, limit: int | None = None
) -> list[BloodUnit]:
    """The organisation's available units to offer the request, best first (see :mod:`.matching`): as
    many as it still needs unless ``limit`` asks for more (alternatives to choose from)."""
    action = "bloodbank.request.proposals"
    request = _for_staff(session, principal, request_id, action, lock=False)
    _audit(session, principal, action, request)
    if request.status not in ACTIVE or request.patient_group is None:
        return []
    now = utcnow()
    groups = rules.compatible_donor_groups(request.component, request.patient_group)
    stock = _available(session, request.organisation_id, request.component, groups, now)
    return matching.propose(stock, request, limit=limit or shortfall(session, request), now=now)


def _refresh_status(session: Session, request: BloodRequest) -> None:
    """Derive the request's status from its units (see the module docstring)."""
    if request.status in ("cancelled", "completed"):
        return
    counts = Counter(u.status for u in held_units(session, request))
    out = counts[UnitStatus.ISSUED.value] + counts[UnitStatus.TRANSFUSED.value]
    if request.status == "issued":
        if counts[UnitStatus.ISSUED.value] == 0:
            request.status = "completed"
    elif out >= request.units_requested:
        request.status = "issued"
    elif out + sum(counts[s] for s in ON_SHELF) >= request.units_requested:
        request.status = "allocated"
    else:
        request.status = "open"
    session.flush()


def _units_of_organisation(
    session: Session,
    principal: Principal,
    organisation_id: uuid.UUID,
    unit_ids: Sequence[uuid.UUID],
    action: str,
) -> list[BloodUnit]:
    if len(set(unit_ids)) != len(unit_ids):
        raise ValidationFailed("A unit is listed twice.", extra={"field": "unit_ids"})
    found: dict[uuid.UUID, BloodUnit] = {
        u.id: u for u in session.scalars(select(BloodUnit).where(BloodUnit.id.in_(unit_ids)))
    }
    for unit_id in unit_ids:
        unit = found.get(unit_id)
        if unit is None or unit.organisation_id != organisation_id:
            audit.record_and_commit(
                session, principal, action, outcome="denied", resource_type="BloodUnit", resource_id=unit_id
            )
            raise NotFound(f"No such unit: {unit_id}.", extra={"field": "unit_ids"})
    return [found[i] for i in unit_ids]


def _check_allocatable(request: BloodRequest, unit: BloodUnit, now: datetime) -> None:
    if unit.status != UnitStatus.AVAILABLE.value:
        raise Conflict(
            f"Unit {unit.din} is {unit.status}, not available: choose another.", extra={"unit": unit.din}
        )
    if unit.expires_at <= now:
        raise Conflict(f"Unit {unit.din} has expired.", extra={"unit": unit.din})
    if unit.component != request.component:
        raise ValidationFailed(
            f"Unit {unit.din} is {unit.component.replace('_', ' ')}; the request is for "
            f"{request.component.replace('_', ' ')}.",
            extra={"field": "unit_ids"},
        )
    assert request.patient_group is not None
    if not rules.is_compatible(request.component, unit.blood_group, request.patient_group):
        raise ValidationFailed(
            f"Unit {unit.din} ({unit.blood_group}) is not compatible with a {request.patient_group} patient.",
            extra={"field": "unit_ids"},
        )


def _reserve(
    session: Session, principal: Principal, request: BloodRequest, chosen: Sequence[BloodUnit], note: str
) -> list[BloodUnit]:
    return [
        units.move(session, principal, u, UnitStatus.RESERVED, request_id=request.id, note=note)
        for u in chosen
    ]


def allocate(
    session: Session, principal: Principal, request_id: uuid.UUID, unit_ids: Sequence[uuid.UUID]
) -> list[BloodUnit]:
    """Reserve the chosen units for the request, all or none: each must be the organisation's, available,
    unexpired, of the requested component and compatible with the patient (checked here again), and the
    request must still need them. Another request taking a unit first is a Conflict naming the unit."""
    action = "bloodbank.request.allocate"
    request = _for_staff(session, principal, request_id, action)
    if not unit_ids:
        raise ValidationFailed("Choose at least one unit.", extra={"field": "unit_ids"})
    if request.status not in ACTIVE:
        raise Conflict(f"The request is {request.status}: it takes no more units.")
    if request.patient_group is None:
        raise ValidationFailed(
            "The patient's blood group is not known: type a sample first, or use emergency release.",
            extra={"field": "unit_ids"},
        )
    needed = shortfall(session, request)
    if len(unit_ids) > needed:
        raise Conflict(f"The request needs {needed} more unit(s); {len(unit_ids)} were chosen.")
    chosen = _units_of_organisation(session, principal, request.organisation_id, unit_ids, action)
    now = utcnow()
    for unit in chosen:
        _check_allocatable(request, unit, now)
    # Always in the same (id) order, so that two allocations never wait for each other's units in a cycle.
    reserved = _reserve(
        session, principal, request, sorted(chosen, key=lambda u: u.id), "Allocated to request"
    )
    _refresh_status(session, request)
    _audit(session, principal, action, request, {"units": [u.din for u in reserved]})
    return reserved


def auto_allocate(session: Session, principal: Principal, request_id: uuid.UUID) -> list[BloodUnit]:
    """Allocate the best proposed units (as many as the request still needs and the stock has)."""
    chosen = proposals(session, principal, request_id)
    if not chosen:
        raise Conflict("No compatible unit is available here: ask the network or call donors.")
    return allocate(session, principal, request_id, [u.id for u in chosen])


# --- emergency release -------------------------------------------------------------------------------------


def _age(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def emergency_release(session: Session, principal: Principal, request_id: uuid.UUID) -> list[BloodUnit]:
    """Release uncrossmatched universal units at once for an emergency request whose patient's group is
    not known (group O red cells, group AB plasma; see ``matching.emergency_groups``): reserved and
    issued in one step, the request flagged ``emergency_release`` and the release audited (flagged). The
    crossmatch is done afterwards on the patient's sample (:func:`crossmatch` on the issued units)."""
    action = "bloodbank.request.emergency_release"
    request = _for_staff(session, principal, request_id, action)
    if request.urgency != Urgency.EMERGENCY.value:
        raise Conflict("Only emergency requests may receive uncrossmatched blood.")
    if request.status not in ACTIVE:
        raise Conflict(f"The request is {request.status}: it takes no more units.")
    if request.patient_group is not None:
        raise Conflict(f"The patient is {request.patient_group}: allocate compatible units instead.")
    patient = request.patient
    groups = matching.emergency_groups(
        request.component, patient.sex, _age(patient.birth_date, utcnow().date())
    )
    if not groups:
        raise ValidationFailed(
            "Emergency release covers red cells and plasma; other components need the patient's group.",
            extra={"field": "component"},
        )
    now = utcnow()
    stock = matching.UnitIndex.of(
        _available(session, request.organisation_id, request.component, groups, now)
    )
    chosen = stock.take(request.component, groups, limit=shortfall(session, request), now=now)
    if not chosen:
        raise Conflict(
            f"No {' or '.join(groups)} {request.component.replace('_', ' ')} in stock: ask the network."
        )
    note = "Emergency release: uncrossmatched"
    released = _reserve(session, principal, request, sorted(chosen, key=lambda u: u.id), note)
    for unit in released:
        units.move(session, principal, unit, UnitStatus.ISSUED, note=note)
    request.emergency_release = True
    _refresh_status(session, request)
    detail = {"units": [u.din for u in released], "groups": list(groups)}
    _audit(session, principal, action, request, detail, flagged=True)
    _tell_requester(session, request, "Emergency blood released: uncrossmatched units are on their way")
    return released


# --- crossmatch, issue, return, transfusion ---------------------------------------------------------------


def ready_to_issue(request: BloodRequest, unit: BloodUnit) -> bool:
    """Whether a unit held for ``request`` may leave the blood bank now: it waits on the shelf and, for red
    cells and whole blood, has been crossmatched."""
    if unit.status == UnitStatus.CROSSMATCHED.value:
        return True
    return unit.status == UnitStatus.RESERVED.value and request.component not in CROSSMATCH_REQUIRED


def _unit_of(held: Iterable[BloodUnit], unit_id: uuid.UUID) -> BloodUnit:
    for unit in held:
        if unit.id == unit_id:
            return unit
    raise NotFound("That unit is not held for this request.", extra={"field": "unit_id"})


def _tell_requester(session: Session, request: BloodRequest, title: str) -> None:
    notify.notify(session, request.requested_by, "blood_request", title, link=f"/blood-requests/{request.id}")


def crossmatch(
    session: Session,
    principal: Principal,
    request_id: uuid.UUID,
    unit_id: uuid.UUID,
    *,
    compatible: bool,
    note: str = "",
) -> BloodUnit:
    """Record a held unit's crossmatch with the patient's sample. Compatible: the unit is crossmatched.
    Incompatible: it goes back to stock with the note and the request needs another. For units already
    issued by emergency release the result is recorded (audited) and, when incompatible, the ordering
    clinician is told at once to stop that unit."""
    action = "bloodbank.request.crossmatch"
    request = _for_staff(session, principal, request_id, action)
    unit = _unit_of(held_units(session, request), unit_id)
    note = clean_line(note)[:200]
    result = "compatible" if compatible else "incompatible"
    if unit.status == UnitStatus.RESERVED.value:
        if compatible:
            units.move(
                session, principal, unit, UnitStatus.CROSSMATCHED, note=note or "Crossmatch compatible"
            )
        else:
            _release(
                session,
                principal,
                unit,
                f"Crossmatch incompatible: {note}" if note else "Crossmatch incompatible",
            )
            _refresh_status(session, request)
    elif unit.status == UnitStatus.ISSUED.value and request.emergency_release:
        if not compatible:
            _tell_requester(
                session, request, f"STOP unit {unit.din}: incompatible crossmatch. Call the blood bank."
            )
    else:
        raise Conflict(f"Unit {unit.din} is {unit.status}: there is nothing to crossmatch.")
    _audit(session, principal, action, request, {"unit": unit.din, "result": result, "note": note})
    return unit


def issue(
    session: Session, principal: Principal, request_id: uuid.UUID, unit_ids: Sequence[uuid.UUID] | None = None
) -> list[BloodUnit]:
    """Issue held units to the ward: the ones named, or every unit ready when ``unit_ids`` is not given.
    Red cells and whole blood must be crossmatched first."""
    action = "bloodbank.request.issue"
    request = _for_staff(session, principal, request_id, action)
    held = held_units(session, request)
    if unit_ids:
        chosen = [_unit_of(held, i) for i in unit_ids]
    else:
        chosen = [u for u in held if ready_to_issue(request, u)]
        if not chosen and any(u.status in ON_SHELF for u in held):
            raise Conflict("No unit of this request is crossmatched yet: crossmatch them before issuing.")
    if not chosen:
        raise Conflict("No unit is waiting to be issued for this request.")
    for unit in chosen:
        if unit.status not in ON_SHELF:
            raise Conflict(f"Unit {unit.din} is {unit.status}: it cannot be issued.")
        if not ready_to_issue(request, unit):
            raise Conflict(f"Unit {unit.din} is not crossmatched yet: crossmatch it before issuing.")
    issued = [units.move(session, principal, u, UnitStatus.ISSUED, note="Issued to the ward") for u in chosen]
    _refresh_status(session, request)
    _audit(session, principal, action, request, {"units": [u.din for u in issued]})
    _tell_requester(session, request, f"{len(issued)} blood unit(s) issued for your patient")
    return issued


def return_unit(
    session: Session,
    principal: Principal,
    request_id: uuid.UUID,
    unit_id: uuid.UUID,
    *,
    kept_cold: bool,
    reason: str = "",
) -> BloodUnit:
    """Take an issued, untransfused unit back: to stock when it comes back within the organisation's
    return window (``policy.return_window_minutes``; the "30-minute rule", AABB Technical Manual ch. 18,
    and 21 CFR 606.122 storage conditions) and the staff member confirms it was kept at the right
    temperature; discarded, with the reason, otherwise."""
    action = "bloodbank.request.return"
    request = _for_staff(session, principal, request_id, action)
    unit = _unit_of(held_units(session, request), unit_id)
    if unit.status != UnitStatus.ISSUED.value or unit.issued_at is None:
        raise Conflict(f"Unit {unit.din} is {unit.status}: only issued units come back.")
    window = get_policy(session, request.organisation_id).return_window_minutes
    minutes_out = (utcnow() - unit.issued_at).total_seconds() / 60
    problems = [] if kept_cold else ["storage temperature not confirmed"]
    if minutes_out > window:
        problems.append(f"back after {minutes_out:.0f} min (limit {window} min)")
    extra = clean_line(reason)
    if problems:
        note = "; ".join([*problems, *([extra] if extra else [])])
        units.move(
            session, principal, unit, UnitStatus.DISCARDED, note=f"Returned and discarded: {note}"[:300]
        )
    else:
        note = f"Returned after {minutes_out:.0f} min, kept cold" + (f"; {extra}" if extra else "")
        _release(session, principal, unit, note[:300])
    _refresh_status(session, request)
    outcome = "discarded" if problems else "restocked"
    _audit(session, principal, action, request, {"unit": unit.din, "outcome": outcome, "note": note})
    return unit


def confirm_transfusion(
    session: Session, principal: Principal, request_id: uuid.UUID, unit_id: uuid.UUID
) -> BloodUnit:
    """The patient's clinician confirms an issued unit was transfused."""
    action = "bloodbank.request.transfuse"
    request, access = _for_clinician(session, principal, request_id, action, lock=True)
    unit = _unit_of(held_units(session, request), unit_id)
    if unit.status != UnitStatus.ISSUED.value:
        raise Conflict(f"Unit {unit.din} is {unit.status}: only issued units can be transfused.")
    units.move(session, principal, unit, UnitStatus.TRANSFUSED, note="Transfusion confirmed")
    _refresh_status(session, request)
    _audit(session, principal, action, request, {"unit": unit.din}, flagged=access is Access.BREAK_GLASS)
    return unit
