"""Booking, rescheduling, cancelling, visit progress and the waitlist, over the API; the database constraint
against double booking; and the race: many concurrent requests for one slot, exactly one wins."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from tests.conftest import API, login, run_coroutine

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction
from caresync.identity.models import CareRelationship
from caresync.scheduling.models import Appointment
from caresync.scheduling.rules import HOLDS_SLOT

S = f"{API}/scheduling"


def next_weekday(weekday: int, weeks_ahead: int = 1) -> date:
    """A date ``weeks_ahead`` weeks from now falling on ``weekday`` (0 = Monday)."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=(weekday - today.weekday()) % 7 + 7 * weeks_ahead)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """``day`` at a London wall-clock time, as UTC (the test clinic is in London)."""
    from zoneinfo import ZoneInfo

    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo("Europe/London")).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def clinic(sched: Any) -> Any:
    """A cardiologist working Monday to Friday 9-17 (30-minute slots, lunch 12-13) at one London clinic."""
    location = sched.location()
    doctor = sched.practitioner(specialties=("cardiology",), insurance=("sns", "medis"))
    sched.hours(doctor, location)
    return doctor


MONDAY = next_weekday(0)


def book(
    client: TestClient, headers: dict[str, str], doctor: Any, start: datetime, **extra: Any
) -> httpx.Response:
    body = {"practitioner_id": str(doctor.id), "start": iso(start), **extra}
    return client.post(f"{S}/appointments", json=body, headers=headers)


def holding(doctor: Any) -> list[Appointment]:
    with transaction(session_factory()) as s:
        return list(
            s.execute(
                select(Appointment).where(
                    Appointment.practitioner_id == doctor.id,
                    Appointment.status.in_([x.value for x in HOLDS_SLOT]),
                )
            ).scalars()
        )


def test_a_patient_books_a_free_slot(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, tx: Any
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    response = book(client, headers, clinic, at(MONDAY, 9, 30), reason="Palpitations")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "booked"
    assert body["start"].startswith(iso(at(MONDAY, 9, 30))[:16])
    assert body["practitioner"]["id"] == str(clinic.id)
    assert body["patient_id"] == str(patient.patient_id)
    # the slot is gone from the practitioner's free slots
    slots = client.get(
        f"{S}/practitioners/{clinic.id}/slots",
        params={"start": str(MONDAY), "end": str(MONDAY)},
        headers=headers,
    )
    starts = [s["start"][:16] for s in slots.json()]
    assert iso(at(MONDAY, 9, 30))[:16] not in starts
    assert iso(at(MONDAY, 9))[:16] in starts
    with tx() as s:
        # the booking put the doctor on the patient's care team, audited the booking and told the patient
        care = s.execute(
            select(CareRelationship).where(CareRelationship.patient_id == patient.patient_id)
        ).scalar_one()
        assert care.practitioner_id == clinic.person.id
        assert (
            s.execute(
                select(func.count()).where(
                    AuditEntry.action == "appointment.book", AuditEntry.patient_id == patient.patient_id
                )
            ).scalar_one()
            == 1
        )
        titles = (
            s.execute(select(Notification.title).where(Notification.user_id == patient.id)).scalars().all()
        )
        assert "Appointment booked" in titles


@pytest.mark.parametrize(
    ("start", "status", "message"),
    [
        (lambda: at(MONDAY, 9, 10), 409, "no longer free"),  # not a slot boundary
        (lambda: at(MONDAY, 12, 30), 409, "no longer free"),  # lunch break
        (lambda: at(MONDAY + timedelta(days=5), 10), 409, "no longer free"),  # Saturday
        (lambda: at(datetime.now(UTC).date() - timedelta(days=7), 10), 422, "past"),
    ],
)
def test_times_that_are_not_free_slots_are_refused(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, start: Any, status: int, message: str
) -> None:
    response = book(client, sign_in(make.patient_user()), clinic, start())
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert holding(clinic) == []


def test_validation_errors_are_clear(client: TestClient, clinic: Any, make: Any, sign_in: Any) -> None:
    headers = sign_in(make.patient_user())
    naive = client.post(
        f"{S}/appointments",
        json={"practitioner_id": str(clinic.id), "start": "2030-01-07T09:00:00"},
        headers=headers,
    )
    assert naive.status_code == 422
    assert "time zone" in naive.text
    video = book(client, headers, clinic, at(MONDAY, 10), mode="video")
    assert video.status_code == 422
    assert "does not offer video" in video.json()["detail"]


def test_a_taken_slot_and_leave_are_refused(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, sched: Any
) -> None:
    first, second = sign_in(make.patient_user()), sign_in(make.patient_user())
    assert book(client, first, clinic, at(MONDAY, 10)).status_code == 201
    taken = book(client, second, clinic, at(MONDAY, 10))
    assert taken.status_code == 409
    sched.time_off(clinic, at(MONDAY + timedelta(days=1), 0), at(MONDAY + timedelta(days=2), 0))
    on_leave = book(client, second, clinic, at(MONDAY + timedelta(days=1), 10))
    assert on_leave.status_code == 409
    assert len(holding(clinic)) == 1


def test_a_patient_cannot_be_in_two_places_at_once(
    client: TestClient, sched: Any, make: Any, sign_in: Any
) -> None:
    location = sched.location()
    first, second = sched.practitioner(), sched.practitioner()
    sched.hours(first, location)
    sched.hours(second, location)
    headers = sign_in(make.patient_user())
    assert book(client, headers, first, at(MONDAY, 11)).status_code == 201
    clash = book(client, headers, second, at(MONDAY, 11))
    assert clash.status_code == 409
    assert "already have an appointment" in clash.json()["detail"]


def test_the_database_refuses_a_double_booking_whatever_the_code_does(
    sched: Any, clinic: Any, make: Any
) -> None:
    start = at(MONDAY, 14)
    sched.appointment(clinic, make.patient(), start)
    with pytest.raises(IntegrityError):
        sched.appointment(clinic, make.patient(), start)
    # a cancelled appointment holds nothing: the slot can be booked again
    sched.appointment(clinic, make.patient(), start + timedelta(hours=1), status="cancelled")
    sched.appointment(clinic, make.patient(), start + timedelta(hours=1))


def test_sixty_concurrent_requests_for_one_slot_exactly_one_wins(app: Any, clinic: Any, make: Any) -> None:
    racers = 60
    patients = [make.patient_user() for _ in range(racers)]
    with TestClient(app) as client:
        tokens = [login(client, p.email, p.password) for p in patients]
    start = iso(at(MONDAY, 15))

    async def race() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caresync.test") as client:
            body = {"practitioner_id": str(clinic.id), "start": start}
            calls = [client.post(f"{S}/appointments", json=body, headers=headers) for headers in tokens]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = run_coroutine(race())
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == racers - 1, statuses
    booked = holding(clinic)
    assert len(booked) == 1
    assert iso(booked[0].start_at) == start


def test_reschedule_moves_the_appointment_atomically(
    client: TestClient, clinic: Any, make: Any, sign_in: Any
) -> None:
    patient, other = sign_in(make.patient_user()), sign_in(make.patient_user())
    original = book(client, patient, clinic, at(MONDAY, 9)).json()
    assert book(client, other, clinic, at(MONDAY, 11)).status_code == 201
    refused = client.post(
        f"{S}/appointments/{original['id']}/reschedule", json={"start": iso(at(MONDAY, 11))}, headers=patient
    )
    assert refused.status_code == 409
    assert client.get(f"{S}/appointments/{original['id']}", headers=patient).json()["status"] == "booked"
    moved = client.post(
        f"{S}/appointments/{original['id']}/reschedule", json={"start": iso(at(MONDAY, 16))}, headers=patient
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["rescheduled_from_id"] == original["id"]
    assert client.get(f"{S}/appointments/{original['id']}", headers=patient).json()["status"] == "cancelled"
    mine = client.get(f"{S}/appointments", params={"status": "booked"}, headers=patient).json()["items"]
    assert [a["id"] for a in mine] == [moved.json()["id"]]


def test_cancellation_policy_patient_needs_notice_staff_does_not(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, sched: Any
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    soon = datetime.now(UTC) + timedelta(hours=3)
    appointment = sched.appointment(clinic, patient, soon.replace(microsecond=0))
    refused = client.post(f"{S}/appointments/{appointment.id}/cancel", json={}, headers=headers)
    assert refused.status_code == 409
    assert "24 hours" in refused.json()["detail"]
    nurse = make.staff("nurse", clinic.person.organisation)
    by_staff = client.post(
        f"{S}/appointments/{appointment.id}/cancel", json={"reason": "Doctor ill"}, headers=sign_in(nurse)
    )
    assert by_staff.status_code == 200, by_staff.text
    assert by_staff.json()["status"] == "cancelled"
    later = book(client, headers, clinic, at(MONDAY + timedelta(days=7), 10)).json()
    cancelled = client.post(
        f"{S}/appointments/{later['id']}/cancel", json={"reason": "Feeling better"}, headers=headers
    )
    assert cancelled.status_code == 200
    again = client.post(f"{S}/appointments/{later['id']}/cancel", json={}, headers=headers)
    assert again.status_code == 409


def test_a_freed_slot_is_offered_to_the_first_waitlisted_patient(
    client: TestClient, clinic: Any, make: Any, sign_in: Any
) -> None:
    holder, first, second = (make.patient_user() for _ in range(3))
    holder_h, first_h, second_h = sign_in(holder), sign_in(first), sign_in(second)
    booked = book(client, holder_h, clinic, at(MONDAY, 10)).json()
    window = {
        "practitioner_id": str(clinic.id),
        "earliest": str(MONDAY),
        "latest": str(MONDAY + timedelta(days=3)),
    }
    assert client.post(f"{S}/waitlist", json=window, headers=first_h).status_code == 201
    assert client.post(f"{S}/waitlist", json=window, headers=second_h).status_code == 201
    assert client.post(f"{S}/waitlist", json=window, headers=second_h).status_code == 409  # once is enough
    assert (
        client.post(f"{S}/appointments/{booked['id']}/cancel", json={}, headers=holder_h).status_code == 200
    )
    offers = client.get(f"{S}/appointments", params={"status": "proposed"}, headers=first_h).json()["items"]
    assert len(offers) == 1
    assert offers[0]["start"] == booked["start"]
    assert (
        client.get(f"{S}/appointments", params={"status": "proposed"}, headers=second_h).json()["items"] == []
    )
    # the offer holds the slot: nobody else can take it meanwhile
    assert book(client, second_h, clinic, at(MONDAY, 10)).status_code == 409
    # the first declines (cancels the offer): it passes to the second, who accepts
    assert (
        client.post(f"{S}/appointments/{offers[0]['id']}/cancel", json={}, headers=first_h).status_code == 200
    )
    passed = client.get(f"{S}/appointments", params={"status": "proposed"}, headers=second_h).json()["items"]
    assert len(passed) == 1
    accepted = client.post(f"{S}/appointments/{passed[0]['id']}/accept", headers=second_h)
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "booked"
    assert [e["status"] for e in client.get(f"{S}/waitlist", headers=second_h).json()] == []


def test_visit_progress_follows_the_fhir_states(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, sched: Any
) -> None:
    patient = make.patient_user()
    nurse = sign_in(make.staff("nurse", clinic.person.organisation))
    future = sched.appointment(clinic, patient, at(MONDAY, 9))
    early_no_show = client.post(f"{S}/appointments/{future.id}/no-show", headers=nurse)
    assert early_no_show.status_code == 409
    assert client.post(f"{S}/appointments/{future.id}/fulfil", headers=nurse).status_code == 409
    assert client.post(f"{S}/appointments/{future.id}/arrive", headers=nurse).json()["status"] == "arrived"
    assert (
        client.post(f"{S}/appointments/{future.id}/check-in", headers=nurse).json()["status"] == "checked-in"
    )
    assert client.post(f"{S}/appointments/{future.id}/fulfil", headers=nurse).json()["status"] == "fulfilled"
    assert client.post(f"{S}/appointments/{future.id}/cancel", json={}, headers=nurse).status_code == 409
    past = sched.appointment(clinic, patient, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    assert client.post(f"{S}/appointments/{past.id}/no-show", headers=nurse).json()["status"] == "noshow"
    # a patient cannot mark their own visit
    assert client.post(f"{S}/appointments/{past.id}/fulfil", headers=sign_in(patient)).status_code == 403


def test_nobody_sees_another_patients_appointment(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, sched: Any, tx: Any
) -> None:
    owner, stranger = make.patient_user(), make.patient_user()
    appointment = sched.appointment(clinic, owner, at(MONDAY, 9))
    stranger_h = sign_in(stranger)
    for method, path in (
        ("get", f"{S}/appointments/{appointment.id}"),
        ("post", f"{S}/appointments/{appointment.id}/cancel"),
        ("post", f"{S}/appointments/{appointment.id}/reschedule"),
    ):
        response = client.request(
            method,
            path,
            headers=stranger_h,
            json={"start": iso(at(MONDAY, 10))} if "reschedule" in path else {},
        )
        assert response.status_code == 404, (path, response.text)
        assert owner.patient.family_name not in response.text
    assert client.get(f"{S}/appointments", headers=stranger_h).json()["items"] == []
    other_org_nurse = make.staff("nurse", make.org())
    assert (
        client.get(f"{S}/appointments/{appointment.id}", headers=sign_in(other_org_nurse)).status_code == 404
    )
    assert client.get(f"{S}/appointments/{appointment.id}").status_code == 401
    with tx() as s:
        denied = s.execute(
            select(func.count()).where(AuditEntry.actor_id == stranger.id, AuditEntry.outcome == "denied")
        ).scalar_one()
    assert denied >= 3
    donor = sign_in(make.donor())
    assert book(client, donor, clinic, at(MONDAY, 9, 30)).status_code == 403


def test_a_lapsed_offer_passes_to_the_next_patient_waiting(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, sched: Any, tx: Any
) -> None:
    from caresync.scheduling.jobs import pass_on_lapsed_offers

    holder, first, second = (make.patient_user() for _ in range(3))
    holder_h, first_h, second_h = sign_in(holder), sign_in(first), sign_in(second)
    booked = book(client, holder_h, clinic, at(MONDAY, 10)).json()
    window = {"practitioner_id": str(clinic.id), "earliest": str(MONDAY), "latest": str(MONDAY)}
    for headers in (first_h, second_h):
        assert client.post(f"{S}/waitlist", json=window, headers=headers).status_code == 201
    assert (
        client.post(f"{S}/appointments/{booked['id']}/cancel", json={}, headers=holder_h).status_code == 200
    )
    offer = client.get(f"{S}/appointments", params={"status": "proposed"}, headers=first_h).json()["items"][0]
    assert pass_on_lapsed_offers.call_local() == 0  # still within its hold time
    with tx() as s:  # the hold time runs out
        s.get(Appointment, uuid.UUID(offer["id"])).offer_expires_at = datetime.now(UTC) - timedelta(minutes=1)
    assert pass_on_lapsed_offers.call_local() == 1
    assert client.get(f"{S}/appointments/{offer['id']}", headers=first_h).json()["status"] == "cancelled"
    passed = client.get(f"{S}/appointments", params={"status": "proposed"}, headers=second_h).json()["items"]
    assert [p["start"] for p in passed] == [booked["start"]]
    late = client.post(f"{S}/appointments/{offer['id']}/accept", headers=first_h)
    assert late.status_code == 409


def test_the_organisations_policy_sets_notice_and_reminders(
    client: TestClient, clinic: Any, make: Any, sign_in: Any, sched: Any
) -> None:
    admin = sign_in(make.staff("admin", clinic.person.organisation))
    assert client.get(f"{S}/policy", headers=admin).json() == {
        "cancel_notice_hours": 24,
        "reminder_hours": [24, 2],
    }
    bad = client.put(f"{S}/policy", json={"cancel_notice_hours": 500, "reminder_hours": [2]}, headers=admin)
    assert bad.status_code == 422
    saved = client.put(
        f"{S}/policy", json={"cancel_notice_hours": 2, "reminder_hours": [1, 48, 1]}, headers=admin
    )
    assert saved.json() == {"cancel_notice_hours": 2, "reminder_hours": [48, 1]}
    patient = make.patient_user()
    soon = sched.appointment(clinic, patient, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3))
    cancelled = client.post(f"{S}/appointments/{soon.id}/cancel", json={}, headers=sign_in(patient))
    assert cancelled.status_code == 200, cancelled.text  # 3 h ahead is enough notice now
    from caresync.scheduling.models import ClinicSettings
    from caresync.scheduling.reminders import parse_reminder_hours

    with transaction(session_factory()) as s:
        row = s.get(ClinicSettings, clinic.person.user.organisation_id)
        assert parse_reminder_hours(row.reminder_hours) == (48, 1)  # what the reminder job reads
