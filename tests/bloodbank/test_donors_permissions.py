"""The donors permission matrix: every route of the donors API and page routers x every role -> the
expected status.

The world is the ``cast`` (one person of every role in one hospital), where the cast's donor has a donor
profile registered at the hospital. Staff routes are for blood bank staff (403 for every other role, the
donor included); the donor's own routes (``/me/donor``, ``/donor``) are for donors; booking, slots, sites
and cancelling are for both. A donor reading a donor who is not themselves gets 404, like a missing id.
Every refusal (403/404) leaves a ``denied`` audit entry by the caller; pages send signed-out visitors to
sign in (303), the API answers them 401.

State-changing routes get fresh rows per call (a deferral to lift, an appointment to cancel, the donor's
earlier bookings cancelled), so every role meets the same situation. ``test_matrices_cover_every_route``
fails when a route of the two routers is missing from the tables.
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
from sqlalchemy import func, select, update

from caresync.bloodbank.donors import api as donors_api
from caresync.bloodbank.donors import pages as donors_pages
from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.models import DonationAppointment, Donor, DonorDeferral
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor
from tests.conftest import ROLES, Cast, login, web_login

ANON = "anonymous"
ALL = (*ROLES, ANON)
DAY = local_day(utcnow()) + timedelta(days=6)
SCREENING = {
    "weight_kg": 70,
    "hemoglobin_g_dl": 13.5,
    "temperature_c": 36.6,
    "systolic_mmhg": 120,
    "diastolic_mmhg": 78,
    "pulse_bpm": 70,
}


def staff(code: int) -> dict[str, int]:
    """``code`` for blood bank staff, 403 for other roles, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 403), "bloodbank_staff": code, ANON: 401}


def donors(code: int) -> dict[str, int]:
    """``code`` for donors, 403 for other roles, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 403), "donor": code, ANON: 401}


def both(code: int) -> dict[str, int]:
    """``code`` for blood bank staff and donors, 403 for other roles, 401 anonymously."""
    return {**staff(code), "donor": code}


def pages(expect: dict[str, int]) -> dict[str, int]:
    """The same for a page: signed-out visitors are redirected to sign in."""
    return {**expect, ANON: 303}


@dataclass
class World:
    """The rows the requests refer to."""

    cast: Cast
    donor: Donor  # the cast donor's profile, at the cast's hospital

    def new_donor(self) -> Donor:
        """A donor of the hospital, without an account."""
        return make_donor(organisation=self.cast.org, blood_group="A+")

    def free_donor(self) -> Donor:
        """The cast donor, with their booked appointments cancelled (one booking at a time)."""
        with transaction(session_factory()) as s:
            s.execute(
                update(DonationAppointment)
                .where(DonationAppointment.donor_id == self.donor.id, DonationAppointment.status == "booked")
                .values(status="cancelled")
            )
        return self.donor

    def appointment(self, *, past: bool = False) -> DonationAppointment:
        """A booked appointment of the cast donor at the hospital (upcoming, or started an hour ago)."""
        donor = self.free_donor()
        at = utcnow() - timedelta(hours=1) if past else slot_starts(DAY)[5]
        with transaction(session_factory()) as s:
            row = DonationAppointment(
                donor_id=donor.id,
                organisation_id=self.cast.org.id,
                starts_at=at,
                chair=4,
                donation_type="whole_blood",
            )
            s.add(row)
        return row

    def deferral(self) -> tuple[Donor, DonorDeferral]:
        donor = self.new_donor()
        with transaction(session_factory()) as s:
            row = DonorDeferral(
                donor_id=donor.id, kind="permanent", reason="Test", starts_on=local_day(utcnow())
            )
            s.add(row)
        return donor, row


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    path: Callable[[World], dict[str, str]] | None = None  # path parameters, fresh per call
    json: Callable[[World], dict[str, Any]] | None = None
    data: Callable[[World], dict[str, str]] | None = None  # form fields (pages add the CSRF token)
    query: Callable[[World], dict[str, str]] | None = None


def _donor(w: World) -> dict[str, str]:
    return {"donor_id": str(w.new_donor().id)}


def _deferral(w: World) -> dict[str, str]:
    donor, deferral = w.deferral()
    return {"donor_id": str(donor.id), "deferral_id": str(deferral.id)}


def _upcoming(w: World) -> dict[str, str]:
    return {"appointment_id": str(w.appointment().id)}


def _started(w: World) -> dict[str, str]:
    return {"appointment_id": str(w.appointment(past=True).id)}


def _no_fields(_w: World) -> dict[str, str]:
    return {}


def _slots(w: World) -> dict[str, str]:
    return {"organisation_id": str(w.cast.org.id), "date": DAY.isoformat(), "donation_type": "whole_blood"}


def _booking(w: World) -> dict[str, Any]:
    donor = w.free_donor()
    return {
        "donor_id": str(donor.id),
        "organisation_id": str(w.cast.org.id),
        "starts_at": slot_starts(DAY)[2].isoformat(),
    }


NEW_DONOR = {
    "given_name": "Matrix",
    "family_name": "Donor",
    "birth_date": "1990-01-01",
    "sex": "M",
    "weight_kg": 80,
}
API_CASES: dict[tuple[str, str], Case] = {
    ("POST", "/api/v1/bloodbank/donors"): Case(staff(201), json=lambda w: NEW_DONOR),
    ("GET", "/api/v1/bloodbank/donors"): Case(staff(200)),
    ("GET", "/api/v1/bloodbank/donors/{donor_id}"): Case({**staff(200), "donor": 404}, _donor),
    ("PATCH", "/api/v1/bloodbank/donors/{donor_id}"): Case(
        staff(200), _donor, json=lambda w: {"city": "Faro"}
    ),
    ("POST", "/api/v1/bloodbank/donors/{donor_id}/deferrals"): Case(
        staff(201), _donor, json=lambda w: {"kind": "permanent", "reason": "Variant CJD risk"}
    ),
    ("POST", "/api/v1/bloodbank/donors/{donor_id}/deferrals/{deferral_id}/lift"): Case(staff(200), _deferral),
    ("POST", "/api/v1/bloodbank/donations"): Case(
        staff(201), json=lambda w: {**SCREENING, "donor_id": str(w.new_donor().id), "donation_type": "plasma"}
    ),
    ("POST", "/api/v1/bloodbank/donation-appointments/{appointment_id}/no-show"): Case(staff(200), _started),
    # The cast donor already has a profile: 409 shows the role may call it (creation: test_donors.py).
    ("POST", "/api/v1/bloodbank/me/donor"): Case(donors(409), json=lambda w: NEW_DONOR),
    ("GET", "/api/v1/bloodbank/me/donor"): Case(donors(200)),
    ("PATCH", "/api/v1/bloodbank/me/donor"): Case(donors(200), json=lambda w: {"phone": "+351 1"}),
    ("GET", "/api/v1/bloodbank/donation-sites"): Case(both(200)),
    ("GET", "/api/v1/bloodbank/donation-slots"): Case(both(200), query=_slots),
    ("POST", "/api/v1/bloodbank/donation-appointments"): Case(both(201), json=_booking),
    ("GET", "/api/v1/bloodbank/donation-appointments"): Case(both(200)),
    ("POST", "/api/v1/bloodbank/donation-appointments/{appointment_id}/cancel"): Case(both(200), _upcoming),
}
_FORM_SCREENING = {k: str(v) for k, v in SCREENING.items()}
PAGE_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/bloodbank/donors"): Case(pages(staff(200))),
    ("GET", "/bloodbank/donors/new"): Case(pages(staff(200))),
    ("POST", "/bloodbank/donors/new"): Case(
        pages(staff(303)), data=lambda w: {k: str(v) for k, v in NEW_DONOR.items()}
    ),
    ("GET", "/bloodbank/donors/{donor_id}"): Case(pages(staff(200)), _donor),
    ("POST", "/bloodbank/donors/{donor_id}/deferrals"): Case(
        pages(staff(303)), _donor, data=lambda w: {"kind": "permanent", "reason": "Variant CJD risk"}
    ),
    ("POST", "/bloodbank/donors/{donor_id}/deferrals/{deferral_id}/lift"): Case(
        pages(staff(303)), _deferral, data=_no_fields
    ),
    ("POST", "/bloodbank/donors/{donor_id}/availability"): Case(
        pages(staff(303)), _donor, data=lambda w: {"available": "no"}
    ),
    ("POST", "/bloodbank/donors/{donor_id}/profile"): Case(
        pages(staff(303)), _donor, data=lambda w: {"city": "Braga"}
    ),
    ("POST", "/bloodbank/donors/{donor_id}/book"): Case(
        pages(staff(303)),
        _donor,
        data=lambda w: {"starts_at": slot_starts(DAY)[7].isoformat(), "donation_type": "plasma"},
    ),
    ("GET", "/bloodbank/donations/new"): Case(
        pages(staff(200)), query=lambda w: {"donor": str(w.new_donor().id)}
    ),
    ("POST", "/bloodbank/donations"): Case(
        pages(staff(303)),
        data=lambda w: {**_FORM_SCREENING, "donor_id": str(w.new_donor().id), "donation_type": "plasma"},
    ),
    ("GET", "/bloodbank/appointments"): Case(pages(staff(200))),
    ("POST", "/bloodbank/appointments/{appointment_id}/cancel"): Case(
        pages(staff(303)), _upcoming, data=_no_fields
    ),
    ("POST", "/bloodbank/appointments/{appointment_id}/no-show"): Case(
        pages(staff(303)), _started, data=_no_fields
    ),
    ("GET", "/donor"): Case(pages(donors(200))),
    ("POST", "/donor/profile"): Case(pages(donors(303)), data=lambda w: {"city": "Lisbon"}),
    ("POST", "/donor/availability"): Case(pages(donors(303)), data=lambda w: {"available": "yes"}),
    ("POST", "/donor/appointments/{appointment_id}/cancel"): Case(
        pages(donors(303)), _upcoming, data=_no_fields
    ),
    ("GET", "/donor/book"): Case(pages(donors(200)), query=_slots),
    ("POST", "/donor/book"): Case(
        pages(donors(303)),
        data=lambda w: {k: str(v) for k, v in _booking(w).items() if k != "donor_id"},
    ),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_matrices_cover_every_route() -> None:
    for router, cases in ((donors_api.router, API_CASES), (donors_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert not served - set(cases), f"add these routes to the matrix: {sorted(served - set(cases))}"
        assert not set(cases) - served, (
            f"these rows name routes that do not exist: {sorted(set(cases) - served)}"
        )


@pytest.fixture
def world(cast: Cast) -> World:
    """The cast, the cast donor's profile at the hospital."""
    return World(
        cast=cast, donor=make_donor(organisation=cast.org, user_id=cast["donor"].id, blood_group="O+")
    )


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def _run(
    world: World, cases: dict[tuple[str, str], Case], call: Callable[[str, str, str, Case], Any]
) -> list[str]:
    """Call every case as every role and collect the problems."""
    problems: list[str] = []
    for (method, path), case in cases.items():
        for role in ALL:
            user_id = world.cast[role].id if role != ANON else None
            before = denied_count(user_id)
            url = path.format(**case.path(world)) if case.path else path
            response = call(role, method, url, case)
            where, wanted = f"{method} {path} as {role}", case.expect[role]
            if response.status_code != wanted:
                problems.append(
                    f"{where}: expected {wanted}, got {response.status_code} {response.text[:300]}"
                )
            if response.status_code in (403, 404) and denied_count(user_id) - before < 1:
                problems.append(f"{where}: refused without a denied audit entry")
    return problems


def test_donors_api_permission_matrix(client: TestClient, world: World) -> None:
    cast = world.cast
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}

    def call(role: str, method: str, url: str, case: Case) -> Any:
        response = client.request(
            method,
            url,
            headers=tokens[role],
            json=case.json(world) if case.json else None,
            params=case.query(world) if case.query else None,
        )
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
        return response

    problems = _run(world, API_CASES, call)
    assert not problems, "\n".join(problems)


def test_donors_page_permission_matrix(app: Any, world: World) -> None:
    sessions: dict[str, tuple[TestClient, str]] = {}
    for role in ALL:
        browser = TestClient(app)
        sessions[role] = (browser, web_login(browser, world.cast[role]) if role != ANON else "")

    def call(role: str, method: str, url: str, case: Case) -> Any:
        browser, csrf = sessions[role]
        data = {**case.data(world), "csrf_token": csrf} if case.data else None
        params = case.query(world) if case.query else None
        return browser.request(
            method, url, data=data, params=params, headers={"Accept": "text/html"}, follow_redirects=False
        )

    try:
        problems = _run(world, PAGE_CASES, call)
    finally:
        for browser, _csrf in sessions.values():
            browser.close()
    assert not problems, "\n".join(problems)
