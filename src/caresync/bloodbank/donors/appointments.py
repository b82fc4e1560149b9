"""When donation chairs can be booked (pure: no I/O).

Every blood bank takes donors every 30 minutes from 08:00 to 18:00 (the last donor starts at 17:30) in
Europe/Lisbon time, the network's time zone; each slot holds as many donors as the organisation has
donation chairs (``BloodBankPolicy.donation_chairs``). A constant for now: per-site opening hours would be a
column of the policy.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from caresync.core.localtime import local_date, zone

TIMEZONE = "Europe/Lisbon"
OPENS = time(8, 0)
CLOSES = time(18, 0)
SLOT = timedelta(minutes=30)
BOOKING_HORIZON_DAYS = 90  # how far ahead a donor may book
REMINDER_AHEAD = timedelta(hours=24)


def slot_starts(on_date: date) -> list[datetime]:
    """The UTC start of every slot on the local day ``on_date`` (daylight-saving days included)."""
    tz = zone(TIMEZONE)
    start = datetime.combine(on_date, OPENS, tzinfo=tz)
    end = datetime.combine(on_date, CLOSES, tzinfo=tz)
    starts = []
    while start + SLOT <= end:
        starts.append(start.astimezone(UTC))
        start = (start.astimezone(UTC) + SLOT).astimezone(tz)
    return starts


def local_day(at: datetime) -> date:
    """The blood bank's calendar day at an instant."""
    return local_date(TIMEZONE, at)


def is_slot_start(at: datetime) -> bool:
    """Whether ``at`` (timezone-aware) is the start of a slot."""
    return at.astimezone(UTC) in slot_starts(local_day(at))


def local_text(at: datetime) -> str:
    """An instant as people at the blood bank read it, e.g. ``Mon 7 Dec 2026, 09:30``."""
    local = at.astimezone(zone(TIMEZONE))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"
