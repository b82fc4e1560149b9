"""The inventory permission matrix: every route of the inventory API and page routers x every role -> the
expected status.

Only blood bank staff run the inventory (403 for every other role, audited; 401 signed out over the API, a
redirect to sign in for pages). Routes about one unit are called on a fresh unit of the staff member's own
blood bank, then on a unit of another blood bank: that one answers 404 to the staff member, exactly like a
missing id, leaves a ``denied`` audit entry and never shows the other unit's donation number.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank.inventory import api as inventory_api
from caresync.bloodbank.inventory import pages as inventory_pages
from caresync.bloodbank.models import BloodUnit
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import din, make_unit
from tests.conftest import ROLES, Cast, Factory, login, web_login

ANON = "anonymous"
ALL = (*ROLES, ANON)


def staff_only(code: int, signed_out: int = 401) -> dict[str, int]:
    """``code`` for blood bank staff, 403 for every other role, ``signed_out`` anonymously."""
    return {**dict.fromkeys(ROLES, 403), "bloodbank_staff": code, ANON: signed_out}


def page(code: int) -> dict[str, int]:
    """The same for a page: signed-out visitors are redirected to sign in."""
    return staff_only(code, signed_out=303)


@dataclass
class World:
    """The cast's blood bank and a unit of another blood bank."""

    cast: Cast
    other_unit: BloodUnit

    def fresh(self) -> dict[str, str]:
        """Path parameters naming a new quarantined unit of the cast's blood bank."""
        return {"unit_id": str(make_unit(self.cast.org, status="quarantined").id)}


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    path: Callable[[World], dict[str, str]] | None = None
    json: Callable[[], dict[str, Any]] | None = None
    data: Callable[[], dict[str, str]] | None = None  # form fields (pages add the CSRF token)


def _unit_body() -> dict[str, Any]:
    collected = (utcnow() - timedelta(hours=2)).isoformat()
    return {"din": din(), "product_code": "E0336", "component": "red_cells", "blood_group": "B+",
            "volume_ml": 280, "collected_at": collected}  # fmt: skip


def _unit_form() -> dict[str, str]:
    collected = (utcnow() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    return {"din": din(), "product_code": "E0336", "component": "red_cells", "blood_group": "B+",
            "volume_ml": "280", "collected_at": collected, "time_zone": "UTC"}  # fmt: skip


API_CASES: dict[tuple[str, str], Case] = {
    ("POST", "/api/v1/bloodbank/units"): Case(staff_only(201), json=_unit_body),
    ("GET", "/api/v1/bloodbank/units"): Case(staff_only(200)),
    ("GET", "/api/v1/bloodbank/units/{unit_id}"): Case(staff_only(200), World.fresh),
    ("POST", "/api/v1/bloodbank/units/{unit_id}/release"): Case(staff_only(200), World.fresh),
    ("POST", "/api/v1/bloodbank/units/{unit_id}/discard"): Case(
        staff_only(200), World.fresh, json=lambda: {"reason": "Bag leaking"}
    ),
    ("PATCH", "/api/v1/bloodbank/units/{unit_id}"): Case(
        staff_only(200), World.fresh, json=lambda: {"storage_location": "Fridge 9"}
    ),
    ("GET", "/api/v1/bloodbank/stock"): Case(staff_only(200)),
}
PAGE_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/bloodbank/stock"): Case(page(200)),
    ("GET", "/bloodbank/units"): Case(page(200)),
    ("GET", "/bloodbank/units/new"): Case(page(200)),
    ("POST", "/bloodbank/units/new"): Case(page(303), data=_unit_form),
    ("GET", "/bloodbank/units/{unit_id}"): Case(page(200), World.fresh),
    ("POST", "/bloodbank/units/{unit_id}/release"): Case(page(303), World.fresh, data=dict),
    ("POST", "/bloodbank/units/{unit_id}/discard"): Case(
        page(303), World.fresh, data=lambda: {"reason": "Bag leaking"}
    ),
    ("POST", "/bloodbank/units/{unit_id}/location"): Case(
        page(303), World.fresh, data=lambda: {"storage_location": "Fridge 9"}
    ),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


@pytest.mark.no_db
def test_matrices_cover_every_route() -> None:
    for router, cases in ((inventory_api.router, API_CASES), (inventory_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert not served - set(cases), f"add these routes to the matrix: {sorted(served - set(cases))}"
        assert not set(cases) - served, (
            f"these rows name routes that do not exist: {sorted(set(cases) - served)}"
        )


@pytest.fixture
def world(cast: Cast, make: Factory) -> World:
    """The cast, and a quarantined unit of another blood bank."""
    return World(cast=cast, other_unit=make_unit(make.org(kind="blood_bank"), "AB-", status="quarantined"))


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def _run(
    world: World, cases: dict[tuple[str, str], Case], call: Callable[[str, str, str, Case], Any]
) -> list[str]:
    """Call every case as every role (``call(role, method, url, case)``), and the unit routes on the other
    blood bank's unit too; collect the problems."""
    problems: list[str] = []
    secret = world.other_unit.din
    for (method, path), case in cases.items():
        for role in ALL:
            user_id = world.cast[role].id if role != ANON else None
            urls = [(path.format(**case.path(world)) if case.path else path, case.expect[role], "")]
            if case.path and role != ANON:
                wanted = case.expect[role] if case.expect[role] >= 400 else 404
                urls.append((path.format(unit_id=world.other_unit.id), wanted, " (other blood bank)"))
            for url, wanted, note in urls:
                before = denied_count(user_id)
                response = call(role, method, url, case)
                where = f"{method} {path} as {role}{note}"
                if response.status_code != wanted:
                    problems.append(
                        f"{where}: expected {wanted}, got {response.status_code} {response.text[:200]}"
                    )
                if secret in response.text:
                    problems.append(f"{where}: shows the other blood bank's unit")
                if response.status_code in (403, 404) and denied_count(user_id) - before < 1:
                    problems.append(f"{where}: refused without a denied audit entry")
    with transaction(session_factory()) as s:
        other = s.get_one(BloodUnit, world.other_unit.id)
        if (other.status, other.storage_location) != ("quarantined", "Fridge 1"):
            problems.append("the other blood bank's unit was changed")
    return problems


def test_inventory_api_permission_matrix(client: TestClient, world: World) -> None:
    cast = world.cast
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}

    def call(role: str, method: str, url: str, case: Case) -> Any:
        response = client.request(method, url, headers=tokens[role], json=case.json() if case.json else None)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
        return response

    problems = _run(world, API_CASES, call)
    assert not problems, "\n".join(problems)


def test_inventory_page_permission_matrix(app: Any, world: World) -> None:
    sessions: dict[str, tuple[TestClient, str]] = {}
    for role in ALL:
        browser = TestClient(app)
        sessions[role] = (browser, web_login(browser, world.cast[role]) if role != ANON else "")

    def call(role: str, method: str, url: str, case: Case) -> Any:
        browser, csrf = sessions[role]
        data = {**case.data(), "csrf_token": csrf} if case.data else None
        return browser.request(
            method, url, data=data, headers={"Accept": "text/html"}, follow_redirects=False
        )

    try:
        problems = _run(world, PAGE_CASES, call)
    finally:
        for browser, _csrf in sessions.values():
            browser.close()
    assert not problems, "\n".join(problems)
