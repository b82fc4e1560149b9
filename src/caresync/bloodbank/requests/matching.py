"""Which units to offer a blood request (pure, no I/O).

The order follows the component's compatibility rules (``rules.compatible_donor_groups``): the patient's
exact group first, then the other compatible groups, O-negative last unless the patient is O-negative
(AABB Standards for Blood Banks and Transfusion Services 5.15 and 5.16: ABO/Rh-compatible components;
keep group O RhD-negative red cells for the patients who need them). Within a group, the unit that
expires first is offered first (first-expiry-first-out), and expired or unavailable units never.

Matching many requests against a large stock indexes the candidates once (:class:`UnitIndex`: per
component and group, sorted by expiry) so that each request costs a few list look-ups, not a scan.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

from caresync.bloodbank import rules
from caresync.bloodbank.rules import Component, UnitStatus
from caresync.db import utcnow


class Candidate(Protocol):
    """Anything that looks like a unit on the shelf."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def blood_group(self) -> str: ...
    @property
    def component(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...


class Need(Protocol):
    """What a request asks for: a component for a patient of a group (``None`` when not yet typed)."""

    @property
    def component(self) -> str: ...
    @property
    def patient_group(self) -> str | None: ...


U = TypeVar("U", bound=Candidate)
_AVAILABLE = UnitStatus.AVAILABLE.value
_expiry = attrgetter("expires_at")
_donor_groups = cache(rules.compatible_donor_groups)  # 40 (component, group) pairs: compute each once


@dataclass
class UnitIndex(Generic[U]):
    """Available units per (component, group), each list sorted by expiry (soonest first)."""

    shelves: dict[tuple[str, str], list[U]] = field(default_factory=dict)
    expiries: dict[tuple[str, str], list[datetime]] = field(default_factory=dict)

    @classmethod
    def of(cls, units: Iterable[U]) -> UnitIndex[U]:
        """Index the available units (others are left out once, here)."""
        grouped: dict[tuple[str, str], list[U]] = defaultdict(list)
        for unit in units:
            if unit.status == _AVAILABLE:
                grouped[(unit.component, unit.blood_group)].append(unit)
        index: UnitIndex[U] = cls()
        for key, shelf in grouped.items():
            shelf.sort(key=_expiry)  # stable: units expiring together keep their given order
            index.shelves[key] = shelf
            index.expiries[key] = [u.expires_at for u in shelf]
        return index

    def take(
        self,
        component: str,
        groups: Iterable[str],
        *,
        limit: int,
        now: datetime | None = None,
        exclude: frozenset[uuid.UUID] = frozenset(),
    ) -> list[U]:
        """Up to ``limit`` unexpired units of ``component``, group by group in the order given, soonest
        expiry first within a group; ``exclude`` skips units already taken."""
        if limit <= 0:
            return []
        moment = now or utcnow()
        chosen: list[U] = []
        for group in groups:
            key = (component, group)
            shelf = self.shelves.get(key)
            if not shelf:
                continue
            start = bisect_right(self.expiries[key], moment)  # expired units are at the front
            for position in range(start, len(shelf)):
                unit = shelf[position]
                if exclude and unit.id in exclude:
                    continue
                chosen.append(unit)
                if len(chosen) == limit:
                    return chosen
        return chosen

    def propose(
        self,
        need: Need,
        *,
        limit: int,
        now: datetime | None = None,
        exclude: frozenset[uuid.UUID] = frozenset(),
    ) -> list[U]:
        """Up to ``limit`` units for ``need``, best first; none when the patient's group is unknown (that
        is emergency release, not matching)."""
        if need.patient_group is None:
            return []
        groups = _donor_groups(need.component, need.patient_group)
        return self.take(need.component, groups, limit=limit, now=now, exclude=exclude)


def propose(
    units: Iterable[U] | UnitIndex[U], request: Need, *, limit: int, now: datetime | None = None
) -> list[U]:
    """The units to offer ``request``: exact group first, then the other compatible groups (O-negative
    last unless the patient is O-negative), soonest expiry first within each group, at most ``limit``.
    Pass a :class:`UnitIndex` to match many requests against the same stock."""
    index = units if isinstance(units, UnitIndex) else UnitIndex.of(units)
    return index.propose(request, limit=limit, now=now)


# Emergency release of uncrossmatched units when the patient's group is not known yet.
# Sources: AABB Standards for Blood Banks and Transfusion Services 5.27 (emergency release: the ordering
# physician's signed statement, group O red cells for a patient whose ABO group is unknown, testing
# completed afterwards); AABB Technical Manual (21st ed.) ch. 18; Bloodworks Northwest "Emergency Red Blood
# Cell Usage" (under 16 and females under 50: O RhD-negative; males over 16 and women beyond childbearing
# age: O RhD-positive, the other RhD type when that runs out) and UTMB Blood Bank "Emergency Red Blood
# Cells usage" (O-negative kept for females of childbearing potential); plasma: group AB (no anti-A or
# anti-B), low-titre group A plasma is not used here (keep AB).
CHILD_AGE = 16
CHILDBEARING_AGE_LIMIT = 50
_O_NEGATIVE_ONLY = ("O-",)
_O_POSITIVE_FIRST = ("O+", "O-")
_AB_PLASMA = ("AB+", "AB-")  # RhD does not matter for plasma


def emergency_groups(component: str, sex: str, age: int) -> tuple[str, ...]:
    """The donor groups to release uncrossmatched, in order, for a patient of unknown group (``sex`` as
    on the patient's record: "female", "male", "other", "unknown"; ``age`` in whole years). Empty for
    components not released uncrossmatched (whole blood, platelets, cryo)."""
    if component == Component.PLASMA:
        return _AB_PLASMA
    if component != Component.RED_CELLS:
        return ()
    rh_positive_allowed = age >= CHILD_AGE and (
        sex == "male" or (sex == "female" and age >= CHILDBEARING_AGE_LIMIT)
    )
    return _O_POSITIVE_FIRST if rh_positive_allowed else _O_NEGATIVE_ONLY
