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

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from caresync.bloodbank.donors import api as donors_api
from caresync.bloodbank.donors import pages as donors_pages
from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.models import DonationAppointment, Donor, DonorDeferral
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor
from tests.conftest import Cast
from tests.permission_matrix import Case, Expect, assert_covered, check_api, check_pages, only, pages

DAY = local_day(utcnow()) + timedelta(days=6)
SCREENING = {
    "weight_kg": 70,
    "hemoglobin_g_dl": 13.5,
    "temperature_c": 36.6,
    "systolic_mmhg": 120,
    "diastolic_mmhg": 78,
    "pulse_bpm": 70,
}


def staff(code: int) -> Expect:
    """``code`` for blood bank staff, 403 for other roles, 401 anonymously."""
    return only(code, "bloodbank_staff")


def donors(code: int) -> Expect:
    """``code`` for donors, 403 for other roles, 401 anonymously."""
    return only(code, "donor")


def both(code: int) -> Expect:
    """``code`` for blood bank staff and donors, 403 for other roles, 401 anonymously."""
    return only(code, "bloodbank_staff", "donor")


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
API_CASES: dict[tuple[str, str], Case[World]] = {
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
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
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


def test_matrices_cover_every_route() -> None:
    assert_covered((donors_api.router, API_CASES), (donors_pages.router, PAGE_CASES))


@pytest.fixture
def world(cast: Cast) -> World:
    """The cast, the cast donor's profile at the hospital."""
    return World(
        cast=cast, donor=make_donor(organisation=cast.org, user_id=cast["donor"].id, blood_group="O+")
    )


def test_donors_api_permission_matrix(client: TestClient, world: World) -> None:
    check_api(client, world.cast, world, API_CASES)


def test_donors_page_permission_matrix(app: Any, world: World) -> None:
    check_pages(app, world.cast, world, PAGE_CASES)
