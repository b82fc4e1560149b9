"""Offering a request to the network: candidates ordered by distance then stock (only organisations holding
compatible available units), one live offer at a time, decline and expiry pass it to the next rank,
accepting reserves units for a transfer, and no patient identity reaches the suppliers.

The world (:func:`build_network`) is the cast's hospital in Lisbon needing A- red cells, and around it:
two blood banks 5 km away at the same spot (4 and 1 compatible units), a hospital in Porto (5 units), a
hospital 23 km away holding only incompatible groups, a clinic holding compatible units (not part of the
network) and a blood bank without coordinates (1 unit)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank.models import (
    BloodRequest,
    BloodTransfer,
    BloodUnit,
    RequestOffer,
    TransferUnit,
    UnitEvent,
)
from caresync.bloodbank.network import offers
from caresync.bloodbank.network.jobs import expire_unanswered_offers
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Conflict
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import API, Cast, Factory, Person

LISBON = (38.7223, -9.1393)
ALMADA = (38.6790, -9.1569)  # 5.1 km from Lisbon
SINTRA = (38.8029, -9.3817)  # 22.8 km
PORTO = (41.1579, -8.6291)  # 274.3 km
OFFERS = f"{API}/bloodbank/offers"


@dataclass
class Network:
    """The organisations of the world, their blood bank staff, and the patient whose request is offered."""

    cast: Cast
    home: Organisation
    near_big: Organisation
    near_small: Organisation
    far: Organisation
    wrong_group: Organisation
    clinic: Organisation
    nowhere: Organisation
    staff: dict[str, Person]  # by organisation key: home, near_big, near_small, far, wrong_group, nowhere

    @property
    def ranked(self) -> list[uuid.UUID]:
        """The expected offer order for an A- red cell request of ``home``."""
        return [self.near_big.id, self.near_small.id, self.far.id, self.nowhere.id]

    def request(self, **overrides: Any) -> BloodRequest:
        """An open request of ``home`` for 2 A- red cell units for the cast's patient."""
        values: dict[str, Any] = {"patient_group": "A-", "units_requested": 2, **overrides}
        return make_request(self.home, self.cast["patient"].patient_id, self.cast["doctor"].id, **values)


def place(org: Organisation, where: tuple[float, float]) -> Organisation:
    """Give an organisation coordinates (committed)."""
    with transaction(session_factory()) as s:
        row = s.get_one(Organisation, org.id)
        row.latitude, row.longitude = where
    org.latitude, org.longitude = where
    return org


def build_network(cast: Cast, make: Factory) -> Network:
    """The world described in the module docstring (units: red cells, 20 days to expiry unless said)."""
    home = place(cast.org, LISBON)
    orgs = {
        "near_big": make.org(kind="blood_bank", latitude=ALMADA[0], longitude=ALMADA[1]),
        "near_small": make.org(kind="blood_bank", latitude=ALMADA[0], longitude=ALMADA[1]),
        "far": make.org(kind="hospital", latitude=PORTO[0], longitude=PORTO[1]),
        "wrong_group": make.org(kind="hospital", latitude=SINTRA[0], longitude=SINTRA[1]),
        "clinic": make.org(kind="clinic", latitude=LISBON[0], longitude=LISBON[1]),
        "nowhere": make.org(kind="blood_bank"),
    }
    staff = {key: make.staff("bloodbank_staff", org) for key, org in orgs.items() if key != "clinic"}
    staff["home"] = cast["bloodbank_staff"]
    for group, n in (("A-", 3), ("O-", 1)):
        for _ in range(n):
            make_unit(orgs["near_big"], group)
    make_unit(orgs["near_small"], "O-")
    make_unit(orgs["near_small"], "A-", status="reserved")  # not available
    make_unit(orgs["near_small"], "A-", expires_in=timedelta(hours=-1))  # expired on the shelf
    make_unit(orgs["near_small"], "A-", component="plasma")  # another component
    for _ in range(5):
        make_unit(orgs["far"], "A-")
    for group in ("A+", "A+", "B-", "AB-"):
        make_unit(orgs["wrong_group"], group)
    for _ in range(2):
        make_unit(orgs["clinic"], "A-")
    make_unit(orgs["nowhere"], "A-")
    make_unit(home, "O-")  # one compatible unit at home: not enough for 2
    return Network(cast=cast, home=home, staff=staff, **orgs)


@pytest.fixture
def network(cast: Cast, make: Factory) -> Network:
    return build_network(cast, make)


def offer_rows(request_id: uuid.UUID) -> list[RequestOffer]:
    with transaction(session_factory()) as s:
        query = select(RequestOffer).where(RequestOffer.request_id == request_id).order_by(RequestOffer.rank)
        return list(s.scalars(query))


def states(request_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    return [(o.organisation_id, o.status) for o in offer_rows(request_id)]


def notifications(person: Person, kind: str = "blood_offer") -> list[str]:
    with transaction(session_factory()) as s:
        query = select(Notification.title).where(Notification.user_id == person.id, Notification.kind == kind)
        return list(s.scalars(query.order_by(Notification.created_at)))


def incoming(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(OFFERS, params={"direction": "incoming", "status": "pending"}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def offer(client: TestClient, headers: dict[str, str], request_id: uuid.UUID) -> Any:
    return client.post(f"{API}/bloodbank/requests/{request_id}/offers", headers=headers)


# --- ranking ------------------------------------------------------------------------------------------------


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        pytest.param([("b", 9.0, 1), ("a", 3.0, 1)], ["a", "b"], id="nearer-first"),
        pytest.param([("a", 5.0, 1), ("b", 5.0, 7)], ["b", "a"], id="same-distance-more-stock-first"),
        pytest.param([("a", None, 50), ("b", 400.0, 1)], ["b", "a"], id="unknown-distance-last"),
        pytest.param([("b", 5.0, 2), ("a", 5.0, 2)], ["a", "b"], id="tie-by-name"),
        pytest.param([], [], id="nobody"),
    ],
)
def test_rank_candidates_orders_by_distance_then_stock(
    candidates: list[tuple[str, float | None, int]], expected: list[str]
) -> None:
    given = [offers.Candidate(uuid.uuid4(), name, km, n) for name, km, n in candidates]
    assert [c.name for c in offers.rank_candidates(given)] == expected


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("urgency", "minutes"), [("emergency", 10), ("urgent", 30), ("routine", 240)], ids=str
)
def test_offer_timeouts_follow_urgency(urgency: str, minutes: int) -> None:
    assert offers.offer_timeout(urgency) == timedelta(minutes=minutes)


# --- offering -----------------------------------------------------------------------------------------------


def test_offer_ranks_compatible_holders_by_distance_then_stock(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request()
    response = offer(client, sign_in(network.staff["home"]), request.id)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [i["supplier_organisation_id"] for i in items] == [str(o) for o in network.ranked]
    assert [i["rank"] for i in items] == [1, 2, 3, 4]
    assert [i["units_available"] for i in items] == [4, 1, 5, 1]
    assert [i["distance_km"] for i in items] == [5.1, 5.1, 274.3, None]
    assert [i["state"] for i in items] == ["offered", "queued", "queued", "queued"]
    assert items[0]["expires_at"] is not None
    assert {i["units_needed"] for i in items} == {2}
    assert states(request.id) == [(o, "pending") for o in network.ranked]
    with transaction(session_factory()) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "bloodbank.offer.create")).one()
        assert (entry.patient_id, entry.outcome) == (request.patient_id, "success")


def test_only_rank_one_is_told_and_sees_the_offer(client: TestClient, network: Network, sign_in: Any) -> None:
    request = network.request(urgency="urgent")
    offer(client, sign_in(network.staff["home"]), request.id)
    assert len(notifications(network.staff["near_big"])) == 1
    assert "Urgent request from" in notifications(network.staff["near_big"])[0]
    assert notifications(network.staff["near_small"]) == []
    seen = incoming(client, sign_in(network.staff["near_big"]))
    assert [(i["state"], i["units_needed"], i["blood_group"], i["urgency"]) for i in seen] == [
        ("offered", 2, "A-", "urgent")
    ]
    assert seen[0]["request_id"] is None  # the supplier cannot look the request up
    assert incoming(client, sign_in(network.staff["near_small"])) == []  # queued: not offered yet


def test_no_patient_identity_in_any_offer_payload(client: TestClient, network: Network, sign_in: Any) -> None:
    patient = network.cast["patient"]
    assert patient.patient is not None
    request = network.request()
    created = offer(client, sign_in(network.staff["home"]), request.id)
    supplier = sign_in(network.staff["near_big"])
    listed = client.get(OFFERS, params={"direction": "incoming"}, headers=supplier)
    accepted = client.post(f"{OFFERS}/{listed.json()['items'][0]['id']}/accept", json={}, headers=supplier)
    transfer = client.get(f"{API}/bloodbank/transfers/{accepted.json()['id']}", headers=supplier)
    secrets = (
        str(patient.patient_id),
        patient.patient.family_name,
        patient.patient.health_id,
        patient.full_name,
    )
    titles = " ".join(notifications(network.staff["near_big"]))
    for name, body in (("offer", created.text), ("incoming", listed.text), ("accept", accepted.text),
                       ("transfer", transfer.text), ("notification", titles)):  # fmt: skip
        assert not [s for s in secrets if s in body], f"{name} leaks the patient"
        assert str(request.id) not in body or name == "offer", f"{name} names the request to the supplier"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("local_stock", "Your own stock holds 2 compatible units", id="own-stock-suffices"),
        pytest.param("fulfilled", "needs no more units", id="already-met"),
        pytest.param("cancelled", "needs no more units", id="cancelled"),
        pytest.param("nobody", "No other organisation", id="no-compatible-stock"),
    ],
)
def test_offer_is_refused_when_the_network_is_not_needed(
    client: TestClient, network: Network, sign_in: Any, setup: str, message: str
) -> None:
    request = network.request(component="cryo") if setup == "nobody" else network.request()
    if setup == "local_stock":
        make_unit(network.home, "A-")
    if setup == "fulfilled":
        for _ in range(2):
            make_unit(network.home, "A-", status="reserved", request_id=request.id)
    if setup == "cancelled":
        with transaction(session_factory()) as s:
            row = s.get_one(BloodRequest, request.id)
            row.status, row.status_reason = "cancelled", "Not needed"
    response = offer(client, sign_in(network.staff["home"]), request.id)
    assert response.status_code == 409, response.text
    assert message in response.json()["detail"]
    assert offer_rows(request.id) == []


def test_offer_twice_while_live_is_refused(client: TestClient, network: Network, sign_in: Any) -> None:
    request = network.request()
    headers = sign_in(network.staff["home"])
    assert offer(client, headers, request.id).status_code == 201
    again = offer(client, headers, request.id)
    assert again.status_code == 409
    assert "already on offer" in again.json()["detail"]


def test_another_organisation_cannot_offer_my_request(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request()
    outsider = network.staff["far"]
    response = offer(client, sign_in(outsider), request.id)
    assert response.status_code == 404
    assert offer_rows(request.id) == []
    with transaction(session_factory()) as s:
        denied = s.scalar(
            select(func.count()).where(AuditEntry.actor_id == outsider.id, AuditEntry.outcome == "denied")
        )
    assert denied == 1


# --- answers and expiry -------------------------------------------------------------------------------------


def test_decline_passes_to_the_next_rank(client: TestClient, network: Network, sign_in: Any) -> None:
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    first = sign_in(network.staff["near_big"])
    offer_id = incoming(client, first)[0]["id"]
    assert client.post(f"{OFFERS}/{offer_id}/decline", json={"note": ""}, headers=first).status_code == 422
    declined = client.post(f"{OFFERS}/{offer_id}/decline", json={"note": "Fridge failure"}, headers=first)
    assert declined.status_code == 200, declined.text
    assert declined.json()["state"] == "declined"
    assert [s for _o, s in states(request.id)] == ["declined", "pending", "pending", "pending"]
    assert incoming(client, sign_in(network.staff["near_small"]))[0]["state"] == "offered"
    assert len(notifications(network.staff["near_small"])) == 1
    assert any("declined" in t for t in notifications(network.staff["home"]))
    again = client.post(f"{OFFERS}/{offer_id}/decline", json={"note": "again"}, headers=first)
    assert again.status_code == 409


def test_a_queued_offer_cannot_be_answered(client: TestClient, network: Network, sign_in: Any) -> None:
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    queued = offer_rows(request.id)[1]
    response = client.post(
        f"{OFFERS}/{queued.id}/accept", json={}, headers=sign_in(network.staff["near_small"])
    )
    assert response.status_code == 404
    assert states(request.id)[1][1] == "pending"


@pytest.mark.parametrize(
    ("urgency", "limit"),
    [
        ("emergency", timedelta(minutes=10)),
        ("urgent", timedelta(minutes=30)),
        ("routine", timedelta(hours=4)),
    ],
    ids=str,
)
def test_unanswered_offer_expires_after_its_urgency_limit_and_passes_on(
    client: TestClient, network: Network, sign_in: Any, urgency: str, limit: timedelta
) -> None:
    request = network.request(urgency=urgency)
    offer(client, sign_in(network.staff["home"]), request.id)
    offered_at = offer_rows(request.id)[0].created_at
    with transaction(session_factory()) as s:
        assert offers.expire_offers(s, offered_at + limit - timedelta(seconds=1)) == 0
    with transaction(session_factory()) as s:
        assert offers.expire_offers(s, offered_at + limit) == 1
    with transaction(session_factory()) as s:
        assert offers.expire_offers(s, offered_at + limit) == 0  # the next one's clock starts now
    rows = offer_rows(request.id)
    assert [r.status for r in rows] == ["expired", "pending", "pending", "pending"]
    assert rows[0].note.startswith("No answer within")
    assert rows[1].created_at > offered_at
    assert len(notifications(network.staff["near_small"])) == 1


def test_every_rank_expiring_leaves_the_request_for_a_new_offer(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request(urgency="emergency")
    headers = sign_in(network.staff["home"])
    offer(client, headers, request.id)
    later = utcnow()
    for _ in network.ranked:
        later += timedelta(minutes=11)
        with transaction(session_factory()) as s:
            assert offers.expire_offers(s, later) == 1
    assert [s for _o, s in states(request.id)] == ["expired"] * 4
    again = offer(client, headers, request.id)
    assert again.status_code == 201, again.text
    assert [i["rank"] for i in again.json()["items"]] == [5, 6, 7, 8]


def test_accept_reserves_fefo_units_of_the_best_group_for_a_transfer(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    soon = make_unit(network.near_big, "A-", expires_in=timedelta(days=2))
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    supplier = sign_in(network.staff["near_big"])
    offer_id = incoming(client, supplier)[0]["id"]
    response = client.post(f"{OFFERS}/{offer_id}/accept", json={"note": "Courier at 14:00"}, headers=supplier)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["direction"], body["from_organisation_id"]) == (
        "requested", "outgoing", str(network.near_big.id)
    )  # fmt: skip
    assert [u["blood_group"] for u in body["units"]] == ["A-", "A-"]  # exact group before O-
    assert str(soon.id) in {u["id"] for u in body["units"]}  # first to expire first
    with transaction(session_factory()) as s:
        transfer = s.get_one(BloodTransfer, uuid.UUID(body["id"]))
        assert (transfer.request_id, transfer.offer_id) == (request.id, uuid.UUID(offer_id))
        held = s.scalars(
            select(BloodUnit).where(BloodUnit.id.in_([uuid.UUID(u["id"]) for u in body["units"]]))
        )
        assert {(u.status, u.organisation_id, u.request_id) for u in held} == {
            ("reserved", network.near_big.id, None)
        }
        events = s.scalars(select(UnitEvent).where(UnitEvent.transfer_id == transfer.id))
        assert sorted(e.to_status for e in events) == ["reserved", "reserved"]
    # covered: the organisations still queued are withdrawn, and the requester is told
    assert [s for _o, s in states(request.id)] == ["accepted", "expired", "expired", "expired"]
    assert offer_rows(request.id)[1].note == "Withdrawn: no longer needed."
    assert any("accepted your request" in t for t in notifications(network.staff["home"]))


def test_partial_accept_offers_the_rest_to_the_next_rank(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request(units_requested=5)
    offer(client, sign_in(network.staff["home"]), request.id)
    first = sign_in(network.staff["near_big"])
    client.post(f"{OFFERS}/{incoming(client, first)[0]['id']}/accept", json={}, headers=first)
    second = incoming(client, sign_in(network.staff["near_small"]))
    assert [(o["state"], o["units_needed"]) for o in second] == [("offered", 1)]  # 5 - 4 on their way


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        pytest.param("B-", "not compatible", id="incompatible-group"),
        pytest.param("plasma", "is plasma", id="wrong-component"),
        pytest.param("elsewhere", "is not held here", id="another-organisations-unit"),
        pytest.param("too-many", "at most 2", id="more-than-needed"),
    ],
)
def test_accept_with_unsuitable_chosen_units_is_refused(
    client: TestClient, network: Network, sign_in: Any, choice: str, message: str
) -> None:
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    picks = {
        "B-": [make_unit(network.near_big, "B-").id],
        "plasma": [make_unit(network.near_big, "A-", component="plasma").id],
        "elsewhere": [make_unit(network.far, "A-").id],
        "too-many": [make_unit(network.near_big, "A-").id for _ in range(3)],
    }[choice]
    supplier = sign_in(network.staff["near_big"])
    offer_id = incoming(client, supplier)[0]["id"]
    response = client.post(
        f"{OFFERS}/{offer_id}/accept", json={"unit_ids": [str(i) for i in picks]}, headers=supplier
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert states(request.id)[0][1] == "pending"  # nothing happened
    with transaction(session_factory()) as s:
        assert s.scalar(select(func.count()).select_from(BloodTransfer)) == 0


def test_outgoing_offers_show_every_rank_and_state(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request()
    headers = sign_in(network.staff["home"])
    offer(client, headers, request.id)
    listed = client.get(OFFERS, params={"direction": "outgoing", "limit": 3}, headers=headers)
    assert listed.status_code == 200
    first_page = listed.json()
    assert len(first_page["items"]) == 3
    assert all(i["request_id"] == str(request.id) for i in first_page["items"])
    rest = client.get(
        OFFERS,
        params={"direction": "outgoing", "limit": 3, "cursor": first_page["next_cursor"]},
        headers=headers,
    )
    ids = {i["id"] for i in first_page["items"]} | {i["id"] for i in rest.json()["items"]}
    assert ids == {str(o.id) for o in offer_rows(request.id)}
    assert client.get(OFFERS, params={"direction": "sideways"}, headers=headers).status_code == 422


def as_staff(person: Person) -> Principal:
    assert person.organisation is not None
    return Principal(person.id, "bloodbank_staff", person.full_name, organisation_id=person.organisation.id)


def test_two_people_answering_at_once_one_wins(
    client: TestClient, network: Network, sign_in: Any, make: Factory
) -> None:
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    live = offer_rows(request.id)[0]
    colleagues = [network.staff["near_big"], make.staff("bloodbank_staff", network.near_big)]
    start = threading.Barrier(2)

    def answer(index: int) -> str:
        start.wait()
        try:
            with transaction(session_factory()) as s:
                actor = as_staff(colleagues[index])
                if index == 0:
                    offers.accept_offer(s, actor, live.id)
                else:
                    offers.decline_offer(s, actor, live.id, note="No courier")
        except Conflict:
            return "conflict"
        return "won"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(answer, range(2)))
    assert sorted(outcomes) == ["conflict", "won"]
    with transaction(session_factory()) as s:
        transfers = s.scalar(select(func.count()).select_from(BloodTransfer))
        reserved = s.scalar(select(func.count()).select_from(TransferUnit))
    status = offer_rows(request.id)[0].status
    assert (status, transfers, reserved) in {("accepted", 1, 2), ("declined", 0, 0)}


def test_offers_of_a_request_cancelled_meanwhile_are_withdrawn_by_the_job(
    client: TestClient, network: Network, sign_in: Any
) -> None:
    request = network.request()
    offer(client, sign_in(network.staff["home"]), request.id)
    with transaction(session_factory()) as s:
        row = s.get_one(BloodRequest, request.id)
        row.status, row.status_reason = "cancelled", "Patient stabilised"
    with transaction(session_factory()) as s:
        assert offers.expire_offers(s) == 4  # long before any time limit
    rows = offer_rows(request.id)
    assert {(r.status, r.note) for r in rows} == {("expired", offers.WITHDRAWN)}
    assert incoming(client, sign_in(network.staff["near_big"])) == []


def test_the_minute_job_expires_lapsed_offers(client: TestClient, network: Network, sign_in: Any) -> None:
    request = network.request(urgency="emergency")
    offer(client, sign_in(network.staff["home"]), request.id)
    assert expire_unanswered_offers.call_local() == {"expired": 0}  # still within its 10 minutes
    with transaction(session_factory()) as s:
        s.get_one(RequestOffer, offer_rows(request.id)[0].id).created_at = utcnow() - timedelta(minutes=10)
    assert expire_unanswered_offers.call_local() == {"expired": 1}
    assert [r.status for r in offer_rows(request.id)][:2] == ["expired", "pending"]
