"""Prescription vocabularies and rules (no I/O): FHIR MedicationRequest statuses and the transitions between
them, routes and dose frequencies, refill versus renewal, and adherence as Proportion of Days Covered."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time, timedelta
from enum import StrEnum


class Status(StrEnum):
    """FHIR R4 MedicationRequest.status codes CareSync uses."""

    DRAFT = "draft"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    CANCELLED = "cancelled"  # withdrawn before anything was dispensed
    COMPLETED = "completed"  # a renewal replaced it (the last dispense leaves it active: still being taken)
    STOPPED = "stopped"  # ended by the prescriber after dispensing began


STATUSES = tuple(s.value for s in Status)
# The state machine: from -> the statuses it may move to. ``active -> completed`` is taken only by the
# system when a renewal replaces the prescription; the service refuses it as a prescriber's choice.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.ACTIVE, Status.CANCELLED}),
    Status.ACTIVE: frozenset({Status.ON_HOLD, Status.STOPPED, Status.CANCELLED, Status.COMPLETED}),
    Status.ON_HOLD: frozenset({Status.ACTIVE, Status.STOPPED, Status.CANCELLED}),
    Status.CANCELLED: frozenset(),
    Status.COMPLETED: frozenset(),
    Status.STOPPED: frozenset(),
}
OPEN_STATUSES = frozenset({Status.DRAFT, Status.ACTIVE, Status.ON_HOLD})  # count for duplicate therapy


def can_transition(current: str, target: str, dispensed: int) -> bool:
    """Whether a prescription may move from ``current`` to ``target`` after ``dispensed`` dispenses.
    ``cancelled`` is only for prescriptions nothing was dispensed from (afterwards it is ``stopped``)."""
    if Status(target) not in TRANSITIONS[Status(current)]:
        return False
    return not (target == Status.CANCELLED and dispensed > 0)


ROUTES: dict[str, str] = {
    "oral": "By mouth",
    "sublingual": "Under the tongue",
    "inhalation": "Inhaled",
    "nasal": "In the nose",
    "ophthalmic": "In the eye",
    "topical": "On the skin",
    "transdermal": "Skin patch",
    "subcutaneous": "Injection under the skin",
    "intramuscular": "Injection into a muscle",
    "intravenous": "Into a vein",
    "rectal": "Rectal",
    "vaginal": "Vaginal",
}

# Dose frequencies: code -> (label, default local dose times). ``PRN`` (as needed) has no schedule.
FREQUENCIES: dict[str, tuple[str, tuple[time, ...]]] = {
    "QD": ("Once a day", (time(8),)),
    "QAM": ("Every morning", (time(8),)),
    "QHS": ("At bedtime", (time(22),)),
    "BID": ("Twice a day", (time(8), time(20))),
    "TID": ("Three times a day", (time(8), time(14), time(20))),
    "QID": ("Four times a day", (time(8), time(12), time(16), time(20))),
    "Q8H": ("Every 8 hours", (time(6), time(14), time(22))),
    "Q12H": ("Every 12 hours", (time(8), time(20))),
    "PRN": ("As needed", ()),
}

MAX_REFILLS = 11  # twelve fills in all: a year of monthly supplies
MAX_VALIDITY = timedelta(days=365)  # a prescription cannot be dispensed after this long
ADHERENCE_THRESHOLD = 0.8  # PDC below 80 % is flagged to the care team (the usual PQA/CMS threshold)
REQUEST_KINDS: dict[str, str] = {
    "refill": "Refill: another dispense allowed by this prescription",
    "renewal": "Renewal: a new prescription once this one has no dispenses left",
}
REQUEST_STATUSES = ("pending", "approved", "declined", "withdrawn")


def fills_allowed(refills: int) -> int:
    """Dispenses a prescription allows: the first fill plus its refills."""
    return refills + 1


def refills_left(refills: int, dispensed: int) -> int:
    """Refills still available after ``dispensed`` dispenses (the first fill is not a refill)."""
    return max(0, min(refills, fills_allowed(refills) - max(dispensed, 1)))


def fills_left(refills: int, dispensed: int) -> int:
    """Dispenses still allowed, the first fill included."""
    return max(0, fills_allowed(refills) - dispensed)


def next_step(status: str, refills: int, dispensed: int, valid_until: date, today: date) -> str:
    """What the patient needs next for this prescription: ``"first-fill"`` (take it to a pharmacy),
    ``"refill"`` (dispenses left: ask the pharmacy), ``"renewal"`` (none left or no longer valid: ask the
    prescriber for a new prescription), or ``"none"`` (not active: nothing to do)."""
    if status in (Status.CANCELLED, Status.STOPPED, Status.DRAFT):
        return "none"
    if status == Status.COMPLETED or fills_left(refills, dispensed) == 0 or today > valid_until:
        return "renewal"
    if status == Status.ON_HOLD:
        return "none"
    return "first-fill" if dispensed == 0 else "refill"


def proportion_of_days_covered(
    dispenses: Iterable[tuple[date, int]], period_start: date, period_end: date
) -> float:
    """Proportion of Days Covered (PQA method): the share of days in ``[period_start, period_end]`` (both
    inclusive) on which the patient had medication on hand.

    ``dispenses`` are ``(dispensed_on, days_supply)`` pairs in any order. Each supply starts on its
    dispense day; an early refill that overlaps the current supply is shifted to start when that supply
    runs out (patients finish one pack before starting the next), so overlaps carry forward instead of
    being lost or counted twice. Supply before the period counts only for the days inside it; days past
    ``period_end`` are ignored. Returns a float from 0 to 1; an empty or inverted period gives 0."""
    if period_end < period_start:
        return 0.0
    covered: set[date] = set()
    supply_end: date | None = None  # the first day not covered by the supply so far
    for dispensed_on, days_supply in sorted(dispenses):
        if days_supply <= 0:
            continue
        start = dispensed_on if supply_end is None else max(dispensed_on, supply_end)
        supply_end = start + timedelta(days=days_supply)
        first = max(start, period_start)
        last = min(supply_end - timedelta(days=1), period_end)
        covered.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return len(covered) / ((period_end - period_start).days + 1)
