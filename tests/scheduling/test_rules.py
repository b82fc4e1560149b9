"""Table-driven tests of the pure scheduling rules: slot generation (breaks, leave, bookings, validity,
slot length, daylight-saving change days), appointment state transitions, the cancellation policy and
distances."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from caresync.scheduling.rules import (
    AppointmentStatus,
    Slot,
    WeeklyHours,
    can_transition,
    cancellation_refusal,
    distance_km,
    generate_slots,
    local_instant,
    merge_intervals,
)

pytestmark = pytest.mark.no_db

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY = date(2030, 1, 7)  # a Monday in winter (UTC+0 in London)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hours(
    weekday: int = 0, start: str = "09:00", end: str = "12:00", minutes: int = 30, **kw: object
) -> WeeklyHours:
    return WeeklyHours(weekday, time.fromisoformat(start), time.fromisoformat(end), minutes, **kw)  # type: ignore[arg-type]


def starts(slots: list[Slot], zone: ZoneInfo = LONDON) -> list[str]:
    return [s.start.astimezone(zone).strftime("%H:%M") for s in slots]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # slot length divides the block
        (hours(minutes=30), ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]),
        (hours(minutes=60), ["09:00", "10:00", "11:00"]),
        # a remainder shorter than a slot is not offered
        (hours(minutes=45), ["09:00", "09:45", "10:30", "11:15"]),
        (hours(end="11:59", minutes=45), ["09:00", "09:45", "10:30"]),
        (hours(end="09:20", minutes=30), []),
        # a break removes every slot overlapping it, and only those
        (hours(breaks=((time(10), time(11)),)), ["09:00", "09:30", "11:00", "11:30"]),
        (hours(breaks=((time(10, 15), time(10, 45)),)), ["09:00", "09:30", "11:00", "11:30"]),
        (hours(minutes=60, breaks=((time(9, 59), time(10)),)), ["10:00", "11:00"]),
        # touching a break is not overlapping it
        (hours(breaks=((time(12), time(13)),)), ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]),
        # other weekdays and validity windows
        (hours(weekday=1), []),
        (hours(valid_from=MONDAY + timedelta(days=1)), []),
        (hours(valid_until=MONDAY - timedelta(days=1)), []),
        (hours(valid_from=MONDAY, valid_until=MONDAY, minutes=90), ["09:00", "10:30"]),
        # working until midnight
        (hours(start="22:00", end="00:00", minutes=60), []),  # end before start on the clock: no block
        (hours(start="22:00", end="23:59", minutes=60), ["22:00"]),
    ],
)
def test_slots_of_one_day(rule: WeeklyHours, expected: list[str]) -> None:
    assert starts(generate_slots([rule], LONDON, MONDAY, MONDAY)) == expected


def test_slots_are_utc_with_their_length_and_location() -> None:
    slots = generate_slots([hours(location_id="room-1", minutes=20)], NEW_YORK, MONDAY, MONDAY)
    assert slots[0] == Slot(utc(2030, 1, 7, 14), utc(2030, 1, 7, 14, 20), "room-1")  # 09:00 EST = 14:00 UTC
    assert all(s.end - s.start == timedelta(minutes=20) for s in slots)
    assert all(s.start.tzinfo is UTC for s in slots)


@pytest.mark.parametrize(
    ("busy", "expected"),
    [
        ([], ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]),
        ([(utc(2030, 1, 7, 9, 30), utc(2030, 1, 7, 10))], ["09:00", "10:00", "10:30", "11:00", "11:30"]),
        # leave over part of a slot blocks the whole slot
        ([(utc(2030, 1, 7, 9, 45), utc(2030, 1, 7, 10, 5))], ["09:00", "10:30", "11:00", "11:30"]),
        # a whole day of leave
        ([(utc(2030, 1, 7), utc(2030, 1, 8))], []),
        # leave ending exactly when a slot starts does not block it
        ([(utc(2030, 1, 7, 8), utc(2030, 1, 7, 11))], ["11:00", "11:30"]),
        # several intervals, unsorted, one on another day
        (
            [(utc(2030, 1, 7, 11), utc(2030, 1, 7, 12)), (utc(2030, 1, 6), utc(2030, 1, 7, 9, 30))],
            ["09:30", "10:00", "10:30"],
        ),
    ],
)
def test_busy_intervals_remove_overlapping_slots(
    busy: list[tuple[datetime, datetime]], expected: list[str]
) -> None:
    assert starts(generate_slots([hours()], LONDON, MONDAY, MONDAY, busy=busy)) == expected


def test_not_before_drops_past_slots() -> None:
    slots = generate_slots([hours()], LONDON, MONDAY, MONDAY, not_before=utc(2030, 1, 7, 10, 10))
    assert starts(slots) == ["10:30", "11:00", "11:30"]


def test_several_blocks_and_days_are_merged_in_order() -> None:
    week = [hours(weekday=d, start="14:00", end="15:00", minutes=30) for d in (0, 2)] + [hours(end="10:00")]
    slots = generate_slots(week, LONDON, MONDAY, MONDAY + timedelta(days=6))
    assert [(s.start.date().isoformat(), s.start.strftime("%H:%M")) for s in slots] == [
        ("2030-01-07", "09:00"),
        ("2030-01-07", "09:30"),
        ("2030-01-07", "14:00"),
        ("2030-01-07", "14:30"),
        ("2030-01-09", "14:00"),
        ("2030-01-09", "14:30"),
    ]


def test_overlapping_rules_do_not_duplicate_slots() -> None:
    assert len(generate_slots([hours(), hours()], LONDON, MONDAY, MONDAY)) == 6


# Daylight-saving change days: 2030-03-31 (London springs forward at 01:00 UTC) and 2030-10-27 (falls back).
@pytest.mark.parametrize(
    ("day", "utc_offset_hours"),
    [(date(2030, 3, 30), 0), (date(2030, 3, 31), 1), (date(2030, 10, 26), 1), (date(2030, 10, 27), 0)],
)
def test_office_hours_keep_their_wall_clock_across_dst(day: date, utc_offset_hours: int) -> None:
    rule = hours(weekday=day.weekday(), start="09:00", end="17:00", minutes=30)
    slots = generate_slots([rule], LONDON, day, day)
    assert len(slots) == 16
    assert slots[0].start == datetime.combine(day, time(9 - utc_offset_hours), tzinfo=UTC)
    assert starts(slots)[0] == "09:00"
    assert starts(slots)[-1] == "16:30"


def test_wall_clock_times_skipped_by_spring_forward_are_not_offered() -> None:
    day = date(2030, 3, 31)  # 01:00-02:00 does not exist in London
    rule = hours(weekday=day.weekday(), start="00:00", end="03:00", minutes=30)
    slots = generate_slots([rule], LONDON, day, day)
    assert starts(slots) == ["00:00", "00:30", "02:00", "02:30"]
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)


def test_wall_clock_times_repeated_by_fall_back_are_offered_once() -> None:
    day = date(2030, 10, 27)  # 01:00-02:00 happens twice in London
    rule = hours(weekday=day.weekday(), start="00:00", end="03:00", minutes=60)
    slots = generate_slots([rule], LONDON, day, day)
    assert [s.start for s in slots] == [utc(2030, 10, 26, 23), utc(2030, 10, 27, 0), utc(2030, 10, 27, 2)]
    assert local_instant(day, time(1, 30), LONDON) == utc(2030, 10, 27, 0, 30)  # the first 01:30
    assert local_instant(date(2030, 3, 31), time(1, 30), LONDON) is None


# --- appointment states ------------------------------------------------------------------------------------

S = AppointmentStatus


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.BOOKED, S.ARRIVED, True),
        (S.BOOKED, S.CHECKED_IN, True),
        (S.BOOKED, S.CANCELLED, True),
        (S.BOOKED, S.NOSHOW, True),
        (S.BOOKED, S.FULFILLED, False),
        (S.ARRIVED, S.CHECKED_IN, True),
        (S.ARRIVED, S.FULFILLED, True),
        (S.CHECKED_IN, S.FULFILLED, True),
        (S.CHECKED_IN, S.CANCELLED, False),
        (S.PROPOSED, S.BOOKED, True),
        (S.PROPOSED, S.CANCELLED, True),
        (S.PROPOSED, S.ARRIVED, False),
        (S.WAITLIST, S.PROPOSED, True),
        (S.CANCELLED, S.BOOKED, False),
        (S.NOSHOW, S.FULFILLED, False),
        (S.FULFILLED, S.CANCELLED, False),
    ],
)
def test_status_transitions(current: S, new: S, allowed: bool) -> None:
    assert can_transition(current, new) is allowed
    assert can_transition(current.value, new.value) is allowed


START = utc(2030, 1, 7, 10)
DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("now", "by_staff", "refused"),
    [
        (START - timedelta(hours=25), False, False),
        (START - DAY, False, False),  # exactly the notice period: still allowed
        (START - DAY + timedelta(seconds=1), False, True),
        (START - timedelta(hours=1), False, True),
        (START - timedelta(hours=1), True, False),  # staff may cancel at short notice
        (START, True, True),  # but not once it has started
        (START + timedelta(minutes=5), False, True),
    ],
)
def test_cancellation_policy(now: datetime, by_staff: bool, refused: bool) -> None:
    reason = cancellation_refusal(START, now, min_notice=DAY, by_staff=by_staff)
    assert (reason is not None) is refused
    if refused and now < START:
        assert "24 hours" in str(reason)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((51.5074, -0.1278), (51.5074, -0.1278), 0.0),
        ((51.5074, -0.1278), (48.8566, 2.3522), 343.6),  # London - Paris
        ((40.7128, -74.0060), (34.0522, -118.2437), 3935.7),  # New York - Los Angeles
        ((0.0, 179.9), (0.0, -179.9), 22.2),  # across the antimeridian
    ],
)
def test_distance_km(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert distance_km(*a, *b) == pytest.approx(km, abs=0.5)


@pytest.mark.parametrize(
    ("intervals", "merged"),
    [
        ([], []),
        ([(3, 4), (1, 2)], [(1, 2), (3, 4)]),  # sorted, apart
        ([(1, 3), (2, 4)], [(1, 4)]),  # overlapping
        ([(1, 2), (2, 3)], [(1, 3)]),  # touching
        ([(1, 10), (2, 3), (4, 5)], [(1, 10)]),  # nested
        ([(5, 6), (1, 2), (1, 3)], [(1, 3), (5, 6)]),
    ],
)
def test_merge_intervals(intervals: list[tuple[int, int]], merged: list[tuple[int, int]]) -> None:
    def at_hour(h: int) -> datetime:
        return utc(2030, 1, 7) + timedelta(hours=h)

    given = [(at_hour(a), at_hour(b)) for a, b in intervals]
    assert merge_intervals(given) == [(at_hour(a), at_hour(b)) for a, b in merged]
