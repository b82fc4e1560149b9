"""The blood request permission matrix: every route of the requests API and page routers x every role ->
the expected status.

The world is the ``cast`` (one person of every role in one hospital; the doctor and nurse care for the
cast's patient) plus a request of another hospital for ``cast.other_patient``. Ordering, following,
cancelling and confirming transfusions are for the patient's doctors and nurses; the queue and every
blood bank step are for blood bank staff; every other role gets 403. Another organisation's request is
404 for everyone, exactly like a missing id. No response may contain the other patient's name or Health
ID, and every refusal (403/404) leaves a ``denied`` audit entry by the caller. Pages answer signed-out
visitors with a redirect to the sign-in page.

Routes that change state get a fresh request (and units) per call, so every role meets the same
situation. ``test_matrices_cover_every_route`` fails when a route of the two routers is missing here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.bloodbank.models import BloodRequest
from caresync.bloodbank.requests import api as requests_api
from caresync.bloodbank.requests import pages as requests_pages
from caresync.db import utcnow
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Cast, Factory
from tests.permission_matrix import Case, assert_covered, check_api, check_pages, identities, only, pages

CLINICIANS = ("doctor", "nurse")
STAFF = ("bloodbank_staff",)
API = "/api/v1/bloodbank"


@dataclass
class World:
    """The cast, another hospital's request, and the units of the last fresh request."""

    cast: Cast
    foreign: BloodRequest
    units: list[uuid.UUID] = field(default_factory=list)

    def fresh(
        self, unit_status: str | None = None, *, attached: bool = True, **kwargs: Any
    ) -> dict[str, str]:
        """A new request of the cast's patient, with one unit (``unit_status``) held for it or, when not
        ``attached``, available in stock."""
        cast = self.cast
        values: dict[str, Any] = {"patient_group": "A+", "units_requested": 1, **kwargs}
        request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id, **values)
        self.units = []
        if unit_status:
            group = values["patient_group"] or "O-"
            held = {"request_id": request.id} if attached else {}
            issued = {"issued_at": utcnow() - timedelta(minutes=5)} if unit_status == "issued" else {}
            self.units = [make_unit(cast.org, group, status=unit_status, **held, **issued).id]
        return {"request_id": str(request.id)}

    def other(self) -> dict[str, str]:
        """Path parameters naming the other hospital's request."""
        return {"request_id": str(self.foreign.id)}


def _order(world: World) -> dict[str, Any]:
    when = (utcnow() + timedelta(hours=3)).isoformat()
    patient = world.cast["patient"].patient_id
    return {
        "patient_id": str(patient),
        "component": "red_cells",
        "units": 1,
        "urgency": "urgent",
        "needed_by": when,
    }


def _unit(world: World) -> dict[str, Any]:
    return {"unit_id": str(world.units[0])}


def _form_unit(world: World) -> dict[str, str]:
    return {"unit_id": str(world.units[0])}


READ = lambda w: w.fresh()  # noqa: E731
ALLOCATABLE = lambda w: w.fresh("available", attached=False)  # noqa: E731
EMERGENCY = lambda w: w.fresh("available", attached=False, patient_group=None, urgency="emergency")  # noqa: E731
RESERVED = lambda w: w.fresh("reserved")  # noqa: E731
CROSSMATCHED = lambda w: w.fresh("crossmatched")  # noqa: E731
ISSUED = lambda w: w.fresh("issued")  # noqa: E731

API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", f"{API}/requests"): Case(only(201, *CLINICIANS), json=_order),
    ("GET", f"{API}/requests"): Case(only(200, *CLINICIANS, *STAFF)),
    ("GET", f"{API}/requests/{{request_id}}"): Case(
        only(200, *CLINICIANS, *STAFF), READ, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/cancel"): Case(
        only(200, *CLINICIANS, *STAFF), RESERVED, json=lambda w: {"reason": "not needed"}, foreign=World.other
    ),
    ("GET", f"{API}/requests/{{request_id}}/proposals"): Case(
        only(200, *STAFF), ALLOCATABLE, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/allocate"): Case(
        only(200, *STAFF), ALLOCATABLE, json=lambda w: {"unit_ids": [str(w.units[0])]}, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/auto-allocate"): Case(
        only(200, *STAFF), ALLOCATABLE, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/emergency-release"): Case(
        only(200, *STAFF), EMERGENCY, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/crossmatch"): Case(
        only(200, *STAFF), RESERVED, json=lambda w: {**_unit(w), "compatible": True}, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/issue"): Case(
        only(200, *STAFF), CROSSMATCHED, json=lambda w: {}, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/return"): Case(
        only(200, *STAFF), ISSUED, json=lambda w: {**_unit(w), "kept_cold": True}, foreign=World.other
    ),
    ("POST", f"{API}/requests/{{request_id}}/transfusions"): Case(
        only(200, *CLINICIANS), ISSUED, json=_unit, foreign=World.other
    ),
}


def _order_form(world: World) -> dict[str, str]:
    patient = str(world.cast["patient"].patient_id)
    return {
        "patient_id": patient,
        "component": "plasma",
        "units": "1",
        "urgency": "routine",
        "needed_within": "4",
    }


PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/blood-requests"): Case(pages(only(200, *CLINICIANS))),
    ("GET", "/blood-requests/new"): Case(pages(only(200, *CLINICIANS))),
    ("POST", "/blood-requests/new"): Case(pages(only(303, *CLINICIANS)), data=_order_form),
    ("GET", "/blood-requests/{request_id}"): Case(pages(only(200, *CLINICIANS)), READ, foreign=World.other),
    ("POST", "/blood-requests/{request_id}/transfuse"): Case(
        pages(only(303, *CLINICIANS)), ISSUED, data=_form_unit, foreign=World.other
    ),
    ("POST", "/blood-requests/{request_id}/cancel"): Case(
        pages(only(303, *CLINICIANS)),
        RESERVED,
        data=lambda w: {"reason": "not needed"},
        foreign=World.other,
    ),
    ("GET", "/bloodbank/requests"): Case(pages(only(200, *STAFF))),
    ("GET", "/bloodbank/requests/{request_id}"): Case(
        pages(only(200, *STAFF)), ALLOCATABLE, foreign=World.other
    ),
    ("POST", "/bloodbank/requests/{request_id}/allocate"): Case(
        pages(only(303, *STAFF)),
        ALLOCATABLE,
        data=lambda w: {f"unit_{w.units[0]}": "on"},
        foreign=World.other,
    ),
    ("POST", "/bloodbank/requests/{request_id}/auto-allocate"): Case(
        pages(only(303, *STAFF)), ALLOCATABLE, data=lambda w: {}, foreign=World.other
    ),
    ("POST", "/bloodbank/requests/{request_id}/emergency-release"): Case(
        pages(only(303, *STAFF)), EMERGENCY, data=lambda w: {}, foreign=World.other
    ),
    ("POST", "/bloodbank/requests/{request_id}/crossmatch"): Case(
        pages(only(303, *STAFF)),
        RESERVED,
        data=lambda w: {**_form_unit(w), "result": "compatible"},
        foreign=World.other,
    ),
    ("POST", "/bloodbank/requests/{request_id}/issue"): Case(
        pages(only(303, *STAFF)), CROSSMATCHED, data=lambda w: {}, foreign=World.other
    ),
    ("POST", "/bloodbank/requests/{request_id}/return"): Case(
        pages(only(303, *STAFF)),
        ISSUED,
        data=lambda w: {**_form_unit(w), "kept_cold": "on"},
        foreign=World.other,
    ),
    ("POST", "/bloodbank/requests/{request_id}/cancel"): Case(
        pages(only(303, *STAFF)), RESERVED, data=lambda w: {"reason": "not needed"}, foreign=World.other
    ),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((requests_api.router, API_CASES), (requests_pages.router, PAGE_CASES))


@pytest.fixture
def world(cast: Cast, make: Factory) -> World:
    """The cast, and a request of another hospital for the other patient."""
    elsewhere = make.org()
    stranger = make.staff("doctor", elsewhere)
    foreign = make_request(
        elsewhere, cast.other_patient, stranger.id, patient_group="A+", urgency="emergency"
    )
    make_unit(elsewhere, "A+", status="reserved", request_id=foreign.id)
    return World(cast=cast, foreign=foreign)


def test_requests_api_permission_matrix(client: TestClient, world: World) -> None:
    check_api(client, world.cast, world, API_CASES, secrets=identities(world.cast.other_patient))


def test_requests_page_permission_matrix(app: Any, world: World) -> None:
    check_pages(app, world.cast, world, PAGE_CASES, secrets=identities(world.cast.other_patient))
