"""Streak rules (no I/O): the patient's local day, current and longest streaks, badges reached, the next
badge, custom activity names and the calendar heatmap's weeks.

A streak is a run of consecutive local days with a log. Today's streak is still alive while today is not
over: until the patient logs today it is the run that ended yesterday; once a whole local day has passed
without a log, it is broken (0).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta

from caresync.core.text import clean_line
from caresync.engagement.rules import ACTIVITIES, BADGES

MAX_NAME = 60
MAX_AMOUNT = 60
ONE_DAY = timedelta(days=1)
# How the badge notification names each built-in activity: "30 days of meditation".
ACTIVITY_PHRASES: dict[str, str] = {
    "exercise": "exercise",
    "meditation": "meditation",
    "medication": "taking your medication",
    "water": "drinking water",
}


def run_ending(days: set[date], last: date) -> int:
    """How many consecutive logged days end on ``last`` (0 when ``last`` itself is not logged)."""
    run = 0
    while last - timedelta(days=run) in days:
        run += 1
    return run


def current_streak(days: Iterable[date], today: date) -> int:
    """The run of consecutive logged days ending today, or ending yesterday while today is not logged yet;
    0 once a whole day passed without a log. Days after ``today`` are ignored."""
    logged = set(days)
    if today in logged:
        return run_ending(logged, today)
    return run_ending(logged, today - ONE_DAY)


def longest_streak(days: Iterable[date]) -> int:
    """The longest run of consecutive logged days ever (0 without any)."""
    return max((length for _start, length in runs(days)), default=0)


def runs(days: Iterable[date]) -> list[tuple[date, int]]:
    """The runs of consecutive days as ``(first day, length)``, oldest first."""
    found: list[tuple[date, int]] = []
    for day in sorted(set(days)):
        if found and found[-1][0] + timedelta(days=found[-1][1]) == day:
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((day, 1))
    return found


def badges_for(streak: int) -> list[int]:
    """The badge thresholds (days) a streak of ``streak`` days reaches, lowest first."""
    return [threshold for threshold in sorted(BADGES) if streak >= threshold]


def first_reached(days: Iterable[date]) -> dict[int, date]:
    """For every badge threshold some run reached: the local day it was first reached."""
    reached: dict[int, date] = {}
    for start, length in runs(days):
        for threshold in badges_for(length):
            reached.setdefault(threshold, start + timedelta(days=threshold - 1))
    return reached


def next_badge(streak: int, awarded: Iterable[int] = ()) -> tuple[int, int] | None:
    """The next badge still to earn, as ``(threshold, days to go)``: the lowest threshold that is neither
    awarded nor already reached by ``streak``. ``None`` once every badge is earned."""
    have = set(awarded)
    for threshold in sorted(BADGES):
        if threshold not in have and threshold > streak:
            return threshold, threshold - streak
    return None


def progress_percent(streak: int, target: int) -> int:
    """How far ``streak`` is towards ``target`` days, 0-100."""
    if target <= 0:
        return 100
    return max(0, min(100, round(100 * streak / target)))


def badge_name(days: int) -> str:
    """The badge's name for a threshold (``30`` -> ``"Gold"``)."""
    return BADGES[days]


def activity_label(activity: str, name: str = "") -> str:
    """What the patient calls the activity: the custom name, or the built-in label."""
    if activity == "custom":
        return name
    return ACTIVITIES.get(activity, activity)


def badge_title(days: int, activity: str, name: str = "") -> str:
    """The notification title for a new badge: ``"New badge: Gold — 30 days of meditation"``."""
    phrase = name if activity == "custom" else ACTIVITY_PHRASES.get(activity, activity)
    return f"New badge: {badge_name(days)} — {days} days of {phrase}"


def name_key(name: str) -> str:
    """What two spellings of a custom activity have in common (``" Morning  YOGA"`` ~ ``"morning yoga"``)."""
    return clean_line(name).casefold()


def card_id(activity: str, name: str = "") -> str:
    """A stable HTML id for an activity's card (custom names hashed, so any text is safe)."""
    if activity != "custom":
        return f"activity-{activity}"
    return f"activity-custom-{hashlib.sha256(name_key(name).encode()).hexdigest()[:12]}"


def calendar_weeks(counts: dict[date, int], today: date, weeks: int) -> list[list[tuple[date, int, bool]]]:
    """The heatmap's columns: ``weeks`` weeks (Monday to Sunday) ending with today's week, each day as
    ``(day, activities logged, in the future)``."""
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    columns = []
    for week in range(weeks):
        monday = first_monday + timedelta(weeks=week)
        column = []
        for offset in range(7):
            day = monday + timedelta(days=offset)
            column.append((day, counts.get(day, 0), day > today))
        columns.append(column)
    return columns
