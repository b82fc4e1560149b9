"""Blood bank vocabularies and rules (no I/O): blood groups, components, unit statuses and the transitions
between them, donation types, request urgencies and statuses.

The clinical rules (ABO/Rh compatibility, shelf life, donor eligibility, rule profiles per country) live
here too, each table with the published source it follows cited beside it."""

from __future__ import annotations

from enum import StrEnum

from caresync.identity.rules import BLOOD_GROUPS

__all__ = ["BLOOD_GROUPS"]


class Component(StrEnum):
    """Blood components CareSync stocks (the names the public functions take)."""

    WHOLE_BLOOD = "whole_blood"
    RED_CELLS = "red_cells"
    PLATELETS = "platelets"
    PLASMA = "plasma"
    CRYO = "cryo"


COMPONENTS = tuple(c.value for c in Component)


class UnitStatus(StrEnum):
    """Where a unit is in its life, from collection to transfusion or disposal."""

    QUARANTINED = "quarantined"  # collected, testing not yet released
    AVAILABLE = "available"
    RESERVED = "reserved"  # held for a request (or a transfer to another hospital)
    CROSSMATCHED = "crossmatched"  # tested against the patient's sample
    ISSUED = "issued"  # left the blood bank for the ward
    TRANSFUSED = "transfused"
    EXPIRED = "expired"
    DISCARDED = "discarded"


UNIT_STATUSES = tuple(s.value for s in UnitStatus)
# The state machine: from -> the statuses it may move to. Issued units come back to ``available`` only
# when returned within the allowed time (checked by the service), otherwise they are discarded.
UNIT_TRANSITIONS: dict[UnitStatus, frozenset[UnitStatus]] = {
    UnitStatus.QUARANTINED: frozenset({UnitStatus.AVAILABLE, UnitStatus.DISCARDED, UnitStatus.EXPIRED}),
    UnitStatus.AVAILABLE: frozenset(
        {UnitStatus.RESERVED, UnitStatus.ISSUED, UnitStatus.EXPIRED, UnitStatus.DISCARDED}
    ),
    UnitStatus.RESERVED: frozenset(
        {
            UnitStatus.AVAILABLE,
            UnitStatus.CROSSMATCHED,
            UnitStatus.ISSUED,
            UnitStatus.EXPIRED,
            UnitStatus.DISCARDED,
        }
    ),
    UnitStatus.CROSSMATCHED: frozenset(
        {UnitStatus.AVAILABLE, UnitStatus.ISSUED, UnitStatus.EXPIRED, UnitStatus.DISCARDED}
    ),
    UnitStatus.ISSUED: frozenset({UnitStatus.TRANSFUSED, UnitStatus.AVAILABLE, UnitStatus.DISCARDED}),
    UnitStatus.TRANSFUSED: frozenset(),
    UnitStatus.EXPIRED: frozenset({UnitStatus.DISCARDED}),
    UnitStatus.DISCARDED: frozenset(),
}
# Units that are on the shelf (count as stock, can still expire).
IN_STOCK = frozenset({UnitStatus.AVAILABLE, UnitStatus.RESERVED, UnitStatus.CROSSMATCHED})


def can_transition(current: str, target: str) -> bool:
    """Whether a unit may move from status ``current`` to ``target``."""
    return UnitStatus(target) in UNIT_TRANSITIONS[UnitStatus(current)]


class DonationType(StrEnum):
    """Kinds of donation (each has its own minimum interval and yearly maximum)."""

    WHOLE_BLOOD = "whole_blood"
    DOUBLE_RED_CELLS = "double_red_cells"
    PLATELETS = "platelets"
    PLASMA = "plasma"


DONATION_TYPES = tuple(d.value for d in DonationType)
DONATION_OUTCOMES = ("completed", "deferred", "incomplete")
DONOR_SEXES = ("F", "M")
DEFERRAL_KINDS = ("temporary", "permanent")
APPOINTMENT_STATUSES = ("booked", "completed", "cancelled", "no_show")


class Urgency(StrEnum):
    """How fast a blood request must be met."""

    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


URGENCIES = tuple(u.value for u in Urgency)
REQUEST_STATUSES = ("open", "allocated", "issued", "completed", "cancelled")
OFFER_STATUSES = ("pending", "accepted", "declined", "expired")
TRANSFER_STATUSES = ("requested", "dispatched", "received", "cancelled")
ALERT_KINDS = ("low_stock", "expiring", "unmet_request")
CALLOUT_STATUSES = ("active", "closed")
CALLOUT_RESPONSES = ("pending", "accepted", "declined")
RULE_PROFILES = ("US", "UK", "WHO")
