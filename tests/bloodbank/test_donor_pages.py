"""The donor pages, clicked through as staff and as a donor would (forms posted with the CSRF token):
registering and finding a donor, deferring and lifting, booking for a donor, recording a donation (units
or deferral shown on the donor's page), the day's appointments; the donor completes their profile, sees
their next eligible dates, books a time and cancels it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.models import DonationAppointment, Donor, DonorDeferral
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor
from tests.conftest import web_login

TODAY = local_day(utcnow())
DAY = TODAY + timedelta(days=5)
HTML = {"Accept": "text/html"}


def browser(app: Any, person: Any) -> tuple[TestClient, str]:
    client = TestClient(app)
    return client, web_login(client, person)


def test_staff_register_find_defer_and_lift(app: Any, cast: Any) -> None:
    client, csrf = browser(app, cast["bloodbank_staff"])
    assert 'data-testid="register-donor"' in client.get("/bloodbank/donors").text
    form = {
        "csrf_token": csrf,
        "given_name": "Rui",
        "family_name": "Pereira",
        "birth_date": "1979-04-02",
        "sex": "M",
        "blood_group": "O+",
        "weight_kg": "81",
        "city": "Porto",
    }
    invalid = client.post("/bloodbank/donors/new", data={**form, "birth_date": ""}, headers=HTML)
    assert invalid.status_code == 422
    assert "is-invalid" in invalid.text
    created = client.post("/bloodbank/donors/new", data=form, follow_redirects=False)
    assert created.status_code == 303
    page = client.get(created.headers["location"])
    assert 'data-testid="registered"' in page.text
    assert "Pereira" in page.text
    donor_id = created.headers["location"].split("/")[3].split("?")[0]
    listed = client.get("/bloodbank/donors", params={"q": "pereira"})
    assert listed.text.count('data-testid="donor-row"') == 1
    empty = client.get("/bloodbank/donors", params={"q": "nobody-like-this"})
    assert "No donors found" in empty.text
    ends = (TODAY + timedelta(days=30)).isoformat()
    no_reason = client.post(
        f"/bloodbank/donors/{donor_id}/deferrals",
        data={"csrf_token": csrf, "kind": "temporary", "ends_on": ends},
    )
    assert no_reason.status_code == 422
    assert "is-invalid" in no_reason.text
    deferred = client.post(
        f"/bloodbank/donors/{donor_id}/deferrals",
        data={"csrf_token": csrf, "kind": "temporary", "reason": "Travel to a malaria area", "ends_on": ends},
    )
    assert deferred.status_code == 200
    assert "Travel to a malaria area" in deferred.text
    assert f'data-testid="next-whole_blood">{ends}' in deferred.text
    with transaction(session_factory()) as s:
        deferral = s.execute(
            select(DonorDeferral).where(DonorDeferral.reason == "Travel to a malaria area")
        ).scalar_one()
    lifted = client.post(
        f"/bloodbank/donors/{donor_id}/deferrals/{deferral.id}/lift", data={"csrf_token": csrf}
    )
    assert lifted.status_code == 200
    assert "lifted" in lifted.text
    paused = client.post(
        f"/bloodbank/donors/{donor_id}/availability",
        data={"csrf_token": csrf, "available": "yes", "unavailable_until": ends},
    )
    assert "Unavailable" in paused.text


def test_staff_book_record_and_see_the_day(app: Any, cast: Any) -> None:
    donor = make_donor(organisation=cast.org, blood_group="B+")
    client, csrf = browser(app, cast["bloodbank_staff"])
    times = client.get(
        f"/bloodbank/donors/{donor.id}", params={"book_date": DAY.isoformat(), "book_type": "plasma"}
    )
    assert 'data-testid="book-form"' in times.text
    at = slot_starts(DAY)[3]
    booked = client.post(
        f"/bloodbank/donors/{donor.id}/book",
        data={"csrf_token": csrf, "starts_at": at.isoformat(), "donation_type": "plasma"},
    )
    assert booked.status_code == 200
    assert 'data-testid="upcoming"' in booked.text
    day = client.get("/bloodbank/appointments", params={"on": DAY.isoformat()})
    assert day.text.count('data-testid="appointment"') == 1
    assert donor.family_name in day.text
    assert (
        "No donation appointments"
        in client.get("/bloodbank/appointments", params={"on": TODAY.isoformat()}).text
    )
    with transaction(session_factory()) as s:
        appointment = s.execute(
            select(DonationAppointment).where(DonationAppointment.donor_id == donor.id)
        ).scalar_one()
    form = client.get(
        "/bloodbank/donations/new", params={"donor": str(donor.id), "appointment": str(appointment.id)}
    )
    assert 'data-testid="donation-form"' in form.text
    screening = {
        "csrf_token": csrf,
        "donor_id": str(donor.id),
        "donation_type": "whole_blood",
        "weight_kg": "72",
        "temperature_c": "36.5",
        "systolic_mmhg": "118",
        "diastolic_mmhg": "76",
        "pulse_bpm": "66",
    }
    missing = client.post("/bloodbank/donations", data=screening, headers=HTML)
    assert missing.status_code == 422
    assert "hemoglobin_g_dl" in missing.text
    done = client.post("/bloodbank/donations", data={**screening, "hemoglobin_g_dl": "14.1"})
    assert done.status_code == 200
    assert 'data-testid="donation-completed"' in done.text
    assert done.text.count('data-testid="unit"') == 2
    other = make_donor(organisation=cast.org)
    deferred = client.post(
        "/bloodbank/donations", data={**screening, "donor_id": str(other.id), "hemoglobin_g_dl": "11.0"}
    )
    assert 'data-testid="donation-deferred"' in deferred.text
    assert "Haemoglobin 11" in deferred.text


def test_donor_completes_profile_books_and_cancels(app: Any, cast: Any) -> None:
    client, csrf = browser(app, cast["donor"])
    first = client.get("/donor")
    assert 'data-testid="profile-form"' in first.text
    assert client.get("/donor/book", follow_redirects=False).headers["location"] == "/donor"
    profile = {
        "csrf_token": csrf,
        "given_name": "Ana",
        "family_name": "Sousa",
        "birth_date": "1995-09-09",
        "sex": "F",
        "weight_kg": "58",
        "city": "Lisbon",
    }
    saved = client.post("/donor/profile", data=profile)
    assert saved.status_code == 200
    assert 'data-testid="donor-number"' in saved.text
    assert 'data-testid="eligibility"' in saved.text
    choose = client.get(
        "/donor/book",
        params={"organisation_id": str(cast.org.id), "donation_type": "whole_blood", "date": DAY.isoformat()},
    )
    assert choose.text.count('data-testid="slot"') == len(slot_starts(DAY))
    at = slot_starts(DAY)[1]
    booked = client.post(
        "/donor/book",
        data={
            "csrf_token": csrf,
            "organisation_id": str(cast.org.id),
            "donation_type": "whole_blood",
            "starts_at": at.isoformat(),
        },
    )
    assert 'data-testid="booked"' in booked.text
    assert 'data-testid="upcoming"' in booked.text
    with transaction(session_factory()) as s:
        donor = s.execute(select(Donor).where(Donor.user_id == cast["donor"].id)).scalar_one()
        appointment = s.execute(
            select(DonationAppointment).where(DonationAppointment.donor_id == donor.id)
        ).scalar_one()
    again = client.post(
        "/donor/book",
        data={
            "csrf_token": csrf,
            "organisation_id": str(cast.org.id),
            "donation_type": "whole_blood",
            "starts_at": slot_starts(DAY)[2].isoformat(),
        },
    )
    assert again.status_code == 409
    assert "already has a booked" in again.text
    cancelled = client.post(f"/donor/appointments/{appointment.id}/cancel", data={"csrf_token": csrf})
    assert 'data-testid="upcoming"' not in cancelled.text
    paused = client.post("/donor/availability", data={"csrf_token": csrf, "available": "no"})
    assert "Paused" in paused.text


def test_donor_sees_why_they_cannot_book_and_when(app: Any, cast: Any, make: Any) -> None:
    person = make.donor()
    make_donor(
        user_id=person.id, organisation=cast.org, donations=((TODAY - timedelta(days=10), "whole_blood"),)
    )
    client, _csrf = browser(app, person)
    page = client.get(
        "/donor/book",
        params={"organisation_id": str(cast.org.id), "donation_type": "whole_blood", "date": DAY.isoformat()},
    )
    assert 'data-testid="not-eligible"' in page.text
    assert (TODAY + timedelta(days=46)).isoformat() in page.text


def test_no_show_before_the_time_shows_the_reason_on_the_day(app: Any, cast: Any) -> None:
    donor = make_donor(organisation=cast.org)
    with transaction(session_factory()) as s:
        upcoming = DonationAppointment(
            donor_id=donor.id,
            organisation_id=cast.org.id,
            chair=1,
            starts_at=slot_starts(DAY)[4],
            donation_type="whole_blood",
        )
        s.add(upcoming)
    client, csrf = browser(app, cast["bloodbank_staff"])
    page = client.post(
        f"/bloodbank/appointments/{upcoming.id}/no-show", data={"csrf_token": csrf, "on": DAY.isoformat()}
    )
    assert page.status_code == 409
    assert 'data-testid="form-error"' in page.text
    assert "not started yet" in page.text
    cancelled = client.post(
        f"/bloodbank/appointments/{upcoming.id}/cancel", data={"csrf_token": csrf, "on": DAY.isoformat()}
    )
    assert cancelled.status_code == 200
    assert "cancelled" in cancelled.text
