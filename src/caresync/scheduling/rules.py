"""Pure scheduling rules (no I/O): appointment states after FHIR Appointment, free slots from weekly working
hours, the cancellation policy, distances, and the clinic queue's triage order and wait estimates."""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

# --- appointment states ------------------------------------------------------------------------------------


class AppointmentStatus(StrEnum):
    """FHIR R4 ``Appointment.status`` values CareSync uses."""

    PROPOSED = "proposed"  # offered to a waitlisted patient, held until they accept or the offer lapses
    BOOKED = "booked"
    ARRIVED = "arrived"  # at the front desk
    CHECKED_IN = "checked-in"  # paperwork done, waiting to be seen
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"
    WAITLIST = "waitlist"


S = AppointmentStatus
# Statuses that occupy the practitioner's time: at most one such appointment per practitioner and start
# (a partial unique index enforces it). Cancelled and waitlisted requests hold nothing.
HOLDS_SLOT = frozenset({S.PROPOSED, S.BOOKED, S.ARRIVED, S.CHECKED_IN, S.FULFILLED, S.NOSHOW})
ACTIVE = frozenset({S.PROPOSED, S.BOOKED, S.ARRIVED, S.CHECKED_IN})  # still ahead or in progress
TRANSITIONS: dict[AppointmentStatus, frozenset[AppointmentStatus]] = {
    S.WAITLIST: frozenset({S.PROPOSED, S.CANCELLED}),
    S.PROPOSED: frozenset({S.BOOKED, S.CANCELLED}),
    S.BOOKED: frozenset({S.ARRIVED, S.CHECKED_IN, S.CANCELLED, S.NOSHOW}),
    S.ARRIVED: frozenset({S.CHECKED_IN, S.FULFILLED, S.NOSHOW}),
    S.CHECKED_IN: frozenset({S.FULFILLED}),
    S.FULFILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NOSHOW: frozenset(),
}


def can_transition(current: AppointmentStatus | str, new: AppointmentStatus | str) -> bool:
    """Whether an appointment in ``current`` may move to ``new``."""
    return AppointmentStatus(new) in TRANSITIONS[AppointmentStatus(current)]


def cancellation_refusal(
    start: datetime, now: datetime, *, min_notice: timedelta, by_staff: bool
) -> str | None:
    """Why a cancellation must be refused, or ``None`` if it is allowed. Patients must give
    ``min_notice``; staff may cancel any appointment that has not started yet."""
    if now >= start:
        return "The appointment has already started; mark it as a no-show or fulfilled instead."
    if not by_staff and start - now < min_notice:
        hours = min_notice.total_seconds() / 3600
        return (
            f"Appointments can be cancelled online up to {hours:g} hours before they start. "
            "Please call the clinic."
        )
    return None


# --- slots -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyHours:
    """One block of working hours on a weekday, in the location's local time."""

    weekday: int  # 0 = Monday … 6 = Sunday
    start: time
    end: time
    slot_minutes: int
    location_id: Any = None
    breaks: tuple[tuple[time, time], ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None

    def applies_on(self, day: date) -> bool:
        """Whether these hours are worked on ``day``."""
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or day >= self.valid_from)
            and (self.valid_until is None or day <= self.valid_until)
        )


@dataclass(frozen=True, order=True)
class Slot:
    """A bookable interval (UTC)."""

    start: datetime
    end: datetime
    location_id: Any = None


Interval = tuple[datetime, datetime]


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Whether two half-open intervals ``[start, end)`` share any instant."""
    return a_start < b_end and b_start < a_end


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """``day`` at wall-clock ``at`` in ``zone`` as UTC; ``None`` if that wall-clock time does not exist
    (skipped by a daylight-saving change). Times that occur twice (clocks going back) take the first."""
    local = datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


def generate_slots(
    hours: Iterable[WeeklyHours],
    zone: ZoneInfo | str,
    first_day: date,
    last_day: date,
    *,
    busy: Iterable[Interval] = (),
    not_before: datetime | None = None,
) -> list[Slot]:
    """The free slots from ``first_day`` to ``last_day`` (inclusive, local dates): every slot of the
    weekly hours that fits before the block's end, minus slots overlapping a break, a ``busy`` interval
    (leave, blocks, appointments holding the time) or starting before ``not_before``. Slots keep their
    length in real time across daylight-saving changes; wall-clock times that do not exist are skipped."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    rules = list(hours)
    busy_sorted = merge_intervals(busy)
    busy_starts = [start for start, _end in busy_sorted]
    found: set[Slot] = set()
    day = first_day
    while day <= last_day:
        for rule in rules:
            if rule.applies_on(day):
                found.update(_slots_of(rule, day, zone))
        day += timedelta(days=1)
    return [
        slot
        for slot in sorted(found)
        if (not_before is None or slot.start >= not_before) and not _is_busy(slot, busy_sorted, busy_starts)
    ]


def _slots_of(rule: WeeklyHours, day: date, zone: ZoneInfo) -> Iterable[Slot]:
    length = timedelta(minutes=rule.slot_minutes)
    cursor = datetime.combine(day, rule.start)
    block_end = datetime.combine(day, rule.end)
    while cursor + length <= block_end:
        wall_start, wall_end = cursor.time(), (cursor + length).time()
        cursor += length
        if any(overlaps_wall(wall_start, wall_end, b_start, b_end) for b_start, b_end in rule.breaks):
            continue
        start = local_instant(day, wall_start, zone)
        if start is not None:
            yield Slot(start, start + length, rule.location_id)


def overlaps_wall(a_start: time, a_end: time, b_start: time, b_end: time) -> bool:
    """Whether two same-day wall-clock intervals overlap (an end of 00:00 means midnight)."""
    a_stop = a_end if a_end != time(0) else time.max
    b_stop = b_end if b_end != time(0) else time.max
    return a_start < b_stop and b_start < a_stop


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint intervals covering the same instants (overlapping or touching ones merged)."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _is_busy(slot: Slot, merged: Sequence[Interval], starts: Sequence[datetime]) -> bool:
    """Whether ``slot`` overlaps any of the ``merged`` (disjoint, sorted) intervals: only the last one
    starting before the slot ends can (a binary search, not a scan)."""
    index = bisect_left(starts, slot.end) - 1
    return index >= 0 and merged[index][1] > slot.start


# --- distance ----------------------------------------------------------------------------------------------

EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def distance_km_if_known(
    lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None
) -> float | None:
    """:func:`distance_km`, or None when either position is unknown."""
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    return distance_km(lat1, lon1, lat2, lon2)


# --- clinic queue and triage -------------------------------------------------------------------------------


class TriageScale(StrEnum):
    """The triage scale an organisation uses (both rank 1 = most urgent … 5 = least)."""

    MANCHESTER = "manchester"
    ESI = "esi"


# Maximum waits in minutes before a patient is overdue. Manchester's are the scale's own target times;
# ESI defines none, so these are CareSync's defaults, which an organisation may change.
DEFAULT_MAX_WAIT_MINUTES: dict[TriageScale, dict[int, int]] = {
    TriageScale.MANCHESTER: {1: 0, 2: 10, 3: 60, 4: 120, 5: 240},
    TriageScale.ESI: {1: 0, 2: 10, 3: 30, 4: 60, 5: 120},
}
TRIAGE_LABELS: dict[TriageScale, dict[int, str]] = {
    TriageScale.MANCHESTER: {
        1: "Immediate (red)",
        2: "Very urgent (orange)",
        3: "Urgent (yellow)",
        4: "Standard (green)",
        5: "Non-urgent (blue)",
    },
    TriageScale.ESI: {1: "Resuscitation", 2: "Emergent", 3: "Urgent", 4: "Less urgent", 5: "Non-urgent"},
}
TRIAGE_LEVELS = (1, 2, 3, 4, 5)


class QueueEntryLike(Protocol):
    """What the ordering rule needs of a queue entry."""

    @property
    def arrived_at(self) -> datetime: ...

    @property
    def triage_level(self) -> int | None: ...


E = TypeVar("E", bound=QueueEntryLike)


def is_overdue(entry: QueueEntryLike, now: datetime, max_wait: dict[int, int] | None = None) -> bool:
    """Whether a triaged patient has waited longer than their level allows (level 1 never waits)."""
    if entry.triage_level is None:
        return False
    limits = max_wait or DEFAULT_MAX_WAIT_MINUTES[TriageScale.MANCHESTER]
    return now - entry.arrived_at > timedelta(minutes=limits[entry.triage_level])


def effective_level(entry: QueueEntryLike, now: datetime, max_wait: dict[int, int] | None = None) -> int:
    """The level a patient is ordered by: their triage level, one step more urgent once overdue
    (escalation), and after every triaged patient (6) while not yet triaged."""
    if entry.triage_level is None:
        return 6
    if is_overdue(entry, now, max_wait):
        return max(1, entry.triage_level - 1)
    return entry.triage_level


def queue_order(entries: Iterable[E], now: datetime, max_wait: dict[int, int] | None = None) -> list[E]:
    """The order in which waiting patients are called: most urgent effective level first (overdue
    patients are escalated one level), then first come first served within a level; patients not yet
    triaged come last, in arrival order. Stable for equal keys."""
    return sorted(entries, key=lambda e: (effective_level(e, now, max_wait), e.arrived_at))


def typical_consultation_minutes(durations: Sequence[float], default: float = 15.0) -> float:
    """The median of recent consultation durations (minutes), or ``default`` with fewer than three."""
    usable = [d for d in durations if d > 0]
    return float(statistics.median(usable)) if len(usable) >= 3 else default


def estimated_waits(ahead_counts: Sequence[int], consultation_minutes: float, clinicians: int) -> list[int]:
    """Estimated minutes until each patient is called, from how many patients are ahead of them, the typical
    consultation length and the clinicians seeing patients (each takes the next patient when free)."""
    per_round = max(1, clinicians)
    return [round((ahead // per_round) * consultation_minutes) for ahead in ahead_counts]


# --- the directory's vocabularies ---------------------------------------------------------------------------

SPECIALTIES: dict[str, str] = {
    "general-practice": "General practice",
    "cardiology": "Cardiology",
    "dermatology": "Dermatology",
    "endocrinology": "Endocrinology",
    "gastroenterology": "Gastroenterology",
    "neurology": "Neurology",
    "obstetrics-gynaecology": "Obstetrics and gynaecology",
    "oncology": "Oncology",
    "ophthalmology": "Ophthalmology",
    "orthopaedics": "Orthopaedics",
    "paediatrics": "Paediatrics",
    "psychiatry": "Psychiatry",
    "pulmonology": "Pulmonology",
    "rheumatology": "Rheumatology",
    "urology": "Urology",
    "emergency-medicine": "Emergency medicine",
}
LANGUAGES: dict[str, str] = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pl": "Polish",
    "pt": "Portuguese",
    "ar": "Arabic",
    "hi": "Hindi",
    "ur": "Urdu",
    "zh": "Chinese",
    "ro": "Romanian",
    "it": "Italian",
}
INSURANCE_PLANS: dict[str, str] = {
    "sns": "SNS (public)",
    "medis": "Medis",
    "multicare": "Multicare",
    "advancecare": "AdvanceCare",
    "allianz-care": "Allianz Care",
    "cigna-global": "Cigna Global",
    "self-pay": "Self-pay",
}


def plan_for_insurer(insurer: str) -> str:
    """The plan code for an insurer named on a patient's profile (``""`` if it is not one we know)."""
    wanted = insurer.strip().lower()
    return next((code for code, name in INSURANCE_PLANS.items() if wanted in (code, name.lower())), "")


class ConsultationMode(StrEnum):
    """How a consultation takes place."""

    IN_PERSON = "in-person"
    VIDEO = "video"


class QueueStatus(StrEnum):
    """Where a patient is in the clinic queue."""

    WAITING = "waiting"
    CALLED = "called"
    IN_CONSULTATION = "in-consultation"
    DONE = "done"
    LEFT = "left"  # left without being seen


OPEN_QUEUE_STATUSES = frozenset({QueueStatus.WAITING, QueueStatus.CALLED, QueueStatus.IN_CONSULTATION})
