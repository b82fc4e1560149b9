"""Use cases of the statistics area: health trends, seasonal profiles, demographics and chi-square
associations of the organisations a user's analyses cover.

Each one checks the permission (:func:`caresync.analytics.data.analytics_scope`, 403 audited), narrows to
the organisation asked for (which must be in scope: 403 audited otherwise), loads the encounters of the
period, computes with the pure functions of :mod:`.trends`, :mod:`.demographics` and :mod:`.associations`,
caches the answer until new encounters arrive (:mod:`caresync.analytics.cache`) and audits the view
(aggregates only: no patient in the detail). The caller commits.

A period is whole UTC days, ``start`` to ``end`` inclusive; either may be omitted (no bound). Trends cover
whole ISO weeks: from the week of ``start`` (or, without ``start``, the last ``weeks`` weeks) to the week of
``end`` (default: today).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar

import pandas as pd
from sqlalchemy.orm import Session

from caresync.analytics import cache
from caresync.analytics.data import covered_organisations, shared_encounter_frame
from caresync.analytics.statistics.associations import Associations, associations
from caresync.analytics.statistics.demographics import GroupShare, demographics
from caresync.analytics.statistics.trends import (
    WEEK,
    SeasonalProfile,
    WeeklyTop,
    monday_of,
    seasonal_profile,
    weekly_top,
)
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from caresync.db import utcnow

DEFAULT_WEEKS = 12
MAX_WEEKS = 5 * 53  # the longest trend table: five years of weeks
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)  # the dates a period may name
T = TypeVar("T")


@dataclass(frozen=True)
class Filters:
    """What an analysis covers: one organisation (None: every organisation in the caller's scope) and the
    period (``start`` to ``end``, inclusive UTC days; None: unbounded)."""

    organisation_id: uuid.UUID | None
    start: date | None
    end: date | None


@dataclass(frozen=True)
class Analysis(Generic[T]):
    """An answer, the filters it answers and the data version it was computed from."""

    filters: Filters
    data_version: str
    result: T


@dataclass(frozen=True)
class Trends:
    """The top conditions of each ISO week from ``first_week`` to ``last_week`` (Mondays)."""

    first_week: date
    last_week: date
    weeks: list[WeeklyTop]


def midnight(day: date) -> datetime:
    """The first instant (UTC) of a day."""
    return datetime.combine(day, time(), tzinfo=UTC)


def check_period(start: date | None, end: date | None) -> None:
    """422 when the period ends before it starts, or names a day outside :data:`FIRST_DAY` to
    :data:`LAST_DAY`."""
    for day in (start, end):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ValidationFailed(f"Dates must be between {FIRST_DAY} and {LAST_DAY}; {day} is not.")
    if start is not None and end is not None and end < start:
        raise ValidationFailed(f"The period ends ({end}) before it starts ({start}).")


def _authorise(session: Session, principal: Principal, kind: str, filters: Filters) -> list[uuid.UUID] | None:
    """The organisations one analysis may cover (403 audited), once its period is checked (422)."""
    organisations = covered_organisations(
        session, principal, filters.organisation_id, f"analytics.{kind}.view"
    )
    check_period(filters.start, filters.end)
    return organisations


def _answer(
    session: Session,
    principal: Principal,
    kind: str,
    filters: Filters,
    organisations: list[uuid.UUID] | None,
    options: dict[str, Hashable],
    compute: Callable[[], T],
    export: str | None,
) -> Analysis[T]:
    """The cached answer (computed on a miss or when the organisations' encounters changed), audited."""
    version = cache.data_version(session, organisations)
    scope_key = None if organisations is None else tuple(sorted(str(o) for o in organisations))
    key = ("statistics", kind, scope_key, filters.start, filters.end, tuple(sorted(options.items())))
    result = cache.results.get_or_compute(key, version, compute)
    audit.record(
        session,
        principal,
        f"analytics.{kind}.view",
        resource_type="organisation" if filters.organisation_id else "analytics",
        resource_id=filters.organisation_id or "",
        detail={"start": filters.start, "end": filters.end, **options, "export": export},
    )
    return Analysis(filters=filters, data_version=version, result=result)


def _frame(
    session: Session, organisations: list[uuid.UUID] | None, start: date | None, end: date | None
) -> pd.DataFrame:
    """Encounters of these organisations on the days ``start`` to ``end`` (inclusive)."""
    return shared_encounter_frame(
        session,
        organisation_ids=organisations,
        start=midnight(start) if start else None,
        end=midnight(end + timedelta(days=1)) if end else None,
    )


def trend_weeks(start: date | None, end: date | None, weeks: int, today: date) -> tuple[date, date]:
    """The first and last Monday of a trend table (422 beyond :data:`MAX_WEEKS` weeks)."""
    check_period(start, end)
    last = monday_of(end or today)
    first = monday_of(start) if start else last - (weeks - 1) * WEEK
    count = (last - first).days // 7 + 1
    if count > MAX_WEEKS:
        raise ValidationFailed(f"A trend table covers at most {MAX_WEEKS} weeks; this period has {count}.")
    return first, last


def trends(
    session: Session,
    principal: Principal,
    filters: Filters,
    *,
    weeks: int = DEFAULT_WEEKS,
    today: date | None = None,
    export: str | None = None,
) -> Analysis[Trends]:
    """The top 5 conditions of each ISO week with their week-over-week change (the week before the first
    one is loaded too, as the first week's baseline)."""
    organisations = _authorise(session, principal, "trends", filters)
    first, last = trend_weeks(filters.start, filters.end, weeks, today or utcnow().date())

    def compute() -> Trends:
        frame = _frame(session, organisations, first - WEEK, last + WEEK - timedelta(days=1))
        return Trends(first_week=first, last_week=last, weeks=weekly_top(frame, first, last))

    options: dict[str, Hashable] = {"first_week": first, "last_week": last}
    return _answer(session, principal, "trends", filters, organisations, options, compute, export)


def seasonality(
    session: Session, principal: Principal, filters: Filters, *, export: str | None = None
) -> Analysis[SeasonalProfile]:
    """Each condition's average count per calendar month and its ratio to the condition's monthly mean,
    over the months of the period (by default the months from the first to the last encounter)."""

    organisations = _authorise(session, principal, "seasonality", filters)

    def compute() -> SeasonalProfile:
        frame = _frame(session, organisations, filters.start, filters.end)
        return seasonal_profile(frame, filters.start, filters.end)

    return _answer(session, principal, "seasonality", filters, organisations, {}, compute, export)


def demographic_profile(
    session: Session, principal: Principal, filters: Filters, *, export: str | None = None
) -> Analysis[list[GroupShare]]:
    """Age bands and sex of the patients and encounters of the period, overall and per organisation."""

    organisations = _authorise(session, principal, "demographics", filters)

    def compute() -> list[GroupShare]:
        return demographics(_frame(session, organisations, filters.start, filters.end))

    return _answer(session, principal, "demographics", filters, organisations, {}, compute, export)


def association_tests(
    session: Session, principal: Principal, filters: Filters, *, export: str | None = None
) -> Analysis[Associations]:
    """Chi-square tests of age band and sex against each condition, for the patients of the period."""

    organisations = _authorise(session, principal, "associations", filters)

    def compute() -> Associations:
        return associations(_frame(session, organisations, filters.start, filters.end))

    return _answer(session, principal, "associations", filters, organisations, {}, compute, export)
