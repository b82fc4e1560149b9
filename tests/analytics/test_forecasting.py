"""Volume forecasts and surge levels as pure functions: metrics recomputed by hand, chronological splits
without leakage, SARIMA against the seasonal naive on seasonal series, prediction intervals, and surge levels
on series with an injected spike (and on the synthetic generator's outbreak)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import pytest

from caresync.analytics import synthetic
from caresync.analytics.data import FRAME_COLUMNS
from caresync.analytics.forecasting import metrics, sarima, surge
from caresync.analytics.rules import SurgeLevel
from caresync.core.errors import ValidationFailed

pytestmark = pytest.mark.no_db

UNTIL = pd.Timestamp("2026-11-26 10:00", tz="UTC")


def frame_of(
    moments: Sequence[pd.Timestamp], codes: Sequence[str], organisations: Sequence[str]
) -> pd.DataFrame:
    """A frame of :data:`FRAME_COLUMNS`, one encounter (and one diagnosis) per moment."""
    n = len(moments)
    return pd.DataFrame(
        {
            "encounter_id": [f"e{i}" for i in range(n)],
            "patient_id": [f"p{i % 50}" for i in range(n)],
            "organisation_id": list(organisations),
            "department": "general-practice",
            "started_at": pd.DatetimeIndex(moments).tz_convert("UTC"),
            "outcome": "discharged",
            "sex": "female",
            "age": 40,
            "code": list(codes),
            "principal": True,
            "systolic_mmhg": np.nan,
            "heart_rate_bpm": np.nan,
            "temperature_c": np.nan,
            "spo2_pct": np.nan,
        }
    )[list(FRAME_COLUMNS)]


def daily_frame(
    rates: dict[tuple[str, str], np.ndarray], days: pd.DatetimeIndex, seed: int = 5
) -> pd.DataFrame:
    """Poisson daily encounters for each (organisation, code) at the given expected rates per day."""
    rng = np.random.default_rng(seed)
    moments, codes, organisations = [], [], []
    for (organisation, code), rate in rates.items():
        counts = rng.poisson(rate)
        stamps = np.repeat(days.to_numpy(), counts) + np.timedelta64(9, "h")
        moments.extend(pd.DatetimeIndex(stamps, tz="UTC"))
        codes.extend([code] * len(stamps))
        organisations.extend([organisation] * len(stamps))
    return frame_of(moments, codes, organisations)


def seasonal_rate(
    days: pd.DatetimeIndex, base: float, amplitude: float, peak_day: int, trend: float = 0.0
) -> np.ndarray:
    """``base`` visits a day with a yearly cosine peaking on ``peak_day`` and a linear trend per year."""
    angle = 2 * np.pi * (days.day_of_year.to_numpy() - peak_day) / 365.25
    years = (days - days[0]).days.to_numpy() / 365.25
    return base * (1 + amplitude * np.cos(angle)) * (1 + trend * years)


@pytest.fixture(scope="module")
def seasonal_frame() -> pd.DataFrame:
    """Three years of one organisation's visits: a winter peak (amplitude 40 %) and 10 % growth a year."""
    days = pd.date_range("2023-11-15", "2026-11-25")
    return daily_frame({("org-a", "J11"): seasonal_rate(days, 20, 0.4, 15, trend=0.1)}, days)


# --- metrics ---------------------------------------------------------------------------------------------


def test_metrics_by_hand() -> None:
    actual = [10.0, 0.0, 20.0, 40.0]
    predicted = [12.0, 1.0, 15.0, 40.0]
    # errors 2, 1, 5, 0 (absolute); squared 4, 1, 25, 0
    result = metrics.accuracy(actual, predicted, scale=2.0)
    assert result.mae == pytest.approx(8 / 4)
    assert result.mse == pytest.approx(30 / 4)
    assert result.rmse == pytest.approx(np.sqrt(30 / 4))
    # MAPE over the non-zero actuals only: 2/10, 5/20, 0/40
    assert result.mape == pytest.approx((0.2 + 0.25 + 0.0) / 3 * 100)
    assert result.mase == pytest.approx(2.0 / 2.0)


def test_mape_is_undefined_when_every_actual_is_zero() -> None:
    assert metrics.mape([0, 0], [1, 2]) is None
    assert metrics.accuracy([0, 0], [1, 2], scale=None).mase is None


def test_seasonal_naive_scale_by_hand() -> None:
    train = [1, 2, 3, 5, 4, 7]  # period 3: |5-1|, |4-2|, |7-3| -> mean 10/3
    assert metrics.seasonal_naive_scale(train, 3) == pytest.approx(10 / 3)
    assert metrics.seasonal_naive_scale([1, 2, 3], 3) is None  # no full season to compare with
    assert metrics.seasonal_naive_scale([4, 4, 4, 4], 2) is None  # zero scale: MASE undefined


def test_coverage_counts_the_actuals_inside() -> None:
    assert metrics.coverage([1, 5, 9, 3], [0, 0, 0, 4], [2, 6, 8, 5]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("model_mase", "naive_mase", "winner", "sentence"),
    [
        (0.71, 1.0, "SARIMA", "SARIMA beats seasonal naive on MASE 0.71 vs 1.00"),
        (1.3, 0.9, "seasonal naive", "seasonal naive beats SARIMA on MASE 0.90 vs 1.30"),
        (0.801, 0.799, "tie", "SARIMA and seasonal naive tie on MASE 0.80 vs 0.80"),
    ],
)
def test_comparison_sentence(model_mase: float, naive_mase: float, winner: str, sentence: str) -> None:
    ours = metrics.Accuracy(1, 1, 1, None, model_mase)
    theirs = metrics.Accuracy(1, 1, 1, None, naive_mase)
    assert metrics.compare(ours, theirs, model_name="SARIMA", baseline_name="seasonal naive") == (
        winner,
        sentence,
    )


def test_comparison_falls_back_to_mae_without_mase() -> None:
    ours, theirs = metrics.Accuracy(3, 9, 3, None, None), metrics.Accuracy(5, 25, 5, None, None)
    assert metrics.compare(ours, theirs, model_name="A", baseline_name="B") == (
        "A",
        "A beats B on MAE 3.00 vs 5.00",
    )


# --- series and splits -----------------------------------------------------------------------------------


def test_volume_series_counts_distinct_encounters_in_whole_periods() -> None:
    moments = pd.to_datetime(
        ["2026-01-15", "2026-02-03", "2026-02-03", "2026-02-20", "2026-04-02", "2026-05-09"], utc=True
    )
    frame = frame_of(moments, ["J11"] * 6, ["org-a"] * 6)
    frame.loc[2, "encounter_id"] = "e1"  # a second diagnosis of the same encounter
    series = sarima.volume_series(frame, sarima.MONTHLY, until=pd.Timestamp("2026-05-20", tz="UTC"))
    # January began before the first encounter (partial), May is in progress: both dropped; March had none.
    assert list(series.index.strftime("%Y-%m")) == ["2026-02", "2026-03", "2026-04"]
    assert series.tolist() == [2.0, 0.0, 1.0]


def test_weekly_series_uses_monday_weeks() -> None:
    moments = pd.to_datetime(
        ["2026-03-02 08:00", "2026-03-08 23:00", "2026-03-09 00:30", "2026-03-18 12:00"], utc=True
    )
    series = sarima.volume_series(
        frame_of(moments, ["J11"] * 4, ["org-a"] * 4),
        sarima.WEEKLY,
        until=pd.Timestamp("2026-03-19", tz="UTC"),
    )
    assert [d.isoformat() for d in series.index.date] == ["2026-03-02", "2026-03-09"]  # the 16th: in progress
    assert series.tolist() == [2.0, 1.0]


@pytest.mark.parametrize(
    ("length", "percent", "train", "test"),
    [(35, 70, 24, 11), (35, 80, 28, 7), (40, 70, 28, 12), (156, 80, 124, 32)],
)
def test_chronological_split_sizes_and_no_leakage(length: int, percent: int, train: int, test: int) -> None:
    series = pd.Series(
        np.arange(length, dtype=float), index=pd.date_range("2020-01-01", periods=length, freq="MS")
    )
    head, tail = sarima.chronological_split(series, percent)
    assert (len(head), len(tail)) == (train, test)
    assert head.index.max() < tail.index.min()  # every test period after every training period
    assert pd.concat([head, tail]).equals(series)  # nothing lost, nothing repeated


def test_minimum_lengths_leave_two_seasons_to_train_on() -> None:
    assert sarima.MONTHLY.min_length == 35
    assert 35 * 70 // 100 == 24
    assert sarima.WEEKLY.min_length == 149
    assert 149 * 70 // 100 == 104
    with pytest.raises(ValidationFailed, match=r"at least 35 whole months .* this scope has 20"):
        sarima.require_length(20, sarima.MONTHLY)


def test_seasonal_naive_repeats_the_last_season() -> None:
    train = pd.Series([1.0, 2, 3, 4, 5, 6, 7])
    assert sarima.seasonal_naive(train, 5, 3).tolist() == [5, 6, 7, 5, 6]


def test_fourier_terms_follow_the_calendar() -> None:
    a = sarima.fourier_terms(pd.date_range("2024-01-01", periods=3, freq="W-MON"))
    b = sarima.fourier_terms(pd.date_range("2025-12-29", periods=3, freq="W-MON"))  # about two years later
    assert list(a.columns) == ["sin1", "cos1", "sin2", "cos2", "sin3", "cos3"]
    assert np.allclose(a.to_numpy(), b.to_numpy(), atol=0.25)  # same time of year, similar terms


# --- SARIMA against the baseline -------------------------------------------------------------------------


def test_monthly_sarima_report_on_a_seasonal_series(seasonal_frame: pd.DataFrame) -> None:
    series = sarima.volume_series(seasonal_frame, sarima.MONTHLY, until=UNTIL)
    report = sarima.forecast_report(series, sarima.MONTHLY)
    assert [e.split for e in report.evaluations] == ["70/30", "80/20"]
    for evaluation, percent in zip(report.evaluations, sarima.SPLITS, strict=True):
        train, test = sarima.chronological_split(series, percent)
        assert evaluation.train_end < evaluation.test_start  # no leakage
        assert (evaluation.train_size, evaluation.test_size) == (len(train), len(test))
        # the metrics recomputed by hand from the test table
        actual = np.array([p.actual for p in evaluation.points])
        predicted = np.array([p.sarima for p in evaluation.points])
        naive = np.array([p.seasonal_naive for p in evaluation.points])
        assert actual.tolist() == test.tolist()
        assert naive.tolist() == train.to_numpy()[-12:][: len(test)].tolist()
        scale = np.mean(np.abs(train.to_numpy()[12:] - train.to_numpy()[:-12]))
        assert evaluation.sarima.mae == pytest.approx(np.mean(np.abs(actual - predicted)))
        assert evaluation.sarima.rmse == pytest.approx(np.sqrt(np.mean((actual - predicted) ** 2)))
        assert evaluation.sarima.mape == pytest.approx(np.mean(np.abs(actual - predicted) / actual) * 100)
        assert evaluation.sarima.mase == pytest.approx(np.mean(np.abs(actual - predicted)) / scale)
        assert evaluation.seasonal_naive.mase == pytest.approx(np.mean(np.abs(actual - naive)) / scale)
        # the sentence states the numbers it compares, winner first
        ours, theirs = evaluation.sarima.mase, evaluation.seasonal_naive.mase
        assert ours is not None
        assert theirs is not None
        if evaluation.better == "SARIMA":
            assert evaluation.verdict == f"SARIMA beats seasonal naive on MASE {ours:.2f} vs {theirs:.2f}"
        else:
            assert evaluation.verdict.startswith(
                ("seasonal naive beats SARIMA", "SARIMA and seasonal naive tie")
            )
    # on a trending seasonal series the seasonal naive lags a year of growth behind: SARIMA wins overall
    assert report.better == "SARIMA", report.verdict
    assert report.verdict.startswith("SARIMA beats seasonal naive on MASE")
    assert len(report.forecast) == 12
    assert report.forecast[0].period == "2026-11-01"


def test_prediction_intervals_hold_the_forecast_and_95_is_wider(seasonal_frame: pd.DataFrame) -> None:
    series = sarima.volume_series(seasonal_frame, sarima.WEEKLY, until=UNTIL)
    result = sarima.fit_forecast(series, 12, sarima.WEEKLY)
    assert (result.lower[95] <= result.lower[80]).all()
    assert (result.upper[80] <= result.upper[95]).all()
    assert (result.lower[80] <= result.mean).all()
    assert (result.mean <= result.upper[80]).all()
    assert ((result.upper[95] - result.lower[95]) > (result.upper[80] - result.lower[80])).all()
    assert result.converged
    assert result.seconds < 5


def test_weekly_model_beats_the_seasonal_naive_on_a_seasonal_series(seasonal_frame: pd.DataFrame) -> None:
    series = sarima.volume_series(seasonal_frame, sarima.WEEKLY, until=UNTIL)
    evaluation = sarima.evaluate(series, sarima.WEEKLY, 80)
    assert evaluation.train_size == len(series) * 80 // 100
    assert evaluation.sarima.mase is not None
    assert evaluation.seasonal_naive.mase is not None
    assert evaluation.sarima.mase < evaluation.seasonal_naive.mase
    assert evaluation.better == "SARIMA"
    assert 0.5 <= evaluation.coverage_95 <= 1.0


def test_too_short_series_is_a_422_before_any_fit(seasonal_frame: pd.DataFrame) -> None:
    series = sarima.volume_series(seasonal_frame, sarima.MONTHLY, until=UNTIL).iloc[:30]
    with pytest.raises(ValidationFailed, match="needs at least 35 whole months"):
        sarima.forecast_report(series, sarima.MONTHLY)


# --- surges ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "ratio", "excess", "level"),
    [
        (5.0, 3.0, 20.0, SurgeLevel.CRITICAL),
        (5.0, 3.0, 6.0, SurgeLevel.HIGH),  # excess too small for critical
        (3.5, 1.9, 10.0, SurgeLevel.HIGH),
        (3.5, 1.3, 10.0, SurgeLevel.MODERATE),  # ratio too small for high
        (2.0, 1.2, 3.0, SurgeLevel.MODERATE),  # thresholds are inclusive
        (1.9, 3.0, 30.0, SurgeLevel.LOW),
        (9.0, 9.0, 2.0, SurgeLevel.LOW),  # a couple of extra cases is no surge
    ],
)
def test_surge_level_table(z: float, ratio: float, excess: float, level: SurgeLevel) -> None:
    assert surge.surge_level(z, ratio, excess) == level


def test_seasonal_norm_uses_the_same_weeks_of_earlier_years() -> None:
    index = pd.date_range("2024-01-01", periods=110, freq="W-MON")
    series = pd.Series(np.arange(110, dtype=float), index=index)
    week = index[105]  # 52 weeks back: 53 (with 52 and 54); 104 back: index 1 (with 0 and 2)
    mean, sd = surge.seasonal_norm(series, pd.DatetimeIndex([week]))  # type: ignore[misc]
    values = [52.0, 53, 54, 0, 1, 2]
    assert mean == pytest.approx(np.mean(values))
    assert sd == pytest.approx(np.std(values, ddof=1))
    assert surge.seasonal_norm(series, pd.DatetimeIndex([index[10]])) is None  # no earlier year


def test_score_floors_the_spread_at_poisson_noise() -> None:
    signal = surge.score(9.0, (4.0, 0.1))  # sd 0.1 would make z = 50; sqrt(4) = 2 is the floor
    assert signal.z == pytest.approx(2.5)
    assert signal.ratio == pytest.approx(2.25)
    assert signal.level == SurgeLevel.MODERATE


@pytest.fixture(scope="module")
def spiked_frame() -> pd.DataFrame:
    """Three years at two organisations: gastroenteritis (summer peak) with a 4x spike in the last three
    weeks at org-a only, influenza (winter peak) and hypertension (flat) everywhere."""
    days = pd.date_range("2023-11-15", "2026-11-25")
    gastro = seasonal_rate(days, 1.5, 0.5, 220)
    spiked = gastro.copy()
    spiked[-21:] *= 4
    rates = {
        ("org-a", "A09"): spiked,
        ("org-b", "A09"): gastro,
        ("org-a", "J11"): seasonal_rate(days, 3, 0.8, 15),
        ("org-b", "J11"): seasonal_rate(days, 3, 0.8, 15),
        ("org-a", "I10"): np.full(len(days), 2.0),
    }
    return daily_frame(rates, days, seed=11)


def test_injected_spike_is_flagged_and_the_rest_is_not(spiked_frame: pd.DataFrame) -> None:
    found = {(s.organisation_id, s.code): s for s in surge.surges(spiked_frame, as_of=UNTIL)}
    spike = found[("org-a", "A09")]
    assert spike.level in (SurgeLevel.HIGH, SurgeLevel.CRITICAL)
    assert spike.signal == "observed"
    assert spike.observed is not None
    assert spike.observed.ratio > 2
    assert spike.week == "2026-11-16"  # the last whole week before the 26th
    assert len(spike.forecast_weeks) == surge.HORIZON_WEEKS
    assert next(iter(found.values())) is spike  # most urgent first
    others = [s for key, s in found.items() if key != ("org-a", "A09")]
    assert all(s.level in (SurgeLevel.LOW, SurgeLevel.MODERATE) for s in others), others


def test_ordinary_seasonal_peak_is_not_a_surge(spiked_frame: pd.DataFrame) -> None:
    # mid-January: influenza at its peak (1.8x its yearly mean) and the spike not yet happened
    found = surge.surges(spiked_frame, as_of=pd.Timestamp("2026-01-21", tz="UTC"))
    flu = [s for s in found if s.code == "J11"]
    assert len(flu) == 2
    assert all(s.level in (SurgeLevel.LOW, SurgeLevel.MODERATE) for s in flu)
    assert all(s.observed is not None and s.observed.value > 1.4 * 3 * 7 for s in flu)  # it IS high season


def test_without_a_year_of_history_there_is_no_norm(spiked_frame: pd.DataFrame) -> None:
    found = surge.surges(spiked_frame, as_of=pd.Timestamp("2024-06-01", tz="UTC"))
    assert found
    assert all(s.level == SurgeLevel.LOW and s.observed is None for s in found)
    assert all("no seasonal norm" in s.note for s in found)


def test_synthetic_outbreak_is_flagged_and_seasonal_peaks_are_not() -> None:
    data = synthetic.generate(7, 3, end=date(2026, 11, 26))
    frame = data.frame()
    outbreak = data.outbreak
    found = surge.surges(frame, as_of=pd.Timestamp(outbreak.end, tz="UTC"))
    flagged = {
        (s.organisation_id, s.code): s.level
        for s in found
        if s.level in (SurgeLevel.HIGH, SurgeLevel.CRITICAL)
    }
    assert flagged == {(outbreak.organisation_key, outbreak.code): SurgeLevel.CRITICAL}
    for peak_day in ("2026-01-20", "2026-05-20", "2025-08-15"):  # influenza, pollen, gastroenteritis seasons
        levels = {s.level for s in surge.surges(frame, as_of=pd.Timestamp(peak_day, tz="UTC"))}
        assert levels <= {SurgeLevel.LOW, SurgeLevel.MODERATE}, peak_day
