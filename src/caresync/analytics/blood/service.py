"""Blood supply analytics as the API and page serve them: who may see which blood bank, the audit, the
grouped queries and the cache.

Who. Blood bank staff (``blood:stock``) see their own organisation; administrators (``blood:reports``
without ``blood:stock``) any organisation, their own by default; every other role gets 403 (audited).
Donors (``donor:self``) see their own donations and, for the blood banks they gave at, only the level of
need of their group (:func:`my_blood`).

What. Weekly series per organisation of units issued, transfused, expired and discarded by group and
component (``blood_unit_events``: the organisation holding the unit when it moved) and donations collected
(grouped SQL, never row loads); the red cell demand forecast and supply outlook of :mod:`.forecast`;
donation trends per month (by group, and first-time against returning donors). Answers hold counts only.

Cache. The outlook (forecasts and supplies) is cached in :data:`caresync.analytics.cache.results` per
organisation and day under :func:`data_version` (how many unit events and donations exist, and the
policy's last change), so a unit moving, a donation or a new threshold refreshes it at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from caresync.analytics import cache
from caresync.analytics.blood import forecast
from caresync.analytics.forecasting import sarima
from caresync.bloodbank.donors import service as donors
from caresync.bloodbank.models import BloodBankPolicy, BloodUnit, Donation, Donor, UnitEvent
from caresync.bloodbank.policy import service as policies
from caresync.bloodbank.reports import service as reports
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS, Component, DonationType, UnitStatus
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound, ValidationFailed
from caresync.core.rbac import Perm, has_perm, require
from caresync.core.sqldates import utc_month, utc_week
from caresync.db import utcnow
from caresync.identity.models import Organisation

RED_CELLS = Component.RED_CELLS.value
DEFAULT_DAYS = 364  # the series' default period: the last 52 weeks, today included
SERIES_KINDS = ("issued", "transfused", "expired", "discarded")


# --- who sees what -----------------------------------------------------------------------------------------


def blood_organisation(
    session: Session, principal: Principal, organisation_id: uuid.UUID | None, action: str
) -> Organisation:
    """The blood bank to analyse: staff their own (403, audited, for another one), administrators the one
    asked for or their own (422 when they have none and asked for none), 404 for an unknown one."""
    if has_perm(principal, Perm.BLOOD_STOCK) and not principal.is_system:
        own = principal.organisation_id
        if own is None or (organisation_id is not None and organisation_id != own):
            audit.record_and_commit(
                session,
                principal,
                action,
                outcome="denied",
                resource_type="organisation",
                resource_id=organisation_id or "",
                detail={"reason": "blood bank staff see their own organisation"},
            )
            raise Forbidden("You can only analyse your own blood bank.")
        wanted: uuid.UUID | None = own
    else:
        require(session, principal, Perm.BLOOD_REPORTS, action)
        wanted = organisation_id or principal.organisation_id
        if wanted is None:
            raise ValidationFailed("Choose an organisation.", extra={"field": "organisation_id"})
    organisation = session.get(Organisation, wanted)
    if organisation is None:
        raise NotFound("No such organisation.")
    return organisation


def _audit(
    session: Session, principal: Principal, action: str, organisation_id: uuid.UUID, **detail: Any
) -> None:
    audit.record(
        session, principal, action, resource_type="organisation", resource_id=organisation_id, detail=detail
    )


def data_version(session: Session, organisation_id: uuid.UUID) -> str:
    """A fingerprint of the blood data an outlook reads: how many unit events and donations there are (both
    tables only grow: every status change of a unit appends an event) and when the organisation's policy
    last changed. Counted over every organisation: ``count(*)`` of a whole table reads its smallest index in
    about a millisecond, while one organisation's events have no index to count them by (a scan); a change
    anywhere refreshes every blood bank's outlook, which is never stale."""
    events = session.execute(select(func.count()).select_from(UnitEvent)).scalar_one()
    given = session.execute(select(func.count()).select_from(Donation)).scalar_one()
    policy = session.execute(
        select(BloodBankPolicy.updated_at).where(BloodBankPolicy.organisation_id == organisation_id)
    ).scalar()
    return f"{events}:{given}:{policy.isoformat() if policy else '-'}"


# --- weekly series ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekRow:
    """Units of one group and component that moved in one ISO week (Monday), by what happened to them."""

    week: str
    blood_group: str
    component: str
    issued: int
    transfused: int
    expired: int
    discarded: int


@dataclass(frozen=True)
class DonationWeek:
    """Completed donations collected in one ISO week."""

    week: str
    donations: int


@dataclass(frozen=True)
class Series:
    """The weekly figures of one organisation for a period of whole days."""

    organisation_id: uuid.UUID
    organisation_name: str
    period: reports.Period
    weeks: list[str]
    usage: list[WeekRow]
    donations: list[DonationWeek]


def week_starts(asked: reports.Period) -> list[str]:
    """The Mondays of every ISO week the period touches."""
    first = asked.date_from - timedelta(days=asked.date_from.weekday())
    count = (asked.date_to - first).days // 7 + 1
    return [(first + timedelta(weeks=i)).isoformat() for i in range(count)]


def _not_after_expiry() -> Any:
    """Discarding a unit that had already expired is counted once, as expired (as the reports do)."""
    return or_(
        UnitEvent.to_status != UnitStatus.DISCARDED.value,
        UnitEvent.from_status.is_(None),
        UnitEvent.from_status != UnitStatus.EXPIRED.value,
    )


def usage_rows(session: Session, organisation_id: uuid.UUID, asked: reports.Period) -> list[WeekRow]:
    """Distinct units per week, group and component that were issued, transfused, expired or discarded."""
    week = utc_week(UnitEvent.at)
    counts = [
        func.count(distinct(case((UnitEvent.to_status == kind, UnitEvent.unit_id)))) for kind in SERIES_KINDS
    ]
    query = (
        reports.unit_events_in(
            organisation_id, asked, UnitEvent.to_status.in_(SERIES_KINDS), _not_after_expiry()
        )
        .add_columns(week, BloodUnit.blood_group, BloodUnit.component, *counts)
        .group_by(week, BloodUnit.blood_group, BloodUnit.component)
    )
    rows = [WeekRow(*row) for row in session.execute(query)]
    return sorted(
        rows, key=lambda r: (r.week, BLOOD_GROUPS.index(r.blood_group), COMPONENTS.index(r.component))
    )


def donation_weeks(
    session: Session, organisation_id: uuid.UUID, asked: reports.Period, weeks: list[str]
) -> list[DonationWeek]:
    """Completed donations per week of the period (zeros included)."""
    week = utc_week(Donation.collected_at)
    query = (
        reports.donations_in(organisation_id, asked, Donation.outcome == "completed")
        .add_columns(week, func.count(Donation.id))
        .group_by(week)
    )
    counts = {monday: int(number) for monday, number in session.execute(query)}
    return [DonationWeek(monday, counts.get(monday, 0)) for monday in weeks]


def series_period(start: date | None, end: date | None, today: date) -> reports.Period:
    """The period asked for (default: the last 52 weeks to today; 422 when reversed or over three years)."""
    end = end or today
    return reports.period(start or end - timedelta(days=DEFAULT_DAYS), end, today=today)


def weekly_series(
    session: Session,
    principal: Principal,
    organisation_id: uuid.UUID | None,
    start: date | None = None,
    end: date | None = None,
) -> Series:
    """The weekly usage, wastage and donations of a blood bank for the period (audited)."""
    organisation = blood_organisation(session, principal, organisation_id, "analytics.blood.series")
    asked = series_period(start, end, utcnow().date())
    weeks = week_starts(asked)
    result = Series(
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        period=asked,
        weeks=weeks,
        usage=usage_rows(session, organisation.id, asked),
        donations=donation_weeks(session, organisation.id, asked, weeks),
    )
    _audit(
        session,
        principal,
        "analytics.blood.series",
        organisation.id,
        start=asked.date_from,
        end=asked.date_to,
    )
    return result


# --- demand forecast and supply outlook ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outlook:
    """The red cell demand forecast and supply of every group of one organisation on one day."""

    organisation_id: uuid.UUID
    organisation_name: str
    today: date
    data_version: str
    forecasts: list[forecast.GroupForecast]
    supplies: list[forecast.Supply]
    call_groups: list[str]
    seconds: float


def demand_series(session: Session, organisation_id: uuid.UUID, now: datetime) -> dict[str, pd.Series]:
    """Red cells issued per whole week and group, from the organisation's first red cell issue to the
    last week over (the same weeks for every group; zeros included; empty when nothing was issued)."""
    issued = and_(
        UnitEvent.organisation_id == organisation_id,
        UnitEvent.to_status == UnitStatus.ISSUED.value,
        BloodUnit.component == RED_CELLS,
    )
    joined = select().select_from(UnitEvent).join(BloodUnit, BloodUnit.id == UnitEvent.unit_id).where(issued)
    first = session.execute(joined.add_columns(func.min(UnitEvent.at))).scalar()
    if first is None:
        return {group: pd.Series([], dtype=float) for group in BLOOD_GROUPS}
    weeks = sarima.whole_periods(pd.Timestamp(first), pd.Timestamp(now), forecast.SPEC)
    week = utc_week(UnitEvent.at)
    query = joined.add_columns(week, BloodUnit.blood_group, func.count(distinct(UnitEvent.unit_id))).group_by(
        week, BloodUnit.blood_group
    )
    counts: dict[str, dict[pd.Timestamp, float]] = {group: {} for group in BLOOD_GROUPS}
    for monday, group, number in session.execute(query):
        counts[group][pd.Timestamp(monday)] = float(number)
    found = {}
    for group in BLOOD_GROUPS:
        values = pd.Series(counts[group], dtype=float).reindex(weeks, fill_value=0.0)
        values.index.freq = forecast.SPEC.freq
        found[group] = values
    return found


def shelf_expiries(session: Session, organisation_id: uuid.UUID, now: datetime) -> dict[str, list[date]]:
    """The expiry days (UTC) of the available, unexpired red cells per group (counted per expiry time)."""
    rows = session.execute(
        select(BloodUnit.blood_group, BloodUnit.expires_at, func.count())
        .where(
            BloodUnit.organisation_id == organisation_id,
            BloodUnit.status == UnitStatus.AVAILABLE.value,
            BloodUnit.component == RED_CELLS,
            BloodUnit.expires_at > now,
        )
        .group_by(BloodUnit.blood_group, BloodUnit.expires_at)
    )
    shelf: dict[str, list[date]] = {group: [] for group in BLOOD_GROUPS}
    for group, expires_at, number in rows:
        shelf[group] += [expires_at.date()] * int(number)
    return shelf


def outlook_for(session: Session, organisation: Organisation, now: datetime | None = None) -> Outlook:
    """The outlook of an organisation today, cached until its blood data or policy change (no permission
    check: callers check it)."""
    now = now or utcnow()
    version = data_version(session, organisation.id)

    def compute() -> Outlook:
        started = time.perf_counter()
        policy = policies.get_policy(session, organisation.id)
        demand = demand_series(session, organisation.id, now)
        shelf = shelf_expiries(session, organisation.id, now)
        forecasts = [forecast.forecast_group(group, demand[group]) for group in BLOOD_GROUPS]
        supplies = []
        for group_forecast in forecasts:
            group = group_forecast.blood_group
            daily, source = group_forecast.daily_demand, "forecast"
            if not daily:
                daily, source = (
                    (policy.baseline_daily_use or {}).get(f"{group}:{RED_CELLS}"),
                    "policy baseline",
                )
            supplies.append(
                forecast.supply(
                    group,
                    shelf[group],
                    float(daily) if daily else None,
                    source,
                    policies.threshold_days(policy, group, RED_CELLS),
                    float(policy.critical_stock_days),
                    now.date(),
                )
            )
        return Outlook(
            organisation_id=organisation.id,
            organisation_name=organisation.name,
            today=now.date(),
            data_version=version,
            forecasts=forecasts,
            supplies=supplies,
            call_groups=forecast.groups_to_call(supplies),
            seconds=time.perf_counter() - started,
        )

    return cache.results.get_or_compute(("blood-outlook", organisation.id, now.date()), version, compute)


def outlook(
    session: Session, principal: Principal, organisation_id: uuid.UUID | None, action: str
) -> Outlook:
    """The outlook of the blood bank the caller may see (audited with ``action``)."""
    organisation = blood_organisation(session, principal, organisation_id, action)
    result = outlook_for(session, organisation)
    _audit(session, principal, action, organisation.id)
    return result


def summary(
    session: Session, principal: Principal, organisation_id: uuid.UUID | None
) -> tuple[Outlook, list[reports.StockRow]]:
    """The outlook and the stock now (every component) of the blood bank the caller may see (audited)."""
    result = outlook(session, principal, organisation_id, "analytics.blood.summary")
    return result, reports.stock_rows(session, result.organisation_id, utcnow())


# --- donation trends ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DonorMonth:
    """Completed donations of one month by first-time donors (their first completed donation anywhere)
    and by returning ones."""

    month: str
    first_time: int
    returning: int


@dataclass(frozen=True)
class DonationTrends:
    """Donations of one organisation per month: by group, and by first-time against returning donors."""

    organisation_id: uuid.UUID
    organisation_name: str
    period: reports.Period
    by_group: list[reports.DonationMonth]
    by_donor: list[DonorMonth]
    summary: reports.DonationSummary


def donor_months(session: Session, organisation_id: uuid.UUID, asked: reports.Period) -> list[DonorMonth]:
    """Completed donations per month of the period, split by whether it was the donor's first."""
    firsts = (
        select(Donation.donor_id, func.min(Donation.collected_at).label("first_at"))
        .where(Donation.outcome == "completed")
        .group_by(Donation.donor_id)
        .subquery()
    )
    month = utc_month(Donation.collected_at)
    first = func.count(case((Donation.collected_at == firsts.c.first_at, Donation.id)))
    query = (
        reports.donations_in(organisation_id, asked, Donation.outcome == "completed")
        .join(firsts, firsts.c.donor_id == Donation.donor_id)
        .add_columns(month, first, func.count(Donation.id))
        .group_by(month)
    )
    counts = {m: (int(f), int(total)) for m, f, total in session.execute(query)}
    months = []
    for m in asked.months:
        first_time, total = counts.get(m, (0, 0))
        months.append(DonorMonth(m, first_time, total - first_time))
    return months


def donation_trends(
    session: Session,
    principal: Principal,
    organisation_id: uuid.UUID | None,
    start: date | None = None,
    end: date | None = None,
) -> DonationTrends:
    """Donations per month of the period at a blood bank (audited)."""
    organisation = blood_organisation(session, principal, organisation_id, "analytics.blood.donations")
    asked = series_period(start, end, utcnow().date())
    result = DonationTrends(
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        period=asked,
        by_group=reports.monthly_donations(session, organisation.id, asked),
        by_donor=donor_months(session, organisation.id, asked),
        summary=reports.donation_summary(session, organisation.id, asked),
    )
    _audit(
        session,
        principal,
        "analytics.blood.donations",
        organisation.id,
        start=asked.date_from,
        end=asked.date_to,
    )
    return result


# --- the donor's view ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DonationYear:
    """A donor's completed donations in one calendar year."""

    year: int
    donations: int


@dataclass(frozen=True)
class Need:
    """How much the donor's group is needed at one blood bank they gave at (the staff outlook's level)."""

    organisation_id: uuid.UUID
    organisation_name: str
    level: str


@dataclass(frozen=True)
class MyBlood:
    """A donor's own figures: donations per year, the next day they may give whole blood, and the need
    for their group where they give."""

    blood_group: str | None
    total_donations: int
    last_donation: date | None
    years: list[DonationYear]
    eligible_today: bool
    next_eligible_date: date | None
    reasons: list[str]
    needs: list[Need]


def my_blood(session: Session, principal: Principal) -> MyBlood:
    """The signed-in donor's figures (``donor:self``; 404 until their donor profile exists; audited)."""
    donor = donors.own_donor(session, principal, "analytics.blood.me")
    now = utcnow()
    year = func.extract("year", Donation.collected_at)
    rows = session.execute(
        select(year, func.count(Donation.id), func.max(Donation.collected_at))
        .where(Donation.donor_id == donor.id, Donation.outcome == "completed")
        .group_by(year)
        .order_by(year)
    ).all()
    verdict = donors.donor_status(session, donor, DonationType.WHOLE_BLOOD.value, now.date())
    last = max((latest for _, _, latest in rows), default=None)
    return MyBlood(
        blood_group=donor.blood_group,
        total_donations=sum(int(n) for _, n, _ in rows),
        last_donation=last.date() if last else None,
        years=[DonationYear(int(y), int(n)) for y, n, _ in rows],
        eligible_today=verdict.eligible,
        next_eligible_date=verdict.next_eligible_date,
        reasons=verdict.reasons,
        needs=_needs(session, donor, now),
    )


def _needs(session: Session, donor: Donor, now: datetime) -> list[Need]:
    """The level of the donor's group at their home blood bank and every one they gave at."""
    if donor.blood_group is None:
        return []
    given_at = select(Donation.organisation_id).where(Donation.donor_id == donor.id).distinct()
    ids = set(session.execute(given_at).scalars()) | (
        {donor.organisation_id} if donor.organisation_id else set()
    )
    found = session.execute(select(Organisation).where(Organisation.id.in_(ids)).order_by(Organisation.name))
    needs = []
    for organisation in found.scalars():
        outlook_ = outlook_for(session, organisation, now)
        level = next(s.level for s in outlook_.supplies if s.blood_group == donor.blood_group)
        needs.append(Need(organisation.id, organisation.name, level))
    return needs


def organisation_choices(session: Session, principal: Principal) -> list[tuple[str, str]]:
    """(id, name) of the blood banks the caller may pick: every organisation for administrators, none
    (their own is fixed) for staff."""
    if has_perm(principal, Perm.BLOOD_STOCK) and not principal.is_system:
        return []
    rows = session.execute(select(Organisation.id, Organisation.name).order_by(Organisation.name))
    return [(str(org_id), name) for org_id, name in rows]
