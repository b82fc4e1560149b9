"""The pure parts of blood supply analytics: the demand forecast (short-history fallback, chronological
splits without leakage, the long-history weekly model), days of supply, the shortage date and the levels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from caresync.analytics.blood import forecast
from caresync.analytics.forecasting import metrics

TODAY = date(2026, 3, 2)


def weekly(values: list[float], start: str = "2024-01-01") -> pd.Series:
    """A weekly series of Mondays."""
    index = pd.date_range(start, periods=len(values), freq="W-MON")
    return pd.Series(values, index=index, dtype=float)


def test_no_history_makes_no_forecast() -> None:
    result = forecast.forecast_group("O-", pd.Series([], dtype=float))
    assert result.method == "none"
    assert result.forecast == []
    assert result.daily_demand is None


def test_a_few_weeks_give_an_untested_moving_average_said_so() -> None:
    result = forecast.forecast_group("A+", weekly([7, 7, 7, 14, 7]))
    assert result.method == forecast.MOVING_AVERAGE
    assert result.evaluations == []
    assert "too few weeks" in result.note
    assert "needs 149" in result.note
    assert [p.predicted for p in result.forecast] == [pytest.approx(8.4)] * forecast.HORIZON_WEEKS
    assert result.daily_demand == pytest.approx(8.4 / 7)
    assert [p.week for p in result.forecast] == ["2024-02-05", "2024-02-12", "2024-02-19", "2024-02-26"]


def test_moving_average_splits_are_chronological_and_do_not_see_the_test_weeks() -> None:
    rng = np.random.default_rng(3)
    values = list(rng.poisson(8, 30).astype(float))
    result = forecast.forecast_group("O+", weekly(values))
    assert [e.split for e in result.evaluations] == ["70/30", "80/20"]
    for e, percent in zip(result.evaluations, (70, 80), strict=True):
        cut = 30 * percent // 100
        assert (e.train_size, e.test_size) == (cut, 30 - cut)
        assert e.test_start > e.train_end
        # the forecast is the mean of the last 8 training weeks: MAE recomputed by hand
        level = np.mean(values[cut - 8 : cut])
        assert e.model.mae == pytest.approx(np.mean(np.abs(np.array(values[cut:]) - level)))
        # baseline: the naive forecast (last training week repeated), the seasonal one needing a year
        assert e.baseline.mae == pytest.approx(np.mean(np.abs(np.array(values[cut:]) - values[cut - 1])))
    changed = forecast.forecast_group("O+", weekly(values[:21] + [100.0] * 9))
    assert changed.evaluations[0].model.mae != result.evaluations[0].model.mae  # the test weeks are scored
    first = forecast._score(weekly(values), 70, 1)
    assert first.train_end == changed.evaluations[0].train_end
    assert "naive forecast (last week repeated" in result.note
    assert result.verdict.endswith("(mean over the 70/30 and 80/20 splits)")


def test_intervals_nest_and_widen_with_the_level() -> None:
    result = forecast.forecast_group("B+", weekly([3, 9, 4, 8, 2, 10, 5, 7, 6, 6, 3, 9]))
    for p in result.forecast:
        assert p.lower_95 <= p.lower_80 <= p.predicted <= p.upper_80 <= p.upper_95
        assert p.lower_95 >= 0


def test_two_years_of_weeks_use_the_clinical_weekly_model() -> None:
    weeks = forecast.SPEC.min_length
    t = np.arange(weeks)
    values = list(20 + 5 * np.sin(2 * np.pi * t / 52.18) + np.random.default_rng(1).normal(0, 1, weeks))
    result = forecast.forecast_group("O+", weekly(values, start="2022-01-03"))
    assert result.method == "sarima"
    assert len(result.forecast) == forecast.HORIZON_WEEKS
    assert [e.split for e in result.evaluations] == ["70/30", "80/20"]
    assert all(e.test_start > e.train_end for e in result.evaluations)
    e = result.evaluations[0]
    assert e.baseline.mase is not None
    assert e.baseline.mase == pytest.approx(
        e.baseline.mae / metrics.seasonal_naive_scale(values[: e.train_size], 52)
    )
    assert "seasonal naive" in result.verdict


@pytest.mark.parametrize(
    ("available", "daily", "expiring_in", "low", "critical", "days", "shortage_in", "level"),
    [
        # no use known: no days of supply, "ok"
        (5, None, [], 3.0, 1.0, None, None, "ok"),
        # 0.5 units a day, below one day of supply: critical, short from today
        (0, 1.0, [], 3.0, 1.0, 0.0, 0, "critical"),
        (2, 1.0, [], 3.0, 1.0, 2.0, 0, "short"),
        # 10 units at 1 a day, minimum 3 units: below it on day 8 (7 used by then, 3 left... then 2)
        (10, 1.0, [], 3.0, 1.0, 10.0, 8, "ok"),
        (9, 1.0, [], 3.0, 1.0, 9.0, 7, "watch"),
        # 20 units would last to day 17, but 11 of them expire unused tomorrow: below 3 units on day 7
        (20, 1.0, [1] * 12, 3.0, 1.0, 20.0, 7, "watch"),
        # enough for the whole horizon: no shortage date
        (80, 1.0, [], 3.0, 1.0, 80.0, None, "ok"),
    ],
)
def test_days_of_supply_shortage_and_level(
    available: int,
    daily: float | None,
    expiring_in: list[int],
    low: float,
    critical: float,
    days: float | None,
    shortage_in: int | None,
    level: str,
) -> None:
    far = TODAY + timedelta(days=60)
    expiries = [TODAY + timedelta(days=d) for d in expiring_in] + [far] * (available - len(expiring_in))
    result = forecast.supply("O+", expiries, daily, "forecast", low, critical, TODAY)
    assert result.days_of_supply == (None if days is None else pytest.approx(days))
    assert result.shortage_date == (None if shortage_in is None else TODAY + timedelta(days=shortage_in))
    assert result.level == level


def test_units_expiring_today_do_not_count_and_fifo_uses_the_oldest_first() -> None:
    # 4 units: 2 expire in 3 days. At 1 a day the two oldest are used first, so nothing is lost.
    expiries = [TODAY + timedelta(days=3)] * 2 + [TODAY + timedelta(days=40)] * 2
    assert forecast.shortage_date(expiries, 1.0, 1.0, TODAY) == TODAY + timedelta(days=4)
    # at 0.1 a day they expire unused: below 3 units on day 3
    assert forecast.shortage_date(expiries, 0.1, 3.0, TODAY) == TODAY + timedelta(days=3)


def test_groups_to_call_worst_first() -> None:
    def s(group: str, level: str, days: float) -> forecast.Supply:
        return forecast.Supply(group, 1, 0, 1.0, "forecast", days, 3.0, 1.0, 3.0, None, level)

    supplies = [
        s("O+", "watch", 9),
        s("O-", "critical", 0.5),
        s("A-", "short", 2),
        s("B+", "ok", 20),
        s("A+", "watch", 8),
    ]
    assert forecast.groups_to_call(supplies) == ["O-", "A-", "A+"]
