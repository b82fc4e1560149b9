"""The blood bank report of one organisation for a period: stock now, utilisation, outdates and wastage,
the crossmatch-to-transfusion ratio and donation trends, each computed with grouped SQL over the units,
their history events (``blood_unit_events``: who held a unit when it moved is the event's organisation,
so units transferred away count where they were) and the donations.

A period is whole UTC days, ``date_from`` to ``date_to`` inclusive: events at or after ``date_from``
00:00 UTC and before the day after ``date_to``. Reports hold counts only, never a patient or donor."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, distinct, func, literal_column, or_, select
from sqlalchemy.orm import Session

from caresync.bloodbank.models import BloodUnit, Donation, Donor, UnitEvent
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS, UnitStatus
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, ValidationFailed
from caresync.core.rbac import Perm, require
from caresync.core.sqldates import utc_month
from caresync.db import utcnow
from caresync.identity.models import Organisation

DEFAULT_DAYS = 90  # the period shown when none is asked for: the last 90 days, today included
MAX_DAYS = 3 * 366  # the longest period one report covers
# Crossmatch-to-transfusion ratio: ideally 1.0; a C:T ratio of 2.0 or less is the accepted benchmark of
# efficient ordering (Boral & Henry, "The type and screen", Transfusion 1977;17:163-8, the basis of
# AABB's maximum surgical blood order schedule; CAP TODAY Q&A, February 2022: "a goal C:T ratio of less
# than 2"). Crossmatching concerns the red-cell-bearing components only.
CT_BENCHMARK = 2.0
CROSSMATCHED_COMPONENTS = ("red_cells", "whole_blood")
# Statuses in which a unit has left the shelf for good (an issued unit may come back when returned in
# time; it still left the inventory once).
LEFT_INVENTORY = (UnitStatus.ISSUED, UnitStatus.TRANSFUSED, UnitStatus.EXPIRED, UnitStatus.DISCARDED)
EXPIRED_REASON = "expired"
UNSPECIFIED_REASON = "unspecified"
UNTYPED = "untyped"  # donors whose blood group is not known yet


@dataclass(frozen=True)
class Period:
    """Whole UTC days, ``date_from`` to ``date_to`` inclusive."""

    date_from: date
    date_to: date

    @property
    def starts(self) -> datetime:
        """The first instant of the period."""
        return datetime.combine(self.date_from, time(), tzinfo=UTC)

    @property
    def ends(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.date_to + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def months(self) -> list[str]:
        """Every month the period touches, as ``YYYY-MM``, in order."""
        months, year, month = [], self.date_from.year, self.date_from.month
        while (year, month) <= (self.date_to.year, self.date_to.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months


@dataclass(frozen=True)
class StockRow:
    """Units on the shelf now, by group and component (available ones unexpired)."""

    blood_group: str
    component: str
    available: int
    reserved: int  # held for a request: reserved or crossmatched
    quarantined: int


@dataclass(frozen=True)
class UsageRow:
    """Units issued and transfused in the period, by group and component."""

    blood_group: str
    component: str
    issued: int
    transfused: int


@dataclass(frozen=True)
class MonthUsage:
    """Units issued and transfused in one month of the period."""

    month: str
    issued: int
    transfused: int


@dataclass(frozen=True)
class OutdateRow:
    """Units that expired out of the units that left the inventory, for one component (or ``all``)."""

    component: str
    expired: int
    left_inventory: int

    @property
    def rate(self) -> float | None:
        """The outdate rate (0 to 1), or None when no unit left the inventory."""
        return self.expired / self.left_inventory if self.left_inventory else None


@dataclass(frozen=True)
class WastageRow:
    """Units lost (expired, or discarded for a reason) for one component."""

    component: str
    reason: str
    units: int


@dataclass(frozen=True)
class CrossmatchRatio:
    """Red-cell crossmatches performed (a unit released and crossmatched again counts twice) and units
    transfused in the period."""

    crossmatched: int
    transfused: int
    benchmark: float = CT_BENCHMARK

    @property
    def ratio(self) -> float | None:
        """Crossmatched / transfused, or None when nothing was transfused."""
        return round(self.crossmatched / self.transfused, 2) if self.transfused else None

    @property
    def within_benchmark(self) -> bool | None:
        """Whether the ratio meets the benchmark (None without a ratio)."""
        return None if self.ratio is None else self.ratio <= self.benchmark


@dataclass(frozen=True)
class DonationMonth:
    """Completed donations in one month, by the donors' blood group."""

    month: str
    blood_group: str
    completed: int


@dataclass(frozen=True)
class DonationSummary:
    """Donation visits in the period by outcome, and the share deferred at screening."""

    completed: int
    deferred: int
    incomplete: int

    @property
    def visits(self) -> int:
        """Every donation visit."""
        return self.completed + self.deferred + self.incomplete

    @property
    def deferral_rate(self) -> float | None:
        """Deferred visits / all visits (0 to 1), or None without visits."""
        return self.deferred / self.visits if self.visits else None


@dataclass(frozen=True)
class BloodBankReport:
    """Every figure of one organisation's report."""

    organisation_id: uuid.UUID
    organisation_name: str
    period: Period
    generated_at: datetime
    stock: list[StockRow]
    utilisation: list[UsageRow]
    utilisation_by_month: list[MonthUsage]
    outdates: list[OutdateRow]  # per component, then ``all``
    wastage: list[WastageRow]
    crossmatch: CrossmatchRatio
    donations_by_month: list[DonationMonth]
    donations: DonationSummary


def period(date_from: date | None, date_to: date | None, *, today: date | None = None) -> Period:
    """The period asked for: by default the last :data:`DEFAULT_DAYS` days to today; one bound alone
    extends that many days from it. Raises ValidationFailed when it is reversed or too long."""
    if date_to is None:
        date_to = date_from + timedelta(days=DEFAULT_DAYS - 1) if date_from else today or utcnow().date()
    if date_from is None:
        date_from = date_to - timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        raise ValidationFailed("The period starts after it ends.", extra={"field": "from"})
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            f"A report covers at most {MAX_DAYS} days; choose a shorter period.", extra={"field": "from"}
        )
    return Period(date_from, date_to)


def organisation_report(
    session: Session,
    principal: Principal,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    now: datetime | None = None,
) -> BloodBankReport:
    """The report of the principal's organisation (blood bank staff and administrators) for the period
    :func:`period` makes of ``date_from`` and ``date_to``; stock is counted at ``now``."""
    organisation = _own_organisation(session, principal, "bloodbank.reports.view")
    now = now or utcnow()
    asked = period(date_from, date_to, today=now.date())
    org_id = organisation.id
    return BloodBankReport(
        organisation_id=org_id,
        organisation_name=organisation.name,
        period=asked,
        generated_at=now,
        stock=stock_rows(session, org_id, now),
        utilisation=_utilisation(session, org_id, asked),
        utilisation_by_month=_utilisation_by_month(session, org_id, asked),
        outdates=_outdates(session, org_id, asked),
        wastage=_wastage(session, org_id, asked),
        crossmatch=_crossmatch(session, org_id, asked),
        donations_by_month=monthly_donations(session, org_id, asked),
        donations=donation_summary(session, org_id, asked),
    )


def record_export(session: Session, principal: Principal, report: BloodBankReport, kind: str) -> None:
    """Audit that ``report`` left CareSync as a ``kind`` ("csv" or "pdf") file."""
    audit.record(
        session,
        principal,
        f"bloodbank.reports.export_{kind}",
        resource_type="organisation",
        resource_id=report.organisation_id,
        detail={"from": report.period.date_from, "to": report.period.date_to},
    )


def _own_organisation(session: Session, principal: Principal, action: str) -> Organisation:
    require(session, principal, Perm.BLOOD_REPORTS, action)
    organisation = session.get(Organisation, principal.organisation_id) if principal.organisation_id else None
    if organisation is None:
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"reason": "no org"})
        raise Forbidden("Reports are for the staff of an organisation.")
    return organisation


def _in_period(asked: Period) -> Any:
    return and_(UnitEvent.at >= asked.starts, UnitEvent.at < asked.ends)


def unit_events_in(org_id: uuid.UUID, asked: Period, *conditions: Any) -> Any:
    """Select from the organisation's unit events in the period, joined to their units."""
    return (
        select()
        .select_from(UnitEvent)
        .join(BloodUnit, BloodUnit.id == UnitEvent.unit_id)
        .where(UnitEvent.organisation_id == org_id, _in_period(asked), *conditions)
    )


def _count_to(status: UnitStatus) -> Any:
    return func.count(distinct(case((UnitEvent.to_status == status.value, UnitEvent.unit_id))))


def stock_rows(session: Session, org_id: uuid.UUID, now: datetime) -> list[StockRow]:
    """The organisation's units by group and component: available (unexpired), held and quarantined."""
    available = and_(BloodUnit.status == UnitStatus.AVAILABLE.value, BloodUnit.expires_at > now)
    held = BloodUnit.status.in_((UnitStatus.RESERVED.value, UnitStatus.CROSSMATCHED.value))
    rows = session.execute(
        select(
            BloodUnit.blood_group,
            BloodUnit.component,
            func.count(case((available, BloodUnit.id))),
            func.count(case((held, BloodUnit.id))),
            func.count(case((BloodUnit.status == UnitStatus.QUARANTINED.value, BloodUnit.id))),
        )
        .where(BloodUnit.organisation_id == org_id)
        .group_by(BloodUnit.blood_group, BloodUnit.component)
    )
    found = [StockRow(*row) for row in rows]
    return sorted((r for r in found if r.available or r.reserved or r.quarantined), key=_group_component)


def _utilisation(session: Session, org_id: uuid.UUID, asked: Period) -> list[UsageRow]:
    query = unit_events_in(org_id, asked, UnitEvent.to_status.in_(("issued", "transfused"))).add_columns(
        BloodUnit.blood_group,
        BloodUnit.component,
        _count_to(UnitStatus.ISSUED),
        _count_to(UnitStatus.TRANSFUSED),
    )
    rows = session.execute(query.group_by(BloodUnit.blood_group, BloodUnit.component))
    return sorted((UsageRow(*row) for row in rows), key=_group_component)


def _utilisation_by_month(session: Session, org_id: uuid.UUID, asked: Period) -> list[MonthUsage]:
    month = utc_month(UnitEvent.at)
    query = unit_events_in(org_id, asked, UnitEvent.to_status.in_(("issued", "transfused"))).add_columns(
        month, _count_to(UnitStatus.ISSUED), _count_to(UnitStatus.TRANSFUSED)
    )
    counts = {m: (issued, transfused) for m, issued, transfused in session.execute(query.group_by(month))}
    return [MonthUsage(m, *counts.get(m, (0, 0))) for m in asked.months]


def _outdates(session: Session, org_id: uuid.UUID, asked: Period) -> list[OutdateRow]:
    left = UnitEvent.to_status.in_([s.value for s in LEFT_INVENTORY])
    expired = _count_to(UnitStatus.EXPIRED)
    leaving = func.count(distinct(UnitEvent.unit_id))
    base = unit_events_in(org_id, asked, left)
    rows = session.execute(
        base.add_columns(BloodUnit.component, expired, leaving).group_by(BloodUnit.component)
    )
    per_component = sorted((OutdateRow(*row) for row in rows), key=lambda r: COMPONENTS.index(r.component))
    total_expired, total_left = session.execute(base.add_columns(expired, leaving)).one()
    return [*per_component, OutdateRow("all", total_expired, total_left)]


def _wastage(session: Session, org_id: uuid.UUID, asked: Period) -> list[WastageRow]:
    """Expired units, and units discarded for another reason (the discard's note). Disposing of a unit
    that had already expired is not counted again."""
    expired = UnitEvent.to_status == UnitStatus.EXPIRED.value
    discarded = and_(
        UnitEvent.to_status == UnitStatus.DISCARDED.value,
        or_(UnitEvent.from_status.is_(None), UnitEvent.from_status != UnitStatus.EXPIRED.value),
    )
    reason = case(
        (UnitEvent.to_status == _constant(UnitStatus.EXPIRED.value), _constant(EXPIRED_REASON)),
        (func.trim(UnitEvent.note) == _constant(""), _constant(UNSPECIFIED_REASON)),
        else_=func.trim(UnitEvent.note),
    )
    query = unit_events_in(org_id, asked, or_(expired, discarded)).add_columns(
        BloodUnit.component, reason, func.count(distinct(UnitEvent.unit_id))
    )
    rows = session.execute(query.group_by(BloodUnit.component, reason))
    return sorted(
        (WastageRow(*row) for row in rows), key=lambda r: (COMPONENTS.index(r.component), -r.units, r.reason)
    )


def _crossmatch(session: Session, org_id: uuid.UUID, asked: Period) -> CrossmatchRatio:
    query = unit_events_in(
        org_id,
        asked,
        BloodUnit.component.in_(CROSSMATCHED_COMPONENTS),
        UnitEvent.to_status.in_(("crossmatched", "transfused")),
    ).add_columns(
        func.count(case((UnitEvent.to_status == UnitStatus.CROSSMATCHED.value, UnitEvent.id))),
        _count_to(UnitStatus.TRANSFUSED),
    )
    crossmatched, transfused = session.execute(query).one()
    return CrossmatchRatio(crossmatched, transfused)


def donations_in(org_id: uuid.UUID, asked: Period, *conditions: Any) -> Any:
    """Select from the donations collected at the organisation in the period."""
    return (
        select()
        .select_from(Donation)
        .where(
            Donation.organisation_id == org_id,
            Donation.collected_at >= asked.starts,
            Donation.collected_at < asked.ends,
            *conditions,
        )
    )


def monthly_donations(session: Session, org_id: uuid.UUID, asked: Period) -> list[DonationMonth]:
    """Completed donations per month and blood group."""
    month = utc_month(Donation.collected_at)
    group = func.coalesce(Donor.blood_group, _constant(UNTYPED))
    query = (
        donations_in(org_id, asked, Donation.outcome == "completed")
        .join(Donor, Donor.id == Donation.donor_id)
        .add_columns(month, group, func.count(Donation.id))
        .group_by(month, group)
    )
    order = {g: i for i, g in enumerate((*BLOOD_GROUPS, UNTYPED))}
    return sorted(
        (DonationMonth(*row) for row in session.execute(query)), key=lambda r: (r.month, order[r.blood_group])
    )


def donation_summary(session: Session, org_id: uuid.UUID, asked: Period) -> DonationSummary:
    """The period's donation visits by outcome."""
    query = donations_in(org_id, asked).add_columns(Donation.outcome, func.count(Donation.id))
    counts: dict[str, int] = defaultdict(int)
    for outcome, count in session.execute(query.group_by(Donation.outcome)):
        counts[outcome] = count
    return DonationSummary(counts["completed"], counts["deferred"], counts["incomplete"])


def _constant(text: str) -> Any:
    """A string constant written into the SQL (our own words): an expression holding a bound parameter
    is not recognised as the same in GROUP BY as in SELECT on PostgreSQL, which then refuses the query."""
    assert "'" not in text
    return literal_column(f"'{text}'", String())


def _group_component(row: StockRow | UsageRow) -> tuple[int, int]:
    return BLOOD_GROUPS.index(row.blood_group), COMPONENTS.index(row.component)
