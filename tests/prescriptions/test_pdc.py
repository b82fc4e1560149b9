"""Proportion of Days Covered (``rules.proportion_of_days_covered``): a table of hand-computed cases, plus
properties that hold for any input (bounded, order-independent, never more than the supply dispensed)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caresync.prescriptions.rules import ADHERENCE_THRESHOLD, proportion_of_days_covered

pytestmark = pytest.mark.no_db


def d(day: int, month: int = 1, year: int = 2026) -> date:
    return date(year, month, day)


JAN = (d(1), d(30))  # the 30-day period most cases use

# id -> (dispenses, (period start, period end), covered days, days in the period)
CASES: dict[str, tuple[list[tuple[date, int]], tuple[date, date], int, int]] = {
    "no dispenses": ([], JAN, 0, 30),
    "one dispense fully inside": ([(d(5), 10)], JAN, 10, 30),  # 5..14
    "whole period exactly": ([(d(1), 30)], JAN, 30, 30),
    "supply before the period counts for its days inside": ([(d(27, 12, 2025), 10)], JAN, 5, 30),  # 1..5
    "supply entirely before the period": ([(d(1, 12, 2025), 10)], JAN, 0, 30),
    "dispensed on the day after the period": ([(d(31), 10)], JAN, 0, 30),
    "supply runs past the end": ([(d(25), 30)], JAN, 6, 30),  # 25..30
    "two fills with a gap": ([(d(1), 10), (d(16), 10)], JAN, 20, 30),  # 1..10, 16..25
    "refill after the supply ran out is not moved": ([(d(1), 5), (d(20), 5)], JAN, 10, 30),
    "early refill overlapping is shifted forward": ([(d(1), 10), (d(6), 10)], JAN, 20, 30),  # 1..10, 11..20
    "early refills chained": ([(d(1), 10), (d(2), 10), (d(3), 10)], JAN, 30, 30),  # 1..30
    "overlap carries past the period end": ([(d(1), 20), (d(15), 20)], JAN, 30, 30),  # 1..20, 21..40
    "overlap before the period carries into it": (
        [(d(20, 12, 2025), 10), (d(25, 12, 2025), 10)],  # Dec 20..29, then Dec 30..Jan 8
        JAN,
        8,
        30,
    ),
    "same-day double dispense stacks": ([(d(1), 10), (d(1), 10)], JAN, 20, 30),  # 1..10, 11..20
    "order of the input does not matter": ([(d(6), 10), (d(1), 10)], JAN, 20, 30),
    "period of one day, covered": ([(d(5), 1)], (d(5), d(5)), 1, 1),
    "period of one day, not covered": ([(d(6), 3)], (d(5), d(5)), 0, 1),
    "period of one day inside a long supply": ([(d(1), 90)], (d(15), d(15)), 1, 1),
    "zero and negative supplies ignored": ([(d(1), 0), (d(2), -5), (d(3), 2)], JAN, 2, 30),  # 3..4
    "zero supply does not shift the next fill": ([(d(1), 10), (d(5), 0), (d(5), 10)], JAN, 20, 30),
    "leap day counted": ([(d(28, 2, 2028), 2)], (d(28, 2, 2028), d(1, 3, 2028)), 2, 3),  # 28, 29 Feb
}


@pytest.mark.parametrize(("dispenses", "period", "covered", "days"), CASES.values(), ids=CASES.keys())
def test_pdc_table(
    dispenses: list[tuple[date, int]], period: tuple[date, date], covered: int, days: int
) -> None:
    assert proportion_of_days_covered(dispenses, *period) == pytest.approx(covered / days)


@pytest.mark.parametrize("dispenses", [[], [(d(1), 30)], [(d(8), 5)]], ids=["none", "covering", "inside"])
def test_inverted_period_gives_zero(dispenses: list[tuple[date, int]]) -> None:
    assert proportion_of_days_covered(dispenses, d(10), d(5)) == 0.0


def test_accepts_any_iterable() -> None:
    fills = iter([(d(1), 15)])  # a generator, read once
    assert proportion_of_days_covered(fills, *JAN) == pytest.approx(0.5)


def test_threshold_is_eighty_percent() -> None:
    assert ADHERENCE_THRESHOLD == 0.8
    # 24 of 30 days is exactly on the threshold (not below it); 23 is below
    assert proportion_of_days_covered([(d(1), 24)], *JAN) >= ADHERENCE_THRESHOLD
    assert proportion_of_days_covered([(d(1), 23)], *JAN) < ADHERENCE_THRESHOLD


fills = st.lists(
    st.tuples(st.dates(min_value=d(1, 10, 2025), max_value=d(28, 2, 2026)), st.integers(-5, 60)), max_size=8
)


@given(fills, st.integers(0, 120), st.integers(0, 120))
def test_pdc_properties(dispenses: list[tuple[date, int]], offset: int, length: int) -> None:
    start = d(1, 11, 2025) + timedelta(days=offset)
    end = start + timedelta(days=length)
    value = proportion_of_days_covered(dispenses, start, end)
    assert 0.0 <= value <= 1.0
    assert proportion_of_days_covered(list(reversed(dispenses)), start, end) == value
    supplied = sum(max(n, 0) for _on, n in dispenses)
    assert value * (length + 1) <= supplied + 1e-9  # never more days covered than days supplied
