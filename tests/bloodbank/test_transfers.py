"""Transfers between organisations: asking for stock, sending units, dispatch (units stay reserved in
transit), receipt (units move to the receiver with history events; units for a request are allocated to
it), cancellation (reserved units back on the supplier's shelf), who may do what, and isolation."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank.models import BloodTransfer, BloodUnit, UnitEvent
from caresync.bloodbank.network import transfers
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Conflict
from caresync.db import session_factory, transaction
from tests.bloodbank.conftest import make_unit
from tests.bloodbank.test_offers import (
    OFFERS,
    Network,
    as_staff,
    build_network,
    incoming,
    notifications,
    offer,
)
from tests.conftest import API, Cast, Factory

TRANSFERS = f"{API}/bloodbank/transfers"


@pytest.fixture
def network(cast: Cast, make: Factory) -> Network:
    return build_network(cast, make)


def unit_rows(ids: list[str]) -> dict[str, BloodUnit]:
    with transaction(session_factory()) as s:
        rows = s.scalars(select(BloodUnit).where(BloodUnit.id.in_([uuid.UUID(i) for i in ids])))
        return {str(u.id): u for u in rows}


def history(unit_id: str) -> list[tuple[str | None, str, uuid.UUID | None]]:
    with transaction(session_factory()) as s:
        query = select(UnitEvent).where(UnitEvent.unit_id == uuid.UUID(unit_id)).order_by(UnitEvent.at)
        return [(e.from_status, e.to_status, e.organisation_id) for e in s.scalars(query)]


def ask(network: Network, **overrides: Any) -> dict[str, Any]:
    """``home`` asks ``far`` for 2 A- red cell units."""
    return {
        "from_organisation_id": str(network.far.id),
        "to_organisation_id": str(network.home.id),
        "blood_group": "A-",
        "component": "red_cells",
        "units": 2,
        **overrides,
    }


def test_stock_request_dispatch_and_receipt_move_units_between_organisations(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    home, far = sign_in(network.staff["home"]), sign_in(network.staff["far"])
    soonest = make_unit(network.far, "A-", expires_in=timedelta(days=3))
    created = client.post(TRANSFERS, json=ask(network, note="Weekend cover"), headers=home)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["direction"], body["units"], body["note"]) == (
        "requested", "incoming", [], "Weekend cover"
    )  # fmt: skip
    assert body["contents"] == [{"blood_group": "A-", "component": "red_cells", "units": 2}]
    assert any(
        "asks you for 2 x A- red cells" in t for t in notifications(network.staff["far"], "blood_transfer")
    )

    transfer_id = body["id"]
    assert (
        client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "X"}, headers=home).status_code
        == 409
    )
    dispatched = client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Moto 7"}, headers=far)
    assert dispatched.status_code == 200, dispatched.text
    sent = dispatched.json()
    assert (sent["status"], sent["courier"], sent["direction"]) == ("dispatched", "Moto 7", "outgoing")
    unit_ids = [u["id"] for u in sent["units"]]
    assert len(unit_ids) == 2
    assert str(soonest.id) in unit_ids  # first to expire first
    assert {(u.status, u.organisation_id) for u in unit_rows(unit_ids).values()} == {
        ("reserved", network.far.id)
    }

    received = client.post(f"{TRANSFERS}/{transfer_id}/receive", headers=home)
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "received"
    assert {(u.status, u.organisation_id) for u in unit_rows(unit_ids).values()} == {
        ("available", network.home.id)
    }
    assert history(str(soonest.id)) == [
        (None, "available", network.far.id),
        ("available", "reserved", network.far.id),
        ("reserved", "available", network.home.id),
    ]
    detail = client.get(f"{TRANSFERS}/{transfer_id}", headers=home).json()
    assert len(detail["history"]) == 4  # two units, reserved then received
    assert (detail["requested_by"], detail["dispatched_by"], detail["received_by"]) == (
        network.staff["home"].full_name,
        network.staff["far"].full_name,
        network.staff["home"].full_name,
    )
    assert detail["dispatched_at"] is not None
    assert detail["received_at"] is not None
    assert any("received the 2 units" in t for t in notifications(network.staff["far"], "blood_transfer"))
    with transaction(session_factory()) as s:
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == transfer_id)))
    assert actions == {
        "bloodbank.transfer.create",
        "bloodbank.transfer.dispatch",
        "bloodbank.transfer.receive",
    }


def test_sending_reserves_units_at_once_and_cancel_puts_them_back(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    far = sign_in(network.staff["far"])
    chosen = make_unit(network.far, "B+")
    sent = client.post(
        TRANSFERS,
        json=ask(network, from_organisation_id=str(network.far.id), to_organisation_id=str(network.home.id),
                 blood_group="B+", units=1, unit_ids=[str(chosen.id)]),
        headers=far,
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    assert [u["id"] for u in sent.json()["units"]] == [str(chosen.id)]
    assert unit_rows([str(chosen.id)])[str(chosen.id)].status == "reserved"
    transfer_id = sent.json()["id"]
    cancelled = client.post(
        f"{TRANSFERS}/{transfer_id}/cancel",
        json={"reason": "Found locally"},
        headers=sign_in(network.staff["home"]),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    unit = unit_rows([str(chosen.id)])[str(chosen.id)]
    assert (unit.status, unit.organisation_id) == ("available", network.far.id)
    assert [e[:2] for e in history(str(chosen.id))] == [(None, "available"), ("available", "reserved"),
                                                          ("reserved", "available")]  # fmt: skip
    again = client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Van"}, headers=far)
    assert again.status_code == 409


def test_received_offer_units_are_allocated_to_the_request(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    supplier = sign_in(network.staff["near_big"])
    accepted = client.post(
        f"{OFFERS}/{incoming(client, supplier)[0]['id']}/accept", json={}, headers=supplier
    )
    transfer_id = accepted.json()["id"]
    home = sign_in(network.staff["home"])
    assert client.get(f"{TRANSFERS}/{transfer_id}", headers=home).json()["request_id"] == str(request.id)
    client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Ambulance 12"}, headers=supplier)
    received = client.post(f"{TRANSFERS}/{transfer_id}/receive", headers=home)
    assert received.status_code == 200, received.text
    unit_ids = [u["id"] for u in received.json()["units"]]
    assert {(u.status, u.organisation_id, u.request_id) for u in unit_rows(unit_ids).values()} == {
        ("reserved", network.home.id, request.id)
    }
    assert [e[1] for e in history(unit_ids[0])] == ["available", "reserved", "available", "reserved"]


def test_a_unit_that_expired_in_transit_is_received_as_expired(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    far = sign_in(network.staff["far"])
    unit = make_unit(network.far, "AB+", component="platelets", expires_in=timedelta(days=1))
    sent = client.post(
        TRANSFERS,
        json=ask(network, from_organisation_id=str(network.far.id), to_organisation_id=str(network.home.id),
                 blood_group="AB+", component="platelets", units=1),
        headers=far,
    )  # fmt: skip
    transfer_id = sent.json()["id"]
    client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Van"}, headers=far)
    with transaction(session_factory()) as s:  # the journey took longer than the unit had left
        s.get_one(BloodUnit, unit.id).expires_at = unit.collected_at + timedelta(hours=1)
    client.post(f"{TRANSFERS}/{transfer_id}/receive", headers=sign_in(network.staff["home"]))
    row = unit_rows([str(unit.id)])[str(unit.id)]
    assert (row.status, row.organisation_id) == ("expired", network.home.id)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param(
            {"from_organisation_id": "far", "to_organisation_id": "near_big"},
            "from_organisation_id",
            id="not-a-side",
        ),
        pytest.param({"from_organisation_id": "home"}, "to_organisation_id", id="same-organisation"),
        pytest.param({"from_organisation_id": "clinic"}, "organisation", id="not-in-the-network"),
        pytest.param({"unit_ids": "some"}, "unit_ids", id="receiver-chooses-units"),
        pytest.param({"units": 0}, "units", id="no-units"),
        pytest.param({"blood_group": "C+"}, "blood_group", id="unknown-group"),
    ],
)
def test_invalid_transfers_are_refused(
    client: TestClient, network: Network, sign_in: Any, overrides: dict[str, Any], field: str
) -> None:
    orgs = {"home": network.home, "far": network.far, "near_big": network.near_big, "clinic": network.clinic}
    values = {k: (str(orgs[v].id) if v in orgs else v) for k, v in overrides.items()}
    if values.get("unit_ids") == "some":
        values["unit_ids"] = [str(make_unit(network.far, "A-").id)]
    response = client.post(TRANSFERS, json=ask(network, **values), headers=sign_in(network.staff["home"]))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in {problem.get("field"), *(e["field"] for e in problem.get("errors", []))}
    with transaction(session_factory()) as s:
        assert s.scalar(select(func.count()).select_from(BloodTransfer)) == 0


def test_dispatch_needs_a_courier_and_compatible_stock(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    created = client.post(
        TRANSFERS, json=ask(network, blood_group="AB-"), headers=sign_in(network.staff["home"])
    )
    transfer_id = created.json()["id"]
    far = sign_in(network.staff["far"])
    blank = client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": " "}, headers=far)
    assert blank.status_code == 422
    none_left = client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Van"}, headers=far)
    assert none_left.status_code == 409
    assert "No available" in none_left.json()["detail"]
    assert client.get(f"{TRANSFERS}/{transfer_id}", headers=far).json()["status"] == "requested"


def test_steps_out_of_order_are_refused(client: TestClient, network: Network, sign_in: Any) -> None:
    home, far = sign_in(network.staff["home"]), sign_in(network.staff["far"])
    transfer_id = client.post(TRANSFERS, json=ask(network), headers=home).json()["id"]
    assert client.post(f"{TRANSFERS}/{transfer_id}/receive", headers=home).status_code == 409  # not sent yet
    client.post(f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Van"}, headers=far)
    assert client.post(f"{TRANSFERS}/{transfer_id}/receive", headers=far).status_code == 409  # the wrong side
    assert (
        client.post(f"{TRANSFERS}/{transfer_id}/cancel", json={}, headers=home).status_code == 409
    )  # in transit


def test_third_organisations_see_nothing(client: TestClient, network: Network, sign_in: Any) -> None:
    transfer_id = client.post(TRANSFERS, json=ask(network), headers=sign_in(network.staff["home"])).json()[
        "id"
    ]
    outsider = network.staff["near_big"]
    headers = sign_in(outsider)
    for method, path, body in (
        ("GET", f"{TRANSFERS}/{transfer_id}", None),
        ("POST", f"{TRANSFERS}/{transfer_id}/dispatch", {"courier": "Van"}),
        ("POST", f"{TRANSFERS}/{transfer_id}/cancel", {}),
    ):
        assert client.request(method, path, json=body, headers=headers).status_code == 404, path
    assert client.get(TRANSFERS, headers=headers).json()["items"] == []
    with transaction(session_factory()) as s:
        denied = s.scalar(
            select(func.count()).where(AuditEntry.actor_id == outsider.id, AuditEntry.outcome == "denied")
        )
        assert denied == 3
        assert s.get_one(BloodTransfer, uuid.UUID(transfer_id)).status == "requested"


def test_list_filters_by_direction_and_pages(client: TestClient, network: Network, sign_in: Any) -> None:
    home = sign_in(network.staff["home"])
    asked = [client.post(TRANSFERS, json=ask(network), headers=home).json()["id"] for _ in range(3)]
    sent = client.post(
        TRANSFERS,
        json=ask(network, from_organisation_id=str(network.home.id), to_organisation_id=str(network.far.id),
                 blood_group="O-", units=1),
        headers=home,
    ).json()["id"]  # fmt: skip

    def ids(**params: Any) -> list[str]:
        return [i["id"] for i in client.get(TRANSFERS, params=params, headers=home).json()["items"]]

    assert set(ids(direction="incoming")) == set(asked)
    assert ids(direction="outgoing") == [sent]
    assert ids(status="dispatched") == []
    first = client.get(TRANSFERS, params={"limit": 2}, headers=home).json()
    second = client.get(TRANSFERS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=home).json()
    assert {i["id"] for i in first["items"] + second["items"]} == {*asked, sent}
    assert second["next_cursor"] is None


def test_two_receipts_at_once_move_the_units_once(
    client: TestClient, network: Network, sign_in: Any, make: Factory
) -> None:
    transfer_id = client.post(TRANSFERS, json=ask(network), headers=sign_in(network.staff["home"])).json()[
        "id"
    ]
    client.post(
        f"{TRANSFERS}/{transfer_id}/dispatch", json={"courier": "Van"}, headers=sign_in(network.staff["far"])
    )
    receivers = [as_staff(network.staff["home"]), as_staff(make.staff("bloodbank_staff", network.home))]
    start = threading.Barrier(2)

    def receive(actor: Principal) -> str:
        start.wait()
        try:
            with transaction(session_factory()) as s:
                transfers.receive_transfer(s, actor, uuid.UUID(transfer_id))
        except Conflict:
            return "conflict"
        return "won"

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(receive, receivers)) == ["conflict", "won"]
    with transaction(session_factory()) as s:
        arrivals = s.scalars(
            select(UnitEvent.unit_id).where(
                UnitEvent.transfer_id == uuid.UUID(transfer_id), UnitEvent.to_status == "available"
            )
        ).all()
    assert len(arrivals) == len(set(arrivals)) == 2
