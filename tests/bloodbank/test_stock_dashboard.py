"""The stock dashboard on a fixed set of units and issues: counts per group x component, daily use from the
last 28 days of issues (else the policy's baseline), days of supply, levels against the policy's thresholds
and per-cell overrides; all 40 cells, in one grouped query; and the network's available counts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from caresync.bloodbank.inventory import service
from caresync.bloodbank.models import BloodBankPolicy
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_unit
from tests.conftest import API, Cast, Factory


def set_policy(org_id: uuid.UUID, **values: Any) -> None:
    """Save the organisation's blood bank policy with ``values`` (the rest at their defaults)."""
    defaults: dict[str, Any] = {
        "low_stock_days": 3.0,
        "critical_stock_days": 1.0,
        "expiry_warning_days": 3,
        "stock_thresholds": {},
        "baseline_daily_use": {},
    }
    with transaction(session_factory()) as s:
        s.add(BloodBankPolicy(organisation_id=org_id, **{**defaults, **values}))


def issued(org: Any, group: str, component: str, count: int, days_ago: float, status: str = "issued") -> None:
    """``count`` units of the organisation issued ``days_ago`` days ago (transfused ones keep the time)."""
    now = utcnow()
    for _ in range(count):
        at = now - timedelta(days=days_ago)
        extra = {"transfused_at": at + timedelta(hours=1)} if status == "transfused" else {}
        make_unit(org, group, component, status=status, issued_at=at, **extra)


@pytest.fixture
def stocked(cast: Cast, make: Factory) -> uuid.UUID:
    """The fixed stock of the cast's hospital (see each cell's comment) and a neighbour's units."""
    org = cast.org
    set_policy(
        org.id,
        stock_thresholds={"O-:red_cells": 5},
        baseline_daily_use={"AB-:plasma": 0.5, "A+:red_cells": 9.0},
    )
    day = timedelta(days=1)
    # O-:red_cells: 4 available (1 expiring within 3 days), 2 held, 2 in quarantine, 1 past expiry; 28 issued
    # in 28 days (1 a day) -> 4 days of supply, under its own 5-day threshold: low.
    make_unit(org, "O-", expires_in=2 * day)
    for _ in range(3):
        make_unit(org, "O-", expires_in=20 * day)
    make_unit(org, "O-", status="reserved")
    make_unit(org, "O-", status="crossmatched")
    make_unit(org, "O-", status="quarantined", expires_in=day)
    make_unit(org, "O-", status="quarantined")
    make_unit(org, "O-", expires_in=-timedelta(hours=1))  # not yet moved to expired: not stock
    issued(org, "O-", "red_cells", 20, 3)
    issued(org, "O-", "red_cells", 8, 27, status="transfused")
    issued(org, "O-", "red_cells", 5, 29)  # before the window
    make_unit(org, "O-", status="discarded", issued_at=utcnow() - 2 * day)  # returned too late: not use
    # A+:red_cells: 1 available, 14 issued -> 0.5 a day (history beats the baseline) -> 2 days: low.
    make_unit(org, "A+")
    issued(org, "A+", "red_cells", 14, 10)
    # B+:platelets: none available, 7 issued -> 0 days: critical.
    issued(org, "B+", "platelets", 7, 1)
    # AB-:plasma: 2 available, no issues, baseline 0.5 a day -> 4 days: ok.
    make_unit(org, "AB-", "plasma", expires_in=300 * day)
    make_unit(org, "AB-", "plasma", expires_in=300 * day)
    # O+:cryo: 3 available, no use known -> no days of supply, ok.
    for _ in range(3):
        make_unit(org, "O+", "cryo", expires_in=300 * day)
    # The neighbour's units count for them only.
    neighbour = make.org(kind="blood_bank")
    for _ in range(5):
        make_unit(neighbour, "O-")
    issued(neighbour, "O-", "red_cells", 10, 2)
    return org.id


def cells_of(org_id: uuid.UUID) -> dict[str, service.StockCell]:
    with transaction(session_factory()) as s:
        return {c.key: c for c in service.stock_dashboard(s, org_id)}


def figures(cell: service.StockCell) -> tuple[Any, ...]:
    days = None if cell.days_of_supply is None else round(cell.days_of_supply, 6)
    use = None if cell.daily_use is None else round(cell.daily_use, 6)
    return (cell.available, cell.reserved, cell.quarantined, cell.expiring_soon, use, days, cell.level)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("O-:red_cells", (4, 2, 2, 1, 1.0, 4.0, "low")),
        ("A+:red_cells", (1, 0, 0, 0, 0.5, 2.0, "low")),
        ("B+:platelets", (0, 0, 0, 0, 0.25, 0.0, "critical")),
        ("AB-:plasma", (2, 0, 0, 0, 0.5, 4.0, "ok")),
        ("O+:cryo", (3, 0, 0, 0, None, None, "ok")),
        ("AB+:whole_blood", (0, 0, 0, 0, None, None, "ok")),
    ],
    ids=["override-low", "history-over-baseline", "empty-critical", "baseline", "no-use", "nothing"],
)
def test_dashboard_figures(stocked: uuid.UUID, key: str, expected: tuple[Any, ...]) -> None:
    assert figures(cells_of(stocked)[key]) == expected


def test_every_group_and_component_in_order(stocked: uuid.UUID) -> None:
    with transaction(session_factory()) as s:
        cells = service.stock_dashboard(s, stocked)
    assert [(c.blood_group, c.component) for c in cells] == [(g, c) for g in BLOOD_GROUPS for c in COMPONENTS]
    assert len(cells) == 40
    assert cells_of(stocked)["O-:red_cells"].low_stock_days == 5
    assert cells_of(stocked)["A+:red_cells"].low_stock_days == 3


def test_the_dashboard_is_two_grouped_queries_plus_the_policy(stocked: uuid.UUID) -> None:
    statements: list[str] = []
    with transaction(session_factory()) as s:
        engine = s.get_bind()

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            service.stock_dashboard(s, stocked)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    queries = [sql for sql in statements if sql.startswith("SELECT")]  # not the transaction's BEGIN
    assert len(queries) == 3, queries  # the policy, then the shelf's and the issues' grouped queries
    assert all("GROUP BY" in sql for sql in queries[1:])


@pytest.mark.parametrize(
    ("days", "low", "critical", "level"),
    [
        (None, 3, 1, "ok"),
        (0.0, 3, 1, "critical"),
        (0.99, 3, 1, "critical"),
        (1.0, 3, 1, "low"),  # at the critical threshold: no longer below it
        (2.99, 3, 1, "low"),
        (3.0, 3, 1, "ok"),
        (4.0, 5, 1, "low"),
        (0.5, 0.5, 0.5, "ok"),
    ],
)
def test_stock_level_thresholds(days: float | None, low: float, critical: float, level: str) -> None:
    assert service.stock_level(days, low, critical) == level


def test_a_stricter_critical_threshold_applies_within_an_override(cast: Cast) -> None:
    set_policy(cast.org.id, low_stock_days=4, critical_stock_days=2, stock_thresholds={"O+:red_cells": 1.5})
    make_unit(cast.org, "O+")
    issued(cast.org, "O+", "red_cells", 28, 5)  # 1 a day, 1 available -> 1 day, below the override of 1.5
    assert cells_of(cast.org.id)["O+:red_cells"].level == "critical"


def test_the_default_policy_applies_when_none_is_saved(cast: Cast) -> None:
    make_unit(cast.org, "B-", expires_in=timedelta(days=2))
    issued(cast.org, "B-", "red_cells", 14, 3)  # 0.5 a day -> 2 days: below the default 3
    cell = cells_of(cast.org.id)["B-:red_cells"]
    assert (cell.expiring_soon, cell.level) == (1, "low")


def test_available_counts_are_per_organisation(stocked: uuid.UUID, cast: Cast) -> None:
    with transaction(session_factory()) as s:
        everyone = service.available_counts(s)
        ours = service.available_counts(s, [stocked])
    assert ours == {
        (stocked, "O-", "red_cells"): 4,
        (stocked, "A+", "red_cells"): 1,
        (stocked, "AB-", "plasma"): 2,
        (stocked, "O+", "cryo"): 3,
    }
    others = {k: v for k, v in everyone.items() if k[0] != stocked}
    assert list(others.values()) == [5]
    with transaction(session_factory()) as s:
        assert service.available_counts(s, []) == {}


def test_available_counts_at_a_later_time(cast: Cast) -> None:
    make_unit(cast.org, "O-", expires_in=timedelta(hours=5))
    make_unit(cast.org, "O-", expires_in=timedelta(days=5))
    later = utcnow() + timedelta(days=1)
    with transaction(session_factory()) as s:
        assert service.available_counts(s, [cast.org.id], now=later) == {(cast.org.id, "O-", "red_cells"): 1}


def test_the_stock_api(client: TestClient, sign_in: Any, cast: Cast, stocked: uuid.UUID) -> None:
    response = client.get(f"{API}/bloodbank/stock", headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["organisation_id"] == str(stocked)
    assert datetime.fromisoformat(body["at"]).tzinfo is not None
    cells = {f"{c['blood_group']}:{c['component']}": c for c in body["cells"]}
    assert len(cells) == 40
    assert {k: cells["B+:platelets"][k] for k in ("available", "daily_use", "days_of_supply", "level")} == {
        "available": 0,
        "daily_use": 0.25,
        "days_of_supply": 0.0,
        "level": "critical",
    }
