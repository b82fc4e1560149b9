"""The inventory permission matrix: every route of the inventory API and page routers x every role -> the
expected status.

Only blood bank staff run the inventory (403 for every other role, audited; 401 signed out over the API, a
redirect to sign in for pages). Routes about one unit are called on a fresh unit of the staff member's own
blood bank, then on a unit of another blood bank: that one answers 404 to the staff member, exactly like a
missing id, leaves a ``denied`` audit entry and never shows the other unit's donation number.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.bloodbank.inventory import api as inventory_api
from caresync.bloodbank.inventory import pages as inventory_pages
from caresync.bloodbank.models import BloodUnit
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import din, make_unit
from tests.conftest import Cast, Factory
from tests.permission_matrix import Case, Expect, assert_covered, check_api, check_pages, only, pages


def staff(code: int) -> Expect:
    """``code`` for blood bank staff, 403 for every other role, 401 signed out."""
    return only(code, "bloodbank_staff")


@dataclass
class World:
    """The cast's blood bank and a unit of another blood bank."""

    cast: Cast
    other_unit: BloodUnit

    def fresh(self) -> dict[str, str]:
        """Path parameters naming a new quarantined unit of the cast's blood bank."""
        return {"unit_id": str(make_unit(self.cast.org, status="quarantined").id)}

    def other(self) -> dict[str, str]:
        """Path parameters naming the other blood bank's unit."""
        return {"unit_id": str(self.other_unit.id)}


def _unit_body(_: World) -> dict[str, Any]:
    collected = (utcnow() - timedelta(hours=2)).isoformat()
    return {"din": din(), "product_code": "E0336", "component": "red_cells", "blood_group": "B+",
            "volume_ml": 280, "collected_at": collected}  # fmt: skip


def _unit_form(_: World) -> dict[str, str]:
    collected = (utcnow() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    return {"din": din(), "product_code": "E0336", "component": "red_cells", "blood_group": "B+",
            "volume_ml": "280", "collected_at": collected, "time_zone": "UTC"}  # fmt: skip


def unit_route(expect: Expect, **calls: Any) -> Case[World]:
    """A route about one unit: called on a fresh unit of the cast's blood bank, then on the other one."""
    return Case(expect, World.fresh, foreign=World.other, **calls)


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", "/api/v1/bloodbank/units"): Case(staff(201), json=_unit_body),
    ("GET", "/api/v1/bloodbank/units"): Case(staff(200)),
    ("GET", "/api/v1/bloodbank/units/{unit_id}"): unit_route(staff(200)),
    ("POST", "/api/v1/bloodbank/units/{unit_id}/release"): unit_route(staff(200)),
    ("POST", "/api/v1/bloodbank/units/{unit_id}/discard"): unit_route(
        staff(200), json=lambda w: {"reason": "Bag leaking"}
    ),
    ("PATCH", "/api/v1/bloodbank/units/{unit_id}"): unit_route(
        staff(200), json=lambda w: {"storage_location": "Fridge 9"}
    ),
    ("GET", "/api/v1/bloodbank/stock"): Case(staff(200)),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/bloodbank/stock"): Case(pages(staff(200))),
    ("GET", "/bloodbank/units"): Case(pages(staff(200))),
    ("GET", "/bloodbank/units/new"): Case(pages(staff(200))),
    ("POST", "/bloodbank/units/new"): Case(pages(staff(303)), data=_unit_form),
    ("GET", "/bloodbank/units/{unit_id}"): unit_route(pages(staff(200))),
    ("POST", "/bloodbank/units/{unit_id}/release"): unit_route(pages(staff(303)), data=lambda w: {}),
    ("POST", "/bloodbank/units/{unit_id}/discard"): unit_route(
        pages(staff(303)), data=lambda w: {"reason": "Bag leaking"}
    ),
    ("POST", "/bloodbank/units/{unit_id}/location"): unit_route(
        pages(staff(303)), data=lambda w: {"storage_location": "Fridge 9"}
    ),
}


@pytest.mark.no_db
def test_matrices_cover_every_route() -> None:
    assert_covered((inventory_api.router, API_CASES), (inventory_pages.router, PAGE_CASES))


@pytest.fixture
def world(cast: Cast, make: Factory) -> World:
    """The cast, and a quarantined unit of another blood bank."""
    return World(cast=cast, other_unit=make_unit(make.org(kind="blood_bank"), "AB-", status="quarantined"))


def assert_other_unit_untouched(world: World) -> None:
    with transaction(session_factory()) as s:
        other = s.get_one(BloodUnit, world.other_unit.id)
        assert (other.status, other.storage_location) == ("quarantined", "Fridge 1"), "the other unit changed"


def test_inventory_api_permission_matrix(client: TestClient, world: World) -> None:
    check_api(client, world.cast, world, API_CASES, secrets=(world.other_unit.din,))
    assert_other_unit_untouched(world)


def test_inventory_page_permission_matrix(app: Any, world: World) -> None:
    check_pages(app, world.cast, world, PAGE_CASES, secrets=(world.other_unit.din,))
    assert_other_unit_untouched(world)
