"""The synthetic activity generator: deterministic, the right shape, and realistic in the ways the analyses
rely on (seasons, weekly cycle, trend, demographics, outcomes, the injected outbreak)."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from caresync.analytics.data import FRAME_COLUMNS
from caresync.analytics.rules import ADVERSE_OUTCOMES, CONDITION_BY_CODE, Department, Outcome
from caresync.analytics.synthetic import PROFILES, SyntheticData, generate

pytestmark = pytest.mark.no_db
END = date(2026, 1, 1)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(11, 3, end=END)


@pytest.fixture(scope="module")
def frame(data: SyntheticData) -> pd.DataFrame:
    return data.frame()


@pytest.fixture(scope="module")
def principal(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per encounter: its principal diagnosis."""
    return frame[frame["principal"]]


def test_frame_has_exactly_the_analysis_columns(data: SyntheticData, frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert str(frame["started_at"].dt.tz) == "UTC"
    assert set(frame["code"]) <= set(CONDITION_BY_CODE)
    assert set(frame["department"]) <= {d.value for d in Department}
    assert set(frame["outcome"]) <= {o.value for o in Outcome}
    # one principal diagnosis per encounter, no code twice in an encounter
    assert frame.groupby("encounter_id")["principal"].sum().eq(1).all()
    assert not frame.duplicated(["encounter_id", "code"]).any()
    assert frame["encounter_id"].nunique() == len(data.encounters)
    assert list(data.patients.columns) == ["patient_key", "sex", "birth_date", "organisation_key"]
    assert frame["started_at"].min() >= pd.Timestamp(END - timedelta(days=1096), tz="UTC")
    assert frame["started_at"].max() < pd.Timestamp(END, tz="UTC")
    assert (frame["age"] >= 0).all()  # nobody visits before they are born


def test_vital_signs_respect_the_database_ranges(data: SyntheticData) -> None:
    ranges = {
        "systolic_mmhg": (40, 300),
        "heart_rate_bpm": (20, 250),
        "temperature_c": (25, 45),
        "spo2_pct": (50, 100),
    }
    for column, (low, high) in ranges.items():
        values = data.encounters[column].dropna()
        assert values.between(low, high).all(), column
        assert 0.8 < len(values) / len(data.encounters) < 1  # mostly taken, sometimes not
    emergency = data.encounters[data.encounters["department"] == "emergency"]
    assert emergency["spo2_pct"].notna().all()


def test_same_seed_same_data_other_seed_other_data(frame: pd.DataFrame) -> None:
    again = generate(11, 3, end=END).frame()
    pd.testing.assert_frame_equal(frame, again)
    other = generate(12, 3, end=END).frame()
    assert len(other) != len(frame) or not other["code"].equals(frame["code"])


def test_fast_enough() -> None:
    started = time.perf_counter()
    generate(5, 3, organisations=3, end=END).frame()
    assert time.perf_counter() - started < 2.0


def _circular_distance(a: int, b: int) -> int:
    return min((a - b) % 12, (b - a) % 12)


def test_each_seasonal_condition_peaks_in_its_season(principal: pd.DataFrame) -> None:
    seasonal = [
        code for code, p in PROFILES.items() if p.concentration and CONDITION_BY_CODE[code].peak_month
    ]
    assert {"J11", "J30.1", "T67.0"} <= set(seasonal)
    months = principal["started_at"].dt.month
    for code in seasonal:
        by_month = months[principal["code"] == code].value_counts().reindex(range(1, 13), fill_value=0)
        peak = int(by_month.idxmax())
        assert _circular_distance(peak, CONDITION_BY_CODE[code].peak_month) <= 1, (code, by_month.to_dict())
    flu = months[principal["code"] == "J11"]
    assert flu.isin([12, 1, 2]).mean() > 0.5  # influenza is a winter illness
    pollen = months[principal["code"] == "J30.1"]
    assert pollen.isin([4, 5, 6]).mean() > 0.5  # pollen allergy a spring one


def test_weekends_are_quieter_and_monday_busiest(principal: pd.DataFrame) -> None:
    days = principal["started_at"].dt.floor("D")
    daily = days.value_counts()
    by_weekday = daily.groupby(daily.index.day_of_week).mean()
    assert by_weekday[[5, 6]].max() < by_weekday[[0, 1, 2, 3, 4]].min()
    assert by_weekday.idxmax() == 0


def test_volume_trends_gently_upward(principal: pd.DataFrame) -> None:
    year = (principal["started_at"] - principal["started_at"].min()).dt.days // 365
    per_year = year.value_counts().sort_index()
    assert per_year[2] > per_year[0] * 1.03


def test_outbreak_window_stands_well_above_its_baseline(data: SyntheticData, principal: pd.DataFrame) -> None:
    outbreak = data.outbreak
    assert (outbreak.code, outbreak.organisation_key) == ("A09", "org-1")
    assert outbreak.end == END
    assert (outbreak.end - outbreak.start).days == 21
    cases = principal[
        (principal["code"] == outbreak.code) & (principal["organisation_id"] == outbreak.organisation_key)
    ]
    when = cases["started_at"].dt.date
    during = int(((when >= outbreak.start) & (when < outbreak.end)).sum())
    # the same organisation's level in the 12 weeks before, and the other organisations during the window
    before = int(((when >= outbreak.start - timedelta(weeks=12)) & (when < outbreak.start)).sum()) / 4
    assert during > 2.5 * before
    elsewhere = principal[
        (principal["code"] == outbreak.code) & (principal["organisation_id"] != outbreak.organisation_key)
    ]
    other_when = elsewhere["started_at"].dt.date
    other_during = int(((other_when >= outbreak.start) & (other_when < outbreak.end)).sum())
    assert during > 2.5 * other_during / (data.patients["organisation_key"].nunique() - 1)


def test_demographic_correlations(principal: pd.DataFrame) -> None:
    deliveries = principal[principal["code"] == "O80"]
    assert len(deliveries) > 100
    assert set(deliveries["sex"]) == {"female"}
    assert deliveries["age"].between(18, 45).all()

    def male_share(code: str) -> float:
        rows = principal[(principal["code"] == code) & principal["sex"].isin(["female", "male"])]
        return float((rows["sex"] == "male").mean())

    def mean_age(code: str) -> float:
        return float(principal.loc[principal["code"] == code, "age"].mean())

    everyone = float((principal.loc[principal["sex"].isin(["female", "male"]), "sex"] == "male").mean())
    for code in ("I21.9", "I50.9", "J44.9"):
        assert male_share(code) > everyone + 0.05, code
        assert mean_age(code) > 60, code
    for code in ("F32.9", "F41.1"):
        assert male_share(code) < everyone - 0.1, code
    for code in ("J45.9", "J06.9"):
        assert mean_age(code) < 30, code
    assert (
        principal.loc[principal["age"] < 16, "department"]
        .isin(["paediatrics", "emergency", "psychiatry", "orthopaedics", "cardiology"])
        .all()
    )


def test_adverse_outcomes_follow_age_vitals_and_conditions(principal: pd.DataFrame) -> None:
    adverse = principal["outcome"].isin([o.value for o in ADVERSE_OUTCOMES])
    assert 0.03 < adverse.mean() < 0.2
    old, young = adverse[principal["age"] >= 80].mean(), adverse[principal["age"] < 20].mean()
    assert old > 3 * young
    low_spo2 = adverse[principal["spo2_pct"] < 92].mean()
    assert low_spo2 > 2 * adverse[principal["spo2_pct"] >= 96].mean()
    assert adverse[principal["code"] == "I21.9"].mean() > 3 * adverse[principal["code"] == "M54.5"].mean()
    assert principal.loc[principal["outcome"] == "died", "age"].mean() > principal["age"].mean() + 15


def test_vitals_depend_on_conditions(principal: pd.DataFrame) -> None:
    def mean(code: str, column: str) -> float:
        return float(principal.loc[principal["code"] == code, column].mean())

    assert mean("J11", "temperature_c") > mean("M54.5", "temperature_c") + 0.8
    assert mean("J18.9", "spo2_pct") < mean("R51", "spo2_pct") - 3
    assert mean("I10", "systolic_mmhg") > mean("R51", "systolic_mmhg") + 15


def test_organisations_and_patients_scale() -> None:
    data = generate(3, 1, organisations=5, patients=100, end=END, visits_per_day=5)
    frame = data.frame()
    assert frame["organisation_id"].nunique() == 5
    assert set(frame["patient_id"]) <= set(data.patients["patient_key"])
    per_org = data.encounters["organisation_key"].value_counts()
    assert per_org.index[0] == "org-1"  # the largest, where the outbreak is
    assert 5 * 5 * 365 * 0.8 < len(data.encounters) < 5 * 5 * 365 * 1.3
    assert np.isfinite(frame["age"]).all()
