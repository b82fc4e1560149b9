"""The scheduling pages, server-side: find a doctor (filters, insurance pre-filled from the patient's
profile), book through the confirm form, see and cancel it; the clinic day; working hours and leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import web_login
from tests.scheduling.test_booking import MONDAY, at, iso

from caresync.scheduling.models import Appointment, Schedule, TimeOff


def test_patient_finds_books_and_cancels_through_the_pages(
    client: TestClient, sched: Any, make: Any, tx: Any
) -> None:
    location = sched.location()
    cardiologist = sched.practitioner(
        specialties=("cardiology",), insurance=("medis",), full_name="Dr Ines Heart"
    )
    sched.hours(cardiologist, location)
    dermatologist = sched.practitioner(
        specialties=("dermatology",), insurance=("medis",), full_name="Dr Rui Skin"
    )
    sched.hours(dermatologist, location)
    other_plan = sched.practitioner(specialties=("cardiology",), insurance=("sns",), full_name="Dr Otto Plan")
    sched.hours(other_plan, location)
    patient = make.patient_user(insurance_provider="Medis")
    client.follow_redirects = False
    csrf = web_login(client, patient)

    page = client.get("/doctors", params={"specialty": "cardiology"})
    assert page.status_code == 200
    assert 'value="medis" selected' in page.text  # insurance pre-filled from the profile
    assert "Dr Ines Heart" in page.text
    assert "Dr Rui Skin" not in page.text
    assert "Dr Otto Plan" not in page.text
    fragment = client.get("/doctors", params={"q": "skin", "insurance": ""}, headers={"HX-Request": "true"})
    assert "Dr Rui Skin" in fragment.text
    assert "<html" not in fragment.text

    slots = client.get(f"/doctors/{cardiologist.id}", params={"start": str(MONDAY)})
    assert slots.status_code == 200
    start = iso(at(MONDAY, 9, 30))
    assert start.replace("Z", "+00:00").replace(":", "%3A").replace("+", "%2B") in slots.text
    confirm = client.get(f"/doctors/{cardiologist.id}/book", params={"start": start})
    assert "Book appointment" in confirm.text
    booked = client.post(
        f"/doctors/{cardiologist.id}/book",
        data={"start": start, "mode": "in-person", "reason": "Check-up", "csrf_token": csrf},
    )
    assert booked.status_code == 303, booked.text
    appointment_url = booked.headers["location"].split("?")[0]
    shown = client.get(booked.headers["location"])
    assert "Your appointment is booked" in shown.text
    assert "/ics" in shown.text

    listing = client.get("/appointments")
    assert appointment_url in listing.text
    # a second patient trying the same slot is told it is gone, on the confirm page
    rival = make.patient_user()
    rival_csrf = web_login(client, rival)
    taken = client.post(f"/doctors/{cardiologist.id}/book", data={"start": start, "csrf_token": rival_csrf})
    assert taken.status_code == 409
    assert "no longer free" in taken.text

    web_login(client, patient)
    cancelled = client.post(f"{appointment_url}/cancel", data={"csrf_token": csrf, "reason": "x"})
    assert cancelled.status_code == 403  # the CSRF token of the earlier session is no longer valid
    csrf = web_login(client, patient)
    cancelled = client.post(f"{appointment_url}/cancel", data={"csrf_token": csrf, "reason": "x"})
    assert cancelled.status_code == 303
    with tx() as s:
        row = s.execute(select(Appointment).where(Appointment.patient_id == patient.patient_id)).scalar_one()
        assert row.status == "cancelled"


def test_clinic_day_lists_the_doctors_appointments(client: TestClient, sched: Any, make: Any) -> None:
    location = sched.location()
    doctor = sched.practitioner()
    sched.hours(doctor, location)
    patient = make.patient(family_name="Dayviewpatient")
    sched.appointment(doctor, patient, at(MONDAY, 10), location=location)
    web_login(client, doctor.person)
    page = client.get("/schedule/day", params={"on": str(MONDAY)})
    assert page.status_code == 200
    assert "Dayviewpatient" in page.text
    empty = client.get("/schedule/day", params={"on": str(MONDAY + timedelta(days=1))})
    assert "No appointments this day" in empty.text


def test_admin_sets_working_hours_and_leave(client: TestClient, sched: Any, make: Any, tx: Any) -> None:
    location = sched.location()
    doctor = sched.practitioner(full_name="Dr Hours")
    admin = make.staff("admin", doctor.person.organisation)
    client.follow_redirects = False
    csrf = web_login(client, admin)
    overview = client.get("/admin/schedules")
    assert "Dr Hours" in overview.text
    assert "not bookable" in overview.text
    form = {
        "csrf_token": csrf,
        "location_id": str(location.id),
        "on_0": "1",
        "start_0": "08:00",
        "end_0": "12:00",
        "slot_0": "20",
        "break_start_0": "10:00",
        "break_end_0": "10:20",
    }
    saved = client.post(f"/admin/schedules/{doctor.id}", data=form)
    assert saved.status_code == 303, saved.text
    bad = client.post(f"/admin/schedules/{doctor.id}", data={**form, "end_0": "07:00"})
    assert bad.status_code == 422
    assert "Monday: the end must follow the start" in bad.text
    leave = client.post(
        f"/admin/schedules/{doctor.id}/time-off",
        data={
            "csrf_token": csrf,
            "from": str(MONDAY),
            "until": str(MONDAY),
            "kind": "leave",
            "reason": "Congress",
        },
    )
    assert leave.status_code == 303
    with tx() as s:
        rows = s.execute(select(Schedule).where(Schedule.practitioner_id == doctor.id)).scalars().all()
        assert [(r.weekday, r.start_time.isoformat(), r.slot_minutes, r.breaks) for r in rows] == [
            (0, "08:00:00", 20, '[["10:00", "10:20"]]')
        ]
        time_off = s.execute(select(TimeOff).where(TimeOff.practitioner_id == doctor.id)).scalar_one()
    page = client.get(f"/admin/schedules/{doctor.id}")
    assert "Congress" in page.text
    removed = client.post(f"/admin/time-off/{time_off.id}/delete", data={"csrf_token": csrf})
    assert removed.status_code == 303
    patient = make.patient_user()
    web_login(client, patient)
    assert client.get("/admin/schedules").status_code == 403
    refused = client.get(f"/admin/schedules/{doctor.id}")
    assert refused.status_code == 403
    assert "Dr Hours" not in refused.text


def test_patient_joins_the_waitlist_from_the_doctors_page(client: TestClient, sched: Any, make: Any) -> None:
    location = sched.location()
    doctor = sched.practitioner(full_name="Dr Waitlist")
    sched.hours(doctor, location)
    patient = make.patient_user()
    client.follow_redirects = False
    csrf = web_login(client, patient)
    page = client.get(f"/doctors/{doctor.id}")
    assert "Join the waitlist" in page.text
    bad = client.post(
        f"/doctors/{doctor.id}/waitlist", data={"csrf_token": csrf, "earliest": str(MONDAY), "latest": "soon"}
    )
    assert bad.status_code == 422
    assert "Enter the first and last day" in bad.text
    backwards = client.post(
        f"/doctors/{doctor.id}/waitlist",
        data={"csrf_token": csrf, "earliest": str(MONDAY), "latest": str(MONDAY - timedelta(days=1))},
    )
    assert backwards.status_code == 422
    assert "must not be before" in backwards.text
    joined = client.post(
        f"/doctors/{doctor.id}/waitlist",
        data={"csrf_token": csrf, "earliest": str(MONDAY), "latest": str(MONDAY + timedelta(days=7))},
    )
    assert joined.status_code == 303
    listing = client.get(joined.headers["location"])
    assert "You are on the waitlist" in listing.text
    assert "Dr Waitlist" in listing.text


def test_missed_appointment_rate_per_practitioner(
    client: TestClient, sched: Any, make: Any, sign_in: Any
) -> None:
    location = sched.location()
    doctor = sched.practitioner(full_name="Dr Missed")
    sched.hours(doctor, location)
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    for i, status in enumerate(("fulfilled", "fulfilled", "fulfilled", "noshow", "cancelled")):
        sched.appointment(doctor, make.patient(), past + timedelta(hours=i), status=status)
    admin = make.staff("admin", doctor.person.organisation)
    stats = client.get("/api/v1/scheduling/stats/missed", params={"days": 7}, headers=sign_in(admin))
    assert stats.status_code == 200, stats.text
    assert stats.json()["overall"] == {"noshow": 1, "fulfilled": 3, "total": 4, "rate": 0.25}
    assert stats.json()["practitioners"][str(doctor.id)]["rate"] == 0.25
    web_login(client, admin)
    page = client.get("/admin/schedules")
    assert "25% " in page.text
    assert "(1 of 4)" in page.text
