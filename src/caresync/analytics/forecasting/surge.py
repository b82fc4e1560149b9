"""Illness surges: per organisation and condition, the recent weeks and a short forecast against the
condition's seasonal norm, as a :class:`~caresync.analytics.rules.SurgeLevel` (pure, no I/O).

Series. Distinct encounters with the condition per ISO week (Monday start) and organisation, zero-filled,
whole weeks only (as :mod:`.sarima` counts them), up to ``as_of``.

Seasonal norm of a week. The same week in every earlier year of data (52, 104, ... weeks before) and the
week either side of it: their mean and sample standard deviation. A condition needs one earlier year to
have a norm; without one it is reported ``low`` with "no seasonal norm yet".

Two signals, each scored against the norm of the weeks it covers:

- *observed*: the smaller count of the last :data:`RECENT_WEEKS` whole weeks, so a sustained rise counts
  and one busy week does not (an outbreak in progress is flagged from the counts themselves, whatever a
  model makes of it; scanning three years of synthetic data every four weeks, this cut false "high"
  levels from 4 to 1 in 1,800 assessments);
- *forecast*: the mean of the next :data:`HORIZON_WEEKS` weeks from an AR(1) model with a constant and
  two yearly Fourier pairs (``statsmodels`` ``AutoReg``, least squares: milliseconds per series), so the
  persistence of a rise carries into the coming weeks while the seasonal shape is kept.

For a signal of ``x`` encounters a week against a norm with mean ``m`` and deviation ``s``:
``z = (x - m) / s'`` with ``s' = max(s, sqrt(m), 1)`` (never below Poisson noise, so a handful of cases of
a rare condition does not make a huge z), ``ratio = x / max(m, 0.5)`` and ``excess = x - m``. A level needs
all three of its row of :data:`LEVEL_RULES`:

========  ======  ========  =========
level     z >=    ratio >=  excess >=
========  ======  ========  =========
critical  4       2.0       8
high      3       1.5       5
moderate  2       1.2       3
========  ======  ========  =========

otherwise ``low`` (a few extra cases a week are not a surge, whatever the ratio). The condition's level
is the higher of the two signals'. Ordinary seasonal peaks sit near their norm (which is built from the
same weeks of earlier years), so they stay low.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.ar_model import AutoReg
from threadpoolctl import threadpool_limits

from caresync.analytics.forecasting.sarima import (
    WEEKLY,
    fourier_terms,
    future_periods,
    period_start,
    whole_periods,
)
from caresync.analytics.rules import CONDITION_BY_CODE, SurgeLevel

RECENT_WEEKS = 2
HORIZON_WEEKS = 4
NORM_HALF_WIDTH = 1  # weeks either side of the same week in earlier years
SEASON_WEEKS = 52
FORECAST_FOURIER_TERMS = 2
LEVEL_RULES: tuple[tuple[SurgeLevel, float, float, float], ...] = (
    (SurgeLevel.CRITICAL, 4.0, 2.0, 8.0),
    (SurgeLevel.HIGH, 3.0, 1.5, 5.0),
    (SurgeLevel.MODERATE, 2.0, 1.2, 3.0),
)
LEVEL_ORDER = {level: rank for rank, level in enumerate(SurgeLevel)}


def surge_level(z: float, ratio: float, excess: float) -> SurgeLevel:
    """The level of one signal by :data:`LEVEL_RULES` (the first row all of whose thresholds are met)."""
    for level, min_z, min_ratio, min_excess in LEVEL_RULES:
        if z >= min_z and ratio >= min_ratio and excess >= min_excess:
            return level
    return SurgeLevel.LOW


@dataclass(frozen=True)
class Signal:
    """One signal (observed or forecast) against its seasonal norm."""

    value: float
    norm_mean: float
    norm_sd: float
    z: float
    ratio: float
    level: SurgeLevel


@dataclass(frozen=True)
class Surge:
    """One condition at one organisation: both signals and the resulting level."""

    organisation_id: str
    code: str
    name: str
    week: str  # the last whole week counted (its Monday)
    observed: Signal | None
    forecast: Signal | None
    forecast_weeks: list[float]
    level: SurgeLevel
    signal: str  # which signal set the level: observed | forecast | none
    note: str

    @property
    def strength(self) -> float:
        """The larger z-score of the two signals (for ordering conditions of the same level)."""
        return max((s.z for s in (self.observed, self.forecast) if s is not None), default=0.0)


def weekly_counts(frame: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """Distinct encounters per whole week (rows) and (organisation, condition) (columns), zero-filled."""
    if frame.empty:
        return pd.DataFrame()
    rows = frame.drop_duplicates(["encounter_id", "code"])
    weeks = period_start(rows["started_at"], WEEKLY)
    keyed = pd.DataFrame(
        {
            "week": weeks,
            "organisation_id": rows["organisation_id"].astype(str).to_numpy(),
            "code": rows["code"],
        }
    )
    table = keyed.groupby(["week", "organisation_id", "code"]).size().unstack(["organisation_id", "code"])
    index = whole_periods(rows["started_at"].min(), as_of, WEEKLY)
    return table.reindex(index, fill_value=0).fillna(0).astype(float)


def seasonal_norm(series: pd.Series, weeks: pd.DatetimeIndex) -> tuple[float, float] | None:
    """Mean and standard deviation of the same weeks (± :data:`NORM_HALF_WIDTH`) in every earlier year
    (``series``: whole weeks, consecutive; ``weeks`` may lie beyond its end)."""
    values = series.to_numpy(dtype=float)
    picked: list[float] = []
    for position in (weeks - series.index[0]).days // 7:
        back = int(position) - SEASON_WEEKS
        while back + NORM_HALF_WIDTH >= 0:
            window = range(max(back - NORM_HALF_WIDTH, 0), min(back + NORM_HALF_WIDTH + 1, len(values)))
            picked.extend(values[p] for p in window)
            back -= SEASON_WEEKS
    if not picked:
        return None
    return float(np.mean(picked)), float(np.std(picked, ddof=1)) if len(picked) > 1 else 0.0


def score(value: float, norm: tuple[float, float]) -> Signal:
    """A signal's z-score, ratio and level against a norm ``(mean, sd)`` (see the module docstring)."""
    mean, sd = norm
    spread = max(sd, float(np.sqrt(mean)), 1.0)
    z = (value - mean) / spread
    ratio = value / max(mean, 0.5)
    return Signal(value, mean, sd, z, ratio, surge_level(z, ratio, value - mean))


@dataclass(frozen=True)
class Calendar:
    """The weeks of a counts table, the weeks ahead, and their Fourier terms (computed once for all
    series)."""

    weeks: pd.DatetimeIndex
    future: pd.DatetimeIndex
    exog: np.ndarray
    exog_future: np.ndarray

    @classmethod
    def of(cls, weeks: pd.DatetimeIndex) -> Calendar:
        """The calendar of these consecutive whole weeks."""
        future = future_periods(weeks[-1], HORIZON_WEEKS, WEEKLY)
        return cls(
            weeks=weeks,
            future=future,
            exog=fourier_terms(weeks, FORECAST_FOURIER_TERMS).to_numpy(),
            exog_future=fourier_terms(future, FORECAST_FOURIER_TERMS).to_numpy(),
        )


def forecast_weeks(series: pd.Series, calendar: Calendar) -> np.ndarray | None:
    """The weeks of ``calendar.future`` from AR(1) + constant + yearly Fourier terms (``None`` with less
    than a year of weeks, a constant series or a failed fit)."""
    if len(series) < SEASON_WEEKS or series.std() == 0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = AutoReg(series.to_numpy(dtype=float), lags=1, trend="c", exog=calendar.exog).fit()
            predicted = fitted.predict(
                start=len(series), end=len(series) + len(calendar.future) - 1, exog_oos=calendar.exog_future
            )
    except (ValueError, np.linalg.LinAlgError):
        return None
    values = np.clip(np.asarray(predicted, dtype=float), 0, None)
    return values if np.isfinite(values).all() else None


def assess(series: pd.Series, calendar: Calendar, organisation_id: str, code: str) -> Surge:
    """The surge assessment of one condition's weekly series (over ``calendar.weeks``)."""
    recent = calendar.weeks[-RECENT_WEEKS:]
    observed_norm = seasonal_norm(series, recent)
    predicted = forecast_weeks(series, calendar)
    forecast_norm = seasonal_norm(series, calendar.future)
    observed = score(float(series[recent].min()), observed_norm) if observed_norm else None
    forecast = (
        score(float(predicted.mean()), forecast_norm) if predicted is not None and forecast_norm else None
    )
    signals = [(name, s) for name, s in (("observed", observed), ("forecast", forecast)) if s is not None]
    name, top = max(signals, key=lambda item: (LEVEL_ORDER[item[1].level], item[1].z), default=("none", None))
    level = top.level if top else SurgeLevel.LOW
    condition = CONDITION_BY_CODE.get(code)
    return Surge(
        organisation_id=organisation_id,
        code=code,
        name=condition.name if condition else code,
        week=calendar.weeks[-1].date().isoformat(),
        observed=observed,
        forecast=forecast,
        forecast_weeks=[] if predicted is None else [float(v) for v in predicted],
        level=level,
        signal=name if level != SurgeLevel.LOW else "none",
        note="" if observed_norm else "no seasonal norm yet (needs a year of weekly history)",
    )


def surges(frame: pd.DataFrame, *, as_of: pd.Timestamp) -> list[Surge]:
    """Every (organisation, condition) with encounters before ``as_of``, most urgent first."""
    counts = weekly_counts(frame, as_of=as_of)
    if counts.empty or len(counts.index) < RECENT_WEEKS:
        return []
    calendar = Calendar.of(pd.DatetimeIndex(counts.index))
    with threadpool_limits(1):  # many tiny regressions: BLAS threads only get in each other's way
        found = [
            assess(counts[(organisation_id, code)], calendar, str(organisation_id), str(code))
            for organisation_id, code in counts.columns
            if counts[(organisation_id, code)].sum() > 0
        ]
    return sorted(found, key=lambda s: (-LEVEL_ORDER[s.level], -s.strength, s.organisation_id, s.code))
