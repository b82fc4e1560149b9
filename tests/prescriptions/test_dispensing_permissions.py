"""The dispensing permission matrix: every route of the dispensing API and page routers x every role ->
the expected status.

The world is the ``cast`` (one person of every role; the doctor and nurse care for the cast's patient)
with a prescription of the cast's patient, and a prescription of ``cast.other_patient`` (cared for by
nobody in the hospital) written by a doctor of another hospital. A prescription's code, image and
printout are for whoever may read it (the patient and the care team; 404 for everyone else, exactly as for
a missing id); verifying and dispensing are for pharmacists (403 for every other role). No response may
contain the other patient's name or Health ID, and every refusal (403/404) leaves a ``denied`` audit entry
by the caller. Pages answer signed-out visitors with a redirect to the sign-in page.

Routes that change state get a fresh prescription per call, so every role meets the same situation.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from caresync.identity.rules import format_health_id
from caresync.prescriptions.dispensing import api as dispensing_api
from caresync.prescriptions.dispensing import pages as dispensing_pages
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Prescription
from tests.conftest import ROLES, Cast, login, web_login
from tests.prescriptions.conftest import make_prescription

ANON = "anonymous"
ALL = (*ROLES, ANON)
READERS = ("patient", "doctor", "nurse")


def readers(code: int) -> dict[str, int]:
    """``code`` for the patient and their care team, 404 for other roles, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 404), **dict.fromkeys(READERS, code), ANON: 401}


def pharmacists(code: int) -> dict[str, int]:
    """``code`` for the pharmacist, 403 for other roles, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 403), "pharmacist": code, ANON: 401}


def pages(expect: dict[str, int]) -> dict[str, int]:
    """The same for a page: signed-out visitors are redirected to sign in."""
    return {**expect, ANON: 303}


@dataclass
class World:
    """The prescriptions the requests refer to."""

    cast: Cast
    other_rx: Prescription  # of the patient nobody in the hospital cares for

    def fresh(self) -> Prescription:
        """A new active prescription of the cast's patient (3 fills)."""
        return make_prescription(self.cast["doctor"], self.cast["patient"], refills=2)

    def code(self) -> str:
        """A valid code of a fresh prescription."""
        with transaction(session_factory()) as s:
            found = s.get(Prescription, self.fresh().id)
            assert found is not None
            return qr.encode(s, found)


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    path: Callable[[World], dict[str, str]] | None = None  # path parameters, fresh per call
    json: Callable[[World], dict[str, Any]] | None = None
    data: Callable[[World], dict[str, str]] | None = None  # form fields (pages add the CSRF token)
    files: Callable[[World], dict[str, Any]] | None = None
    other_patient: bool = False  # also call it on the other patient's prescription: 404 for everyone


def _rx(world: World) -> dict[str, str]:
    return {"prescription_id": str(world.fresh().id)}


def _png(world: World) -> dict[str, Any]:
    return {"image": ("qr.png", qr.render_png(world.code()), "image/png")}


API_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/prescriptions/{prescription_id}/qr"): Case(readers(200), _rx, other_patient=True),
    ("GET", "/api/v1/prescriptions/{prescription_id}/qr.png"): Case(readers(200), _rx, other_patient=True),
    ("GET", "/api/v1/prescriptions/{prescription_id}/print.pdf"): Case(readers(200), _rx, other_patient=True),
    ("POST", "/api/v1/pharmacy/verify"): Case(pharmacists(200), json=lambda w: {"code": w.code()}),
    ("POST", "/api/v1/pharmacy/verify-image"): Case(pharmacists(200), files=_png),
    ("POST", "/api/v1/pharmacy/dispenses"): Case(
        pharmacists(201), json=lambda w: {"code": w.code(), "quantity": 21, "lot": "LOT-1"}
    ),
    ("GET", "/api/v1/pharmacy/dispenses"): Case(pharmacists(200)),
}
PAGE_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/pharmacy"): Case(pages(pharmacists(200))),
    ("POST", "/pharmacy/verify"): Case(pages(pharmacists(200)), data=lambda w: {"code": w.code()}),
    ("POST", "/pharmacy/dispense"): Case(
        pages(pharmacists(303)), data=lambda w: {"code": w.code(), "quantity": "21", "lot": "LOT-2"}
    ),
    ("GET", "/prescriptions/{prescription_id}/qr.png"): Case(pages(readers(200)), _rx, other_patient=True),
    ("GET", "/prescriptions/{prescription_id}/print.pdf"): Case(pages(readers(200)), _rx, other_patient=True),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_matrices_cover_every_route() -> None:
    for router, cases in ((dispensing_api.router, API_CASES), (dispensing_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert not served - set(cases), f"add these routes to the matrix: {sorted(served - set(cases))}"
        assert not set(cases) - served, (
            f"these rows name routes that do not exist: {sorted(set(cases) - served)}"
        )


@pytest.fixture
def world(cast: Cast, make: Any) -> World:
    """The cast, and a prescription of the other patient by a doctor of another hospital."""
    stranger = make.staff("doctor", make.org())
    make.care(stranger, cast.other_patient)
    return World(cast=cast, other_rx=make_prescription(stranger, cast.other_patient))


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def _secrets(cast: Cast) -> tuple[str, ...]:
    other = cast.other_patient
    return (other.family_name, other.health_id, format_health_id(other.health_id))


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
    world: World, cases: dict[tuple[str, str], Case], call: Callable[[str, str, str, Case, World], Any]
) -> list[str]:
    """Call every case as every role (``call(role, method, url, case, world)``) and collect the problems."""
    problems: list[str] = []
    secrets = _secrets(world.cast)
    for (method, path), case in cases.items():
        for role in ALL:
            user_id = world.cast[role].id if role != ANON else None
            before = denied_count(user_id)
            url = path.format(**case.path(world)) if case.path else path
            response = call(role, method, url, case, world)
            _check(problems, f"{method} {path} as {role}", response, case.expect[role], secrets,
                   denied_count(user_id) - before)  # fmt: skip
            if case.other_patient and role != ANON:
                before = denied_count(user_id)
                url = path.format(prescription_id=world.other_rx.id)
                response = call(role, method, url, case, world)
                _check(problems, f"{method} {path} as {role} (other patient)", response,
                       case.expect[role] if case.expect[role] >= 300 else 404, secrets,
                       denied_count(user_id) - before)  # fmt: skip
    return problems


def test_dispensing_api_permission_matrix(client: TestClient, world: World) -> None:
    cast = world.cast
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}

    def call(role: str, method: str, url: str, case: Case, w: World) -> Any:
        response = client.request(
            method,
            url,
            headers=tokens[role],
            json=case.json(w) if case.json else None,
            files=case.files(w) if case.files else None,
        )
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
        return response

    problems = _run(world, API_CASES, call)
    assert not problems, "\n".join(problems)


def test_dispensing_page_permission_matrix(app: Any, world: World) -> None:
    sessions: dict[str, tuple[TestClient, str]] = {}
    for role in ALL:
        browser = TestClient(app)
        sessions[role] = (browser, web_login(browser, world.cast[role]) if role != ANON else "")

    def call(role: str, method: str, url: str, case: Case, w: World) -> Any:
        browser, csrf = sessions[role]
        data = {**case.data(w), "csrf_token": csrf} if case.data else None
        return browser.request(
            method, url, data=data, headers={"Accept": "text/html"}, follow_redirects=False
        )

    try:
        problems = _run(world, PAGE_CASES, call)
    finally:
        for browser, _csrf in sessions.values():
            browser.close()
    assert not problems, "\n".join(problems)
