"""The pure statistics: weekly top conditions with week-over-week change, seasonal profiles, demographics
(age-band edges) and chi-square associations, checked against SciPy and statsmodels on fixed data and
against answers worked out by hand on tiny frames."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from scipy.stats.contingency import association
from statsmodels.stats.multitest import multipletests

from caresync.analytics.data import FRAME_COLUMNS, empty_frame
from caresync.analytics.statistics.associations import (
    ALPHA,
    associations,
    benjamini_hochberg,
    chi_square,
    cramers_v,
)
from caresync.analytics.statistics.demographics import demographics, with_age_bands
from caresync.analytics.statistics.trends import iso_week_label, seasonal_profile, weekly_top

pytestmark = pytest.mark.no_db

Visit = tuple[str, str, str, Iterable[str]]  # encounter, patient, "YYYY-MM-DD HH:MM", codes


def frame(
    visits: Iterable[Visit],
    *,
    ages: dict[str, int] | None = None,
    sexes: dict[str, str] | None = None,
    organisations: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A frame of the :data:`FRAME_COLUMNS` shape: one row per (encounter, code); patients' age, sex and
    organisation from the dictionaries (default 40, female, org-a)."""
    rows = [
        {
            "encounter_id": encounter,
            "patient_id": patient,
            "organisation_id": (organisations or {}).get(patient, "org-a"),
            "department": "general-practice",
            "started_at": pd.Timestamp(moment, tz="UTC"),
            "outcome": "discharged",
            "sex": (sexes or {}).get(patient, "female"),
            "age": (ages or {}).get(patient, 40),
            "code": code,
            "principal": index == 0,
            "systolic_mmhg": np.nan,
            "heart_rate_bpm": np.nan,
            "temperature_c": np.nan,
            "spo2_pct": np.nan,
        }
        for encounter, patient, moment, codes in visits
        for index, code in enumerate(codes)
    ]
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def repeat(prefix: str, moment: str, code: str, times: int) -> list[Visit]:
    """``times`` one-diagnosis encounters of distinct patients at the same moment."""
    return [(f"{prefix}{i}", f"{prefix}-p{i}", moment, [code]) for i in range(times)]


# --- trends: top 5 per ISO week, week-over-week -------------------------------------------------------------


def test_weekly_top_five_with_week_over_week_change() -> None:
    # Week 2026-W02 (Mon 5 Jan) is the baseline; week 2026-W03 (Mon 12 Jan) is reported.
    baseline = repeat("a", "2026-01-05 09:00", "J11", 4) + repeat("b", "2026-01-11 23:59", "I10", 2)
    week = (
        repeat("c", "2026-01-12 00:00", "J11", 6)  # 4 -> 6: +2, +50 %
        + repeat("d", "2026-01-14 10:00", "I10", 1)  # 2 -> 1: -1, -50 %
        + repeat("e", "2026-01-15 10:00", "A09", 3)  # 0 -> 3: no percentage
        + repeat("f", "2026-01-16 10:00", "R51", 3)  # tie with A09: code order
        + repeat("g", "2026-01-18 23:59", "N39.0", 2)
        + repeat("h", "2026-01-17 10:00", "M54.5", 1)  # ties I10 at 1 but M54.5 > I10: sixth, cut
    )
    # One encounter with two diagnoses counts for both; a repeated (encounter, code) row counts once.
    week += [("x1", "x-p", "2026-01-13 08:00", ["N39.0", "N39.0"])]
    rows = weekly_top(frame(baseline + week), date(2026, 1, 12), date(2026, 1, 12))
    assert [(r.rank, r.code, r.count, r.previous, r.change, r.change_pct) for r in rows] == [
        (1, "J11", 6, 4, 2, 50.0),
        (2, "A09", 3, 0, 3, None),
        (3, "N39.0", 3, 0, 3, None),
        (4, "R51", 3, 0, 3, None),
        (5, "I10", 1, 2, -1, -50.0),
    ]
    assert {r.week for r in rows} == {"2026-W03"}
    assert rows[0].name == "Influenza, virus not identified"


def test_weekly_top_lists_every_week_and_carries_the_previous_week() -> None:
    visits = repeat("a", "2026-01-06 09:00", "J11", 2) + repeat("b", "2026-01-20 09:00", "J11", 1)
    rows = weekly_top(frame(visits), date(2026, 1, 5), date(2026, 1, 26))
    # W02: 2 (week before empty), W03: nothing listed, W04: 1 after 0, W05: nothing.
    assert [(r.week, r.count, r.previous, r.change_pct) for r in rows] == [
        ("2026-W02", 2, 0, None),
        ("2026-W04", 1, 0, None),
    ]


def test_weekly_top_of_an_empty_frame_and_non_monday() -> None:
    assert weekly_top(empty_frame(), date(2026, 1, 5), date(2026, 1, 12)) == []
    with pytest.raises(ValueError, match="Monday"):
        weekly_top(empty_frame(), date(2026, 1, 6), date(2026, 1, 12))


def test_iso_week_labels_at_year_ends() -> None:
    assert iso_week_label(date(2024, 12, 30)) == "2025-W01"
    assert iso_week_label(date(2020, 12, 28)) == "2020-W53"
    assert iso_week_label(date(2026, 1, 5)) == "2026-W02"


# --- seasonal profile ---------------------------------------------------------------------------------------


def test_seasonal_profile_finds_the_peak_month() -> None:
    # Two whole years (24 months). J11: 5 cases every January, 1 every July -> 12 cases in 24 months,
    # a mean of 0.5 a month; January's mean is 5 (ratio 10), July's 1 (ratio 2), other months 0.
    visits: list[Visit] = []
    for year in (2024, 2025):
        visits += repeat(f"jan{year}-", f"{year}-01-15 10:00", "J11", 5)
        visits += repeat(f"jul{year}-", f"{year}-07-15 10:00", "J11", 1)
    visits += repeat("hyp", "2024-03-03 10:00", "I10", 1)
    profile = seasonal_profile(frame(visits), date(2024, 1, 1), date(2025, 12, 31))
    assert (profile.months, profile.first_month, profile.last_month) == (24, "2024-01", "2025-12")
    influenza = {row.month: row for row in profile.profile if row.code == "J11"}
    assert sorted(influenza) == list(range(1, 13))
    assert (influenza[1].mean_count, influenza[1].ratio, influenza[1].peak) == (5.0, 10.0, True)
    assert (influenza[7].mean_count, influenza[7].ratio, influenza[7].peak) == (1.0, 2.0, False)
    assert (influenza[4].mean_count, influenza[4].months_observed) == (0.0, 2)
    peak = profile.peaks[0]  # the largest total first
    assert (peak.code, peak.total, peak.monthly_mean, peak.peak_month, peak.peak_ratio) == (
        "J11",
        12,
        0.5,
        1,
        10.0,
    )
    assert peak.usual_peak_month == 1  # influenza peaks in January in rules.CONDITIONS
    assert (profile.peaks[1].code, profile.peaks[1].usual_peak_month) == ("I10", None)


def test_seasonal_profile_defaults_to_the_frames_months_and_keeps_partial_years() -> None:
    visits = repeat("a", "2025-11-02 10:00", "J11", 3) + repeat("b", "2026-01-30 10:00", "J11", 6)
    profile = seasonal_profile(frame(visits))
    assert (profile.months, profile.first_month, profile.last_month) == (3, "2025-11", "2026-01")
    months = {row.month: row.mean_count for row in profile.profile}
    assert months == {11: 3.0, 12: 0.0, 1: 6.0}  # calendar months outside the period are not listed
    assert seasonal_profile(empty_frame()).months == 0


# --- demographics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "band"),
    [(0, "0-19"), (19, "0-19"), (20, "20-39"), (39, "20-39"), (40, "40-59"), (59, "40-59"), (60, "60-79"),
     (79, "60-79"), (80, "80+"), (104, "80+")],
)  # fmt: skip
def test_age_band_edges(age: int, band: str) -> None:
    visits = [("e", "p", "2026-01-05 10:00", ["J11"])]
    assert with_age_bands(frame(visits, ages={"p": age}))["age_band"].tolist() == [band]


def test_demographics_per_organisation_and_overall() -> None:
    # p1 turns 20 during the period (19 then 20): one patient in 20-39, one encounter in each band.
    # p2 (male, 80) visits both organisations; p3 (female, 79) visits org-b once with two diagnoses.
    ages_at_visits = [("e1", "p1", 19, "org-a"), ("e2", "p1", 20, "org-a"), ("e3", "p2", 80, "org-a"),
                      ("e4", "p2", 80, "org-b"), ("e5", "p3", 79, "org-b")]  # fmt: skip
    rows = []
    for index, (encounter, patient, age, organisation) in enumerate(ages_at_visits):
        codes = ["I10", "E11.9"] if encounter == "e5" else ["I10"]
        visit = frame(
            [(encounter, patient, f"2026-02-0{index + 1} 10:00", codes)],
            ages={patient: age},
            sexes={"p2": "male"},
            organisations={patient: organisation},
        )
        rows.append(visit)
    shares = demographics(pd.concat(rows, ignore_index=True))
    table = {(s.scope, s.dimension, s.group): (s.patients, s.patient_share, s.encounters, s.encounter_share)
             for s in shares}  # fmt: skip
    assert table[("overall", "age_band", "0-19")] == (0, 0.0, 1, 0.2)
    assert table[("overall", "age_band", "20-39")] == (1, round(1 / 3, 4), 1, 0.2)
    assert table[("overall", "age_band", "60-79")] == (1, round(1 / 3, 4), 1, 0.2)
    assert table[("overall", "age_band", "80+")] == (1, round(1 / 3, 4), 2, 0.4)
    assert table[("overall", "sex", "female")] == (2, round(2 / 3, 4), 3, 0.6)
    assert table[("overall", "sex", "male")] == (1, round(1 / 3, 4), 2, 0.4)
    assert table[("org-a", "age_band", "80+")] == (1, 0.5, 1, round(1 / 3, 4))
    assert table[("org-b", "sex", "male")] == (1, 0.5, 1, 0.5)
    assert table[("org-b", "age_band", "0-19")] == (0, 0.0, 0, 0.0)
    assert [s.scope for s in shares][::9] == ["overall", "org-a", "org-b"]  # 5 bands + 4 sexes each
    for scope in ("overall", "org-a", "org-b"):
        for dimension in ("age_band", "sex"):
            group = [s for s in shares if s.scope == scope and s.dimension == dimension]
            assert math.isclose(sum(s.patient_share or 0 for s in group), 1, abs_tol=1e-3)


def test_demographics_of_nothing() -> None:
    shares = demographics(empty_frame())
    assert {s.scope for s in shares} == {"overall"}
    assert all(s.patients == 0 and s.patient_share is None for s in shares)


# --- chi-square -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        [[10, 20], [30, 40]],  # 2x2: Yates' correction
        [[12, 88], [30, 70], [45, 55], [60, 40], [20, 10]],  # 5 age bands x with/without
        [[3, 97], [9, 91]],
    ],
)
def test_chi_square_equals_scipy(table: list[list[int]]) -> None:
    observed = np.array(table)
    statistic, p_value, dof, expected = chi2_contingency(observed)  # SciPy's default: Yates on 2x2
    result = chi_square(observed)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-12)
    assert result.dof == dof
    assert result.yates == (dof == 1)
    np.testing.assert_allclose(result.expected, expected)
    # Cramér's V (from the uncorrected statistic) as SciPy's own measure computes it.
    assert result.cramers_v == pytest.approx(association(observed, method="cramer"), rel=1e-12)


def test_cramers_v_by_hand() -> None:
    # [[10, 20], [30, 40]]: n = 100, expected [[12, 18], [28, 42]];
    # chi2 = 4/12 + 4/18 + 4/28 + 4/42 = 0.7936508, V = sqrt(chi2 / (100 * 1)) = 0.0890871,
    # which for a 2x2 table is |phi| = |10*40 - 20*30| / sqrt(30*70*40*60) = 200 / 2244.994.
    observed = np.array([[10, 20], [30, 40]], dtype=float)
    expected = np.array([[12, 18], [28, 42]], dtype=float)
    assert cramers_v(observed, expected) == pytest.approx(0.0890871, abs=1e-7)
    assert cramers_v(observed, expected) == pytest.approx(200 / math.sqrt(30 * 70 * 40 * 60))
    # 3x3: min(r, c) - 1 = 2 in the denominator.
    square = np.array([[20, 5, 5], [5, 20, 5], [5, 5, 20]], dtype=float)  # n = 90, expected all 10
    assert cramers_v(square, np.full((3, 3), 10.0)) == pytest.approx(math.sqrt(45 / (90 * 2)))


def test_benjamini_hochberg_equals_statsmodels() -> None:
    p_values = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0001, 0.049, 0.6]
    reject, adjusted, _, _ = multipletests(p_values, alpha=ALPHA, method="fdr_bh")
    ours = benjamini_hochberg(p_values)
    np.testing.assert_allclose(ours, adjusted, rtol=1e-12)
    assert [p <= ALPHA for p in ours] == list(reject)
    assert sum(reject) == 3  # and the correction matters: 7 raw p-values are below 0.05
    assert benjamini_hochberg([]) == []


def _patients_frame(groups: dict[str, tuple[int, int]], sex: bool = False) -> pd.DataFrame:
    """One patient per row of the table: ``groups[group] = (with J11, without J11)``; those without have
    I10. Groups are ages (a band's lower bound) or sexes."""
    visits: list[Visit] = []
    ages: dict[str, int] = {}
    sexes: dict[str, str] = {}
    for group, (cases, others) in groups.items():
        for index in range(cases + others):
            patient = f"{group}-{index}"
            visits.append((f"e-{patient}", patient, "2026-03-02 10:00", ["J11" if index < cases else "I10"]))
            ages[patient] = 40 if sex else int(group)
            sexes[patient] = group if sex else "female"
    return frame(visits, ages=ages, sexes=sexes)


def test_associations_per_patient_equal_scipy() -> None:
    data = _patients_frame({"female": (30, 20), "male": (10, 40)}, sex=True)
    # A second J11 visit of an existing patient changes nothing: the unit is the patient.
    data = pd.concat([data, frame([("again", "female-0", "2026-03-09 10:00", ["J11"])])], ignore_index=True)
    result = associations(data)
    assert (result.unit, result.patients, result.alpha, result.correction) == (
        "patient",
        100,
        0.05,
        "benjamini-hochberg",
    )
    test = next(t for t in result.tests if t.grouping == "sex" and t.code == "J11")
    statistic, p_value, _, _ = chi2_contingency(np.array([[30, 20], [10, 40]]))
    assert (test.patients, test.cases, test.dof, test.yates_correction) == (100, 40, 1, True)
    assert test.statistic == pytest.approx(statistic, abs=1e-4)
    assert test.p_value == pytest.approx(p_value, rel=1e-12)
    assert [(c.group, c.with_condition, c.without_condition) for c in test.table] == [
        ("female", 30, 20),
        ("male", 10, 40),
    ]
    assert test.low_expected == []
    assert test.warning is None
    # Two conditions in the sex family (J11 and I10, the same table mirrored): BH over two equal p-values.
    family = [t for t in result.tests if t.grouping == "sex"]
    assert [t.code for t in family] == ["J11", "I10"]
    assert all(t.p_adjusted == pytest.approx(p_value) and t.significant for t in family)
    # Everybody is 40: the age-band grouping has one group and cannot be tested.
    assert {(s.grouping, s.reason) for s in result.skipped} == {
        ("age_band", "only one age band group present")
    }


def test_expected_counts_below_five_are_named() -> None:
    data = _patients_frame({"10": (2, 8), "30": (1, 40), "85": (4, 6)})
    test = next(t for t in associations(data).tests if t.grouping == "age_band" and t.code == "J11")
    expected = chi2_contingency(np.array([[2, 8], [1, 40], [4, 6]]))[3]
    low = {(c.group, c.has_condition): c.expected for c in test.low_expected}
    assert set(low) == {("0-19", True), ("20-39", True), ("80+", True)}
    assert low[("20-39", True)] == pytest.approx(expected[1, 0], abs=1e-3)
    assert (test.dof, test.yates_correction) == (2, False)
    assert test.warning == (
        "3 of 6 cells have an expected count below 5: "
        "the chi-square approximation may be unreliable for this test."
    )


def test_conditions_everybody_or_nobody_has_are_skipped() -> None:
    data = _patients_frame({"female": (5, 0), "male": (7, 0)}, sex=True)  # everybody has J11
    result = associations(data)
    assert result.tests == []
    assert ("sex", "J11", "every patient has the condition") in {
        (s.grouping, s.code, s.reason) for s in result.skipped
    }
    assert associations(empty_frame()).tests == []


def test_significance_follows_the_adjusted_p_value() -> None:
    # J11 strongly tied to sex, A09 not at all: J11 significant, A09 not.
    visits: list[Visit] = []
    sexes: dict[str, str] = {}
    for index in range(200):
        patient, female = f"p{index}", index % 2 == 0
        sexes[patient] = "female" if female else "male"
        codes = (["J11"] if (female and index % 10 != 0) or (not female and index % 10 == 1) else ["I10"]) + (
            ["A09"] if index % 4 < 2 else []
        )
        visits.append((f"e{index}", patient, datetime(2026, 3, 2, 10).isoformat(), codes))
    result = associations(frame(visits, sexes=sexes))
    by_code = {t.code: t for t in result.tests if t.grouping == "sex"}
    assert by_code["J11"].significant
    assert by_code["J11"].cramers_v > 0.5
    assert not by_code["A09"].significant
    assert by_code["A09"].cramers_v < 0.05
    raw = [t.p_value for t in result.tests if t.grouping == "sex"]
    np.testing.assert_allclose(
        [t.p_adjusted for t in result.tests if t.grouping == "sex"], multipletests(raw, method="fdr_bh")[1]
    )
