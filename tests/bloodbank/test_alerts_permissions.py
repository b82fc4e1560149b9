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
from tests.conftest import Cast, Factory
from tests.permission_matrix import Case, Expect, assert_covered, check_api, check_pages, only, pages


def staff(code: int) -> Expect:
    return only(code, "bloodbank_staff")


def donors(code: int) -> Expect:
    return only(code, "donor")


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


def _fresh(world: World) -> dict[str, str]:
    return {"callout_id": str(world.callout())}


def _foreign(world: World) -> dict[str, str]:
    return {"callout_id": str(world.callout(world.other_org.id))}


def _new_callout(_world: World) -> dict[str, Any]:
    return {"needed_group": "O-", "donors_needed": 2}


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/api/v1/bloodbank/alerts"): Case(staff(200)),
    ("POST", "/api/v1/bloodbank/alerts/scan"): Case(staff(200)),
    ("GET", "/api/v1/bloodbank/callouts"): Case(staff(200)),
    ("POST", "/api/v1/bloodbank/callouts"): Case(staff(201), json=_new_callout),
    ("GET", "/api/v1/bloodbank/callouts/{callout_id}"): Case(staff(200), _fresh, foreign=_foreign),
    ("POST", "/api/v1/bloodbank/callouts/{callout_id}/waves"): Case(staff(200), _fresh, foreign=_foreign),
    ("POST", "/api/v1/bloodbank/callouts/{callout_id}/close"): Case(staff(200), _fresh, foreign=_foreign),
    ("GET", "/api/v1/bloodbank/me/callouts"): Case(donors(200)),
    ("POST", "/api/v1/bloodbank/me/callouts/{callout_id}/reply"): Case(
        donors(200), _fresh, json=lambda w: {"accept": False}
    ),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/bloodbank/alerts"): Case(pages(staff(200))),
    ("POST", "/bloodbank/alerts/scan"): Case(pages(staff(303)), data=lambda w: {}),
    ("POST", "/bloodbank/callouts"): Case(
        pages(staff(303)), data=lambda w: {"needed_group": "O-", "donors_needed": "2"}
    ),
    ("GET", "/bloodbank/callouts/{callout_id}"): Case(pages(staff(200)), _fresh, foreign=_foreign),
    ("POST", "/bloodbank/callouts/{callout_id}/waves"): Case(
        pages(staff(303)), _fresh, data=lambda w: {}, foreign=_foreign
    ),
    ("POST", "/bloodbank/callouts/{callout_id}/close"): Case(
        pages(staff(303)), _fresh, data=lambda w: {}, foreign=_foreign
    ),
    ("GET", "/donor/callouts"): Case(pages(donors(200))),
    ("POST", "/donor/callouts/{callout_id}/reply"): Case(
        pages(donors(303)), _fresh, data=lambda w: {"answer": "decline"}
    ),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((alerts_api.router, API_CASES), (alerts_pages.router, PAGE_CASES))


@pytest.fixture
def world(cast: Cast, make: Factory) -> World:
    profile = make_donor(blood_group="O-", user_id=cast["donor"].id)
    return World(cast=cast, donor=profile, other_org=make.org(kind="blood_bank"))


def test_alerts_api_permission_matrix(client: TestClient, world: World) -> None:
    check_api(client, world.cast, world, API_CASES)


def test_alerts_page_permission_matrix(app: Any, world: World) -> None:
    check_pages(app, world.cast, world, PAGE_CASES)
