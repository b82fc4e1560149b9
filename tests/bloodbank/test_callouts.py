"""Donor call-outs: who a wave calls (nearest first, compatible groups only; ineligible, unavailable and
cooling-down donors skipped; nobody twice), wave size, when the next wave goes, closing; donors'
replies (accepting books a slot; refused when the slot is full or the donor may not give; declining); the
call-out API."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from caresync.bloodbank.alerts import callouts
from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.models import (
    BloodAlert,
    BloodBankPolicy,
    CalloutContact,
    DonationAppointment,
    Donor,
    DonorCallout,
    DonorDeferral,
)
from caresync.bloodbank.rules import compatible_donor_groups
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_donor
from tests.conftest import Factory, Person

API = "/api/v1/bloodbank"
LISBON = (38.7223, -9.1393)
KM_PER_DEGREE = 111.2  # of latitude


@pytest.fixture
def bank(make: Factory) -> Organisation:
    org = make.org(kind="blood_bank", latitude=LISBON[0], longitude=LISBON[1], phone="+351 210 000 000")
    set_policy(org, callout_wave_size=20, callout_cooldown_days=7)
    return org


@pytest.fixture
def staff(make: Factory, bank: Organisation) -> Person:
    return make.staff("bloodbank_staff", bank)


def set_policy(org: Organisation, **fields: Any) -> None:
    with transaction(session_factory()) as s:
        policy = s.get(BloodBankPolicy, org.id) or BloodBankPolicy(organisation_id=org.id)
        for key, value in fields.items():
            setattr(policy, key, value)
        s.add(policy)


def principal_of(person: Person) -> Principal:
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
    )


def donor(group: str = "O-", km: float | None = 1.0, **overrides: Any) -> Donor:
    """A reachable (email) donor ``km`` north of the blood bank (no coordinates when None)."""
    where = (
        {"latitude": None, "longitude": None}
        if km is None
        else {"latitude": LISBON[0] + km / KM_PER_DEGREE, "longitude": LISBON[1]}
    )
    values = {"email": f"donor-{uuid.uuid4().hex[:8]}@test.caresync.dev", "sex": "M", **where, **overrides}
    return make_donor(blood_group=group, **values)


def call(staff: Person, now: datetime | None = None, **kw: Any) -> uuid.UUID:
    """Create a call-out (first wave sent) and return its id."""
    kw.setdefault("donors_needed", 5)
    with transaction(session_factory()) as s:
        callout = callouts.create_callout(s, principal_of(staff), now=now or utcnow(), **kw)
        return callout.id


def wave(staff: Person | None, callout_id: uuid.UUID, now: datetime | None = None) -> int:
    actor = principal_of(staff) if staff else system_principal()
    with transaction(session_factory()) as s:
        return callouts.send_wave(s, actor, callout_id, now or utcnow())


def contacted(callout_id: uuid.UUID) -> list[tuple[int, uuid.UUID]]:
    """(wave, donor id) of every contact, in wave then distance order."""
    with transaction(session_factory()) as s:
        rows = s.execute(
            select(CalloutContact.wave, CalloutContact.donor_id)
            .where(CalloutContact.callout_id == callout_id)
            .order_by(CalloutContact.wave, CalloutContact.distance_km.is_(None), CalloutContact.distance_km)
        ).all()
        return [(row[0], row[1]) for row in rows]


def callout_row(callout_id: uuid.UUID) -> DonorCallout:
    with transaction(session_factory()) as s:
        found = s.get(DonorCallout, callout_id)
        assert found is not None
        s.expunge(found)
        return found


# --- who a wave calls ---------------------------------------------------------------------------------------


def test_nearest_first_in_waves_of_the_policy_size_without_coordinates_last(
    staff: Person, bank: Organisation
) -> None:
    set_policy(bank, callout_wave_size=2)
    far, nowhere, near, middle = donor(km=50), donor(km=None), donor(km=1), donor(km=5)
    callout_id = call(staff, needed_group="O-")
    assert contacted(callout_id) == [(1, near.id), (1, middle.id)]
    assert wave(staff, callout_id) == 2
    assert contacted(callout_id)[2:] == [(2, far.id), (2, nowhere.id)]
    assert wave(staff, callout_id) == 0  # nobody left
    assert callout_row(callout_id).waves_sent == 2
    with transaction(session_factory()) as s:
        distance = s.scalar(select(CalloutContact.distance_km).where(CalloutContact.donor_id == middle.id))
    assert distance == pytest.approx(5.0, abs=0.1)


def test_only_compatible_groups_are_called(staff: Person) -> None:
    called = {g: donor(g) for g in ("O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+")}
    callout_id = call(staff, needed_group="A+", donors_needed=10)
    assert callout_row(callout_id).blood_groups == list(compatible_donor_groups("red_cells", "A+"))
    reached = {d for _w, d in contacted(callout_id)}
    assert reached == {called[g].id for g in ("O-", "O+", "A-", "A+")}


def test_explicit_groups_are_called_as_given(staff: Person) -> None:
    b_neg, _o_neg = donor("B-"), donor("O-")
    callout_id = call(staff, blood_groups=["B-"])
    assert [d for _w, d in contacted(callout_id)] == [b_neg.id]


@pytest.mark.parametrize(
    "why",
    [
        "recent-donation",
        "too-light",
        "permanent-deferral",
        "switched-off",
        "paused",
        "cooling-down",
        "no-contact",
    ],
)
def test_donors_who_may_not_be_called_are_skipped(staff: Person, bank: Organisation, why: str) -> None:
    set_policy(bank, callout_wave_size=1)  # the nearer donor, skipped, must not take the only place
    today = date.today()
    skipped = {
        "recent-donation": lambda: donor(
            donations=((today - timedelta(days=10), "whole_blood"),), organisation=bank
        ),
        "too-light": lambda: donor(weight_kg=45.0),
        "permanent-deferral": lambda: deferred(donor()),
        "switched-off": lambda: donor(available=False),
        "paused": lambda: donor(unavailable_until=today + timedelta(days=3)),
        "cooling-down": lambda: donor(last_called_at=utcnow() - timedelta(days=6)),
        "no-contact": lambda: donor(email=""),
    }[why]()
    fine = donor(km=30)
    callout_id = call(staff, needed_group="O-")
    assert [d for _w, d in contacted(callout_id)] == [fine.id]
    assert skipped.id != fine.id


def deferred(d: Donor) -> Donor:
    with transaction(session_factory()) as s:
        s.add(DonorDeferral(donor_id=d.id, kind="permanent", reason="test", starts_on=date(2020, 1, 1)))
    return d


def test_cool_down_ends_and_a_pause_ending_today_is_over(staff: Person) -> None:
    rested = donor(last_called_at=utcnow() - timedelta(days=7, minutes=1))
    back = donor(unavailable_until=local_day(utcnow()))
    callout_id = call(staff, needed_group="O-")
    assert {d for _w, d in contacted(callout_id)} == {rested.id, back.id}


def test_no_donor_is_called_twice_by_one_callout_or_again_within_the_cool_down(
    staff: Person, bank: Organisation
) -> None:
    set_policy(bank, callout_cooldown_days=1)
    d = donor()
    now = utcnow()
    first = call(staff, now=now, needed_group="O-")
    assert contacted(first) == [(1, d.id)]
    second = call(staff, now=now + timedelta(hours=1), needed_group="O-")
    assert contacted(second) == []  # cooling down after the first call-out
    later = now + timedelta(days=1, minutes=1)
    assert wave(staff, first, later) == 0  # the cool-down is over, but this call-out already reached them
    assert wave(staff, second, later) == 1
    with transaction(session_factory()) as s:
        called_at = s.scalar(select(Donor.last_called_at).where(Donor.id == d.id))
    assert called_at == later


def test_the_donor_is_notified_live_and_by_email(
    staff: Person, make: Factory, outbox: Path, bank: Organisation
) -> None:
    person = make.donor()
    d = donor(user_id=person.id, email="")
    before = set(outbox.glob("*.eml"))
    call(staff, needed_group="O-", reason="Stock of O- running low after a road accident.")
    with transaction(session_factory()) as s:
        [note] = s.scalars(select(Notification).where(Notification.user_id == person.id)).all()
        assert note.kind == "bloodbank.callout"
        assert note.title == f"Urgent: O- donors needed at {bank.name}"
        assert "road accident" in note.body
        assert note.link == "/donor/callouts"
    mails = [p.read_text() for p in set(outbox.glob("*.eml")) - before]
    assert [m for m in mails if person.email in m and "reply" in m.lower()]
    assert d.user_id == person.id


# --- next waves and closing ---------------------------------------------------------------------------------


def test_the_job_sends_the_next_wave_after_thirty_minutes(staff: Person, bank: Organisation) -> None:
    set_policy(bank, callout_wave_size=1)
    near, far = donor(km=1), donor(km=9)
    start = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    callout_id = call(staff, now=start, needed_group="O-")
    assert contacted(callout_id) == [(1, near.id)]
    with transaction(session_factory()) as s:
        assert callouts.advance(s, start + timedelta(minutes=29))["waves"] == 0
    with transaction(session_factory()) as s:
        assert callouts.advance(s, start + timedelta(minutes=30)) == {"closed": 0, "waves": 1, "contacted": 1}
    assert contacted(callout_id) == [(1, near.id), (2, far.id)]


def test_the_job_closes_a_callout_with_enough_acceptances(staff: Person) -> None:
    d = donor()
    callout_id = call(staff, needed_group="O-", donors_needed=1, send_first_wave=True)
    with transaction(session_factory()) as s:  # accepted by phone, recorded directly
        contact = s.scalar(select(CalloutContact).where(CalloutContact.donor_id == d.id))
        assert contact is not None
        contact.response = "accepted"
    with transaction(session_factory()) as s:
        assert callouts.advance(s, utcnow())["closed"] == 1
    closed = callout_row(callout_id)
    assert closed.status == "closed"
    assert closed.closed_at is not None


def test_staff_close_a_callout_and_no_wave_follows(staff: Person) -> None:
    callout_id = call(staff, needed_group="O-")
    with transaction(session_factory()) as s:
        callouts.close_callout(s, principal_of(staff), callout_id, utcnow())
    assert callout_row(callout_id).status == "closed"
    with pytest.raises(Conflict):
        wave(staff, callout_id)
    with transaction(session_factory()) as s, pytest.raises(Conflict):
        callouts.close_callout(s, principal_of(staff), callout_id, utcnow())


def test_another_blood_banks_callout_is_not_found(staff: Person, make: Factory) -> None:
    callout_id = call(staff, needed_group="O-")
    stranger = make.staff("bloodbank_staff", make.org(kind="blood_bank"))
    with pytest.raises(NotFound):
        wave(stranger, callout_id)


# --- creating from alerts and requests ----------------------------------------------------------------------


def test_a_callout_from_a_low_stock_alert_calls_for_that_group_once(
    staff: Person, bank: Organisation
) -> None:
    with transaction(session_factory()) as s:
        alert = BloodAlert(
            organisation_id=bank.id,
            kind="low_stock",
            subject="B-:platelets",
            severity="critical",
            message="m",
        )
        s.add(alert)
    callout_id = call(staff, alert_id=alert.id)
    row = callout_row(callout_id)
    assert row.blood_groups == list(compatible_donor_groups("platelets", "B-"))
    assert row.donation_type == "platelets"
    assert row.alert_id == alert.id
    assert "B- platelets" in row.reason
    with pytest.raises(Conflict):
        call(staff, alert_id=alert.id)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({}, "needed_group"),
        ({"needed_group": "C+"}, "needed_group"),
        ({"blood_groups": ["O-", "Z"]}, "blood_groups"),
        ({"needed_group": "O-", "donors_needed": 0}, "donors_needed"),
        ({"needed_group": "O-", "donation_type": "tea"}, "donation_type"),
        ({"needed_group": "O-", "reason": "x" * 301}, "reason"),
    ],
    ids=["nothing-needed", "bad-group", "bad-groups", "zero-donors", "bad-type", "long-reason"],
)
def test_invalid_callouts_are_refused(staff: Person, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        call(staff, **kw)
    assert refused.value.extra["field"] == field


# --- donors' replies ----------------------------------------------------------------------------------------


@pytest.fixture
def answering(make: Factory, staff: Person) -> tuple[Person, Donor, uuid.UUID]:
    """A donor with an account, contacted by a call-out for one donor."""
    person = make.donor()
    d = donor(user_id=person.id)
    return person, d, call(staff, needed_group="O-", donors_needed=1)


def next_slot(days: int = 1, index: int = 4) -> datetime:
    return slot_starts(local_day(utcnow()) + timedelta(days=days))[index]


def reply(
    person: Person, callout_id: uuid.UUID, accept: bool, starts_at: datetime | None = None
) -> CalloutContact:
    with transaction(session_factory()) as s:
        contact = callouts.reply(
            s, principal_of(person), callout_id, accept=accept, starts_at=starts_at, now=utcnow()
        )
        s.expunge(contact)
        return contact


def test_accepting_books_the_slot_and_fills_the_callout(answering: Any, staff: Person) -> None:
    person, d, callout_id = answering
    at = next_slot()
    contact = reply(person, callout_id, True, at)
    assert contact.response == "accepted"
    with transaction(session_factory()) as s:
        appointment = s.get(DonationAppointment, contact.appointment_id)
        assert appointment is not None
        assert (appointment.donor_id, appointment.starts_at, appointment.callout_id) == (d.id, at, callout_id)
        assert appointment.status == "booked"
        told = s.scalar(
            select(func.count()).where(
                Notification.user_id == staff.id, Notification.kind == "bloodbank.callout.accepted"
            )
        )
    assert told == 1
    assert callout_row(callout_id).status == "closed"  # one donor was needed
    with pytest.raises(Conflict):
        reply(person, callout_id, True, next_slot(2))


def test_accepting_a_full_slot_is_refused_and_changes_nothing(answering: Any, bank: Organisation) -> None:
    person, _d, callout_id = answering
    set_policy(bank, donation_chairs=1)
    at = next_slot()
    taker = donor(km=100)
    with transaction(session_factory()) as s:
        s.add(
            DonationAppointment(
                donor_id=taker.id, organisation_id=bank.id, starts_at=at, chair=1, donation_type="whole_blood"
            )
        )
    with pytest.raises(Conflict):
        reply(person, callout_id, True, at)
    assert pending(callout_id, person) == "pending"


def test_accepting_when_no_longer_eligible_is_refused(answering: Any) -> None:
    person, d, callout_id = answering
    deferred(d)
    with pytest.raises(DomainError) as refused:
        reply(person, callout_id, True, next_slot())
    assert refused.value.status == 422
    assert pending(callout_id, person) == "pending"


def test_accepting_needs_a_future_time(answering: Any) -> None:
    person, _d, callout_id = answering
    with pytest.raises(ValidationFailed):
        reply(person, callout_id, True, None)
    with pytest.raises(ValidationFailed):
        reply(person, callout_id, True, utcnow() - timedelta(hours=1))


def test_declining_then_changing_ones_mind(answering: Any) -> None:
    person, _d, callout_id = answering
    assert reply(person, callout_id, False).response == "declined"
    with pytest.raises(Conflict):
        reply(person, callout_id, False)
    assert reply(person, callout_id, True, next_slot()).response == "accepted"


def test_a_donor_not_called_cannot_reply(answering: Any, make: Factory) -> None:
    _person, _d, callout_id = answering
    other = make.donor()
    donor(user_id=other.id, km=500, last_called_at=utcnow())
    with pytest.raises(NotFound):
        reply(other, callout_id, True, next_slot())


def pending(callout_id: uuid.UUID, person: Person) -> str:
    with transaction(session_factory()) as s:
        return str(
            s.scalar(
                select(CalloutContact.response)
                .join(Donor, Donor.id == CalloutContact.donor_id)
                .where(CalloutContact.callout_id == callout_id, Donor.user_id == person.id)
            )
        )


# --- API ----------------------------------------------------------------------------------------------------


def test_callout_api_round_trip(
    client: Any, sign_in: Any, staff: Person, make: Factory, bank: Organisation
) -> None:
    person = make.donor()
    d = donor(user_id=person.id)
    headers = sign_in(staff)
    created = client.post(f"{API}/callouts", json={"needed_group": "O-", "donors_needed": 2}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["contacted"], body["accepted"], body["waves_sent"]) == ("active", 1, 0, 1)
    callout_id = body["id"]
    assert [c["id"] for c in client.get(f"{API}/callouts", headers=headers).json()["items"]] == [callout_id]
    detail = client.get(f"{API}/callouts/{callout_id}", headers=headers).json()
    assert [(c["donor_number"], c["response"], c["wave"]) for c in detail["contacts"]] == [
        (d.donor_number, "pending", 1)
    ]

    donor_headers = sign_in(person)
    mine = client.get(f"{API}/me/callouts", headers=donor_headers).json()
    assert [(m["callout_id"], m["organisation_name"], m["response"]) for m in mine] == [
        (callout_id, bank.name, "pending")
    ]
    at = next_slot()
    answered = client.post(
        f"{API}/me/callouts/{callout_id}/reply",
        json={"accept": True, "starts_at": at.isoformat()},
        headers=donor_headers,
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["response"] == "accepted"
    missing_time = client.post(
        f"{API}/me/callouts/{callout_id}/reply", json={"accept": True}, headers=donor_headers
    )
    assert missing_time.status_code == 409  # already accepted

    waved = client.post(f"{API}/callouts/{callout_id}/waves", headers=headers)
    assert waved.status_code == 200
    assert waved.json()["contacted"] == 0
    closed = client.post(f"{API}/callouts/{callout_id}/close", headers=headers)
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["accepted"]) == ("closed", 1)
    assert client.post(f"{API}/callouts/{callout_id}/close", headers=headers).status_code == 409
    assert client.get(f"{API}/me/callouts", headers=donor_headers).json() == []


def test_callout_api_validation(client: Any, sign_in: Any, staff: Person) -> None:
    headers = sign_in(staff)
    assert (
        client.post(
            f"{API}/callouts", json={"donors_needed": 0, "needed_group": "O-"}, headers=headers
        ).status_code
        == 422
    )
    refused = client.post(f"{API}/callouts", json={"donors_needed": 3}, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["field"] == "needed_group"
    assert client.get(f"{API}/callouts/{uuid.uuid4()}", headers=headers).status_code == 404


def test_concurrent_waves_of_one_callout_never_call_a_donor_twice(staff: Person) -> None:
    reached = {donor(km=k).id for k in (1, 2, 3)}
    callout_id = call(staff, needed_group="O-", send_first_wave=False)
    start = threading.Barrier(4)

    def send() -> int | str:
        start.wait()
        try:
            return wave(staff, callout_id)
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _n: send(), range(4)))
    assert sorted(map(str, outcomes)).count("3") == 1, outcomes  # one wave reached all three
    assert set(outcomes) <= {3, 0, "conflict"}
    assert sorted(d for _w, d in contacted(callout_id)) == sorted(reached)
    assert callout_row(callout_id).waves_sent == 1
