"""Concurrent allocation: many blood bank staff sessions, each in its own thread and transaction, allocate
the same units to different requests at the same moment. Every unit ends up held by exactly one request,
every winner holds all the units it asked for (nothing half-allocated), and every loser gets Conflict.
Runs on SQLite and, when CARESYNC_TEST_DATABASE_URL is set, PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from caresync.bloodbank.models import BloodRequest, BloodUnit, UnitEvent
from caresync.bloodbank.requests import service
from caresync.core.auth import Principal
from caresync.core.errors import Conflict
from caresync.db import session_factory, transaction
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Cast

RACERS = 8


def _staff(cast: Cast) -> Principal:
    person = cast["bloodbank_staff"]
    return Principal(
        user_id=person.id, role="bloodbank_staff", full_name=person.full_name, organisation_id=cast.org.id
    )


def _race(cast: Cast, wants: dict[uuid.UUID, list[uuid.UUID]]) -> dict[uuid.UUID, str]:
    """Allocate ``wants`` (request -> units) all at once, one thread and session per request; returns each
    request's outcome: "won" or "conflict"."""
    principal = _staff(cast)
    start = threading.Barrier(len(wants))

    def attempt(request_id: uuid.UUID) -> str:
        start.wait()
        try:
            with transaction(session_factory()) as s:
                service.allocate(s, principal, request_id, wants[request_id])
        except Conflict:
            return "conflict"
        return "won"

    with ThreadPoolExecutor(max_workers=len(wants)) as pool:
        outcomes = dict(zip(wants, pool.map(attempt, wants), strict=True))
    return outcomes


def _holders() -> dict[uuid.UUID, uuid.UUID | None]:
    with transaction(session_factory()) as s:
        return {u.id: u.request_id for u in s.scalars(select(BloodUnit))}


def test_many_requests_for_the_same_units_exactly_one_wins(cast: Cast) -> None:
    units = [make_unit(cast.org, "O-").id for _ in range(3)]
    requests = [
        make_request(
            cast.org, cast["patient"].patient_id, cast["doctor"].id, patient_group="O-", units_requested=3
        )
        for _ in range(RACERS)
    ]
    outcomes = _race(cast, {r.id: units for r in requests})
    assert Counter(outcomes.values()) == {"won": 1, "conflict": RACERS - 1}, outcomes
    [winner] = [r for r, outcome in outcomes.items() if outcome == "won"]
    assert set(_holders().values()) == {winner}
    with transaction(session_factory()) as s:
        statuses = {r.id: r.status for r in s.scalars(select(BloodRequest))}
        reserve_events = s.scalars(select(UnitEvent).where(UnitEvent.to_status == "reserved")).all()
    assert statuses[winner] == "allocated"
    assert Counter(statuses.values()) == {"allocated": 1, "open": RACERS - 1}
    assert len(reserve_events) == len(units)  # no loser left an event behind


def test_overlapping_choices_never_share_a_unit_or_leave_half_an_allocation(cast: Cast) -> None:
    units = [make_unit(cast.org, "A+").id for _ in range(RACERS)]
    requests = [
        make_request(
            cast.org, cast["patient"].patient_id, cast["doctor"].id, patient_group="A+", units_requested=2
        )
        for _ in range(RACERS)
    ]
    # Request i wants units i and i+1 (wrapping round): each unit is wanted by two requests.
    wants = {r.id: [units[i], units[(i + 1) % RACERS]] for i, r in enumerate(requests)}
    outcomes = _race(cast, wants)
    holders = _holders()
    winners = [r for r, outcome in outcomes.items() if outcome == "won"]
    assert winners, outcomes
    for request_id, outcome in outcomes.items():
        held = {u for u, holder in holders.items() if holder == request_id}
        assert held == (set(wants[request_id]) if outcome == "won" else set()), (request_id, outcome)
    held_units = [u for u, holder in holders.items() if holder is not None]
    assert len(held_units) == 2 * len(winners)  # winners' units are disjoint
