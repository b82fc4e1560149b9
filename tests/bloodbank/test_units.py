"""The unit primitive: a status change is a compare-and-set with a history event; a stale or illegal change
is refused and leaves the unit as it was."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from caresync.bloodbank import units
from caresync.bloodbank.models import BloodUnit, UnitEvent
from caresync.bloodbank.rules import UnitStatus
from caresync.core.auth import system_principal
from caresync.core.errors import Conflict
from caresync.db import session_factory, transaction
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Cast

ACTOR = system_principal("test")


def _events(unit_id: Any) -> list[tuple[str | None, str]]:
    with transaction(session_factory()) as s:
        rows = s.scalars(select(UnitEvent).where(UnitEvent.unit_id == unit_id).order_by(UnitEvent.at))
        return [(e.from_status, e.to_status) for e in rows]


def test_reserve_issue_transfuse_keeps_the_request_and_logs_each_step(cast: Cast) -> None:
    unit = make_unit(cast.org, "A+")
    request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id)
    with transaction(session_factory()) as s:
        row = s.get_one(BloodUnit, unit.id)
        units.move(s, ACTOR, row, UnitStatus.RESERVED, request_id=request.id)
        units.move(s, ACTOR, row, UnitStatus.ISSUED)
        units.move(s, ACTOR, row, UnitStatus.TRANSFUSED)
        assert (row.status, row.request_id) == ("transfused", request.id)
        assert row.issued_at is not None
        assert row.transfused_at is not None
    assert _events(unit.id) == [
        (None, "available"),
        ("available", "reserved"),
        ("reserved", "issued"),
        ("issued", "transfused"),
    ]


def test_release_to_available_detaches_the_request(cast: Cast) -> None:
    request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id)
    unit = make_unit(cast.org, "A+", status="reserved", request_id=request.id)
    with transaction(session_factory()) as s:
        row = units.move(s, ACTOR, s.get_one(BloodUnit, unit.id), UnitStatus.AVAILABLE, note="released")
        assert (row.status, row.request_id) == ("available", None)


def test_a_stale_unit_loses_and_nothing_changes(cast: Cast) -> None:
    unit = make_unit(cast.org, "O-")
    first, second = (
        make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id),
        make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id),
    )
    with transaction(session_factory()) as s:
        seen = s.get_one(BloodUnit, unit.id)  # read while still available
        s.expunge(seen)
    with transaction(session_factory()) as s:
        units.move(s, ACTOR, s.get_one(BloodUnit, unit.id), UnitStatus.RESERVED, request_id=first.id)
    with transaction(session_factory()) as s:
        s.add(seen)  # the copy still says "available"
        with pytest.raises(Conflict, match="changed by someone else"):
            units.move(s, ACTOR, seen, UnitStatus.RESERVED, request_id=second.id)
    with transaction(session_factory()) as s:
        assert s.get_one(BloodUnit, unit.id).request_id == first.id
    assert _events(unit.id) == [(None, "available"), ("available", "reserved")]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("transfused", "available"),
        ("discarded", "available"),
        ("quarantined", "issued"),
        ("expired", "reserved"),
    ],
)
def test_illegal_transitions_are_refused(cast: Cast, start: str, target: str) -> None:
    unit = make_unit(cast.org, status=start)
    with transaction(session_factory()) as s, pytest.raises(Conflict, match=f"cannot become {target}"):
        units.move(s, ACTOR, s.get_one(BloodUnit, unit.id), UnitStatus(target))
    with transaction(session_factory()) as s:
        assert s.get_one(BloodUnit, unit.id).status == start
