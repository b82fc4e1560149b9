"""Donor eligibility at its boundaries: the day before and the day an interval ends, each threshold exactly
at and just past its limit, yearly maximums, the reasons a donor reads and the next eligible date, and the
US, UK and WHO profiles giving different answers for the same donor."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from caresync.bloodbank.rules import DONATION_TYPES, Eligibility, donor_eligibility, profile

ON = date(2026, 6, 1)
WB, DRC, PLT, PLA = "whole_blood", "double_red_cells", "platelets", "plasma"


def donor(**changes: Any) -> dict[str, Any]:
    """A healthy 36-year-old woman with no donation on record, changed by ``changes``."""
    return {
        "birth_date": date(1990, 5, 17),
        "sex": "F",
        "weight_kg": 68.0,
        "hemoglobin_g_dl": 13.5,
        "parental_consent": False,
        "donations": [],
        "temperature_c": 36.8,
        "systolic_mmhg": 120,
        "diastolic_mmhg": 80,
        "pulse_bpm": 70,
        **changes,
    }


def ago(days: int) -> date:
    return ON - timedelta(days=days)


def check(kind: str = WB, rules: str = "US", **changes: Any) -> Eligibility:
    return donor_eligibility(donor(**changes), kind, ON, rules)


def test_a_healthy_first_time_donor_is_eligible_for_every_type() -> None:
    for kind in DONATION_TYPES:
        assert check(kind) == Eligibility(eligible=True, reasons=[], next_eligible_date=None)


@pytest.mark.parametrize(
    ("rules", "changes", "eligible", "next_date"),
    [
        pytest.param("US", {"birth_date": date(2009, 6, 1)}, True, None, id="us-17-on-the-birthday"),
        pytest.param(
            "US", {"birth_date": date(2009, 6, 2)}, False, date(2026, 6, 2), id="us-16-day-before-17"
        ),
        pytest.param(
            "US",
            {"birth_date": date(2010, 6, 1), "parental_consent": True},
            True,
            None,
            id="us-16-with-consent",
        ),
        pytest.param("US", {"birth_date": date(2010, 6, 1)}, False, date(2027, 6, 1), id="us-16-no-consent"),
        pytest.param(
            "US",
            {"birth_date": date(2010, 6, 2), "parental_consent": True},
            False,
            date(2026, 6, 2),
            id="us-15-with-consent-until-16",
        ),
        pytest.param("US", {"birth_date": date(1940, 1, 1)}, True, None, id="us-no-upper-age"),
        pytest.param(
            "UK",
            {"birth_date": date(2010, 6, 1), "parental_consent": True},
            False,
            date(2027, 6, 1),
            id="uk-16",
        ),
        pytest.param("UK", {"birth_date": date(1960, 6, 2)}, True, None, id="uk-first-time-65"),
        pytest.param("UK", {"birth_date": date(1960, 6, 1)}, False, None, id="uk-first-time-66-never"),
        pytest.param(
            "UK",
            {"birth_date": date(1955, 1, 1), "donations": [(ago(400), WB)]},
            True,
            None,
            id="uk-returning-71",
        ),
        pytest.param(
            "WHO", {"birth_date": date(2009, 6, 1)}, False, date(2027, 6, 1), id="who-17-no-consent"
        ),
        pytest.param(
            "WHO", {"birth_date": date(2009, 6, 1), "parental_consent": True}, True, None, id="who-17-consent"
        ),
    ],
)
def test_age(rules: str, changes: dict[str, Any], eligible: bool, next_date: date | None) -> None:
    result = check(rules=rules, **changes)
    assert (result.eligible, result.next_eligible_date) == (eligible, next_date)
    assert all("Age" in reason for reason in result.reasons)


def test_age_reason_mentions_the_consent_route() -> None:
    assert check(birth_date=date(2010, 6, 1)).reasons == [
        "Age 16 is below the minimum of 17 for a whole blood donation "
        "(16 with a parent's or guardian's consent)."
    ]


def test_leap_day_birthday_counts_from_first_of_march() -> None:
    result = donor_eligibility(donor(birth_date=date(2008, 2, 29)), WB, date(2025, 2, 28))
    assert (result.eligible, result.next_eligible_date) == (False, date(2025, 3, 1))
    assert donor_eligibility(donor(birth_date=date(2008, 2, 29)), WB, date(2025, 3, 1)).eligible


@pytest.mark.parametrize(
    ("rules", "changes", "eligible"),
    [
        pytest.param("US", {"weight_kg": 50.0}, True, id="weight-50"),
        pytest.param("US", {"weight_kg": 49.9}, False, id="weight-49.9"),
        pytest.param("US", {"hemoglobin_g_dl": 12.5}, True, id="hb-women-12.5"),
        pytest.param("US", {"hemoglobin_g_dl": 12.4}, False, id="hb-women-12.4"),
        pytest.param("US", {"sex": "M", "hemoglobin_g_dl": 13.0}, True, id="hb-men-13.0"),
        pytest.param("US", {"sex": "M", "hemoglobin_g_dl": 12.9}, False, id="hb-men-12.9"),
        pytest.param("UK", {"sex": "M", "hemoglobin_g_dl": 13.5}, True, id="uk-hb-men-135-g-per-l"),
        pytest.param("UK", {"sex": "M", "hemoglobin_g_dl": 13.4}, False, id="uk-hb-men-134-g-per-l"),
        pytest.param("UK", {"hemoglobin_g_dl": 12.5}, True, id="uk-hb-women-125-g-per-l"),
        pytest.param("WHO", {"hemoglobin_g_dl": 12.0}, True, id="who-hb-women-12.0"),
        pytest.param("WHO", {"hemoglobin_g_dl": 11.9}, False, id="who-hb-women-11.9"),
        pytest.param("US", {"hemoglobin_g_dl": 12.0}, False, id="us-hb-women-12.0"),
        pytest.param("US", {"temperature_c": 37.5}, True, id="temp-37.5"),
        pytest.param("US", {"temperature_c": 37.6}, False, id="temp-37.6"),
        pytest.param("US", {"systolic_mmhg": 90}, True, id="systolic-90"),
        pytest.param("US", {"systolic_mmhg": 89}, False, id="systolic-89"),
        pytest.param("US", {"systolic_mmhg": 180}, True, id="systolic-180"),
        pytest.param("US", {"systolic_mmhg": 181}, False, id="systolic-181"),
        pytest.param("US", {"diastolic_mmhg": 50}, True, id="diastolic-50"),
        pytest.param("US", {"diastolic_mmhg": 49}, False, id="diastolic-49"),
        pytest.param("US", {"diastolic_mmhg": 100}, True, id="diastolic-100"),
        pytest.param("US", {"diastolic_mmhg": 101}, False, id="diastolic-101"),
        pytest.param("US", {"pulse_bpm": 50}, True, id="pulse-50"),
        pytest.param("US", {"pulse_bpm": 49}, False, id="pulse-49"),
        pytest.param("US", {"pulse_bpm": 100}, True, id="pulse-100"),
        pytest.param("US", {"pulse_bpm": 101}, False, id="pulse-101"),
        pytest.param(
            "US",
            {"weight_kg": None, "hemoglobin_g_dl": None, "temperature_c": None, "pulse_bpm": None},
            True,
            id="unmeasured-values-are-checked-at-the-visit",
        ),
    ],
)
def test_measurements(rules: str, changes: dict[str, Any], eligible: bool) -> None:
    result = check(rules=rules, **changes)
    assert result.eligible is eligible
    assert len(result.reasons) == (0 if eligible else 1)
    assert result.next_eligible_date is None  # a measurement promises no date


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param(
            {"hemoglobin_g_dl": 12.1},
            "Haemoglobin 12.1 g/dL is below the 12.5 g/dL minimum for women.",
            id="hb",
        ),
        pytest.param({"weight_kg": 49.9}, "Weight 49.9 kg is below the 50 kg minimum.", id="weight"),
        pytest.param({"temperature_c": 37.8}, "Temperature 37.8 °C is above the 37.5 °C maximum.", id="temp"),
        pytest.param(
            {"systolic_mmhg": 185},
            "Systolic blood pressure 185 mmHg is outside the 90 to 180 mmHg range.",
            id="systolic",
        ),
        pytest.param({"pulse_bpm": 104}, "Pulse 104 bpm is outside the 50 to 100 bpm range.", id="pulse"),
        pytest.param(
            {"donations": [(ago(30), WB)]},
            "The whole blood donation on 2026-05-02 was 30 days ago: "
            "56 days are needed before a whole blood donation.",
            id="interval",
        ),
        pytest.param(
            {"donations": [(ON, PLT)]},
            "The platelet donation on 2026-06-01 was today: 7 days are needed before a whole blood donation.",
            id="same-day",
        ),
    ],
)
def test_reasons_read_clearly(changes: dict[str, Any], reason: str) -> None:
    assert check(**changes).reasons == [reason]


# (previous type, next type, minimum days) — US: 21 CFR 630.15 and the American Red Cross intervals.
US_INTERVALS = [
    (WB, WB, 56), (WB, DRC, 56), (WB, PLT, 7), (WB, PLA, 28),
    (DRC, WB, 112), (DRC, DRC, 112), (DRC, PLT, 7), (DRC, PLA, 28),
    (PLT, WB, 7), (PLT, DRC, 7), (PLT, PLT, 7), (PLT, PLA, 28),
    (PLA, WB, 28), (PLA, DRC, 28), (PLA, PLT, 28), (PLA, PLA, 28),
]  # fmt: skip
INTERVALS = [
    pytest.param("US", "F", previous, following, days, id=f"us-{previous}-then-{following}-{days}d")
    for previous, following, days in US_INTERVALS
] + [
    pytest.param("UK", "M", WB, WB, 84, id="uk-men-whole-blood-12-weeks"),
    pytest.param("UK", "F", WB, WB, 112, id="uk-women-whole-blood-16-weeks"),
    pytest.param("UK", "M", DRC, DRC, 182, id="uk-double-red-26-weeks"),
    pytest.param("UK", "F", PLT, PLT, 14, id="uk-platelets-2-weeks"),
    pytest.param("UK", "M", PLA, PLA, 14, id="uk-plasma-2-weeks"),
    pytest.param("WHO", "M", WB, WB, 84, id="who-men-whole-blood-12-weeks"),
    pytest.param("WHO", "F", WB, WB, 112, id="who-women-whole-blood-16-weeks"),
    pytest.param("WHO", "F", PLT, PLT, 2, id="who-apheresis-48-hours"),
    pytest.param("WHO", "F", WB, PLT, 84, id="who-no-cytapheresis-12-weeks-after-whole-blood"),
]


@pytest.mark.parametrize(("rules", "sex", "previous", "following", "days"), INTERVALS)
def test_interval_day_before_and_day_of(
    rules: str, sex: str, previous: str, following: str, days: int
) -> None:
    man = {"sex": sex, "hemoglobin_g_dl": 14.0, "weight_kg": 80.0, "height_cm": 180.0}
    too_soon = check(following, rules, donations=[(ago(days - 1), previous)], **man)
    assert not too_soon.eligible
    assert too_soon.next_eligible_date == ON + timedelta(days=1)
    assert f"{days} days are needed" in too_soon.reasons[0]
    on_time = check(following, rules, donations=[(ago(days), previous)], **man)
    assert on_time.eligible, on_time.reasons
    assert profile(rules).interval(previous, following, sex) == days


def test_every_earlier_donation_counts_not_only_the_last() -> None:
    result = check(WB, donations=[(ago(100), DRC), (ago(3), PLT)])
    assert result.next_eligible_date == ago(100) + timedelta(days=112)
    assert result.reasons == [
        "The double red cell donation on 2026-02-21 was 100 days ago: "
        "112 days are needed before a whole blood donation."
    ]


def test_donations_after_the_day_asked_about_are_ignored() -> None:
    assert check(WB, donations=[(ON + timedelta(days=3), WB)]).eligible


def spaced(kind: str, count: int, every: int, first: int) -> list[tuple[date, str]]:
    """``count`` donations of ``kind``, the oldest ``first`` days ago, then every ``every`` days."""
    return [(ago(first - i * every), kind) for i in range(count)]


@pytest.mark.parametrize(
    ("rules", "sex", "kind", "history", "eligible", "next_date"),
    [
        pytest.param(
            "US", "F", WB, spaced(WB, 6, 56, 364), False, ON + timedelta(days=1), id="us-wb-6th-in-364d"
        ),
        pytest.param("US", "F", WB, spaced(WB, 6, 56, 365), True, None, id="us-wb-oldest-365d-ago-drops-out"),
        pytest.param("US", "F", WB, spaced(WB, 5, 56, 364), True, None, id="us-wb-5-in-a-year"),
        pytest.param("US", "M", DRC, spaced(DRC, 3, 112, 336), False, ON + timedelta(days=29), id="us-drc-3"),
        pytest.param(
            "US", "F", PLT, spaced(PLT, 24, 7, 168), False, ago(168) + timedelta(days=365), id="plt-24"
        ),
        pytest.param("US", "F", PLT, spaced(PLT, 23, 7, 161), True, None, id="us-plt-23"),
        pytest.param(
            "US", "F", PLA, spaced(PLA, 13, 28, 364), False, ON + timedelta(days=1), id="us-plasma-13"
        ),
        pytest.param(
            "UK", "F", WB, spaced(WB, 3, 112, 336), False, ON + timedelta(days=29), id="uk-women-wb-3"
        ),
        pytest.param("UK", "M", WB, spaced(WB, 4, 84, 336), True, None, id="uk-men-wb-no-yearly-cap"),
        pytest.param(
            "WHO", "M", WB, spaced(WB, 4, 84, 336), False, ON + timedelta(days=29), id="who-men-wb-4"
        ),
    ],
)
def test_yearly_maximum(
    rules: str, sex: str, kind: str, history: list[tuple[date, str]], eligible: bool, next_date: date | None
) -> None:
    result = check(kind, rules, sex=sex, donations=history, hemoglobin_g_dl=14.0, weight_kg=80.0)
    assert (result.eligible, result.next_eligible_date) == (eligible, next_date), result.reasons
    if not eligible:
        assert result.reasons[-1].endswith(f"in the last 12 months: the maximum is {len(history)}.")


@pytest.mark.parametrize(
    ("changes", "eligible", "next_date"),
    [
        pytest.param({"height_cm": 165.0}, True, None, id="women-165cm"),
        pytest.param({"height_cm": 164.9}, False, None, id="women-164.9cm"),
        pytest.param({"weight_kg": 67.9}, False, None, id="women-67.9kg"),
        pytest.param({"hemoglobin_g_dl": 13.3}, True, None, id="hb-13.3"),
        pytest.param({"hemoglobin_g_dl": 13.2}, False, None, id="hb-13.2"),
        pytest.param({"birth_date": date(2007, 6, 2)}, False, date(2026, 6, 2), id="women-18-until-19"),
        pytest.param({"birth_date": date(2007, 6, 1)}, True, None, id="women-19"),
        pytest.param(
            {"sex": "M", "birth_date": date(2009, 6, 1), "weight_kg": 59.0, "height_cm": 155.0},
            True,
            None,
            id="men-17-59kg-155cm",
        ),
        pytest.param({"sex": "M", "weight_kg": 58.9}, False, None, id="men-58.9kg"),
        pytest.param({"height_cm": None}, True, None, id="height-not-recorded-is-not-judged"),
    ],
)
def test_double_red_cell_minimums(changes: dict[str, Any], eligible: bool, next_date: date | None) -> None:
    result = check(DRC, **changes)
    assert (result.eligible, result.next_eligible_date) == (eligible, next_date), result.reasons


def test_double_red_reason_names_the_stricter_rule() -> None:
    assert check(DRC, hemoglobin_g_dl=13.0).reasons == [
        "Haemoglobin 13 g/dL is below the 13.3 g/dL minimum for women giving double red cells."
    ]
    assert check(WB, hemoglobin_g_dl=13.0).eligible


def test_a_failed_measurement_with_an_interval_gives_the_interval_date() -> None:
    result = check(WB, hemoglobin_g_dl=11.0, donations=[(ago(50), WB)])
    assert not result.eligible
    assert len(result.reasons) == 2
    assert result.next_eligible_date == ago(50) + timedelta(days=56)


@pytest.mark.parametrize(
    ("sex", "expected"),
    [
        pytest.param("M", {"US": True, "UK": False, "WHO": False}, id="men-60-days-after-whole-blood"),
        pytest.param("F", {"US": True, "UK": False, "WHO": False}, id="women-60-days-after-whole-blood"),
    ],
)
def test_profiles_differ_for_the_same_donor(sex: str, expected: dict[str, bool]) -> None:
    history = [(ago(60), WB)]
    results = {
        rules: check(WB, rules, sex=sex, hemoglobin_g_dl=14.0, donations=history) for rules in expected
    }
    assert {rules: result.eligible for rules, result in results.items()} == expected
    weeks = 12 if sex == "M" else 16
    assert results["UK"].next_eligible_date == ago(60) + timedelta(weeks=weeks)


@pytest.mark.parametrize(
    ("kind", "rules", "changes", "message"),
    [
        pytest.param("blood", "US", {}, "not a valid DonationType", id="unknown-type"),
        pytest.param(WB, "FR", {}, "Unknown rule profile 'FR'", id="unknown-profile"),
        pytest.param(WB, "US", {"sex": "X"}, "Donor sex must be one of F, M", id="unknown-sex"),
    ],
)
def test_bad_input_is_refused(kind: str, rules: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check(kind, rules, **changes)


def test_collection_datetimes_count_as_their_day() -> None:
    collected = datetime.combine(ago(55), time(23, 30), tzinfo=UTC)
    assert not check(WB, donations=[(collected, WB)]).eligible
    assert check(WB, donations=[(collected - timedelta(days=1), WB)]).eligible
