"""The network permission matrix: every route of the network API and page routers x every role -> the
expected status.

The world is ``test_offers.build_network`` around the cast's hospital (``home``). Network stock is for the
roles holding the network permission (blood bank staff, doctors, nurses, administrators); offers and
transfers are for blood bank staff (403 for every other role). Routes naming a request, offer or transfer
are also called on one the cast's organisation has no part in: 404 for blood bank staff, exactly as for a
missing id. No response may contain a patient's name or Health ID, and every refusal (403/404) leaves a
``denied`` audit entry by the caller. Pages answer signed-out visitors with a redirect to sign in.

Routes that change state get a fresh object per call, so every role meets the same situation.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.bloodbank.models import RequestOffer
from caresync.bloodbank.network import api as network_api
from caresync.bloodbank.network import pages as network_pages
from caresync.bloodbank.network import transfers
from caresync.core.auth import Principal
from caresync.db import session_factory, transaction
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_request, make_unit
from tests.bloodbank.test_offers import Network, build_network
from tests.conftest import Cast, Factory
from tests.permission_matrix import (
    Case,
    Expect,
    assert_covered,
    check_api,
    check_pages,
    identities,
    only,
    pages,
)

NETWORK_ROLES = ("bloodbank_staff", "doctor", "nurse", "admin")


def network_roles(code: int) -> Expect:
    """``code`` for the roles that see the network's stock, 403 for the others, 401 anonymously."""
    return only(code, *NETWORK_ROLES)


def staff(code: int) -> Expect:
    """``code`` for blood bank staff, 403 for other roles, 401 anonymously."""
    return only(code, "bloodbank_staff")


@dataclass
class World:
    """The network and ways to make fresh objects for each call."""

    net: Network

    def principal(self, key: str) -> Principal:
        person = self.net.staff[key]
        assert person.organisation is not None
        return Principal(
            person.id, "bloodbank_staff", person.full_name, organisation_id=person.organisation.id
        )

    def request(self) -> dict[str, str]:
        """A fresh A- request of the cast's hospital (the network holds compatible units)."""
        return {"request_id": str(self.net.request().id)}

    def offer_to(self, organisation: Organisation, requester: Organisation) -> dict[str, str]:
        """A live offer to ``organisation`` of a fresh 1-unit A- request of ``requester`` (for the other
        patient), with a compatible unit for it to send."""
        make_unit(organisation, "A-")
        cast = self.net.cast
        request = make_request(
            requester, cast.other_patient, cast["doctor"].id, patient_group="A-", units_requested=1
        )
        with transaction(session_factory()) as s:
            row = RequestOffer(
                request_id=request.id, organisation_id=organisation.id, rank=1, units_available=1
            )
            s.add(row)
            s.flush()
            return {"offer_id": str(row.id)}

    def transfer(self, supplier: str, receiver: str, *, dispatched: bool = False) -> dict[str, str]:
        """A fresh transfer of one O- unit sent by ``supplier`` to ``receiver`` (network keys)."""
        orgs = {"home": self.net.home, "far": self.net.far, "near_big": self.net.near_big}
        make_unit(orgs[supplier], "O-")
        with transaction(session_factory()) as s:
            actor = self.principal(supplier)
            view = transfers.create_transfer(
                s, actor, from_organisation_id=orgs[supplier].id, to_organisation_id=orgs[receiver].id,
                blood_group="O-", component="red_cells", units_wanted=1,
            )  # fmt: skip
            if dispatched:
                transfers.dispatch_transfer(s, actor, view.transfer.id, courier="Van")
            return {"transfer_id": str(view.transfer.id)}


def _ask(w: World) -> dict[str, Any]:
    return {"from_organisation_id": str(w.net.far.id), "to_organisation_id": str(w.net.home.id),
            "blood_group": "A-", "component": "red_cells", "units": 1}  # fmt: skip


def _ask_form(w: World) -> dict[str, str]:
    return {"direction": "receive", "organisation_id": str(w.net.far.id), "blood_group": "A-",
            "component": "red_cells", "units": "1"}  # fmt: skip


def _my_offer(w: World) -> dict[str, str]:
    return w.offer_to(w.net.home, w.net.far)


def _foreign_offer(w: World) -> dict[str, str]:
    return w.offer_to(w.net.near_big, w.net.far)


def _foreign_request(w: World) -> dict[str, str]:
    cast = w.net.cast
    return {"request_id": str(make_request(w.net.far, cast.other_patient, cast["doctor"].id).id)}


def _asked(w: World) -> dict[str, str]:
    return w.transfer("far", "home")


def _outgoing(w: World) -> dict[str, str]:
    return w.transfer("home", "far")


def _incoming_dispatched(w: World) -> dict[str, str]:
    return w.transfer("far", "home", dispatched=True)


def _foreign_transfer(w: World) -> dict[str, str]:
    return w.transfer("far", "near_big")


def _foreign_dispatched(w: World) -> dict[str, str]:
    return w.transfer("far", "near_big", dispatched=True)


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/api/v1/bloodbank/network/stock"): Case(network_roles(200)),
    ("POST", "/api/v1/bloodbank/requests/{request_id}/offers"): Case(
        staff(201), lambda w: w.request(), foreign=_foreign_request
    ),
    ("GET", "/api/v1/bloodbank/offers"): Case(staff(200)),
    ("POST", "/api/v1/bloodbank/offers/{offer_id}/accept"): Case(
        staff(201), _my_offer, json=lambda w: {}, foreign=_foreign_offer
    ),
    ("POST", "/api/v1/bloodbank/offers/{offer_id}/decline"): Case(
        staff(200), _my_offer, json=lambda w: {"note": "No staff"}, foreign=_foreign_offer
    ),
    ("POST", "/api/v1/bloodbank/transfers"): Case(staff(201), json=_ask),
    ("GET", "/api/v1/bloodbank/transfers"): Case(staff(200)),
    ("GET", "/api/v1/bloodbank/transfers/{transfer_id}"): Case(staff(200), _asked, foreign=_foreign_transfer),
    ("POST", "/api/v1/bloodbank/transfers/{transfer_id}/dispatch"): Case(
        staff(200), _outgoing, json=lambda w: {"courier": "Van"}, foreign=_foreign_transfer
    ),
    ("POST", "/api/v1/bloodbank/transfers/{transfer_id}/receive"): Case(
        staff(200), _incoming_dispatched, foreign=_foreign_dispatched
    ),
    ("POST", "/api/v1/bloodbank/transfers/{transfer_id}/cancel"): Case(
        staff(200), _asked, json=lambda w: {}, foreign=_foreign_transfer
    ),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/bloodbank/network"): Case(pages(network_roles(200))),
    ("GET", "/bloodbank/transfers"): Case(pages(staff(200))),
    ("POST", "/bloodbank/requests/{request_id}/offer"): Case(
        pages(staff(303)), lambda w: w.request(), data=lambda w: {}, foreign=_foreign_request
    ),
    ("POST", "/bloodbank/offers/{offer_id}/accept"): Case(
        pages(staff(303)), _my_offer, data=lambda w: {}, foreign=_foreign_offer
    ),
    ("POST", "/bloodbank/offers/{offer_id}/decline"): Case(
        pages(staff(303)), _my_offer, data=lambda w: {"note": "No staff"}, foreign=_foreign_offer
    ),
    ("POST", "/bloodbank/transfers"): Case(pages(staff(303)), data=_ask_form),
    ("GET", "/bloodbank/transfers/{transfer_id}"): Case(pages(staff(200)), _asked, foreign=_foreign_transfer),
    ("POST", "/bloodbank/transfers/{transfer_id}/dispatch"): Case(
        pages(staff(303)), _outgoing, data=lambda w: {"courier": "Van"}, foreign=_foreign_transfer
    ),
    ("POST", "/bloodbank/transfers/{transfer_id}/receive"): Case(
        pages(staff(303)), _incoming_dispatched, data=lambda w: {}, foreign=_foreign_dispatched
    ),
    ("POST", "/bloodbank/transfers/{transfer_id}/cancel"): Case(
        pages(staff(303)), _asked, data=lambda w: {}, foreign=_foreign_transfer
    ),
}


@pytest.mark.no_db
def test_matrices_cover_every_route() -> None:
    assert_covered((network_api.router, API_CASES), (network_pages.router, PAGE_CASES))


@pytest.fixture
def world(cast: Cast, make: Factory) -> World:
    return World(net=build_network(cast, make))


def _secrets(cast: Cast) -> tuple[str, ...]:
    """The identities of the cast's patient and of the other patient."""
    patient = cast["patient"].patient
    assert patient is not None
    return identities(patient, cast.other_patient)


def test_network_api_permission_matrix(client: TestClient, world: World) -> None:
    cast = world.net.cast
    check_api(client, cast, world, API_CASES, secrets=_secrets(cast))


def test_network_page_permission_matrix(app: Any, world: World) -> None:
    cast = world.net.cast
    check_pages(app, cast, world, PAGE_CASES, secrets=_secrets(cast))
