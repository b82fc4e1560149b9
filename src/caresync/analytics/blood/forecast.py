"""Red cell demand forecasts and the supply outlook of a blood bank (pure, no I/O).

Demand. A group's demand is the red cells it issued per ISO week (Monday), whole weeks only (see
:func:`caresync.analytics.forecasting.sarima.whole_periods`). The next :data:`HORIZON_WEEKS` weeks are
forecast with the clinical weekly model when the history allows it, and honestly with less otherwise:

- at least ``SPEC.min_length`` weeks (two years in the 70 % training window): the weekly model of
  :mod:`caresync.analytics.forecasting.sarima` (ARIMA(1,1,1) + yearly Fourier terms), its 70/30 and 80/20
  test metrics against the seasonal-naive baseline and the plain verdict, exactly as the clinical forecasts;
- at least :data:`MIN_TESTED_WEEKS`: the mean of the last :data:`MOVING_WINDOW` weeks (a moving average),
  with 80 % and 95 % intervals from the errors the same average made one week ahead in the past (normal
  quantiles), tested on the same chronological splits against the seasonal-naive baseline when the training
  window holds a year, else against the naive forecast (last week repeated), and said so;
- fewer weeks: the moving average without a test; no week at all: no forecast.

Supply. Days of supply now = available (unexpired) units / forecast daily demand (the mean of the forecast
weeks / 7). The projected shortage date is the first day, walking day by day without new supplies, on which
the units left (used first-expiring-first-out, lost on their expiry day) fall below the organisation's
minimum (its low-stock threshold in days of supply x the daily demand). Levels, worst first: ``critical``
below the critical days of supply now, ``short`` below the low-stock threshold now, ``watch`` when the
shortage is projected within :data:`WATCH_DAYS` days, else ``ok`` (also when no demand is known).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.stats import norm

from caresync.analytics.forecasting import metrics, sarima
from caresync.analytics.forecasting.sarima import SplitScore
from caresync.core.errors import ValidationFailed

HORIZON_WEEKS = 4
SPEC = dataclasses.replace(sarima.WEEKLY, horizon=HORIZON_WEEKS)
MOVING_WINDOW = 8  # weeks averaged by the short-history forecast
MIN_TESTED_WEEKS = 10  # fewer: the moving average is not tested (too few weeks to hold some back)
WATCH_DAYS = 7
LEVELS = ("ok", "watch", "short", "critical")  # in order of severity
MOVING_AVERAGE = "moving average"
NAIVE = "naive"
CALL_GROUPS = 3  # groups named for a donor call, at most


@dataclass(frozen=True)
class ForecastPoint:
    """One week of a forecast table (``actual`` is ``None`` for the future, ``baseline`` when there is
    no baseline forecast)."""

    week: str
    actual: float | None
    predicted: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    baseline: float | None


@dataclass(frozen=True)
class GroupForecast:
    """The red cell demand forecast of one blood group: how it was made (``method`` "sarima", "moving
    average" or "none"), why (``note``), its tests, the verdict and the weeks ahead."""

    blood_group: str
    method: str
    model: str
    baseline: str
    note: str
    weeks: int
    evaluations: list[SplitScore]
    better: str
    verdict: str
    forecast: list[ForecastPoint]

    @property
    def daily_demand(self) -> float | None:
        """Forecast units a day (mean of the forecast weeks / 7), None without a forecast."""
        if not self.forecast:
            return None
        return float(np.mean([p.predicted for p in self.forecast])) / 7


def _intervals(centre: np.ndarray, sigma: float) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    lower, upper = {}, {}
    for level in sarima.INTERVALS:
        z = float(norm.ppf(0.5 + level / 200))
        lower[level] = np.clip(centre - z * sigma, 0, None)
        upper[level] = centre + z * sigma
    return lower, upper


def moving_average(train: pd.Series, steps: int, window: int = MOVING_WINDOW) -> sarima.ModelForecast:
    """The mean of the last ``window`` weeks for each of ``steps`` weeks, with intervals from the errors
    of that average one week ahead over the training weeks (at least three of them; else a Poisson spread,
    the square root of the mean)."""
    values = train.to_numpy(dtype=float)
    level = float(values[-window:].mean())
    errors = [values[t] - values[max(0, t - window) : t].mean() for t in range(2, values.size)]
    sigma = float(np.std(errors, ddof=1)) if len(errors) >= 3 else math.sqrt(level)
    mean = np.full(steps, level)
    lower, upper = _intervals(mean, sigma)
    return sarima.ModelForecast(mean=mean, lower=lower, upper=upper, converged=True, seconds=0.0)


def _baseline_period(train: pd.Series) -> int:
    """The seasonal-naive lag when the training window holds a year of weeks, else 1 (naive)."""
    return SPEC.period if len(train) >= SPEC.period else 1


def _baseline_name(period: int) -> str:
    return sarima.BASELINE_NAME if period == SPEC.period else NAIVE


def _score(series: pd.Series, train_percent: int, period: int) -> SplitScore:
    """Test the moving average on one chronological split against the baseline of lag ``period``."""
    return sarima.score_split(
        series,
        train_percent,
        moving_average,
        period,
        model_name=MOVING_AVERAGE,
        baseline_name=_baseline_name(period),
    ).score


def _sarima_forecast(blood_group: str, series: pd.Series) -> GroupForecast:
    """The clinical weekly model's report for a long history (422 if the model cannot be fitted)."""
    report = sarima.forecast_report(series, SPEC)
    points = [
        ForecastPoint(
            p.period, None, p.sarima, p.lower_80, p.upper_80, p.lower_95, p.upper_95, p.seasonal_naive
        )
        for p in report.forecast
    ]
    fields = {f.name for f in dataclasses.fields(SplitScore)} - {"model", "baseline"}
    scores = [
        SplitScore(**{name: getattr(e, name) for name in fields}, model=e.sarima, baseline=e.seasonal_naive)
        for e in report.evaluations
    ]
    return GroupForecast(
        blood_group=blood_group,
        method="sarima",
        model=report.model,
        baseline=report.baseline,
        note=f"{SPEC.model} on {len(series)} weeks, tested on the 70/30 and 80/20 splits.",
        weeks=len(series),
        evaluations=scores,
        better=report.better,
        verdict=report.verdict,
        forecast=points,
    )


def _mean_verdict(scores: list[SplitScore], baseline: str) -> tuple[str, str]:
    """The verdict on the splits' mean MASE (mean MAE when a MASE is undefined)."""

    def mean(chosen: list[metrics.Accuracy]) -> metrics.Accuracy:
        mases = [a.mase for a in chosen]
        mase = None if any(m is None for m in mases) else float(np.mean([m for m in mases if m is not None]))
        mae = float(np.mean([a.mae for a in chosen]))
        return metrics.Accuracy(mae=mae, mse=math.nan, rmse=math.nan, mape=None, mase=mase)

    better, sentence = metrics.compare(
        mean([s.model for s in scores]),
        mean([s.baseline for s in scores]),
        model_name=MOVING_AVERAGE,
        baseline_name=baseline,
    )
    return better, f"{sentence} (mean over the {' and '.join(s.split for s in scores)} splits)"


def _future(after: pd.Timestamp, model: sarima.ModelForecast, naive: np.ndarray) -> list[ForecastPoint]:
    weeks = sarima.future_periods(after, HORIZON_WEEKS, SPEC)
    return [
        ForecastPoint(
            week=week.date().isoformat(),
            actual=None,
            predicted=float(model.mean[i]),
            lower_80=float(model.lower[80][i]),
            upper_80=float(model.upper[80][i]),
            lower_95=float(model.lower[95][i]),
            upper_95=float(model.upper[95][i]),
            baseline=float(naive[i]),
        )
        for i, week in enumerate(weeks)
    ]


def forecast_group(blood_group: str, series: pd.Series) -> GroupForecast:
    """The demand forecast of one group from its weekly red cell issues (see the module docstring)."""
    weeks = len(series)
    if weeks == 0:
        note = "No whole week of red cell issues yet: no forecast."
        return GroupForecast(blood_group, "none", "", "", note, 0, [], "", "", [])
    if weeks >= SPEC.min_length:
        try:
            return _sarima_forecast(blood_group, series)
        except ValidationFailed as exc:
            fallback = f"{exc.detail} "
    else:
        fallback = (
            f"Only {weeks} whole weeks of red cell issues: the weekly SARIMA model needs {SPEC.min_length} "
            "(two years in the 70 % training window). "
        )
    # One baseline for every split: the seasonal one only when even the smallest training window holds a year.
    period = _baseline_period(sarima.chronological_split(series, min(sarima.SPLITS))[0])
    baseline = _baseline_name(period)
    note = (
        f"{fallback}This is the mean of the last {MOVING_WINDOW} weeks, with intervals from its past errors"
    )
    model = moving_average(series, HORIZON_WEEKS)
    points = _future(series.index[-1], model, sarima.seasonal_naive(series, HORIZON_WEEKS, period))
    scores: list[SplitScore] = []
    better = verdict = ""
    if weeks < MIN_TESTED_WEEKS:
        note += f"; too few weeks to hold some back for a test ({MIN_TESTED_WEEKS} needed)."
    else:
        scores = [_score(series, percent, period) for percent in sarima.SPLITS]
        better, verdict = _mean_verdict(scores, baseline)
        against = (
            "the seasonal-naive forecast (the same week a year earlier)"
            if period == SPEC.period
            else "the naive forecast (last week repeated: the seasonal one needs a year of training weeks)"
        )
        note += f", tested against {against}."
    return GroupForecast(
        blood_group=blood_group,
        method=MOVING_AVERAGE,
        model=f"mean of the last {MOVING_WINDOW} weeks",
        baseline=baseline,
        note=note,
        weeks=weeks,
        evaluations=scores,
        better=better,
        verdict=verdict,
        forecast=points,
    )


@dataclass(frozen=True)
class Supply:
    """The red cell supply of one group now and its projection without new supplies."""

    blood_group: str
    available: int
    expiring_7_days: int
    daily_demand: float | None
    demand_source: str  # "forecast", "policy baseline" or "none"
    days_of_supply: float | None
    low_stock_days: float
    critical_stock_days: float
    minimum_units: float | None
    shortage_date: date | None
    level: str


def shortage_date(
    expiries: Sequence[date], daily_demand: float, minimum_units: float, today: date
) -> date | None:
    """The first day from ``today`` (within the forecast horizon) on which the units left fall below
    ``minimum_units``: each day the units expiring that day are lost, then the day's demand uses units
    first-expiring-first-out (fractions carried over). None when the stock lasts the horizon."""
    shelf = deque(sorted(expiries))
    owed = 0.0
    for offset in range(HORIZON_WEEKS * 7):
        day = today + timedelta(days=offset)
        while shelf and shelf[0] <= day:
            shelf.popleft()
        if len(shelf) < minimum_units:
            return day
        owed += daily_demand
        while owed >= 1 and shelf:
            shelf.popleft()
            owed -= 1
    return None


def supply_level(
    days_of_supply: float | None, low_days: float, critical_days: float, shortage: date | None, today: date
) -> str:
    """``critical``, ``short``, ``watch`` or ``ok`` (see the module docstring)."""
    if days_of_supply is None:
        return "ok"
    if days_of_supply < critical_days:
        return "critical"
    if days_of_supply < low_days:
        return "short"
    if shortage is not None and (shortage - today).days <= WATCH_DAYS:
        return "watch"
    return "ok"


def supply(
    blood_group: str,
    expiries: Sequence[date],
    daily_demand: float | None,
    demand_source: str,
    low_days: float,
    critical_days: float,
    today: date,
) -> Supply:
    """One group's days of supply, projected shortage date and level."""
    known = daily_demand if daily_demand and daily_demand > 0 else None
    days = len(expiries) / known if known else None
    minimum = low_days * known if known else None
    shortage = shortage_date(expiries, known, minimum, today) if known and minimum is not None else None
    return Supply(
        blood_group=blood_group,
        available=len(expiries),
        expiring_7_days=sum(1 for e in expiries if e <= today + timedelta(days=WATCH_DAYS)),
        daily_demand=known,
        demand_source=demand_source if known else "none",
        days_of_supply=days,
        low_stock_days=low_days,
        critical_stock_days=min(critical_days, low_days),
        minimum_units=minimum,
        shortage_date=shortage,
        level=supply_level(days, low_days, min(critical_days, low_days), shortage, today),
    )


def groups_to_call(supplies: Sequence[Supply], limit: int = CALL_GROUPS) -> list[str]:
    """The groups whose donors to call first: not ``ok``, worst level first, then fewest days of supply."""
    needy = [s for s in supplies if s.level != "ok"]
    needy.sort(
        key=lambda s: (-LEVELS.index(s.level), s.days_of_supply if s.days_of_supply is not None else 0)
    )
    return [s.blood_group for s in needy[:limit]]
