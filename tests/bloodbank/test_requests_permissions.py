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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank.models import BloodRequest
from caresync.bloodbank.requests import api as requests_api
from caresync.bloodbank.requests import pages as requests_pages
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.rules import format_health_id
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import ROLES, Cast, Factory, login, web_login

ANON = "anonymous"
ALL = (*ROLES, ANON)
CLINICIANS = ("doctor", "nurse")
STAFF = ("bloodbank_staff",)
API = "/api/v1/bloodbank"


def only(roles: tuple[str, ...], code: int) -> dict[str, int]:
    """``code`` for ``roles``, 403 for every other role, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 403), **dict.fromkeys(roles, code), ANON: 401}


def pages(expect: dict[str, int]) -> dict[str, int]:
    """The same for a page: signed-out visitors are redirected to sign in."""
    return {**expect, ANON: 303}


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


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    path: Callable[[World], dict[str, str]] | None = None  # path parameters, fresh per call
    json: Callable[[World], dict[str, Any]] | None = None
    data: Callable[[World], dict[str, str]] | None = None  # form fields (pages add the CSRF token)
    foreign: bool = False  # also call it on the other hospital's request: 404 for everyone


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

API_CASES: dict[tuple[str, str], Case] = {
    ("POST", f"{API}/requests"): Case(only(CLINICIANS, 201), json=_order),
    ("GET", f"{API}/requests"): Case(only((*CLINICIANS, *STAFF), 200)),
    ("GET", f"{API}/requests/{{request_id}}"): Case(only((*CLINICIANS, *STAFF), 200), READ, foreign=True),
    ("POST", f"{API}/requests/{{request_id}}/cancel"): Case(
        only((*CLINICIANS, *STAFF), 200), RESERVED, json=lambda w: {"reason": "not needed"}, foreign=True
    ),
    ("GET", f"{API}/requests/{{request_id}}/proposals"): Case(only(STAFF, 200), ALLOCATABLE, foreign=True),
    ("POST", f"{API}/requests/{{request_id}}/allocate"): Case(
        only(STAFF, 200), ALLOCATABLE, json=lambda w: {"unit_ids": [str(w.units[0])]}, foreign=True
    ),
    ("POST", f"{API}/requests/{{request_id}}/auto-allocate"): Case(
        only(STAFF, 200), ALLOCATABLE, foreign=True
    ),
    ("POST", f"{API}/requests/{{request_id}}/emergency-release"): Case(
        only(STAFF, 200), EMERGENCY, foreign=True
    ),
    ("POST", f"{API}/requests/{{request_id}}/crossmatch"): Case(
        only(STAFF, 200), RESERVED, json=lambda w: {**_unit(w), "compatible": True}, foreign=True
    ),
    ("POST", f"{API}/requests/{{request_id}}/issue"): Case(
        only(STAFF, 200), CROSSMATCHED, json=lambda w: {}, foreign=True
    ),
    ("POST", f"{API}/requests/{{request_id}}/return"): Case(
        only(STAFF, 200), ISSUED, json=lambda w: {**_unit(w), "kept_cold": True}, foreign=True
    ),
    ("POST", f"{API}/requests/{{request_id}}/transfusions"): Case(
        only(CLINICIANS, 200), ISSUED, json=_unit, foreign=True
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


PAGE_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/blood-requests"): Case(pages(only(CLINICIANS, 200))),
    ("GET", "/blood-requests/new"): Case(pages(only(CLINICIANS, 200))),
    ("POST", "/blood-requests/new"): Case(pages(only(CLINICIANS, 303)), data=_order_form),
    ("GET", "/blood-requests/{request_id}"): Case(pages(only(CLINICIANS, 200)), READ, foreign=True),
    ("POST", "/blood-requests/{request_id}/transfuse"): Case(
        pages(only(CLINICIANS, 303)), ISSUED, data=_form_unit, foreign=True
    ),
    ("POST", "/blood-requests/{request_id}/cancel"): Case(
        pages(only(CLINICIANS, 303)), RESERVED, data=lambda w: {"reason": "not needed"}, foreign=True
    ),
    ("GET", "/bloodbank/requests"): Case(pages(only(STAFF, 200))),
    ("GET", "/bloodbank/requests/{request_id}"): Case(pages(only(STAFF, 200)), ALLOCATABLE, foreign=True),
    ("POST", "/bloodbank/requests/{request_id}/allocate"): Case(
        pages(only(STAFF, 303)), ALLOCATABLE, data=lambda w: {f"unit_{w.units[0]}": "on"}, foreign=True
    ),
    ("POST", "/bloodbank/requests/{request_id}/auto-allocate"): Case(
        pages(only(STAFF, 303)), ALLOCATABLE, data=lambda w: {}, foreign=True
    ),
    ("POST", "/bloodbank/requests/{request_id}/emergency-release"): Case(
        pages(only(STAFF, 303)), EMERGENCY, data=lambda w: {}, foreign=True
    ),
    ("POST", "/bloodbank/requests/{request_id}/crossmatch"): Case(
        pages(only(STAFF, 303)),
        RESERVED,
        data=lambda w: {**_form_unit(w), "result": "compatible"},
        foreign=True,
    ),
    ("POST", "/bloodbank/requests/{request_id}/issue"): Case(
        pages(only(STAFF, 303)), CROSSMATCHED, data=lambda w: {}, foreign=True
    ),
    ("POST", "/bloodbank/requests/{request_id}/return"): Case(
        pages(only(STAFF, 303)), ISSUED, data=lambda w: {**_form_unit(w), "kept_cold": "on"}, foreign=True
    ),
    ("POST", "/bloodbank/requests/{request_id}/cancel"): Case(
        pages(only(STAFF, 303)), RESERVED, data=lambda w: {"reason": "not needed"}, foreign=True
    ),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_matrices_cover_every_route() -> None:
    for router, cases in ((requests_api.router, API_CASES), (requests_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert not served - set(cases), f"add these routes to the matrix: {sorted(served - set(cases))}"
        assert not set(cases) - served, (
            f"these rows name routes that do not exist: {sorted(set(cases) - served)}"
        )


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


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def _check(
    problems: list[str], where: str, response: Any, wanted: int, secrets: tuple[str, ...], denied: int
) -> None:
    if response.status_code != wanted:
        problems.append(f"{where}: expected {wanted}, got {response.status_code} {response.text[:200]}")
    if [s for s in secrets if s in response.text]:
        problems.append(f"{where}: leaks the other patient's identity")
    if response.status_code in (403, 404) and denied < 1:
        problems.append(f"{where}: refused without a denied audit entry")


def _run(
    world: World, cases: dict[tuple[str, str], Case], call: Callable[[str, str, str, Case], Any]
) -> list[str]:
    """Call every case as every role (``call(role, method, url, case)``) and collect the problems."""
    problems: list[str] = []
    other = world.cast.other_patient
    secrets = (other.family_name, other.health_id, format_health_id(other.health_id))
    for (method, path), case in cases.items():
        for role in ALL:
            user_id = world.cast[role].id if role != ANON else None
            before = denied_count(user_id)
            url = path.format(**case.path(world)) if case.path else path
            response = call(role, method, url, case)
            _check(problems, f"{method} {path} as {role}", response, case.expect[role], secrets,
                   denied_count(user_id) - before)  # fmt: skip
            if case.foreign and role != ANON:
                before = denied_count(user_id)
                response = call(role, method, path.format(request_id=world.foreign.id), case)
                wanted = 403 if case.expect[role] == 403 else 404
                _check(problems, f"{method} {path} as {role} (other hospital)", response, wanted, secrets,
                       denied_count(user_id) - before)  # fmt: skip
    return problems


def test_requests_api_permission_matrix(client: TestClient, world: World) -> None:
    cast = world.cast
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}

    def call(role: str, method: str, url: str, case: Case) -> Any:
        body = case.json(world) if case.json else None
        response = client.request(method, url, headers=tokens[role], json=body)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
        return response

    problems = _run(world, API_CASES, call)
    assert not problems, "\n".join(problems)


def test_requests_page_permission_matrix(app: Any, world: World) -> None:
    sessions: dict[str, tuple[TestClient, str]] = {}
    for role in ALL:
        browser = TestClient(app)
        sessions[role] = (browser, web_login(browser, world.cast[role]) if role != ANON else "")

    def call(role: str, method: str, url: str, case: Case) -> Any:
        browser, csrf = sessions[role]
        data = {**case.data(world), "csrf_token": csrf} if case.data else None
        return browser.request(
            method, url, data=data, headers={"Accept": "text/html"}, follow_redirects=False
        )

    try:
        problems = _run(world, PAGE_CASES, call)
    finally:
        for browser, _csrf in sessions.values():
            browser.close()
    assert not problems, "\n".join(problems)
