"""Table tests of the pure streak rules: local days, current and longest streaks, badges, the next badge,
custom names and the heatmap's weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from caresync.core import localtime
from caresync.core.text import clean_line
from caresync.engagement.rules import BADGES
from caresync.engagement.streaks import rules

pytestmark = pytest.mark.no_db

TODAY = date(2026, 11, 26)


def days_back(*offsets: int) -> set[date]:
    """The days ``offsets`` days before TODAY (0 is today)."""
    return {TODAY - timedelta(days=offset) for offset in offsets}


def run(first: int, last: int) -> set[date]:
    """The days from ``first`` to ``last`` days ago (inclusive; first >= last)."""
    return days_back(*range(last, first + 1))


@pytest.mark.parametrize(
    ("days", "current", "longest"),
    [
        pytest.param(set(), 0, 0, id="empty"),
        pytest.param(days_back(0), 1, 1, id="single-day-today"),
        pytest.param(days_back(1), 1, 1, id="single-day-yesterday-still-alive"),
        pytest.param(days_back(2), 0, 1, id="single-day-two-days-ago-broken"),
        pytest.param(run(4, 0), 5, 5, id="five-consecutive-ending-today"),
        pytest.param(run(5, 1), 5, 5, id="today-not-logged-yet-keeps-yesterdays-streak"),
        pytest.param(run(6, 2), 0, 5, id="a-whole-day-missed-breaks-current-keeps-longest"),
        pytest.param(run(10, 5) | run(3, 0), 4, 6, id="missed-day-resets-current-longest-earlier"),
        pytest.param(run(3, 2) | run(0, 0), 1, 2, id="gap-yesterday-restarts-today"),
        pytest.param(run(20, 2) | run(0, 0), 1, 19, id="one-missed-day-breaks-long-run"),
        pytest.param(run(30, 25) | run(12, 0), 13, 13, id="current-is-the-longest"),
        pytest.param(run(2, 0) | {TODAY + timedelta(days=1)}, 3, 4, id="future-day-ignored-by-current"),
        pytest.param(run(99, 0), 100, 100, id="hundred-days"),
    ],
)
def test_current_and_longest(days: set[date], current: int, longest: int) -> None:
    assert rules.current_streak(days, TODAY) == current
    assert rules.longest_streak(days) == longest


def test_streaks_accept_any_iterable_with_duplicates() -> None:
    listed = [TODAY, TODAY, TODAY - timedelta(days=1)]
    assert rules.current_streak(iter(listed), TODAY) == 2
    assert rules.longest_streak(listed) == 2


def test_runs_are_oldest_first() -> None:
    assert rules.runs(run(10, 8) | run(5, 5) | run(1, 0)) == [
        (TODAY - timedelta(days=10), 3),
        (TODAY - timedelta(days=5), 1),
        (TODAY - timedelta(days=1), 2),
    ]


@pytest.mark.parametrize(
    ("instant", "zone", "day"),
    [
        pytest.param(
            datetime(2026, 3, 10, 11, 30, tzinfo=UTC),
            "Pacific/Auckland",
            date(2026, 3, 11),
            id="auckland-ahead",
        ),
        pytest.param(
            datetime(2026, 3, 10, 11, 30, tzinfo=UTC),
            "America/Los_Angeles",
            date(2026, 3, 10),
            id="la-behind",
        ),
        pytest.param(
            datetime(2026, 3, 10, 6, 59, tzinfo=UTC), "America/Los_Angeles", date(2026, 3, 9), id="la-prev"
        ),
        pytest.param(
            datetime(2026, 3, 10, 23, 59, tzinfo=UTC), "UTC", date(2026, 3, 10), id="utc-last-minute"
        ),
        pytest.param(
            datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            "Europe/Lisbon",
            date(2026, 3, 29),
            id="lisbon-dst-start",
        ),
        pytest.param(
            datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "Europe/Lisbon", date(2026, 3, 30), id="lisbon-summer"
        ),
        pytest.param(
            datetime(2026, 10, 25, 23, 30, tzinfo=UTC), "Europe/Lisbon", date(2026, 10, 25), id="lisbon-25h"
        ),
        pytest.param(
            datetime(2026, 3, 10, 12, 0, tzinfo=UTC), "Not/AZone", date(2026, 3, 10), id="unknown-zone-utc"
        ),
    ],
)
def test_local_day(instant: datetime, zone: str, day: date) -> None:
    assert localtime.local_date(zone, instant) == day


def test_local_day_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        localtime.local_date("UTC", datetime(2026, 3, 10, 12, 0))


@pytest.mark.parametrize(
    ("streak", "badges"),
    [
        (0, []),
        (6, []),
        (7, [7]),
        (14, [7]),
        (15, [7, 15]),
        (29, [7, 15]),
        (30, [7, 15, 30]),
        (89, [7, 15, 30]),
        (90, [7, 15, 30, 90]),
        (180, [7, 15, 30, 90, 180]),
        (400, [7, 15, 30, 90, 180, 365]),
    ],
)
def test_badges_for(streak: int, badges: list[int]) -> None:
    assert rules.badges_for(streak) == badges


def test_badge_thresholds_include_the_issue_levels() -> None:
    assert {7, 15, 30, 90} <= set(BADGES)


@pytest.mark.parametrize(
    ("streak", "awarded", "expected"),
    [
        pytest.param(0, [], (7, 7), id="new"),
        pytest.param(5, [], (7, 2), id="almost-bronze"),
        pytest.param(7, [7], (15, 8), id="bronze-held"),
        pytest.param(3, [7], (15, 12), id="restarted-after-bronze-aims-for-silver"),
        pytest.param(31, [7, 15, 30], (90, 59), id="gold-held"),
        pytest.param(400, list(BADGES), None, id="everything-earned"),
    ],
)
def test_next_badge(streak: int, awarded: list[int], expected: tuple[int, int] | None) -> None:
    assert rules.next_badge(streak, awarded) == expected


def test_first_reached_names_the_day_each_threshold_was_first_reached() -> None:
    days = run(40, 30) | run(20, 0)  # an 11-day run (Bronze), then 21 days (Silver)
    reached = rules.first_reached(days)
    assert reached == {7: TODAY - timedelta(days=34), 15: TODAY - timedelta(days=6)}


@pytest.mark.parametrize(
    ("raw", "cleaned", "key"),
    [
        ("Yoga", "Yoga", "yoga"),
        ("  Morning   YOGA ", "Morning YOGA", "morning yoga"),
        ("Read\tto\nthe kids", "Read to the kids", "read to the kids"),
        ("Straße", "Straße", "strasse"),
    ],
)
def test_custom_names(raw: str, cleaned: str, key: str) -> None:
    assert clean_line(raw) == cleaned
    assert rules.name_key(raw) == key


def test_card_ids_are_safe_and_stable() -> None:
    assert rules.card_id("water") == "activity-water"
    custom = rules.card_id("custom", '"><script>')
    assert custom.startswith("activity-custom-")
    assert custom[16:].isalnum()
    assert rules.card_id("custom", "Yoga") == rules.card_id("custom", " yoga ")


@pytest.mark.parametrize(
    ("days", "activity", "name", "title"),
    [
        (30, "meditation", "", "New badge: Gold — 30 days of meditation"),
        (7, "exercise", "", "New badge: Bronze — 7 days of exercise"),
        (90, "water", "", "New badge: Platinum — 90 days of drinking water"),
        (15, "custom", "Stretching", "New badge: Silver — 15 days of Stretching"),
    ],
)
def test_badge_title(days: int, activity: str, name: str, title: str) -> None:
    assert rules.badge_title(days, activity, name) == title


@pytest.mark.parametrize(
    ("streak", "target", "percent"), [(0, 7, 0), (3, 7, 43), (7, 7, 100), (9, 7, 100), (5, 0, 100)]
)
def test_progress_percent(streak: int, target: int, percent: int) -> None:
    assert rules.progress_percent(streak, target) == percent


def test_calendar_weeks_end_with_todays_week() -> None:
    weeks = rules.calendar_weeks({TODAY: 3, TODAY - timedelta(days=8): 1}, TODAY, 12)  # TODAY is a Thursday
    assert len(weeks) == 12
    assert all(len(week) == 7 for week in weeks)
    assert weeks[0][0][0].weekday() == 0
    assert weeks[-1][3] == (TODAY, 3, False)
    assert weeks[-1][4] == (TODAY + timedelta(days=1), 0, True)
    assert weeks[-2][2] == (TODAY - timedelta(days=8), 1, False)
    assert weeks[0][0][0] == TODAY - timedelta(days=3, weeks=11)
