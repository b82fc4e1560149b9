"""The alerts and call-outs permission matrix: every route of the alerts API and page routers x every role
-> the expected status.

The world is the ``cast`` (one person of every role in one hospital); the cast's donor has a donor profile.
Alerts and call-outs are for blood bank staff of their own organisation (403 for every other role, 404 for
another organisation's call-out, exactly as for a missing id); the donor routes are for donors (403 for
every other role; a call that did not reach the donor is 404). Every refusal leaves a ``denied`` audit
entry by the caller. Pages answer signed-out visitors with a redirect to the sign-in page.

Routes that change a call-out get a fresh one per call (inserted directly, with the cast's donor already
contacted), so every role meets the same situation. ``test_matrices_cover_every_route`` fails when a route
of the two routers is missing from the tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.bloodbank.alerts import api as alerts_api
from caresync.bloodbank.alerts import pages as alerts_pages
from caresync.bloodbank.models import CalloutContact, Donor, DonorCallout
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_donor
from tests.conftest import ROLES, Cast, Factory, login, web_login
from tests.prescriptions.test_dispensing_permissions import denied_count, router_routes

ANON = "anonymous"
ALL = (*ROLES, ANON)


def only(role: str, code: int) -> dict[str, int]:
    """``code`` for ``role``, 403 for every other role, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 403), role: code, ANON: 401}


def staff(code: int) -> dict[str, int]:
    return only("bloodbank_staff", code)


def donors(code: int) -> dict[str, int]:
    return only("donor", code)


def pages(expect: dict[str, int]) -> dict[str, int]:
    """The same for a page: signed-out visitors are redirected to sign in."""
    return {**expect, ANON: 303}


@dataclass
class World:
    """The cast, the cast donor's profile and another blood bank."""

    cast: Cast
    donor: Donor
    other_org: Organisation

    def callout(self, organisation_id: uuid.UUID | None = None) -> uuid.UUID:
        """A fresh active call-out (of the cast's hospital by default) that reached the cast's donor."""
        with transaction(session_factory()) as s:
            callout = DonorCallout(
                organisation_id=organisation_id or self.cast.org.id,
                blood_groups=["O-"],
                donation_type="whole_blood",
                donors_needed=3,
                reason="Test call",
                waves_sent=1,
                created_at=utcnow(),
            )
            s.add(callout)
            s.flush()
            s.add(CalloutContact(callout_id=callout.id, donor_id=self.donor.id, wave=1, notified_at=utcnow()))
            return callout.id


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    path: Callable[[World], dict[str, str]] | None = None
    json: Callable[[World], dict[str, Any]] | None = None
    data: Callable[[World], dict[str, str]] | None = None
    other_org: bool = False  # also call it on another blood bank's call-out: 404 for staff


def _fresh(world: World) -> dict[str, str]:
    return {"callout_id": str(world.callout())}


def _new_callout(_world: World) -> dict[str, Any]:
    return {"needed_group": "O-", "donors_needed": 2}


API_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/bloodbank/alerts"): Case(staff(200)),
    ("POST", "/api/v1/bloodbank/alerts/scan"): Case(staff(200)),
    ("GET", "/api/v1/bloodbank/callouts"): Case(staff(200)),
    ("POST", "/api/v1/bloodbank/callouts"): Case(staff(201), json=_new_callout),
    ("GET", "/api/v1/bloodbank/callouts/{callout_id}"): Case(staff(200), _fresh, other_org=True),
    ("POST", "/api/v1/bloodbank/callouts/{callout_id}/waves"): Case(staff(200), _fresh, other_org=True),
    ("POST", "/api/v1/bloodbank/callouts/{callout_id}/close"): Case(staff(200), _fresh, other_org=True),
    ("GET", "/api/v1/bloodbank/me/callouts"): Case(donors(200)),
    ("POST", "/api/v1/bloodbank/me/callouts/{callout_id}/reply"): Case(
        donors(200), _fresh, json=lambda w: {"accept": False}
    ),
}
PAGE_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/bloodbank/alerts"): Case(pages(staff(200))),
    ("POST", "/bloodbank/alerts/scan"): Case(pages(staff(303)), data=lambda w: {}),
    ("POST", "/bloodbank/callouts"): Case(
        pages(staff(303)), data=lambda w: {"needed_group": "O-", "donors_needed": "2"}
    ),
    ("GET", "/bloodbank/callouts/{callout_id}"): Case(pages(staff(200)), _fresh, other_org=True),
    ("POST", "/bloodbank/callouts/{callout_id}/waves"): Case(
        pages(staff(303)), _fresh, data=lambda w: {}, other_org=True
    ),
    ("POST", "/bloodbank/callouts/{callout_id}/close"): Case(
        pages(staff(303)), _fresh, data=lambda w: {}, other_org=True
    ),
    ("GET", "/donor/callouts"): Case(pages(donors(200))),
    ("POST", "/donor/callouts/{callout_id}/reply"): Case(
        pages(donors(303)), _fresh, data=lambda w: {"answer": "decline"}
    ),
}


def test_matrices_cover_every_route() -> None:
    for router, cases in ((alerts_api.router, API_CASES), (alerts_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert not served - set(cases), f"add these routes to the matrix: {sorted(served - set(cases))}"
        assert not set(cases) - served, (
            f"these rows name routes that do not exist: {sorted(set(cases) - served)}"
        )


@pytest.fixture
def world(cast: Cast, make: Factory) -> World:
    profile = make_donor(blood_group="O-", user_id=cast["donor"].id)
    return World(cast=cast, donor=profile, other_org=make.org(kind="blood_bank"))


def _check(problems: list[str], where: str, response: Any, wanted: int, denied: int) -> None:
    if response.status_code != wanted:
        problems.append(f"{where}: expected {wanted}, got {response.status_code} {response.text[:200]}")
    if response.status_code in (403, 404) and denied < 1:
        problems.append(f"{where}: refused without a denied audit entry")


def _run(
    world: World, cases: dict[tuple[str, str], Case], call: Callable[[str, str, str, Case], Any]
) -> list[str]:
    """Call every case as every role (``call(role, method, url, case)``) and collect the problems."""
    problems: list[str] = []
    for (method, path), case in cases.items():
        for role in ALL:
            user_id = world.cast[role].id if role != ANON else None
            before = denied_count(user_id)
            url = path.format(**case.path(world)) if case.path else path
            response = call(role, method, url, case)
            _check(
                problems,
                f"{method} {path} as {role}",
                response,
                case.expect[role],
                denied_count(user_id) - before,
            )
            if case.other_org and role != ANON:
                before = denied_count(user_id)
                url = path.format(callout_id=world.callout(world.other_org.id))
                response = call(role, method, url, case)
                wanted = case.expect[role] if case.expect[role] >= 400 else 404
                _check(
                    problems,
                    f"{method} {path} as {role} (other org)",
                    response,
                    wanted,
                    denied_count(user_id) - before,
                )
    return problems


def test_alerts_api_permission_matrix(client: TestClient, world: World) -> None:
    cast = world.cast
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}

    def call(role: str, method: str, url: str, case: Case) -> Any:
        response = client.request(
            method, url, headers=tokens[role], json=case.json(world) if case.json else None
        )
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
        return response

    problems = _run(world, API_CASES, call)
    assert not problems, "\n".join(problems)


def test_alerts_page_permission_matrix(app: Any, world: World) -> None:
    sessions: dict[str, tuple[TestClient, str]] = {}
    for role in ALL:
        browser = TestClient(app)
        sessions[role] = (browser, web_login(browser, world.cast[role]) if role != ANON else "")

    def call(role: str, method: str, url: str, case: Case) -> Any:
        browser, csrf = sessions[role]
        data = {**case.data(world), "csrf_token": csrf} if case.data is not None else None
        return browser.request(
            method, url, data=data, headers={"Accept": "text/html"}, follow_redirects=False
        )

    try:
        problems = _run(world, PAGE_CASES, call)
    finally:
        for browser, _csrf in sessions.values():
            browser.close()
    assert not problems, "\n".join(problems)
