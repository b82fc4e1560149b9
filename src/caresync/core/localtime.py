"""People's local time: an IANA time zone name to a zone, and the calendar day somewhere at an instant.

Profiles validate time zone names on entry; a name that is missing or no longer known (the tz database
changes) falls back to UTC here rather than failing a request or a job."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from caresync.db import utcnow

FALLBACK_TIMEZONE = "UTC"


@cache
def known_zones() -> frozenset[str]:
    """Every IANA time zone name this machine knows (read from the tz database once per process)."""
    return frozenset(available_timezones())


def zone(name: str | None) -> ZoneInfo:
    """The time zone called ``name`` (UTC when it is missing or unknown)."""
    try:
        return ZoneInfo(name or FALLBACK_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(FALLBACK_TIMEZONE)


def local_date(where: str | ZoneInfo | None, at: datetime | None = None) -> date:
    """The calendar date in ``where`` (a zone or its name) at the timezone-aware instant ``at`` (now when
    omitted)."""
    instant = at or utcnow()
    if instant.tzinfo is None:
        raise ValueError("local_date needs a timezone-aware instant")
    return instant.astimezone(where if isinstance(where, ZoneInfo) else zone(where)).date()
