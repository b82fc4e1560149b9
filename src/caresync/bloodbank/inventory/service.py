"""Blood units on a blood bank's shelves, for its staff: receiving units (made from a donation, or bought
from a supplier), listing and reading them with their history, releasing them from quarantine, discarding
them, moving them between fridges, expiring them, and the stock dashboard by group and component.

Staff act for their own organisation only: another organisation's unit answers 404, like a missing id.
Every status change goes through :func:`caresync.bloodbank.units.move` (compare-and-set plus a history
event) and every write is audited (resource type ``blood_unit``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from caresync.bloodbank import rules, units
from caresync.bloodbank.access import staff_organisation
from caresync.bloodbank.donors import din as din_rules
from caresync.bloodbank.models import BloodUnit, Donation, UnitEvent
from caresync.bloodbank.policy import service as policies
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS, UNIT_STATUSES, UnitStatus
from caresync.core import audit
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import DEFAULT_LIMIT, Page, paginate, parse_sort
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Organisation, User

RESOURCE = "blood_unit"
RECEIVE = "blood_unit.receive"
RELEASE = "blood_unit.release"
DISCARD = "blood_unit.discard"
RELOCATE = "blood_unit.relocate"
EXPIRE = "blood_unit.expire"
LIST = "blood_unit.list"
READ = "blood_unit.read"
STOCK = "blood_stock.read"

# ISBT 128 Product Code (Data Structure 003): a product description code (a letter and four digits, e.g.
# "E0336"), optionally followed by the type of donation and division characters (3 more).
PRODUCT_CODE_PATTERN = re.compile(r"[A-Z]\d{4}(?:[A-Z0-9]{3})?")
MAX_LOCATION = 60
MAX_REASON = 300
USE_WINDOW_DAYS = 28  # daily use = units issued in the last 28 days / 28
# Units counted as stock on the dashboard (not yet expired), and units that can still expire.
EXPIRABLE = (UnitStatus.QUARANTINED, UnitStatus.AVAILABLE, UnitStatus.RESERVED, UnitStatus.CROSSMATCHED)
USED = (UnitStatus.ISSUED.value, UnitStatus.TRANSFUSED.value)
OFF_THE_SHELF = frozenset({UnitStatus.ISSUED, UnitStatus.TRANSFUSED, UnitStatus.DISCARDED})
ON_SHELF = "on_shelf"  # a status filter: quarantined, available, reserved or crossmatched
SORTS = {"expiry": BloodUnit.expires_at, "collection": BloodUnit.collected_at}
Level = Literal["ok", "low", "critical"]


# --- identifiers --------------------------------------------------------------------------------------------


def _product_code(text: str) -> str:
    code = (text or "").strip().upper()
    if not PRODUCT_CODE_PATTERN.fullmatch(code):
        raise ValidationFailed(
            "Enter the ISBT 128 product code from the label: a letter and four digits, e.g. E0336.",
            extra={"field": "product_code"},
        )
    return code


def _location(text: str) -> str:
    location = clean_line(text or "")
    if len(location) > MAX_LOCATION:
        raise ValidationFailed(
            f"Keep the storage location to {MAX_LOCATION} characters.", extra={"field": "storage_location"}
        )
    return location


def _expiry(component: str, details: dict[str, object], collected_at: datetime) -> datetime:
    """Collection time plus the component's shelf life (422 on details the rules do not know)."""
    try:
        return collected_at + rules.shelf_life(component, **details)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValidationFailed(
            f"These component details are not recognised: {exc}", extra={"field": "details"}
        ) from exc


# --- receiving ----------------------------------------------------------------------------------------------


def _audit(session: Session, principal: Principal, action: str, unit: BloodUnit, **detail: object) -> None:
    audit.record(
        session,
        principal,
        action,
        resource_type=RESOURCE,
        resource_id=unit.id,
        detail={"din": unit.din, "product_code": unit.product_code, **detail},
    )


def _duplicate(din: str, product_code: str) -> Conflict:
    return Conflict(
        f"Unit {din_rules.grouped(din)} {product_code} is already registered: a donation number and product "
        "code label one bag only.",
        extra={"field": "din"},
    )


def _refuse_duplicate(session: Session, din: str, product_code: str) -> None:
    found = session.scalar(
        select(BloodUnit.id).where(BloodUnit.din == din, BloodUnit.product_code == product_code)
    )
    if found is not None:
        raise _duplicate(din, product_code)


def _add(session: Session, principal: Principal, unit: BloodUnit, note: str) -> None:
    """Insert the unit and its first event; 409 when another transaction registered the same label first
    (the unique constraint on DIN and product code decides)."""
    try:
        units.add(session, principal, unit, note=note)
    except IntegrityError:
        raise _duplicate(unit.din, unit.product_code) from None


def receive_donation(
    session: Session, principal: Principal, donation: Donation, *, storage_location: str = ""
) -> list[BloodUnit]:
    """The quarantined units a completed donation makes (``rules.unit_yield``), labelled with its DIN and the
    donor's group, each expiring at collection plus its shelf life. 409 when the donor's group is not known
    yet, the donation is not completed, or its units were already made."""
    org_id = staff_organisation(session, principal, RECEIVE)
    if donation.organisation_id != org_id:
        raise NotFound("No such donation.")
    if donation.outcome != "completed" or not donation.din:
        raise Conflict("Only a completed donation with a donation number makes blood units.")
    group = donation.donor.blood_group
    if group is None:
        raise Conflict(
            "The donor's blood group is not known yet: record their group before making units from "
            "this donation.",
            extra={"field": "blood_group"},
        )
    if session.scalar(select(BloodUnit.id).where(BloodUnit.donation_id == donation.id).limit(1)):
        raise Conflict(f"Units were already made from donation {din_rules.grouped(donation.din)}.")
    location = _location(storage_location)
    made: list[BloodUnit] = []
    for spec in rules.unit_yield(donation.donation_type):
        details = dict(spec.details)
        unit = BloodUnit(
            organisation_id=org_id,
            donation_id=donation.id,
            din=donation.din,
            product_code=spec.product_code,
            component=str(spec.component),
            details=details,
            blood_group=group,
            volume_ml=spec.volume_ml or donation.volume_ml,
            collected_at=donation.collected_at,
            expires_at=_expiry(str(spec.component), details, donation.collected_at),
            storage_location=location,
            status=UnitStatus.QUARANTINED.value,
        )
        _add(session, principal, unit, "Made from a donation")
        _audit(session, principal, RECEIVE, unit, donation_id=str(donation.id), source="donation")
        made.append(unit)
    return made


@dataclass(frozen=True)
class IncomingUnit:
    """A unit received from outside (a supplier or another blood service), as typed from its label."""

    din: str
    product_code: str
    component: str
    blood_group: str
    volume_ml: int
    collected_at: datetime
    details: dict[str, object]
    storage_location: str = ""


def receive_unit(
    session: Session, principal: Principal, incoming: IncomingUnit, *, now: datetime | None = None
) -> BloodUnit:
    """Register a unit received from outside, quarantined, its expiry computed from the component's shelf
    life. 422 on a malformed DIN or product code, a collection in the future or a unit already expired;
    409 when the DIN and product code are already registered."""
    org_id = staff_organisation(session, principal, RECEIVE)
    now = now or utcnow()
    din, product_code = din_rules.parse(incoming.din or ""), _product_code(incoming.product_code)
    if incoming.component not in COMPONENTS:
        raise ValidationFailed("Choose a component.", extra={"field": "component"})
    if incoming.blood_group not in BLOOD_GROUPS:
        raise ValidationFailed("Choose the ABO/Rh group on the label.", extra={"field": "blood_group"})
    if not 1 <= incoming.volume_ml <= 1000:
        raise ValidationFailed("Enter the volume in ml (1 to 1000).", extra={"field": "volume_ml"})
    if incoming.collected_at.tzinfo is None:
        raise ValidationFailed(
            "Give the collection time with its time zone.", extra={"field": "collected_at"}
        )
    if incoming.collected_at > now:
        raise ValidationFailed("The collection time is in the future.", extra={"field": "collected_at"})
    expires_at = _expiry(incoming.component, incoming.details, incoming.collected_at)
    if expires_at <= now:
        raise ValidationFailed(
            f"This unit expired on {expires_at:%Y-%m-%d %H:%M} UTC: do not take it into stock.",
            extra={"field": "collected_at"},
        )
    _refuse_duplicate(session, din, product_code)
    unit = BloodUnit(
        organisation_id=org_id,
        din=din,
        product_code=product_code,
        component=incoming.component,
        details=dict(incoming.details),
        blood_group=incoming.blood_group,
        volume_ml=incoming.volume_ml,
        collected_at=incoming.collected_at,
        expires_at=expires_at,
        storage_location=_location(incoming.storage_location),
        status=UnitStatus.QUARANTINED.value,
    )
    _add(session, principal, unit, "Received from outside")
    _audit(session, principal, RECEIVE, unit, source="external")
    return unit


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitFilter:
    """What to list: every field is optional; ``status`` may also be ``on_shelf`` (quarantined, available,
    reserved or crossmatched); ``din`` matches part of the number."""

    status: str | None = None
    blood_group: str | None = None
    component: str | None = None
    expiring_within_days: int | None = None
    din: str | None = None


def _filtered(query: Select[Any], wanted: UnitFilter, now: datetime) -> Select[Any]:
    if wanted.status == ON_SHELF:
        query = query.where(BloodUnit.status.in_([s.value for s in EXPIRABLE]))
        wanted = replace(wanted, status=None)
    checks = (
        ("status", wanted.status, UNIT_STATUSES, BloodUnit.status),
        ("blood_group", wanted.blood_group, BLOOD_GROUPS, BloodUnit.blood_group),
        ("component", wanted.component, COMPONENTS, BloodUnit.component),
    )
    for name, value, allowed, column in checks:
        if value is None:
            continue
        if value not in allowed:
            raise ValidationFailed(f"Unknown {name.replace('_', ' ')} '{value}'.", extra={"field": name})
        query = query.where(column == value)
    if wanted.expiring_within_days is not None:
        if not 0 <= wanted.expiring_within_days <= 365:
            raise ValidationFailed("Choose 0 to 365 days.", extra={"field": "expiring_within_days"})
        horizon = now + timedelta(days=wanted.expiring_within_days)
        query = query.where(BloodUnit.expires_at > now, BloodUnit.expires_at <= horizon)
    if wanted.din:
        fragment = re.sub(r"[\s-]", "", wanted.din).upper()
        if not fragment.isalnum() or len(fragment) > 13:
            raise ValidationFailed(
                "Search with letters and digits of the donation number.", extra={"field": "din"}
            )
        query = query.where(BloodUnit.din.contains(fragment))
    return query


def list_units(
    session: Session,
    principal: Principal,
    wanted: UnitFilter,
    *,
    sort: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    now: datetime | None = None,
    statuses: Sequence[str] | None = None,
    components: Sequence[str] | None = None,
    exact_dins: Sequence[str] | None = None,
    product_codes: Sequence[str] | None = None,
    count_total: bool = False,
) -> Page[BloodUnit]:
    """The organisation's units matching ``wanted``, by expiry (default: soonest first) or collection
    (``sort`` = ``expiry``, ``collection``, or either with ``-`` for the reverse).

    The keyword filters narrow further (any of the values matches, an empty sequence matches nothing):
    ``statuses`` and ``components`` (known values only, 422 otherwise), ``exact_dins`` (whole donation
    numbers, unlike ``wanted.din`` which matches a part) and ``product_codes``; ``count_total`` fills
    ``Page.total``."""
    org_id = staff_organisation(session, principal, LIST)
    key, descending = parse_sort(sort, dict(SORTS), "expiry")
    query = _filtered(select(BloodUnit).where(BloodUnit.organisation_id == org_id), wanted, now or utcnow())
    for name, values, allowed, column in (
        ("status", statuses, UNIT_STATUSES, BloodUnit.status),
        ("component", components, COMPONENTS, BloodUnit.component),
    ):
        if values is None:
            continue
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValidationFailed(f"Unknown {name} '{unknown[0]}'.", extra={"field": name})
        query = query.where(column.in_(sorted(set(values))))
    if exact_dins is not None:
        query = query.where(BloodUnit.din.in_(sorted({re.sub(r"[\s-]", "", d).upper() for d in exact_dins})))
    if product_codes is not None:
        query = query.where(BloodUnit.product_code.in_(sorted({c.strip().upper() for c in product_codes})))
    return paginate(
        session,
        query,
        sort_column=SORTS[key],
        id_column=BloodUnit.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )


@dataclass(frozen=True)
class HistoryStep:
    """One event of a unit's history, with the names a person reads."""

    event: UnitEvent
    actor_name: str
    organisation_name: str


@dataclass(frozen=True)
class UnitDetail:
    """A unit, its full history (oldest first) and its storage temperature range (°C)."""

    unit: BloodUnit
    history: list[HistoryStep]
    storage_range: tuple[float, float]


def get_unit(session: Session, principal: Principal, unit_id: uuid.UUID, action: str = READ) -> BloodUnit:
    """One of the organisation's units; 404 (audited as denied) for a missing or another's unit."""
    org_id = staff_organisation(session, principal, action)
    unit = session.scalar(
        select(BloodUnit).where(BloodUnit.id == unit_id, BloodUnit.organisation_id == org_id)
    )
    if unit is None:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type=RESOURCE, resource_id=unit_id
        )
        raise NotFound("No such blood unit.")
    return unit


def unit_detail(session: Session, principal: Principal, unit_id: uuid.UUID) -> UnitDetail:
    """A unit with its history: who moved it from which status to which, where and why."""
    unit = get_unit(session, principal, unit_id)
    holder = aliased(Organisation)
    rows = session.execute(
        select(UnitEvent, User.full_name, holder.name)
        .outerjoin(User, User.id == UnitEvent.actor_id)
        .join(holder, holder.id == UnitEvent.organisation_id)
        .where(UnitEvent.unit_id == unit.id)
        .order_by(UnitEvent.at, UnitEvent.to_status)
    ).all()
    history = [HistoryStep(event, actor or "CareSync system", org) for event, actor, org in rows]
    return UnitDetail(unit=unit, history=history, storage_range=rules.storage_range(unit.component))


# --- changing -----------------------------------------------------------------------------------------------


def release(
    session: Session, principal: Principal, unit_id: uuid.UUID, *, now: datetime | None = None
) -> BloodUnit:
    """Release a quarantined unit (its tests came back clear) into available stock. 409 for a unit that
    is not quarantined or has expired."""
    unit = get_unit(session, principal, unit_id, RELEASE)
    if unit.status != UnitStatus.QUARANTINED:
        raise Conflict(
            f"Unit {din_rules.grouped(unit.din)} is {unit.status}: only a quarantined unit can be released."
        )
    if unit.expires_at <= (now or utcnow()):
        raise Conflict(f"Unit {din_rules.grouped(unit.din)} has expired: discard it instead of releasing it.")
    units.move(session, principal, unit, UnitStatus.AVAILABLE, note="Released from quarantine")
    _audit(session, principal, RELEASE, unit)
    return unit


def discard(session: Session, principal: Principal, unit_id: uuid.UUID, reason: str) -> BloodUnit:
    """Discard a unit (broken bag, failed test, expired, returned too late…) with the reason, which its
    history keeps. 422 without a reason; 409 when the unit's status does not allow it."""
    reason = clean_line(reason or "")
    if not reason:
        raise ValidationFailed("Say why the unit is discarded.", extra={"field": "reason"})
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"Keep the reason to {MAX_REASON} characters.", extra={"field": "reason"})
    unit = get_unit(session, principal, unit_id, DISCARD)
    previous = unit.status
    units.move(session, principal, unit, UnitStatus.DISCARDED, note=reason)
    _audit(session, principal, DISCARD, unit, reason=reason, previous_status=previous)
    return unit


def relocate(session: Session, principal: Principal, unit_id: uuid.UUID, storage_location: str) -> BloodUnit:
    """Record that a unit moved to another fridge, freezer or shelf (its status is unchanged). 409 for a
    unit no longer in the blood bank (issued, transfused or discarded)."""
    location = _location(storage_location)
    unit = get_unit(session, principal, unit_id, RELOCATE)
    if UnitStatus(unit.status) in OFF_THE_SHELF:
        raise Conflict(
            f"Unit {din_rules.grouped(unit.din)} is {unit.status}: it is no longer on a shelf here."
        )
    previous = unit.storage_location
    unit.storage_location = location
    session.flush()
    _audit(session, principal, RELOCATE, unit, previous_location=previous, location=location)
    return unit


def expire_due(session: Session, now: datetime) -> int:
    """Move every unit whose expiry is at or before ``now`` and that is still quarantined, available,
    reserved or crossmatched to ``expired`` (as the system). Units another transaction changed meanwhile
    are left to it. Returns how many expired."""
    actor = system_principal("Expiry check")
    due = session.scalars(
        select(BloodUnit)
        .where(BloodUnit.status.in_([s.value for s in EXPIRABLE]), BloodUnit.expires_at <= now)
        .order_by(BloodUnit.expires_at, BloodUnit.id)
    ).all()
    expired = 0
    for unit in due:
        try:
            units.move(session, actor, unit, UnitStatus.EXPIRED, note="Passed its expiry date", at=now)
        except Conflict:
            continue
        _audit(session, actor, EXPIRE, unit, organisation_id=str(unit.organisation_id))
        expired += 1
    return expired


# --- the stock dashboard ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockCell:
    """One group x component of a blood bank's stock.

    ``reserved`` counts reserved and crossmatched units; ``expiring_soon`` available units expiring within
    the policy's warning days; ``daily_use`` units issued per day over the last 28 days (else the policy's
    baseline, else None); ``days_of_supply`` = available / daily use (None when no use is known); ``level``
    compares the days of supply with the policy's thresholds ("ok" when no use is known)."""

    blood_group: str
    component: str
    available: int
    reserved: int
    quarantined: int
    expiring_soon: int
    daily_use: float | None
    days_of_supply: float | None
    level: Level = "ok"
    low_stock_days: float = 0.0

    @property
    def key(self) -> str:
        """The policy's key for this cell, e.g. ``O-:red_cells``."""
        return f"{self.blood_group}:{self.component}"


def stock_dashboard(
    session: Session, organisation_id: uuid.UUID, *, now: datetime | None = None
) -> list[StockCell]:
    """All 40 group x component cells of the organisation's stock (zeros included), in the order of
    ``BLOOD_GROUPS`` then ``COMPONENTS``: the policy, then two grouped queries that walk the stock index
    (``organisation_id, status, component, blood_group, expires_at``), the shelf's one without touching
    the table."""
    now = now or utcnow()
    policy = policies.get_policy(session, organisation_id)
    shelf = _shelf_counts(session, organisation_id, now, now + timedelta(days=policy.expiry_warning_days))
    used = _issued_counts(session, organisation_id, now - timedelta(days=USE_WINDOW_DAYS))
    cells = []
    for group in BLOOD_GROUPS:
        for component in COMPONENTS:
            counts = shelf.get((group, component), {})
            available, issued = counts.get(UnitStatus.AVAILABLE, 0), used.get((group, component), 0)
            key = f"{group}:{component}"
            daily_use = issued / USE_WINDOW_DAYS if issued else _baseline(policy.baseline_daily_use, key)
            days = available / daily_use if daily_use else None
            low = policies.threshold_days(policy, group, component)
            cells.append(
                StockCell(
                    blood_group=group,
                    component=component,
                    available=available,
                    reserved=counts.get(UnitStatus.RESERVED, 0) + counts.get(UnitStatus.CROSSMATCHED, 0),
                    quarantined=counts.get(UnitStatus.QUARANTINED, 0),
                    expiring_soon=counts.get(EXPIRING, 0),
                    daily_use=daily_use,
                    days_of_supply=days,
                    level=stock_level(days, low, min(float(policy.critical_stock_days), low)),
                    low_stock_days=low,
                )
            )
    return cells


EXPIRING = "expiring"  # the shelf counts' key for available units expiring within the warning days


def _shelf_counts(
    session: Session, organisation_id: uuid.UUID, now: datetime, warn_until: datetime
) -> dict[tuple[str, str], dict[str, int]]:
    """Unexpired units per (group, component) and status, plus the available ones expiring by
    ``warn_until`` (under ``EXPIRING``)."""
    soon = func.coalesce(func.sum(case((BloodUnit.expires_at <= warn_until, 1), else_=0)), 0)
    rows = session.execute(
        select(BloodUnit.status, BloodUnit.component, BloodUnit.blood_group, func.count(), soon)
        .where(
            BloodUnit.organisation_id == organisation_id,
            BloodUnit.status.in_([s.value for s in EXPIRABLE]),
            BloodUnit.expires_at > now,
        )
        .group_by(BloodUnit.status, BloodUnit.component, BloodUnit.blood_group)
    )
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for status, component, group, number, expiring in rows:
        cell = counts.setdefault((group, component), {})
        cell[status] = int(number)
        if status == UnitStatus.AVAILABLE:
            cell[EXPIRING] = int(expiring)
    return counts


def _issued_counts(
    session: Session, organisation_id: uuid.UUID, since: datetime
) -> dict[tuple[str, str], int]:
    """Units per (group, component) the organisation issued since ``since`` (and did not take back)."""
    rows = session.execute(
        select(BloodUnit.blood_group, BloodUnit.component, func.count())
        .where(
            BloodUnit.organisation_id == organisation_id,
            BloodUnit.status.in_(USED),
            # an issued unit was unexpired when issued, so it expires after ``since``: narrows the index range
            BloodUnit.expires_at > since,
            BloodUnit.issued_at >= since,
        )
        .group_by(BloodUnit.blood_group, BloodUnit.component)
    )
    return {(group, component): int(number) for group, component, number in rows}


def _baseline(baselines: dict[str, float] | None, key: str) -> float | None:
    value = (baselines or {}).get(key)
    return float(value) if value else None


def stock_level(days_of_supply: float | None, low_days: float, critical_days: float) -> Level:
    """ "critical" below ``critical_days`` of supply, "low" below ``low_days``, else "ok" (also when no use
    is known, so no days of supply)."""
    if days_of_supply is None:
        return "ok"
    if days_of_supply < critical_days:
        return "critical"
    if days_of_supply < low_days:
        return "low"
    return "ok"


def stock_for(session: Session, principal: Principal, *, now: datetime | None = None) -> list[StockCell]:
    """The stock dashboard of the staff member's own blood bank."""
    return stock_dashboard(session, staff_organisation(session, principal, STOCK), now=now)


def available_counts(
    session: Session, organisation_ids: list[uuid.UUID] | None = None, *, now: datetime | None = None
) -> dict[tuple[uuid.UUID, str, str], int]:
    """Available, unexpired units per (organisation, group, component), in one grouped query (every
    organisation when ``organisation_ids`` is None; cells with no units are absent)."""
    query = (
        select(BloodUnit.organisation_id, BloodUnit.blood_group, BloodUnit.component, func.count())
        .where(BloodUnit.status == UnitStatus.AVAILABLE.value, BloodUnit.expires_at > (now or utcnow()))
        .group_by(BloodUnit.organisation_id, BloodUnit.blood_group, BloodUnit.component)
    )
    if organisation_ids is not None:
        query = query.where(BloodUnit.organisation_id.in_(organisation_ids))
    return {(org, group, component): int(n) for org, group, component, n in session.execute(query)}
