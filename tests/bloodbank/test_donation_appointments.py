"""Donation appointments: free times every 30 minutes in opening hours, chairs per slot (a full slot is not
offered; a race for the last chair has exactly one winner), booking refused when the donor is not eligible
that day (with the reason and next date), one booked appointment per donor, cancel and no-show, and
reminders sent once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.donors import service
from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.donors.jobs import donation_reminders
from caresync.bloodbank.models import BloodBankPolicy, DonationAppointment, Donor
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor
from tests.conftest import login, run_coroutine

B = "/api/v1/bloodbank"
DAY = local_day(utcnow()) + timedelta(days=7)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def set_chairs(org: Any, chairs: int) -> None:
    with transaction(session_factory()) as s:
        s.merge(BloodBankPolicy(organisation_id=org.id, donation_chairs=chairs))


def book_row(org: Any, donor: Donor, at: datetime, chair: int = 1, **fields: Any) -> DonationAppointment:
    with transaction(session_factory()) as s:
        row = DonationAppointment(
            donor_id=donor.id,
            organisation_id=org.id,
            starts_at=at,
            chair=chair,
            donation_type="whole_blood",
            **fields,
        )
        s.add(row)
    return row


def donor_account(
    make: Any, client: TestClient, org: Any = None, **fields: Any
) -> tuple[Donor, dict[str, str]]:
    """A donor with an account and a profile; their sign-in headers."""
    person = make.donor()
    donor = make_donor(user_id=person.id, email=person.email, organisation=org, **fields)
    return donor, login(client, person.email, person.password)


def test_slots_are_every_30_minutes_in_lisbon_opening_hours() -> None:
    starts = slot_starts(date(2026, 7, 15))  # summer time: Lisbon is UTC+1
    assert len(starts) == 20
    assert starts[0] == datetime(2026, 7, 15, 7, 0, tzinfo=UTC)
    assert starts[-1] == datetime(2026, 7, 15, 16, 30, tzinfo=UTC)
    winter = slot_starts(date(2026, 1, 15))
    assert winter[0] == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    assert len(winter) == 20
    assert slot_starts(date(2026, 3, 29))[0] == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )  # the spring-forward day


def test_free_slots_leave_out_full_times(client: TestClient, cast: Any, sign_in: Any) -> None:
    set_chairs(cast.org, 2)
    nine = slot_starts(DAY)[2]
    for chair in (1, 2):
        book_row(cast.org, make_donor(), nine, chair)
    book_row(cast.org, make_donor(), slot_starts(DAY)[3], 1)
    book_row(cast.org, make_donor(), slot_starts(DAY)[4], 1, status="cancelled")
    body = client.get(
        f"{B}/donation-slots",
        params={"organisation_id": str(cast.org.id), "date": DAY.isoformat()},
        headers=sign_in(cast["donor"]),
    ).json()
    offered = [datetime.fromisoformat(s) for s in body["slots"]]
    assert body["chairs"] == 2
    assert len(offered) == 19
    assert nine not in offered
    assert slot_starts(DAY)[3] in offered
    assert slot_starts(DAY)[4] in offered


def test_past_days_offer_nothing_and_pharmacies_are_not_sites(
    client: TestClient, cast: Any, sign_in: Any, make: Any
) -> None:
    headers = sign_in(cast["donor"])
    yesterday = (local_day(utcnow()) - timedelta(days=1)).isoformat()
    past = client.get(
        f"{B}/donation-slots",
        params={"organisation_id": str(cast.org.id), "date": yesterday},
        headers=headers,
    )
    assert past.json()["slots"] == []
    pharmacy = make.org(kind="pharmacy")
    refused = client.get(
        f"{B}/donation-slots",
        params={"organisation_id": str(pharmacy.id), "date": DAY.isoformat()},
        headers=headers,
    )
    assert refused.status_code == 404
    sites = {s["id"] for s in client.get(f"{B}/donation-sites", headers=headers).json()}
    assert str(cast.org.id) in sites
    assert str(pharmacy.id) not in sites


def test_a_donor_books_the_first_free_chair_and_is_told(client: TestClient, cast: Any, make: Any) -> None:
    at = slot_starts(DAY)[4]
    book_row(cast.org, make_donor(), at, 1)
    donor, headers = donor_account(make, client)
    body = {"organisation_id": str(cast.org.id), "starts_at": iso(at), "donation_type": "whole_blood"}
    booked = client.post(f"{B}/donation-appointments", json=body, headers=headers)
    assert booked.status_code == 201, booked.text
    assert booked.json()["chair"] == 2
    assert booked.json()["status"] == "booked"
    again = client.post(
        f"{B}/donation-appointments", json={**body, "starts_at": iso(slot_starts(DAY)[6])}, headers=headers
    )
    assert again.status_code == 409
    assert "already has a booked" in again.json()["detail"]
    with transaction(session_factory()) as s:
        assert s.get(Donor, donor.id).organisation_id == cast.org.id  # their home blood bank now
        notes = s.execute(select(Notification).where(Notification.user_id == donor.user_id)).scalars().all()
        assert [n.title for n in notes] == ["Donation appointment booked"]
    assert [a["id"] for a in client.get(f"{B}/donation-appointments", headers=headers).json()] == [
        booked.json()["id"]
    ]


@pytest.mark.parametrize(
    ("at", "why"),
    [
        pytest.param(lambda: slot_starts(DAY)[0] + timedelta(minutes=10), "not a slot start", id="off-grid"),
        pytest.param(lambda: datetime.combine(DAY, time(20), tzinfo=UTC), "after hours", id="closed"),
        pytest.param(lambda: slot_starts(local_day(utcnow()) - timedelta(days=1))[3], "past", id="past"),
        pytest.param(
            lambda: slot_starts(local_day(utcnow()) + timedelta(days=120))[3], "too far", id="horizon"
        ),
    ],
)
def test_times_that_are_not_free_slots_are_refused(
    client: TestClient, cast: Any, make: Any, at: Any, why: str
) -> None:
    _donor, headers = donor_account(make, client)
    body = {"organisation_id": str(cast.org.id), "starts_at": iso(at()), "donation_type": "whole_blood"}
    response = client.post(f"{B}/donation-appointments", json=body, headers=headers)
    assert response.status_code == 422, (why, response.text)
    assert response.json()["field"] == "starts_at"


def test_booking_refused_when_not_eligible_that_day_with_the_next_date(
    client: TestClient, cast: Any, make: Any
) -> None:
    gave = DAY - timedelta(days=30)
    _donor, headers = donor_account(make, client, org=cast.org, donations=((gave, "whole_blood"),))
    body = {
        "organisation_id": str(cast.org.id),
        "starts_at": iso(slot_starts(DAY)[3]),
        "donation_type": "whole_blood",
    }
    refused = client.post(f"{B}/donation-appointments", json=body, headers=headers)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["next_eligible_date"] == (gave + timedelta(days=56)).isoformat()
    assert "56 days" in problem["detail"]
    assert problem["reasons"]
    plasma = client.post(
        f"{B}/donation-appointments", json={**body, "donation_type": "plasma"}, headers=headers
    )
    assert plasma.status_code == 201, plasma.text  # 28 days after whole blood


def test_staff_book_for_their_donor_at_their_site_only(
    client: TestClient, cast: Any, sign_in: Any, make: Any
) -> None:
    staff = sign_in(cast["bloodbank_staff"])
    ours, theirs = make_donor(organisation=cast.org), make_donor(organisation=make.org())
    body = {
        "donor_id": str(ours.id),
        "organisation_id": str(cast.org.id),
        "starts_at": iso(slot_starts(DAY)[5]),
    }
    assert client.post(f"{B}/donation-appointments", json=body, headers=staff).status_code == 201
    assert (
        client.post(
            f"{B}/donation-appointments", json={**body, "donor_id": str(theirs.id)}, headers=staff
        ).status_code
        == 404
    )
    other_site = make.org(kind="blood_bank")
    elsewhere = client.post(
        f"{B}/donation-appointments", json={**body, "organisation_id": str(other_site.id)}, headers=staff
    )
    assert elsewhere.status_code == 422
    day = client.get(f"{B}/donation-appointments", params={"on": DAY.isoformat()}, headers=staff).json()
    assert [a["donor_id"] for a in day] == [str(ours.id)]


def test_race_for_the_last_chair_has_exactly_one_winner(app: Any, cast: Any, make: Any) -> None:
    set_chairs(cast.org, 2)
    at = slot_starts(DAY)[8]
    book_row(cast.org, make_donor(), at, 1)
    racers = 8
    with TestClient(app) as client:
        headers = [donor_account(make, client)[1] for _ in range(racers)]
    body = {"organisation_id": str(cast.org.id), "starts_at": iso(at), "donation_type": "whole_blood"}

    async def race() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caresync.test") as client:
            calls = [client.post(f"{B}/donation-appointments", json=body, headers=h) for h in headers]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = run_coroutine(race())
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == racers - 1, statuses
    with transaction(session_factory()) as s:
        held = (
            s.execute(
                select(DonationAppointment.chair).where(
                    DonationAppointment.starts_at == at, DonationAppointment.status == "booked"
                )
            )
            .scalars()
            .all()
        )
        assert sorted(held) == [1, 2]


def test_cancel_and_no_show(client: TestClient, cast: Any, sign_in: Any, make: Any) -> None:
    donor, headers = donor_account(make, client, org=cast.org)
    staff = sign_in(cast["bloodbank_staff"])
    body = {"organisation_id": str(cast.org.id), "starts_at": iso(slot_starts(DAY)[2])}
    first = client.post(f"{B}/donation-appointments", json=body, headers=headers).json()
    early = client.post(f"{B}/donation-appointments/{first['id']}/no-show", headers=staff)
    assert early.status_code == 409
    assert "not started" in early.json()["detail"]
    cancelled = client.post(f"{B}/donation-appointments/{first['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"{B}/donation-appointments/{first['id']}/cancel", headers=headers).status_code == 409
    past = book_row(cast.org, donor, slot_starts(local_day(utcnow()) - timedelta(days=1))[0])
    assert (
        client.post(f"{B}/donation-appointments/{past.id}/cancel", headers=headers).status_code == 409
    )  # started
    marked = client.post(f"{B}/donation-appointments/{past.id}/no-show", headers=staff)
    assert marked.status_code == 200
    assert marked.json()["status"] == "no_show"
    stranger_headers = donor_account(make, client)[1]
    assert (
        client.post(f"{B}/donation-appointments/{first['id']}/cancel", headers=stranger_headers).status_code
        == 404
    )


def test_reminders_are_sent_once_24_hours_before(cast: Any, make: Any) -> None:
    now = utcnow()
    person = make.donor()
    soon_donor = make_donor(user_id=person.id, email=person.email)
    soon = book_row(cast.org, soon_donor, now + timedelta(hours=20))
    book_row(cast.org, make_donor(), now + timedelta(hours=30))  # not yet due
    book_row(cast.org, make_donor(), now + timedelta(hours=5), status="cancelled")
    counts: list[int] = []

    def worker() -> None:
        with transaction(session_factory()) as s:
            counts.append(service.send_reminders(s, now))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 1
    with transaction(session_factory()) as s:
        assert service.send_reminders(s, now + timedelta(minutes=15)) == 0
        assert s.get(DonationAppointment, soon.id).reminder_sent_at is not None
        titles = (
            s.execute(select(Notification.title).where(Notification.user_id == person.id)).scalars().all()
        )
        assert titles == ["Reminder: you give blood tomorrow"]


def test_the_periodic_job_sends_the_due_reminders(cast: Any, make: Any) -> None:
    person = make.donor()
    due = book_row(cast.org, make_donor(user_id=person.id), utcnow() + timedelta(hours=2))
    assert donation_reminders.call_local() == {"reminded": 1}
    assert donation_reminders.call_local() == {"reminded": 0}
    with transaction(session_factory()) as s:
        assert s.get(DonationAppointment, due.id).reminder_sent_at is not None
