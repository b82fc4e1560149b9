"""Inventory: receiving units (from a donation, or from outside through the API), listing and reading them,
releasing, discarding and moving them, expiring them; every status change through the unit primitive,
every write audited, and another organisation's units invisible (404)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.inventory import service
from caresync.bloodbank.inventory.jobs import expire_units
from caresync.bloodbank.models import BloodUnit, Donation, UnitEvent
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import din, make_donor, make_request, make_unit
from tests.conftest import API, Cast, Factory, Person

UNITS = f"{API}/bloodbank/units"


def principal_of(person: Person) -> Principal:
    """The principal a signed-in staff member acts as."""
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
    )


def audit_entries(action: str, resource_id: Any = None) -> list[AuditEntry]:
    """Audit entries of ``action`` (about ``resource_id`` when given), oldest first."""
    with transaction(session_factory()) as s:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        if resource_id is not None:
            query = query.where(AuditEntry.resource_id == str(resource_id))
        return list(s.scalars(query))


def unit_row(unit_id: Any) -> BloodUnit:
    """The unit as stored now."""
    with transaction(session_factory()) as s:
        return s.get_one(BloodUnit, uuid.UUID(str(unit_id)))


def history(unit_id: Any) -> list[tuple[str | None, str, str]]:
    """(from, to, note) of every event of the unit, oldest first."""
    with transaction(session_factory()) as s:
        rows = s.scalars(select(UnitEvent).where(UnitEvent.unit_id == unit_id).order_by(UnitEvent.at))
        return [(e.from_status, e.to_status, e.note) for e in rows]


# --- receiving a donation -----------------------------------------------------------------------------------

COLLECTED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _donation(cast: Cast, donation_type: str, *, group: str | None = "A-", org: Any = None) -> Donation:
    donor = make_donor(
        blood_group=group, donations=((COLLECTED.date(), donation_type),), organisation=org or cast.org
    )
    with transaction(session_factory()) as s:
        donation = s.scalars(select(Donation).where(Donation.donor_id == donor.id)).one()
        donation.collected_at = COLLECTED
    return donation


@pytest.mark.parametrize(
    ("donation_type", "expected"),
    [
        # 21 CFR 610.53: red cells in an additive solution 42 days, platelets 5 days, frozen plasma 1 year
        ("whole_blood", [("red_cells", "E0336V00", 42), ("plasma", "E2555V00", 365)]),
        ("double_red_cells", [("red_cells", "E0409VA0", 42), ("red_cells", "E0409VB0", 42)]),
        ("platelets", [("platelets", "E3083V00", 5), ("plasma", "E2693V00", 365)]),
        ("plasma", [("plasma", "E2693V00", 365)]),
    ],
    ids=["whole-blood", "double-red-cells", "platelets", "plasma"],
)
def test_a_donation_makes_quarantined_units_with_computed_expiry(
    cast: Cast, donation_type: str, expected: list[tuple[str, str, int]]
) -> None:
    donation = _donation(cast, donation_type)
    staff = cast["bloodbank_staff"]
    with transaction(session_factory()) as s:
        made = service.receive_donation(
            s, principal_of(staff), s.get_one(Donation, donation.id), storage_location="Fridge 3"
        )
        got = sorted((u.component, u.product_code, u.expires_at - u.collected_at) for u in made)
        ids = [u.id for u in made]
        assert {(u.status, u.din, u.blood_group, u.storage_location, u.donation_id) for u in made} == {
            ("quarantined", donation.din, "A-", "Fridge 3", donation.id)
        }
    assert got == sorted((c, code, timedelta(days=days)) for c, code, days in expected)
    for unit_id in ids:
        assert history(unit_id) == [(None, "quarantined", "Made from a donation")]
        [entry] = audit_entries(service.RECEIVE, unit_id)
        assert (entry.actor_id, entry.resource_type) == (staff.id, "blood_unit")


def test_a_donor_without_a_known_group_makes_no_units(cast: Cast) -> None:
    donation = _donation(cast, "whole_blood", group=None)
    with (
        transaction(session_factory()) as s,
        pytest.raises(Conflict, match="blood group is not known"),
    ):
        service.receive_donation(s, principal_of(cast["bloodbank_staff"]), s.get_one(Donation, donation.id))
    with transaction(session_factory()) as s:
        assert s.scalars(select(BloodUnit)).all() == []


def test_a_donation_makes_its_units_once(cast: Cast) -> None:
    donation = _donation(cast, "plasma")
    staff = principal_of(cast["bloodbank_staff"])
    with transaction(session_factory()) as s:
        service.receive_donation(s, staff, s.get_one(Donation, donation.id))
    with transaction(session_factory()) as s, pytest.raises(Conflict, match="already made"):
        service.receive_donation(s, staff, s.get_one(Donation, donation.id))


def test_another_organisations_donation_is_not_found(cast: Cast, make: Factory) -> None:
    donation = _donation(cast, "plasma", org=make.org(kind="blood_bank"))
    with transaction(session_factory()) as s, pytest.raises(NotFound):
        service.receive_donation(s, principal_of(cast["bloodbank_staff"]), s.get_one(Donation, donation.id))


# --- receiving a unit from outside --------------------------------------------------------------------------


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "din": din(),
        "product_code": "E0336",
        "component": "red_cells",
        "blood_group": "O-",
        "volume_ml": 280,
        "collected_at": (utcnow() - timedelta(hours=1)).isoformat(),
        "storage_location": "Fridge 1",
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("component", "details", "days"),
    [
        ("red_cells", {}, 42),  # additive solution by default, 21 CFR 610.53(b)
        ("red_cells", {"anticoagulant": "CPD"}, 21),
        ("red_cells", {"anticoagulant": "CPDA-1"}, 35),
        ("red_cells", {"irradiated": True}, 28),  # 28 days from irradiation, AABB 5.1.8A
        ("whole_blood", {}, 35),
        ("platelets", {}, 5),
        ("platelets", {"bacterial_testing": True}, 7),
        ("plasma", {}, 365),
        ("cryo", {}, 365),
    ],
    ids=[
        "rbc-additive",
        "rbc-cpd",
        "rbc-cpda1",
        "rbc-irradiated",
        "whole",
        "plt",
        "plt-tested",
        "ffp",
        "cryo",
    ],
)
def test_receiving_computes_the_expiry_from_the_component(
    client: TestClient, sign_in: Any, cast: Cast, component: str, details: dict[str, Any], days: int
) -> None:
    staff = cast["bloodbank_staff"]
    body = _body(component=component, details=details)
    response = client.post(UNITS, json=body, headers=sign_in(staff))
    assert response.status_code == 201, response.text
    out = response.json()
    collected = datetime.fromisoformat(body["collected_at"])
    assert datetime.fromisoformat(out["expires_at"]) - collected == timedelta(days=days)
    assert (out["status"], out["blood_group"], out["details"]) == ("quarantined", "O-", details)
    [entry] = audit_entries(service.RECEIVE, out["id"])
    assert entry.actor_id == staff.id
    assert history(uuid.UUID(out["id"])) == [(None, "quarantined", "Received from outside")]


def test_a_printed_din_is_stored_without_spaces(client: TestClient, sign_in: Any, cast: Cast) -> None:
    response = client.post(UNITS, json=_body(din="w1234 26 000123"), headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 201, response.text
    assert (response.json()["din"], response.json()["din_printed"]) == ("W123426000123", "W1234 26 000123")


def test_the_same_din_and_product_code_twice_is_a_conflict(
    client: TestClient, sign_in: Any, cast: Cast
) -> None:
    headers = sign_in(cast["bloodbank_staff"])
    body = _body()
    assert client.post(UNITS, json=body, headers=headers).status_code == 201
    again = client.post(UNITS, json={**body, "din": body["din"][:5] + " " + body["din"][5:]}, headers=headers)
    assert again.status_code == 409
    assert "already registered" in again.json()["detail"]
    other_product = client.post(UNITS, json={**body, "product_code": "E2555"}, headers=headers)
    assert other_product.status_code == 201  # another product of the same donation


def test_a_duplicate_racing_past_the_check_is_still_a_conflict(
    client: TestClient, sign_in: Any, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two receptions of one label at once both pass the look-up; the unique constraint refuses the second."""
    headers = sign_in(cast["bloodbank_staff"])
    body = _body()
    assert client.post(UNITS, json=body, headers=headers).status_code == 201
    monkeypatch.setattr(
        service, "_refuse_duplicate", lambda *_args: None
    )  # as if the first were not committed
    again = client.post(UNITS, json=body, headers=headers)
    assert again.status_code == 409
    assert "already registered" in again.json()["detail"]
    with transaction(session_factory()) as s:
        assert len(s.scalars(select(BloodUnit)).all()) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"din": "W1234 26 12345"}, "din"),  # 12 characters
        ({"din": "W1234 26 12345678"}, "din"),  # 15
        ({"din": "W1234 26 123456 8"}, "din"),  # wrong check character (it is 7)
        ({"din": "O1234 26 123456"}, "din"),  # O is not used in facility codes
        ({"din": "12345 26 123456"}, "din"),  # a facility code starts with a letter
        ({"din": "W12A4 26 123456"}, "din"),
        ({"din": ""}, "din"),
        ({"product_code": "336"}, "product_code"),
        ({"collected_at": (utcnow() + timedelta(hours=2)).isoformat()}, "collected_at"),
        (
            {"component": "platelets", "collected_at": (utcnow() - timedelta(days=6)).isoformat()},
            "collected_at",
        ),
        ({"details": {"additive": "AS-99"}}, "details"),
    ],
    ids=[
        "din-short",
        "din-long",
        "din-check-character",
        "din-letter-o",
        "din-digit",
        "din-letters",
        "din-empty",
        "product",
        "future",
        "expired",
        "unknown-additive",
    ],
)
def test_bad_units_are_refused_with_the_field(
    client: TestClient, sign_in: Any, cast: Cast, changes: dict[str, Any], field: str
) -> None:
    response = client.post(UNITS, json=_body(**changes), headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    with transaction(session_factory()) as s:
        assert s.scalars(select(BloodUnit)).all() == []


def test_the_api_refuses_malformed_bodies(client: TestClient, sign_in: Any, cast: Cast) -> None:
    headers = sign_in(cast["bloodbank_staff"])
    for bad in ({"blood_group": "C+"}, {"volume_ml": 0}, {"collected_at": "2026-01-01T10:00:00"}):
        assert client.post(UNITS, json=_body(**bad), headers=headers).status_code == 422, bad


# --- listing and reading ------------------------------------------------------------------------------------


def test_the_list_filters_sorts_and_pages(
    client: TestClient, sign_in: Any, cast: Cast, make: Factory
) -> None:
    org = cast.org
    soon = make_unit(org, "O-", expires_in=timedelta(days=1))
    later = make_unit(org, "O-", expires_in=timedelta(days=10))
    plasma = make_unit(org, "A+", "plasma", expires_in=timedelta(days=200))
    held = make_unit(org, "O-", status="quarantined", expires_in=timedelta(days=2))
    make_unit(make.org(kind="blood_bank"), "O-")  # another organisation's: never listed
    headers = sign_in(cast["bloodbank_staff"])

    def ids(**params: Any) -> list[str]:
        response = client.get(UNITS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [u["id"] for u in response.json()["items"]]

    everything = [str(u.id) for u in (soon, held, later, plasma)]
    assert ids() == everything
    assert ids(sort="-expiry") == everything[::-1]
    assert ids(status="available", blood_group="O-") == [str(soon.id), str(later.id)]
    assert ids(component="plasma") == [str(plasma.id)]
    assert ids(expiring_within_days=3) == [str(soon.id), str(held.id)]
    assert ids(din=later.din[-6:]) == [str(later.id)]
    first = client.get(UNITS, params={"limit": 3}, headers=headers).json()
    rest = client.get(UNITS, params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers).json()
    assert [u["id"] for u in first["items"] + rest["items"]] == everything
    assert rest["next_cursor"] is None
    gone = make_unit(org, "O-", status="discarded", expires_in=timedelta(days=5))
    assert str(gone.id) in ids()
    assert ids(status="on_shelf") == everything
    assert client.get(UNITS, params={"sort": "group"}, headers=headers).status_code == 422
    assert client.get(UNITS, params={"status": "lost"}, headers=headers).status_code == 422


def test_the_detail_shows_the_history_with_names(client: TestClient, sign_in: Any, cast: Cast) -> None:
    staff = cast["bloodbank_staff"]
    headers = sign_in(staff)
    created = client.post(UNITS, json=_body(), headers=headers).json()
    assert client.post(f"{UNITS}/{created['id']}/release", headers=headers).status_code == 200
    detail = client.get(f"{UNITS}/{created['id']}", headers=headers)
    assert detail.status_code == 200
    body = detail.json()
    assert (body["status"], body["storage_min_c"], body["storage_max_c"]) == ("available", 1.0, 6.0)
    assert [(h["from_status"], h["to_status"], h["actor_name"]) for h in body["history"]] == [
        (None, "quarantined", staff.full_name),
        ("quarantined", "available", staff.full_name),
    ]
    assert {h["organisation_name"] for h in body["history"]} == {cast.org.name}


# --- changing units -----------------------------------------------------------------------------------------


def test_release_only_from_quarantine(client: TestClient, sign_in: Any, cast: Cast) -> None:
    headers = sign_in(cast["bloodbank_staff"])
    quarantined = make_unit(cast.org, status="quarantined")
    available = make_unit(cast.org)
    expired_in_quarantine = make_unit(
        cast.org, status="quarantined", expires_at=utcnow() - timedelta(minutes=1)
    )
    assert client.post(f"{UNITS}/{quarantined.id}/release", headers=headers).json()["status"] == "available"
    assert [entry.actor_id for entry in audit_entries(service.RELEASE, quarantined.id)] == [
        cast["bloodbank_staff"].id
    ]
    refused = client.post(f"{UNITS}/{available.id}/release", headers=headers)
    assert refused.status_code == 409
    assert "only a quarantined unit" in refused.json()["detail"]
    late = client.post(f"{UNITS}/{expired_in_quarantine.id}/release", headers=headers)
    assert (late.status_code, unit_row(expired_in_quarantine.id).status) == (409, "quarantined")
    assert "expired" in late.json()["detail"]


def test_discard_needs_a_reason_and_keeps_it(client: TestClient, sign_in: Any, cast: Cast) -> None:
    headers = sign_in(cast["bloodbank_staff"])
    unit = make_unit(cast.org)
    missing = client.post(f"{UNITS}/{unit.id}/discard", json={"reason": "  "}, headers=headers)
    assert missing.status_code == 422
    assert unit_row(unit.id).status == "available"
    done = client.post(f"{UNITS}/{unit.id}/discard", json={"reason": "Bag leaking"}, headers=headers)
    assert (done.status_code, done.json()["status"]) == (200, "discarded")
    assert history(unit.id)[-1] == ("available", "discarded", "Bag leaking")
    [entry] = audit_entries(service.DISCARD, unit.id)
    assert '"reason": "Bag leaking"' in entry.detail


@pytest.mark.parametrize(
    ("status", "action", "json", "message"),
    [
        ("transfused", "discard", {"reason": "x"}, "is transfused: it cannot become discarded"),
        ("discarded", "discard", {"reason": "x"}, "is discarded: it cannot become discarded"),
        ("expired", "release", None, "only a quarantined unit"),
        ("issued", "release", None, "only a quarantined unit"),
    ],
    ids=["discard-transfused", "discard-twice", "release-expired", "release-issued"],
)
def test_state_machine_refusals_are_409_with_the_reason(
    client: TestClient,
    sign_in: Any,
    cast: Cast,
    status: str,
    action: str,
    json: dict[str, str] | None,
    message: str,
) -> None:
    overrides: dict[str, Any] = {}
    if status in ("transfused", "issued"):
        request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id)
        overrides = {"request_id": request.id, "issued_at": utcnow()}
    unit = make_unit(cast.org, status=status, **overrides)
    response = client.post(f"{UNITS}/{unit.id}/{action}", json=json, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 409, response.text
    assert message in response.json()["detail"]
    assert unit_row(unit.id).status == status
    assert len(history(unit.id)) == 1


def test_moving_changes_only_the_location(client: TestClient, sign_in: Any, cast: Cast) -> None:
    headers = sign_in(cast["bloodbank_staff"])
    unit = make_unit(cast.org, status="reserved", request_id=make_request(
        cast.org, cast["patient"].patient_id, cast["doctor"].id).id)  # fmt: skip
    moved = client.patch(f"{UNITS}/{unit.id}", json={"storage_location": "Fridge 7"}, headers=headers)
    assert (moved.status_code, moved.json()["storage_location"], moved.json()["status"]) == (
        200,
        "Fridge 7",
        "reserved",
    )
    [entry] = audit_entries(service.RELOCATE, unit.id)
    assert '"previous_location": "Fridge 1"' in entry.detail
    too_long = client.patch(f"{UNITS}/{unit.id}", json={"storage_location": "x" * 61}, headers=headers)
    assert too_long.status_code == 422
    gone = make_unit(cast.org, status="discarded")
    refused = client.patch(f"{UNITS}/{gone.id}", json={"storage_location": "Fridge 2"}, headers=headers)
    assert refused.status_code == 409
    assert unit_row(gone.id).storage_location == "Fridge 1"


def test_another_organisations_unit_is_not_found_and_untouched(
    client: TestClient, sign_in: Any, cast: Cast, make: Factory
) -> None:
    theirs = make_unit(make.org(kind="blood_bank"), "AB+", status="quarantined")
    staff = cast["bloodbank_staff"]
    headers = sign_in(staff)
    calls = [
        client.get(f"{UNITS}/{theirs.id}", headers=headers),
        client.post(f"{UNITS}/{theirs.id}/release", headers=headers),
        client.post(f"{UNITS}/{theirs.id}/discard", json={"reason": "mine now"}, headers=headers),
        client.patch(f"{UNITS}/{theirs.id}", json={"storage_location": "Here"}, headers=headers),
        client.get(f"{UNITS}/{uuid.uuid4()}", headers=headers),
    ]
    assert [c.status_code for c in calls] == [404] * 5
    assert calls[0].json()["detail"] == calls[-1].json()["detail"]  # existence does not leak
    row = unit_row(theirs.id)
    assert (row.status, row.storage_location) == ("quarantined", "Fridge 1")
    denied = [e for e in audit_entries(service.READ, theirs.id) if e.outcome == "denied"]
    assert [e.actor_id for e in denied] == [staff.id]


# --- expiry -------------------------------------------------------------------------------------------------


def test_expire_due_expires_units_at_or_past_their_expiry(cast: Cast) -> None:
    now = utcnow().replace(microsecond=0) + timedelta(minutes=5)  # after the rows' creation events
    collected = now - timedelta(days=5)
    request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id)

    def unit(status: str, expires_at: datetime, **extra: Any) -> BloodUnit:
        return make_unit(cast.org, status=status, expires_at=expires_at, collected_at=collected, **extra)

    due = [
        unit("available", now),  # expires exactly now: no longer usable
        unit("quarantined", now - timedelta(days=1)),
        unit("reserved", now - timedelta(seconds=1), request_id=request.id),
        unit("crossmatched", now - timedelta(hours=3), request_id=request.id),
    ]
    kept = [
        unit("available", now + timedelta(microseconds=1)),
        unit("issued", now - timedelta(hours=1), request_id=request.id, issued_at=now - timedelta(hours=2)),
        unit("discarded", now - timedelta(days=1)),
        unit("expired", now - timedelta(days=2)),
    ]
    with transaction(session_factory()) as s:
        assert service.expire_due(s, now) == 4
    with transaction(session_factory()) as s:
        assert service.expire_due(s, now) == 0  # a re-run changes nothing
    for u in due:
        row = unit_row(u.id)
        assert (row.status, row.request_id) == ("expired", None)
        assert history(u.id)[-1] == (u.status, "expired", "Passed its expiry date")
        [entry] = audit_entries(service.EXPIRE, u.id)
        assert (entry.actor_id, entry.actor_role) == (None, "system")
    assert [unit_row(u.id).status for u in kept] == ["available", "issued", "discarded", "expired"]


def test_the_job_expires_what_is_due_now(cast: Cast) -> None:
    past = make_unit(cast.org, expires_in=timedelta(minutes=-1))
    fresh = make_unit(cast.org)
    assert expire_units.call_local() == 1
    assert (unit_row(past.id).status, unit_row(fresh.id).status) == ("expired", "available")


def test_received_units_use_the_donation_date(cast: Cast) -> None:
    """A unit made on a later day than its collection still expires from the collection time."""
    donation = _donation(cast, "whole_blood")
    with transaction(session_factory()) as s:
        made = service.receive_donation(
            s, principal_of(cast["bloodbank_staff"]), s.get_one(Donation, donation.id)
        )
        red = next(u for u in made if u.component == "red_cells")
        assert red.expires_at.date() == date(2026, 4, 13)  # 2 March + 42 days
