"""The clinic queue's pure rules: call order (triage level, then arrival; untriaged last), escalation at
each scale's maximum waits (boundaries exactly at the limit and one second past), wait estimates and the
typical consultation length."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from caresync.scheduling.rules import (
    DEFAULT_MAX_WAIT_MINUTES,
    TRIAGE_LABELS,
    TriageScale,
    effective_level,
    estimated_waits,
    is_overdue,
    queue_order,
    typical_consultation_minutes,
)

pytestmark = pytest.mark.no_db
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
MANCHESTER = DEFAULT_MAX_WAIT_MINUTES[TriageScale.MANCHESTER]
ESI = DEFAULT_MAX_WAIT_MINUTES[TriageScale.ESI]


@dataclass(frozen=True)
class Entry:
    """A queue entry as the rules see it."""

    name: str
    minutes_ago: float
    triage_level: int | None

    @property
    def arrived_at(self) -> datetime:
        return NOW - timedelta(minutes=self.minutes_ago)


def order(entries: list[Entry], max_wait: dict[int, int] | None = None) -> list[str]:
    return [e.name for e in queue_order(entries, NOW, max_wait)]


# Arrival times are kept inside every level's maximum wait unless a case is about escalation.
ORDER_CASES = [
    pytest.param([], [], id="empty queue"),
    pytest.param([Entry("a", 1, 3)], ["a"], id="one patient"),
    pytest.param(
        [Entry("late-urgent", 1, 2), Entry("early-standard", 5, 4)],
        ["late-urgent", "early-standard"],
        id="more urgent level first, whatever the arrival",
    ),
    pytest.param(
        [Entry("second", 3, 3), Entry("first", 8, 3), Entry("third", 1, 3)],
        ["first", "second", "third"],
        id="FIFO within a level",
    ),
    pytest.param(
        [Entry("untriaged-early", 9, None), Entry("triaged-late", 1, 5), Entry("untriaged-late", 2, None)],
        ["triaged-late", "untriaged-early", "untriaged-late"],
        id="untriaged last, in arrival order",
    ),
    pytest.param(
        [
            Entry("l5", 6, 5),
            Entry("l1", 0, 1),
            Entry("l4", 7, 4),
            Entry("l3", 8, 3),
            Entry("l2", 5, 2),
            Entry("none", 20, None),
        ],
        ["l1", "l2", "l3", "l4", "l5", "none"],
        id="all five levels and an untriaged patient",
    ),
    pytest.param(
        [Entry("level2-new", 1, 2), Entry("level3-overdue", 61, 3)],
        ["level3-overdue", "level2-new"],
        id="overdue level 3 moves up to level 2 and, having arrived first, goes ahead",
    ),
    pytest.param(
        [Entry("level2-earlier", 9, 2), Entry("level3-overdue", 61, 3)],
        ["level3-overdue", "level2-earlier"],
        id="escalated patient keeps their (earlier) arrival within the new level",
    ),
    pytest.param(
        [Entry("level1", 0, 1), Entry("level3-overdue", 500, 3)],
        ["level1", "level3-overdue"],
        id="escalation is one step only: never past level 1",
    ),
    pytest.param(
        [Entry("level3-at-limit", 60, 3), Entry("level2", 1, 2)],
        ["level2", "level3-at-limit"],
        id="exactly at the limit is not yet escalated",
    ),
]


@pytest.mark.parametrize(("entries", "expected"), ORDER_CASES)
def test_queue_order(entries: list[Entry], expected: list[str]) -> None:
    assert order(entries, MANCHESTER) == expected


def test_queue_order_defaults_to_manchester_limits() -> None:
    entries = [Entry("level2", 1, 2), Entry("level3", 61, 3)]
    assert order(entries) == order(entries, MANCHESTER) == ["level3", "level2"]


def test_queue_order_uses_the_given_limits() -> None:
    """ESI allows level 3 only 30 minutes: at 31 minutes it is escalated, under Manchester it is not."""
    entries = [Entry("level2", 1, 2), Entry("level3", 31, 3)]
    assert order(entries, ESI) == ["level3", "level2"]
    assert order(entries, MANCHESTER) == ["level2", "level3"]


def test_queue_order_is_stable_for_equal_keys() -> None:
    same = [Entry(f"p{i}", 5, 3) for i in range(6)]
    assert order(same) == [f"p{i}" for i in range(6)]
    assert order(list(reversed(same))) == [f"p{i}" for i in reversed(range(6))]


def test_queue_order_does_not_change_its_input() -> None:
    entries = [Entry("b", 1, 4), Entry("a", 2, 1)]
    snapshot = list(entries)
    queue_order(entries, NOW)
    assert entries == snapshot


BOUNDARIES = [
    pytest.param(scale, level, limit, id=f"{scale.value}-level{level}-{limit}min")
    for scale, limits in DEFAULT_MAX_WAIT_MINUTES.items()
    for level, limit in limits.items()
]


@pytest.mark.parametrize(("scale", "level", "limit"), BOUNDARIES)
def test_overdue_exactly_at_the_limit_is_not_and_one_second_past_is(
    scale: TriageScale, level: int, limit: int
) -> None:
    limits = DEFAULT_MAX_WAIT_MINUTES[scale]
    at_limit = Entry("a", limit, level)
    past = Entry("b", limit + 1 / 60, level)
    assert not is_overdue(at_limit, NOW, limits)
    assert effective_level(at_limit, NOW, limits) == level
    assert is_overdue(past, NOW, limits)
    assert effective_level(past, NOW, limits) == max(1, level - 1)


def test_the_scales_default_limits() -> None:
    assert MANCHESTER == {1: 0, 2: 10, 3: 60, 4: 120, 5: 240}
    assert ESI == {1: 0, 2: 10, 3: 30, 4: 60, 5: 120}
    assert TRIAGE_LABELS[TriageScale.MANCHESTER][1] == "Immediate (red)"
    assert TRIAGE_LABELS[TriageScale.ESI][1] == "Resuscitation"


def test_untriaged_is_never_overdue_and_ranks_after_every_level() -> None:
    waiting_long = Entry("x", 10_000, None)
    assert not is_overdue(waiting_long, NOW, MANCHESTER)
    assert effective_level(waiting_long, NOW, MANCHESTER) == 6


def test_custom_limits_apply() -> None:
    strict = {1: 0, 2: 5, 3: 15, 4: 30, 5: 45}
    entry = Entry("a", 16, 3)
    assert is_overdue(entry, NOW, strict)
    assert not is_overdue(entry, NOW, MANCHESTER)


ESTIMATE_CASES = [
    pytest.param([0, 1, 2, 3], 15.0, 1, [0, 15, 30, 45], id="one clinician"),
    pytest.param([0, 1, 2, 3, 4], 15.0, 2, [0, 0, 15, 15, 30], id="two clinicians share the queue"),
    pytest.param([0, 1, 2], 10.0, 0, [0, 10, 20], id="no clinician counted: as one"),
    pytest.param([0, 1, 2], 12.5, 1, [0, 12, 25], id="rounded to whole minutes"),
    pytest.param([], 15.0, 1, [], id="empty queue"),
]


@pytest.mark.parametrize(("ahead", "minutes", "clinicians", "expected"), ESTIMATE_CASES)
def test_estimated_waits(ahead: list[int], minutes: float, clinicians: int, expected: list[int]) -> None:
    assert estimated_waits(ahead, minutes, clinicians) == expected


TYPICAL_CASES = [
    pytest.param([], 15.0, id="no history: the default"),
    pytest.param([20.0], 15.0, id="one sample: the default"),
    pytest.param([20.0, 30.0], 15.0, id="two samples: the default"),
    pytest.param([10.0, 30.0, 20.0], 20.0, id="three samples: their median"),
    pytest.param([10.0, 20.0, 30.0, 40.0], 25.0, id="even count: mean of the middle two"),
    pytest.param([0.0, -3.0, 12.0, 14.0], 15.0, id="non-positive durations ignored (two left: default)"),
    pytest.param([5.0, 6.0, 7.0, 240.0], 6.5, id="median resists an outlier"),
]


@pytest.mark.parametrize(("durations", "expected"), TYPICAL_CASES)
def test_typical_consultation_minutes(durations: list[float], expected: float) -> None:
    assert typical_consultation_minutes(durations) == expected


def test_typical_consultation_minutes_custom_default() -> None:
    assert typical_consultation_minutes([1.0], default=8.0) == 8.0
