"""The network's availability: every hospital and blood bank (not clinics or pharmacies), its distance from
the caller's organisation and its available, unexpired units by group and component, on the fixed world of
``test_offers.build_network``; filters; and no patient data in the payload."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.bloodbank.network import service
from caresync.core.errors import ValidationFailed
from caresync.db import session_factory, transaction
from tests.bloodbank.conftest import make_unit
from tests.bloodbank.test_offers import Network, build_network, offer
from tests.conftest import API, Cast, Factory

STOCK = f"{API}/bloodbank/network/stock"


@pytest.fixture
def network(cast: Cast, make: Factory) -> Network:
    return build_network(cast, make)


def cells(site: dict[str, Any]) -> dict[str, int]:
    return {f"{c['blood_group']}:{c['component']}": c["available"] for c in site["stock"]}


def test_every_hospital_and_blood_bank_with_distance_and_available_units(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    response = client.get(STOCK, headers=sign_in(network.cast["doctor"]))
    assert response.status_code == 200, response.text
    sites = response.json()["items"]
    by_id = {s["organisation_id"]: s for s in sites}
    assert str(network.clinic.id) not in by_id  # clinics hold no blood for the network
    expected = {
        network.home.id: (0.0, True, {"O-:red_cells": 1}),
        network.near_big.id: (5.1, False, {"A-:red_cells": 3, "O-:red_cells": 1}),
        # its reserved and expired A- units do not count; its plasma does
        network.near_small.id: (5.1, False, {"O-:red_cells": 1, "A-:plasma": 1}),
        network.wrong_group.id: (22.8, False, {"A+:red_cells": 2, "B-:red_cells": 1, "AB-:red_cells": 1}),
        network.far.id: (274.3, False, {"A-:red_cells": 5}),
        network.nowhere.id: (None, False, {"A-:red_cells": 1}),
    }
    assert {s["organisation_id"] for s in sites} == {str(i) for i in expected}
    for org_id, (km, own, stock) in expected.items():
        site = by_id[str(org_id)]
        assert (site["distance_km"], site["is_own"], cells(site)) == (km, own, stock), site["name"]
        assert site["total_available"] == sum(stock.values())
    # nearest first, equal distances by name, unknown distance last
    near = sorted([network.near_big, network.near_small], key=lambda o: o.name)
    assert [s["organisation_id"] for s in sites] == [
        str(o.id) for o in (network.home, *near, network.wrong_group, network.far, network.nowhere)
    ]
    assert by_id[str(network.far.id)]["latitude"] == pytest.approx(41.1579)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(
            {"blood_group": "A-"}, {"near_big": 3, "near_small": 1, "far": 5, "nowhere": 1}, id="group"
        ),
        pytest.param({"component": "plasma"}, {"near_small": 1}, id="component"),
        pytest.param(
            {"blood_group": "O-", "component": "red_cells"},
            {"home": 1, "near_big": 1, "near_small": 1},
            id="group-and-component",
        ),
        pytest.param({"blood_group": "AB+"}, {}, id="nobody-holds-it"),
    ],
)
def test_filters_by_group_and_component(
    client: TestClient, network: Network, sign_in: Any, params: dict[str, str], expected: dict[str, int]
) -> None:
    sites = client.get(STOCK, params=params, headers=sign_in(network.cast["nurse"])).json()["items"]
    names = {
        str(getattr(network, key).id): key for key in ("home", "near_big", "near_small", "far", "nowhere")
    }
    names[str(network.wrong_group.id)] = "wrong_group"
    totals = {names[s["organisation_id"]]: s["total_available"] for s in sites if s["total_available"]}
    assert totals == expected
    assert len(sites) == 6  # every organisation is still listed, with what it holds of that kind


@pytest.mark.parametrize("params", [{"blood_group": "C+"}, {"component": "serum"}], ids=str)
def test_unknown_filters_are_refused(
    client: TestClient, network: Network, sign_in: Any, params: dict[str, str]
) -> None:
    response = client.get(STOCK, params=params, headers=sign_in(network.cast["admin"]))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_service_validates_filters_too(network: Network) -> None:
    principal = _principal(network)
    with transaction(session_factory()) as s, pytest.raises(ValidationFailed, match="Unknown blood group"):
        service.network_stock(s, principal, blood_group="Z+")


def _principal(network: Network) -> Any:
    from caresync.core.auth import Principal

    staff = network.staff["home"]
    return Principal(user_id=staff.id, role="bloodbank_staff", full_name=staff.full_name,
                     organisation_id=network.home.id)  # fmt: skip


def test_units_count_until_they_expire(network: Network) -> None:
    unit = make_unit(network.far, "A-", expires_in=timedelta(hours=2))

    def far_total(at: datetime) -> int:
        with transaction(session_factory()) as s:
            sites = service.network_stock(s, _principal(network), now=at)
        return next(x.total for x in sites if x.organisation_id == network.far.id)

    second = timedelta(seconds=1)
    assert (far_total(unit.expires_at - second), far_total(unit.expires_at)) == (6, 5)


def test_no_patient_data_in_the_network_payload(client: TestClient, network: Network, sign_in: Any) -> None:
    patient = network.cast["patient"]
    assert patient.patient is not None
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    body = client.get(STOCK, headers=sign_in(network.staff["far"])).text
    for secret in (str(patient.patient_id), patient.patient.family_name, patient.patient.health_id,
                   str(request.id), "patient"):  # fmt: skip
        assert secret not in body


def test_distance_is_unknown_when_the_caller_has_no_coordinates(
    client: TestClient, network: Network, make: Factory, sign_in: Any
) -> None:
    unplaced = make.org(kind="hospital")
    sites = client.get(STOCK, headers=sign_in(make.staff("bloodbank_staff", unplaced))).json()["items"]
    assert {s["distance_km"] for s in sites if not s["is_own"]} == {None}
    assert next(s for s in sites if s["is_own"])["distance_km"] == 0.0
