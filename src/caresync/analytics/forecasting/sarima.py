"""Patient volume series and their forecasts: SARIMA against a seasonal-naive baseline (pure, no I/O).

Series. Volumes are distinct encounters per calendar month (``MS``) or per ISO week starting Monday
(``W-MON``), zero for periods without any. Only whole periods count: the period the data begin in is
dropped unless the first encounter falls on its first day, and periods not over by ``until`` are dropped
(a month in progress would look like a collapse in demand).

Models.

- Monthly: ``SARIMAX`` order (1,1,1), seasonal order (1,1,1,12), as issue #8 specifies.
- Weekly: a seasonal period of 52 in SARIMAX makes a 100+-dimensional state and is slow (and 52.18 weeks
  do not make a year), so the yearly cycle is regression on Fourier terms (``K`` = 3 sine/cosine pairs of
  period 365.25 / 7 weeks, computed from absolute dates so future weeks get theirs) with ARIMA(1,1,1)
  errors: ``SARIMAX(y, exog=fourier, order=(1,1,1))``, 0.1-0.3 s per fit on three years of weeks (a
  linear-trend ARMA(1,1) variant often failed to converge within 50 iterations and took 1-4 s).
- Both are fitted to the training window standardised (z-scores), which keeps the optimiser well
  conditioned; forecasts and interval bounds are transformed back.
- Fits run with BLAS limited to one thread: on a busy two-core machine OpenBLAS threads fighting over the
  cores made one monthly fit take 15 s instead of 0.6 s.
- Baseline: the seasonal-naive forecast (the same month, or the same week, one year earlier).

Evaluation. Chronological splits: the first ``p`` % of the periods train (``n * p // 100``), the rest test,
so every test period is after every training period (no leakage). Metrics on the test part are those of
:mod:`.metrics`; 80 % and 95 % prediction intervals come from ``get_forecast().conf_int(alpha)``.
Forecasts and interval bounds are clipped at zero (volumes cannot be negative).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace.sarimax import SARIMAX
from threadpoolctl import threadpool_limits

from caresync.analytics.forecasting import metrics
from caresync.core.errors import ValidationFailed

Granularity = Literal["monthly", "weekly"]
SPLITS = (70, 80)  # training percentages: 70/30 and 80/20
INTERVALS = (80, 95)
MODEL_NAME = "SARIMA"
BASELINE_NAME = "seasonal naive"
FOURIER_TERMS = 3
WEEKS_PER_YEAR = 365.25 / 7
EPOCH_MONDAY = pd.Timestamp("1970-01-05")
Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class Spec:
    """How one granularity is counted, modelled and forecast."""

    granularity: Granularity
    freq: str  # pandas frequency of the period starts
    period: int  # the seasonal lag of the baseline and of MASE's scale
    horizon: int  # periods forecast beyond the data
    model: str  # the model, as people read it
    unit: str

    @property
    def min_length(self) -> int:
        """The shortest series that leaves two full seasons in the smallest training window."""
        smallest = min(SPLITS)
        return next(n for n in range(1, 100 * self.period) if n * smallest // 100 >= 2 * self.period)


MONTHLY = Spec("monthly", "MS", 12, 12, "SARIMA(1,1,1)x(1,1,1,12)", "months")
WEEKLY = Spec("weekly", "W-MON", 52, 12, f"ARIMA(1,1,1) + {FOURIER_TERMS} yearly Fourier pairs", "weeks")
SPECS: dict[str, Spec] = {spec.granularity: spec for spec in (MONTHLY, WEEKLY)}


def period_start(moments: pd.Series | pd.DatetimeIndex, spec: Spec) -> pd.DatetimeIndex:
    """The start (midnight UTC, tz-naive) of the period each moment falls in."""
    index = pd.DatetimeIndex(moments)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    days = index.normalize()
    if spec.granularity == "monthly":
        return pd.DatetimeIndex(days.to_period("M").start_time)
    return pd.DatetimeIndex(days - pd.to_timedelta(days.day_of_week, unit="D"))


def whole_periods(first: pd.Timestamp, until: pd.Timestamp, spec: Spec) -> pd.DatetimeIndex:
    """The starts of the whole periods from the first encounter to ``until`` (see the module docstring)."""
    first_naive, until_naive = (_naive(t) for t in (first, until))
    start = period_start(pd.DatetimeIndex([first_naive]), spec)[0]
    if first_naive.normalize() > start:
        start += pd.tseries.frequencies.to_offset(spec.freq)
    end = period_start(pd.DatetimeIndex([until_naive]), spec)[0]  # the period in progress: excluded
    return pd.date_range(start, end, freq=spec.freq, inclusive="left")


def _naive(moment: pd.Timestamp) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo is not None else moment


def volume_series(frame: pd.DataFrame, spec: Spec, *, until: pd.Timestamp) -> pd.Series:
    """Distinct encounters per whole period (zero where there were none), indexed by period start."""
    if frame.empty:
        return pd.Series([], index=pd.DatetimeIndex([], freq=spec.freq), dtype=float, name="encounters")
    encounters = frame.drop_duplicates("encounter_id")
    starts = period_start(encounters["started_at"], spec)
    counts = pd.Series(1.0, index=starts).groupby(level=0).sum()
    periods = whole_periods(encounters["started_at"].min(), until, spec)
    series = counts.reindex(periods, fill_value=0.0).astype(float)
    series.index.freq = spec.freq
    return series.rename("encounters")


def require_length(length: int, spec: Spec) -> None:
    """422 with how much history is needed when the series is too short to train and test on."""
    if length < spec.min_length:
        raise ValidationFailed(
            f"A {spec.granularity} forecast needs at least {spec.min_length} whole {spec.unit} of encounters "
            f"(two full years in the {min(SPLITS)} % training window); this scope has {length}."
        )


def chronological_split(series: pd.Series, train_percent: int) -> tuple[pd.Series, pd.Series]:
    """The first ``train_percent`` % of the periods and the rest (the test window, strictly later)."""
    cut = len(series) * train_percent // 100
    return series.iloc[:cut], series.iloc[cut:]


def future_periods(after: pd.Timestamp, steps: int, spec: Spec) -> pd.DatetimeIndex:
    """The ``steps`` period starts following ``after``."""
    return pd.date_range(after, periods=steps + 1, freq=spec.freq)[1:]


def fourier_terms(index: pd.DatetimeIndex, terms: int = FOURIER_TERMS) -> pd.DataFrame:
    """Sine and cosine pairs of the yearly cycle for weekly period starts (from absolute dates)."""
    weeks = (index - EPOCH_MONDAY).days.to_numpy() / 7.0
    columns: dict[str, np.ndarray] = {}
    for k in range(1, terms + 1):
        angle = 2 * np.pi * k * weeks / WEEKS_PER_YEAR
        columns[f"sin{k}"] = np.sin(angle)
        columns[f"cos{k}"] = np.cos(angle)
    return pd.DataFrame(columns, index=index)


@dataclass(frozen=True)
class ModelForecast:
    """A model's point forecast with its 80 % and 95 % intervals, and how long fit + forecast took."""

    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    converged: bool
    seconds: float


def fit_forecast(train: pd.Series, steps: int, spec: Spec) -> ModelForecast:
    """Fit the granularity's model on ``train`` and forecast ``steps`` periods (422 if the fit fails)."""
    started = time.perf_counter()
    future = future_periods(train.index[-1], steps, spec)
    centre, spread = float(train.mean()), float(train.std()) or 1.0
    scaled = (train - centre) / spread
    if spec.granularity == "monthly":
        model = SARIMAX(scaled, order=(1, 1, 1), seasonal_order=(1, 1, 1, 12))
        exog_future = None
    else:
        model = SARIMAX(scaled, exog=fourier_terms(train.index), order=(1, 1, 1))
        exog_future = fourier_terms(future)
    try:
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # convergence and frequency chatter: `converged` reports it
            fitted = model.fit(disp=False)
            prediction = fitted.get_forecast(steps, exog=exog_future)
            mean = np.clip(np.asarray(prediction.predicted_mean, dtype=float) * spread + centre, 0, None)
            bounds = {
                level: np.asarray(prediction.conf_int(alpha=1 - level / 100)) * spread + centre
                for level in INTERVALS
            }
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise ValidationFailed(f"The {spec.model} model could not be fitted to this series ({exc}).") from exc
    if not np.isfinite(mean).all():
        raise ValidationFailed(f"The {spec.model} model produced no usable forecast for this series.")
    return ModelForecast(
        mean=mean,
        lower={level: np.clip(b[:, 0], 0, None) for level, b in bounds.items()},
        upper={level: np.clip(b[:, 1], 0, None) for level, b in bounds.items()},
        converged=bool(fitted.mle_retvals.get("converged", True)) if fitted.mle_retvals else True,
        seconds=time.perf_counter() - started,
    )


def seasonal_naive(train: pd.Series, steps: int, period: int) -> np.ndarray:
    """The seasonal-naive forecast: each future period repeats the same period of the last season."""
    values = train.to_numpy(dtype=float)
    if values.size < period:
        raise ValueError("the training window is shorter than one season")
    last_season = values[-period:]
    return np.array([last_season[h % period] for h in range(steps)])


@dataclass(frozen=True)
class Point:
    """One period of a forecast table (``actual`` is ``None`` for the future)."""

    period: str
    actual: float | None
    sarima: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    seasonal_naive: float


@dataclass(frozen=True)
class Evaluation:
    """One chronological split: windows, both models' test metrics, the verdict and the test table."""

    split: str
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_size: int
    test_size: int
    sarima: metrics.Accuracy
    seasonal_naive: metrics.Accuracy
    coverage_80: float
    coverage_95: float
    better: str
    verdict: str
    converged: bool
    seconds: float
    points: list[Point] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """A granularity's volumes, its evaluations, the overall verdict and the forecast beyond the data."""

    granularity: str
    model: str
    baseline: str
    series: list[tuple[str, float]]
    evaluations: list[Evaluation]
    better: str
    verdict: str
    forecast: list[Point]
    forecast_seconds: float


def _points(
    periods: pd.DatetimeIndex, actual: np.ndarray | None, model: ModelForecast, naive: np.ndarray
) -> list[Point]:
    return [
        Point(
            period=period.date().isoformat(),
            actual=None if actual is None else float(actual[i]),
            sarima=float(model.mean[i]),
            lower_80=float(model.lower[80][i]),
            upper_80=float(model.upper[80][i]),
            lower_95=float(model.lower[95][i]),
            upper_95=float(model.upper[95][i]),
            seasonal_naive=float(naive[i]),
        )
        for i, period in enumerate(periods)
    ]


@dataclass(frozen=True)
class SplitScore:
    """One chronological split: its windows, a model's and a baseline's test metrics and the verdict."""

    split: str
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_size: int
    test_size: int
    model: metrics.Accuracy
    baseline: metrics.Accuracy
    coverage_80: float
    coverage_95: float
    better: str
    verdict: str


@dataclass(frozen=True)
class ScoredSplit:
    """A split's score with what it was computed from (the test window and both forecasts of it)."""

    score: SplitScore
    test: pd.Series
    model: ModelForecast
    naive: np.ndarray


def score_split(
    series: pd.Series,
    train_percent: int,
    fit: Callable[[pd.Series, int], ModelForecast],
    period: int,
    *,
    model_name: str,
    baseline_name: str,
) -> ScoredSplit:
    """Fit ``fit`` on the first ``train_percent`` % and score it on the rest against the seasonal-naive
    forecast of lag ``period`` (MASE scaled by that baseline's in-sample error)."""
    train, test = chronological_split(series, train_percent)
    model = fit(train, len(test))
    naive = seasonal_naive(train, len(test), period)
    scale = metrics.seasonal_naive_scale(train.to_numpy(), period)
    ours = metrics.accuracy(test.to_numpy(), model.mean, scale=scale)
    theirs = metrics.accuracy(test.to_numpy(), naive, scale=scale)
    better, verdict = metrics.compare(ours, theirs, model_name=model_name, baseline_name=baseline_name)
    score = SplitScore(
        split=f"{train_percent}/{100 - train_percent}",
        train_start=train.index[0].date().isoformat(),
        train_end=train.index[-1].date().isoformat(),
        test_start=test.index[0].date().isoformat(),
        test_end=test.index[-1].date().isoformat(),
        train_size=len(train),
        test_size=len(test),
        model=ours,
        baseline=theirs,
        coverage_80=metrics.coverage(test.to_numpy(), model.lower[80], model.upper[80]),
        coverage_95=metrics.coverage(test.to_numpy(), model.lower[95], model.upper[95]),
        better=better,
        verdict=verdict,
    )
    return ScoredSplit(score, test, model, naive)


def evaluate(series: pd.Series, spec: Spec, train_percent: int) -> Evaluation:
    """Train both models on the first ``train_percent`` % and score them on the rest."""
    scored = score_split(
        series,
        train_percent,
        lambda train, steps: fit_forecast(train, steps, spec),
        spec.period,
        model_name=MODEL_NAME,
        baseline_name=BASELINE_NAME,
    )
    score, test, model = scored.score, scored.test, scored.model
    windows = {f.name: getattr(score, f.name) for f in fields(score) if f.name not in ("model", "baseline")}
    return Evaluation(
        **windows,
        sarima=score.model,
        seasonal_naive=score.baseline,
        converged=model.converged,
        seconds=model.seconds,
        points=_points(pd.DatetimeIndex(test.index), test.to_numpy(), model, scored.naive),
    )


def overall_verdict(evaluations: list[Evaluation]) -> tuple[str, str]:
    """The verdict on the mean test metrics over the splits (MASE, or MAE when MASE is undefined)."""

    def mean_of(pick: Callable[[Evaluation], metrics.Accuracy]) -> metrics.Accuracy:
        chosen = [pick(e) for e in evaluations]
        mases = [a.mase for a in chosen]
        return metrics.Accuracy(
            mae=float(np.mean([a.mae for a in chosen])),
            mse=float(np.mean([a.mse for a in chosen])),
            rmse=float(np.mean([a.rmse for a in chosen])),
            mape=None,
            mase=None
            if any(m is None for m in mases)
            else float(np.mean([m for m in mases if m is not None])),
        )

    better, sentence = metrics.compare(
        mean_of(lambda e: e.sarima),
        mean_of(lambda e: e.seasonal_naive),
        model_name=MODEL_NAME,
        baseline_name=BASELINE_NAME,
    )
    return better, f"{sentence} (mean over the {' and '.join(e.split for e in evaluations)} splits)"


def forecast_report(series: pd.Series, spec: Spec, progress: Progress | None = None) -> Report:
    """Evaluate on every split, then forecast ``spec.horizon`` periods from the whole series."""
    require_length(len(series), spec)
    step = progress or (lambda percent, message: None)
    evaluations = []
    for number, percent in enumerate(SPLITS):
        step(20 + 25 * number, f"Fitting and testing the {percent}/{100 - percent} split")
        evaluations.append(evaluate(series, spec, percent))
    step(75, f"Forecasting the next {spec.horizon} {spec.unit}")
    model = fit_forecast(series, spec.horizon, spec)
    naive = seasonal_naive(series, spec.horizon, spec.period)
    better, verdict = overall_verdict(evaluations)
    return Report(
        granularity=spec.granularity,
        model=spec.model,
        baseline=f"{BASELINE_NAME} (the same {spec.unit[:-1]} one year earlier)",
        series=[(p.date().isoformat(), float(v)) for p, v in series.items()],
        evaluations=evaluations,
        better=better,
        verdict=verdict,
        forecast=_points(future_periods(series.index[-1], spec.horizon, spec), None, model, naive),
        forecast_seconds=model.seconds,
    )
