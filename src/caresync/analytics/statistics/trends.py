"""Health trends over an encounter frame (:data:`caresync.analytics.data.FRAME_COLUMNS`), pure functions.

A condition's *count* is the number of encounters diagnosed with it (an encounter with three diagnoses
counts once for each of its three conditions). Weeks are ISO weeks (Monday to Sunday, UTC); months are
calendar months (UTC).

- :func:`weekly_top`: the top conditions of each week with the change from the ISO week before.
- :func:`seasonal_profile`: each condition's average count per calendar month over the months covered,
  and its ratio to the condition's overall monthly mean, so that the peak month stands out (a ratio of 2
  means twice as many cases as in an average month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from caresync.analytics.rules import CONDITION_BY_CODE

TOP = 5  # conditions listed per week
WEEK = timedelta(days=7)


def condition_name(code: str) -> str:
    """The display name of an ICD-10 code CareSync counts (the code itself if unknown)."""
    condition = CONDITION_BY_CODE.get(code)
    return condition.name if condition else code


def condition_encounters(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (encounter, condition): ``encounter_id``, ``code``, ``started_at``."""
    return frame[["encounter_id", "code", "started_at"]].drop_duplicates(["encounter_id", "code"])


def week_starts(moments: pd.Series) -> pd.Series:
    """The Monday (midnight, naive UTC) of the ISO week of each UTC moment."""
    days = moments.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return days - pd.to_timedelta(days.dt.day_of_week, unit="D")


def monday_of(day: date) -> date:
    """The Monday of the ISO week of ``day``."""
    return day - timedelta(days=day.weekday())


def iso_week_label(monday: date) -> str:
    """``2026-W03``: the ISO year and week number of a week."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class WeeklyTop:
    """One of the top conditions of an ISO week. ``change_pct`` is None when the week before had no case
    (a percentage of zero is undefined)."""

    week: str
    week_start: date
    rank: int
    code: str
    name: str
    count: int
    previous: int
    change: int
    change_pct: float | None


def weekly_table(frame: pd.DataFrame, first_week: date, last_week: date) -> pd.DataFrame:
    """Counts per ISO week (rows: every Monday from ``first_week`` to ``last_week``, empty weeks as zeros)
    and condition (columns)."""
    rows = condition_encounters(frame)
    weeks = pd.date_range(pd.Timestamp(first_week), pd.Timestamp(last_week), freq="7D")
    counts = rows.groupby([week_starts(rows["started_at"]).rename("week"), "code"]).size()
    table = counts.unstack("code", fill_value=0) if len(counts) else pd.DataFrame(index=weeks)
    return table.reindex(weeks, fill_value=0).astype("int64")


def weekly_top(frame: pd.DataFrame, first_week: date, last_week: date, *, top: int = TOP) -> list[WeeklyTop]:
    """The ``top`` conditions by count of each ISO week from ``first_week`` to ``last_week`` (Mondays,
    both included), ties broken by code, with the change from the week before (a week with no encounter
    lists nothing). The week before ``first_week`` is read from the same frame (zero when it holds no
    encounter then): load it with the period to get the first week's change right."""
    if monday_of(first_week) != first_week or monday_of(last_week) != last_week:
        raise ValueError("weeks are given by their Monday")
    table = weekly_table(frame, first_week - WEEK, last_week)
    previous = table.shift(1, fill_value=0)
    result: list[WeeklyTop] = []
    for monday in table.index[1:]:
        counts = table.loc[monday]
        ranked = sorted(((-int(n), str(code)) for code, n in counts.items() if n > 0))[:top]
        for rank, (negative, code) in enumerate(ranked, start=1):
            count, before = -negative, int(previous.loc[monday, code])
            result.append(
                WeeklyTop(
                    week=iso_week_label(monday.date()),
                    week_start=monday.date(),
                    rank=rank,
                    code=code,
                    name=condition_name(code),
                    count=count,
                    previous=before,
                    change=count - before,
                    change_pct=round(100 * (count - before) / before, 1) if before else None,
                )
            )
    return result


@dataclass(frozen=True)
class MonthProfile:
    """A condition's average count in one calendar month (over the ``months_observed`` such months of the
    period) and its ratio to the condition's overall monthly mean; ``peak`` marks its highest month."""

    code: str
    name: str
    month: int
    months_observed: int
    mean_count: float
    ratio: float
    peak: bool


@dataclass(frozen=True)
class SeasonalPeak:
    """A condition's total in the period, its mean per month, the calendar month in which it peaks and by
    how much, and the month the condition usually peaks in (:mod:`caresync.analytics.rules`; None when it
    has no season)."""

    code: str
    name: str
    total: int
    monthly_mean: float
    peak_month: int
    peak_ratio: float
    usual_peak_month: int | None


@dataclass(frozen=True)
class SeasonalProfile:
    """Seasonal profiles of every condition seen in ``months`` calendar months (``first_month`` to
    ``last_month``, ``YYYY-MM``), conditions by total (largest first)."""

    months: int
    first_month: str
    last_month: str
    peaks: list[SeasonalPeak]
    profile: list[MonthProfile]


def _month_number(year: int, month: int) -> int:
    return year * 12 + month - 1


def seasonal_profile(
    frame: pd.DataFrame, first: date | None = None, last: date | None = None
) -> SeasonalProfile:
    """Each condition's mean count per calendar month over the calendar months from ``first`` to ``last``
    (by default the frame's first and last months, none for an empty frame; months without a case count as
    zero). Encounters
    outside those months are left out. Partial months at the edges count as whole ones: give whole months
    for an unbiased profile."""
    rows = condition_encounters(frame)
    moments = rows["started_at"].dt.tz_convert("UTC")
    numbers = moments.dt.year * 12 + moments.dt.month - 1
    if first is None or last is None:
        if rows.empty:
            return SeasonalProfile(months=0, first_month="", last_month="", peaks=[], profile=[])
        first = first or moments.min().date()
        last = last or moments.max().date()
    covered = np.arange(_month_number(first.year, first.month), _month_number(last.year, last.month) + 1)
    if covered.size == 0:
        raise ValueError("last is before first")
    inside = rows.assign(number=numbers)[numbers.between(covered[0], covered[-1])]
    counts = (
        inside.groupby(["code", "number"]).size().unstack("number", fill_value=0)
        if len(inside)
        else pd.DataFrame(columns=covered, dtype="int64")
    ).reindex(columns=covered, fill_value=0)
    calendar = pd.Series(covered % 12 + 1, index=covered)
    observed = calendar.value_counts()
    by_month = counts.T.groupby(calendar).sum().T / observed.sort_index()
    peaks, profile = [], []
    totals = counts.sum(axis=1).sort_values(ascending=False, kind="stable")
    for code, total in totals.items():
        mean = total / covered.size
        means = by_month.loc[code]
        peak_month = int(means.idxmax())
        usual = CONDITION_BY_CODE[code].peak_month if code in CONDITION_BY_CODE else 0
        peaks.append(
            SeasonalPeak(
                code=str(code),
                name=condition_name(str(code)),
                total=int(total),
                monthly_mean=round(mean, 3),
                peak_month=peak_month,
                peak_ratio=round(means.max() / mean, 3),
                usual_peak_month=usual or None,
            )
        )
        profile += [
            MonthProfile(
                code=str(code),
                name=condition_name(str(code)),
                month=int(month),
                months_observed=int(observed[month]),
                mean_count=round(float(value), 3),
                ratio=round(float(value) / mean, 3),
                peak=int(month) == peak_month,
            )
            for month, value in means.items()
        ]
    return SeasonalProfile(
        months=int(covered.size),
        first_month=f"{first.year:04d}-{first.month:02d}",
        last_month=f"{last.year:04d}-{last.month:02d}",
        peaks=peaks,
        profile=profile,
    )
