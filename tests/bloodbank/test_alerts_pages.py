"""The alert and call-out pages: staff see alerts and call donors from a shortage, follow the call-out and
close it; a donor sees the call and answers it by booking a time (or declines)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.alerts import callouts, service
from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.models import BloodBankPolicy, CalloutContact, DonationAppointment, DonorCallout
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_donor
from tests.bloodbank.test_callouts import principal_of
from tests.conftest import Factory, Person, web_login


@pytest.fixture
def bank(make: Factory) -> Organisation:
    org = make.org(kind="blood_bank", latitude=38.72, longitude=-9.14)
    with transaction(session_factory()) as s:
        s.add(BloodBankPolicy(organisation_id=org.id, baseline_daily_use={"O-:red_cells": 2.0}))
    return org


@pytest.fixture
def staff(make: Factory, bank: Organisation) -> Person:
    return make.staff("bloodbank_staff", bank)


@pytest.fixture
def donor_person(make: Factory) -> Person:
    person = make.donor()
    make_donor(blood_group="O-", user_id=person.id, given_name="Olga", family_name="Negativa", sex="F")
    return person


def shortage(bank: Organisation) -> None:
    """O- red cells empty (with a known daily use): a critical low-stock alert."""
    with transaction(session_factory()) as s:
        service.scan(s, bank.id, utcnow())


def test_staff_page_empty_states(client: TestClient, staff: Person, make: Factory) -> None:
    quiet = make.staff("bloodbank_staff", make.org(kind="blood_bank"))
    web_login(client, quiet)
    page = client.get("/bloodbank/alerts")
    assert page.status_code == 200
    assert "No open alerts" in page.text
    assert "No call-outs yet" in page.text


def test_a_shortage_is_called_out_followed_and_closed(
    client: TestClient, staff: Person, bank: Organisation, donor_person: Person
) -> None:
    shortage(bank)
    csrf = web_login(client, staff)
    page = client.get("/bloodbank/alerts")
    assert 'data-testid="alert" data-kind="low_stock" data-subject="O-:red_cells"' in page.text
    assert 'data-severity="critical"' in page.text
    alert_id = re.search(r'name="alert_id" value="([0-9a-f-]+)"', page.text)
    assert alert_id is not None
    created = client.post(
        "/bloodbank/callouts",
        data={"alert_id": alert_id.group(1), "donors_needed": "3", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert location.startswith("/bloodbank/callouts/")
    detail = client.get(location)
    assert "the first wave of donors has been contacted" in detail.text
    assert "Olga Negativa" in detail.text
    assert '<span data-testid="contacted">1</span>' in detail.text
    assert '<span data-testid="needed">3</span>' in detail.text
    # the alert now shows the call in progress instead of the button
    assert 'data-testid="calling"' in client.get("/bloodbank/alerts").text

    callout_id = location.split("/")[-1].split("?")[0]
    waved = client.post(
        f"/bloodbank/callouts/{callout_id}/waves", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert waved.headers["location"].endswith("done=no_donors")
    closed = client.post(
        f"/bloodbank/callouts/{callout_id}/close", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert closed.status_code == 303
    after = client.get(closed.headers["location"])
    assert 'data-status="closed"' in after.text
    assert 'data-testid="send-wave"' not in after.text
    again = client.post(f"/bloodbank/callouts/{callout_id}/close", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "already closed" in again.text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"needed_group": "O-", "donors_needed": "many"}, "Enter a whole number."),
        ({"needed_group": "", "donors_needed": "3"}, "Say which blood is needed"),
        ({"needed_group": "O-", "donors_needed": "0"}, "between 1 and 500"),
    ],
    ids=["not-a-number", "no-group", "zero"],
)
def test_a_refused_callout_form_shows_why(
    client: TestClient, staff: Person, form: dict[str, str], message: str
) -> None:
    csrf = web_login(client, staff)
    page = client.post("/bloodbank/callouts", data={**form, "csrf_token": csrf})
    assert page.status_code == 422
    assert message in page.text
    with transaction(session_factory()) as s:
        assert s.scalars(select(DonorCallout)).all() == []


def _call(staff: Person, donors_needed: int = 1) -> uuid.UUID:
    with transaction(session_factory()) as s:
        return callouts.create_callout(
            s,
            principal_of(staff),
            donors_needed=donors_needed,
            now=utcnow(),
            needed_group="O-",
            reason="Road accident nearby.",
        ).id


def test_a_donor_answers_a_call_by_booking(client: TestClient, staff: Person, donor_person: Person) -> None:
    callout_id = _call(staff)
    csrf = web_login(client, donor_person)
    page = client.get("/donor/callouts")
    assert "Road accident nearby." in page.text
    times = re.findall(r'<option value="([^"]+)">', page.text)
    assert times, "free times are offered"
    at = times[0]
    answered = client.post(
        f"/donor/callouts/{callout_id}/reply",
        data={"answer": "accept", "starts_at": at, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"] == "/donor/callouts?done=accepted"
    with transaction(session_factory()) as s:
        contact = s.scalar(select(CalloutContact).where(CalloutContact.callout_id == callout_id))
        assert contact is not None
        assert contact.response == "accepted"
        appointment = s.get(DonationAppointment, contact.appointment_id)
        assert appointment is not None
        assert appointment.starts_at.isoformat() == at
    # one donor was needed: the call closed, so it leaves the donor's list
    assert "No calls right now" in client.get("/donor/callouts").text


def test_a_donor_declines_and_a_bad_time_is_explained(
    client: TestClient, staff: Person, donor_person: Person
) -> None:
    callout_id = _call(staff, donors_needed=2)
    csrf = web_login(client, donor_person)
    past = slot_starts(local_day(utcnow()))[0].replace(year=2020)
    refused = client.post(
        f"/donor/callouts/{callout_id}/reply",
        data={"answer": "accept", "starts_at": past.isoformat(), "csrf_token": csrf},
    )
    assert refused.status_code == 422
    assert 'data-testid="reply-error"' in refused.text
    garbled = client.post(
        f"/donor/callouts/{callout_id}/reply",
        data={"answer": "accept", "starts_at": "soon", "csrf_token": csrf},
    )
    assert garbled.status_code == 422
    assert "Choose one of the times offered." in garbled.text
    declined = client.post(
        f"/donor/callouts/{callout_id}/reply",
        data={"answer": "decline", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert declined.headers["location"] == "/donor/callouts?done=declined"
    page = client.get(declined.headers["location"])
    assert 'data-testid="declined"' in page.text
    assert 'data-testid="accept-form"' in page.text  # they may still change their mind


def test_a_donor_without_calls_sees_an_empty_state(client: TestClient, donor_person: Person) -> None:
    web_login(client, donor_person)
    page = client.get("/donor/callouts")
    assert page.status_code == 200
    assert "No calls right now" in page.text


def test_pages_answer_the_expected_people_only(
    client: TestClient, staff: Person, donor_person: Person
) -> None:
    web_login(client, donor_person)
    assert client.get("/bloodbank/alerts").status_code == 403
    fresh: Any = TestClient(client.app)
    web_login(fresh, staff)
    assert fresh.get("/donor/callouts").status_code == 403


def test_calling_twice_for_one_alert_is_explained(
    client: TestClient, staff: Person, bank: Organisation
) -> None:
    shortage(bank)
    csrf = web_login(client, staff)
    alert_id = re.search(r'name="alert_id" value="([0-9a-f-]+)"', client.get("/bloodbank/alerts").text)
    assert alert_id is not None
    form = {"alert_id": alert_id.group(1), "donors_needed": "2", "csrf_token": csrf}
    assert client.post("/bloodbank/callouts", data=form, follow_redirects=False).status_code == 303
    again = client.post("/bloodbank/callouts", data=form)
    assert again.status_code == 409
    assert 'data-testid="form-error"' in again.text
    assert "already being called" in again.text
