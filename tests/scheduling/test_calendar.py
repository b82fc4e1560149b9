"""Calendar feeds and ``.ics`` downloads: the iCalendar output parsed back with ``icalendar``, who sees which
appointments, revocation, auditing, and the permission matrix of every calendar route."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import func, select, update
from tests.conftest import API, Cast, login
from tests.scheduling.conftest import Clinician, SchedulingFactory

from caresync.core.audit import AuditEntry
from caresync.db import utcnow
from caresync.identity.models import User
from caresync.scheduling.calendar import api as calendar_api
from caresync.scheduling.calendar.service import MAX_ACTIVE_FEEDS
from caresync.scheduling.models import Appointment, Practitioner

ANON = "anonymous"
FEEDS = f"{API}/scheduling/calendar-feeds"

# Every calendar route -> the status each role gets. The world: the cast (tests.conftest) where the doctor and
# the nurse each have a directory profile, and the cast patient has an appointment with the doctor. DELETE
# targets a feed of the caller's own (roles that may have none: any id); the appointment is that one; the
# feed is the cast patient's (its token is the credential: any caller, signed in or not, gets it).
_FEED_OWNERS = {"doctor", "nurse", "patient"}
_ROLES = ("admin", "doctor", "nurse", "patient", "donor", "bloodbank_staff", "pharmacist")
CALENDAR_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/scheduling/calendar-feeds"): {
        **{r: 201 if r in _FEED_OWNERS else 403 for r in _ROLES},
        ANON: 401,
    },
    ("GET", "/api/v1/scheduling/calendar-feeds"): {
        **{r: 200 if r in _FEED_OWNERS else 403 for r in _ROLES},
        ANON: 401,
    },
    ("DELETE", "/api/v1/scheduling/calendar-feeds/{feed_id}"): {
        **{r: 204 if r in _FEED_OWNERS else 403 for r in _ROLES},
        ANON: 401,
    },
    ("GET", "/api/v1/scheduling/appointments/{appointment_id}/ics"): {
        # the patient, the practitioner, and staff of the practitioner's organisation who manage appointments
        **{r: 200 if r in {"doctor", "nurse", "patient"} else 404 for r in _ROLES},
        ANON: 401,
    },
    ("GET", "/calendar/{token}.ics"): {**dict.fromkeys(_ROLES, 200), ANON: 200},
}

NOW = utcnow().replace(microsecond=0)
H = timedelta(hours=1)


def parse(body: bytes) -> Calendar:
    """Parse an iCalendar body (fails the test if it is not valid iCalendar)."""
    return Calendar.from_ical(body)


def events(calendar: Calendar) -> dict[str, Any]:
    """The calendar's events by UID."""
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def uid(appointment: Appointment) -> str:
    return f"{appointment.id}@caresync"


def feed_path(created: dict[str, Any]) -> str:
    """The app-relative path of a created feed's URL."""
    return urlsplit(created["url"]).path


def new_feed(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(FEEDS, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def audit_count(tx: Any, **where: Any) -> int:
    with tx() as s:
        query = select(func.count()).select_from(AuditEntry)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return int(s.execute(query).scalar_one())


def profile_for(tx: Any, person: Any, title: str = "") -> Practitioner:
    """A directory profile for a cast clinician."""
    with tx() as s:
        practitioner = Practitioner(
            user_id=person.id,
            organisation_id=person.user.organisation_id,
            display_name=person.full_name,
            title=title,
        )
        s.add(practitioner)
        s.flush()
        s.expunge(practitioner)
    return practitioner


# --- the permission matrix ----------------------------------------------------------------------------------


def test_calendar_routes_table_names_every_route() -> None:
    served = {
        (method, route.path)
        for router in (calendar_api.router, calendar_api.public_router)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert served == set(CALENDAR_ROUTES)


def test_calendar_permission_matrix(
    client: TestClient, cast: Cast, sched: SchedulingFactory, tx: Any
) -> None:
    doctor_profile = profile_for(tx, cast["doctor"], title="Dr")
    profile_for(tx, cast["nurse"])
    clinician = Clinician(person=cast["doctor"], practitioner=doctor_profile)
    appointment = sched.appointment(clinician, cast["patient"], NOW + 48 * H)
    patient_feed = new_feed(client, login(client, cast["patient"].email, cast["patient"].password))

    for role in (*_ROLES, ANON):
        person = cast[role] if role != ANON else None
        headers = login(client, person.email, person.password) if person else {}
        got: dict[tuple[str, str], int] = {}

        created = client.post(FEEDS, headers=headers)
        got["POST", "/api/v1/scheduling/calendar-feeds"] = created.status_code
        got["GET", "/api/v1/scheduling/calendar-feeds"] = client.get(FEEDS, headers=headers).status_code
        feed_id = created.json()["id"] if created.status_code == 201 else str(uuid.uuid4())
        deleted = client.delete(f"{FEEDS}/{feed_id}", headers=headers)
        got["DELETE", "/api/v1/scheduling/calendar-feeds/{feed_id}"] = deleted.status_code
        ics = client.get(f"{API}/scheduling/appointments/{appointment.id}/ics", headers=headers)
        got["GET", "/api/v1/scheduling/appointments/{appointment_id}/ics"] = ics.status_code
        feed = client.get(feed_path(patient_feed), headers=headers)
        got["GET", "/calendar/{token}.ics"] = feed.status_code

        assert got == {route: expected[role] for route, expected in CALENDAR_ROUTES.items()}, role
        if person is not None and role not in _FEED_OWNERS:  # every refusal is audited as the caller's
            assert audit_count(tx, actor_id=person.id, outcome="denied") >= 4, role
        if ics.status_code == 404:
            assert "Dr" not in ics.text  # nothing about the appointment leaks


# --- feeds: round trip --------------------------------------------------------------------------------------


def test_patient_feed_round_trip(
    client: TestClient, sign_in: Any, make: Any, sched: SchedulingFactory, settings_env: Any, tx: Any
) -> None:
    settings_env(base_url="https://care.example.org")
    location = sched.location(name="Harbour Clinic")
    doctor = sched.practitioner(full_name="Ada Quill")
    video_doctor = sched.practitioner(full_name="Bo Lind", video=True)
    patient = make.patient_user()
    other = make.patient_user()
    booked = sched.appointment(doctor, patient, NOW + 48 * H, location=location, reason="Suspected melanoma")
    proposed = sched.appointment(doctor, patient, NOW + 72 * H, status="proposed", location=location)
    past = sched.appointment(doctor, patient, NOW - 10 * 24 * H, status="fulfilled", location=location)
    video = sched.appointment(video_doctor, patient, NOW + 5 * H, mode="video")
    left_out = [
        sched.appointment(doctor, patient, NOW + 96 * H, status="cancelled"),
        sched.appointment(doctor, patient, NOW + 97 * H, status="waitlist"),
        sched.appointment(doctor, patient, NOW - 40 * 24 * H, status="fulfilled"),  # older than 30 days
        sched.appointment(doctor, patient, NOW + 400 * 24 * H),  # more than a year ahead
        sched.appointment(doctor, other, NOW + 49 * H),  # someone else's
    ]

    created = new_feed(client, sign_in(patient))
    assert created["url"].startswith("https://care.example.org/calendar/")
    assert created["url"].endswith(".ics")
    assert created["webcal_url"] == "webcal://" + created["url"].removeprefix("https://")
    response = client.get(feed_path(created))  # no credentials but the URL
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert response.headers["cache-control"] == "no-store"
    assert b"\r\n" in response.content  # RFC 5545 line endings

    calendar = parse(response.content)
    assert calendar["VERSION"] == "2.0"
    assert str(calendar["PRODID"]) == "-//CareSync//Appointments//EN"
    assert calendar["CALSCALE"] == "GREGORIAN"
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["X-WR-CALNAME"] == "CareSync appointments"
    found = events(calendar)
    assert set(found) == {uid(booked), uid(proposed), uid(past), uid(video)}
    assert not {uid(a) for a in left_out} & set(found)

    event = found[uid(booked)]
    assert event["DTSTART"].dt == booked.start_at
    assert event["DTEND"].dt == booked.end_at
    assert event["DTSTART"].dt.utcoffset() == timedelta(0)
    assert f"DTSTART:{booked.start_at:%Y%m%dT%H%M%S}Z".encode() in response.content  # UTC form
    assert isinstance(event["DTSTAMP"].dt, datetime)
    assert event["SUMMARY"] == "Appointment with Dr Ada Quill"
    assert event["LOCATION"] == "Harbour Clinic, London"
    assert event["STATUS"] == "CONFIRMED"
    assert event["URL"] == f"https://care.example.org/appointments/{booked.id}"
    assert isinstance(event["SEQUENCE"], int)
    [alarm] = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm["TRIGGER"].dt == -H
    assert found[uid(proposed)]["STATUS"] == "TENTATIVE"
    assert found[uid(past)]["STATUS"] == "CONFIRMED"
    assert found[uid(video)]["SUMMARY"] == "Appointment with Dr Bo Lind (video)"
    assert found[uid(video)]["LOCATION"] == "Video consultation"
    assert b"melanoma" not in response.content.lower()  # never the reason for the visit


def test_sequence_grows_when_an_appointment_changes(
    client: TestClient, sign_in: Any, make: Any, sched: SchedulingFactory, tx: Any
) -> None:
    patient = make.patient_user()
    appointment = sched.appointment(sched.practitioner(), patient, NOW + 48 * H)
    created = new_feed(client, sign_in(patient))
    first = events(parse(client.get(feed_path(created)).content))[uid(appointment)]
    with tx() as s:
        s.execute(
            update(Appointment)
            .where(Appointment.id == appointment.id)
            .values(start_at=NOW + 50 * H, end_at=NOW + 51 * H, updated_at=appointment.updated_at + 90 * H)
        )
    second = events(parse(client.get(feed_path(created)).content))[uid(appointment)]
    assert second["SEQUENCE"] > first["SEQUENCE"]
    assert second["DTSTART"].dt == NOW + 50 * H


def test_practitioner_feed_shows_only_their_appointments_with_initials(
    client: TestClient, sign_in: Any, make: Any, sched: SchedulingFactory
) -> None:
    mine, theirs = sched.practitioner(full_name="Ada Quill"), sched.practitioner()
    patient = make.patient_user(given_name="Orla", family_name="Vantongeren")
    seen = sched.appointment(mine, patient, NOW + 24 * H)
    not_mine = sched.appointment(theirs, patient, NOW + 26 * H)

    created = new_feed(client, sign_in(mine.person))
    response = client.get(feed_path(created))
    assert response.status_code == 200
    calendar = parse(response.content)
    assert calendar["X-WR-CALNAME"] == "CareSync: Dr Ada Quill"
    found = events(calendar)
    assert set(found) == {uid(seen)}
    assert uid(not_mine) not in found
    assert found[uid(seen)]["SUMMARY"] == "Patient: O.V."
    assert b"Vantongeren" not in response.content
    assert b"Orla" not in response.content


def test_every_feed_read_is_audited_with_the_owner_as_actor(
    client: TestClient, sign_in: Any, make: Any, sched: SchedulingFactory, tx: Any
) -> None:
    patient = make.patient_user()
    sched.appointment(sched.practitioner(), patient, NOW + 24 * H)
    created = new_feed(client, sign_in(patient))
    for _ in range(2):
        assert client.get(feed_path(created), headers={"X-Forwarded-For": "ignored"}).status_code == 200
    with tx() as s:
        reads = s.scalars(select(AuditEntry).where(AuditEntry.action == "calendar_feed.read")).all()
        assert len(reads) == 2
        assert {(e.actor_id, e.actor_role, e.patient_id, e.resource_id, e.outcome) for e in reads} == {
            (patient.id, "patient", patient.patient_id, created["id"], "success")
        }
        assert '"events": 1' in reads[0].detail
        assert s.scalar(select(func.count()).where(AuditEntry.action == "calendar_feed.create")) == 1


# --- feeds: management and revocation ----------------------------------------------------------------------


def test_list_and_revoke(client: TestClient, sign_in: Any, make: Any, tx: Any) -> None:
    patient, other = make.patient_user(), make.patient_user()
    headers, other_headers = sign_in(patient), sign_in(other)
    first, second = new_feed(client, headers), new_feed(client, headers)
    theirs = new_feed(client, other_headers)

    listed = client.get(FEEDS, headers=headers)
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()] == [second["id"], first["id"]]  # newest first
    assert "url" not in listed.text  # the token is never shown again
    assert feed_path(first).split("/")[-1].removesuffix(".ics") not in listed.text

    assert client.delete(f"{FEEDS}/{theirs['id']}", headers=headers).status_code == 404  # not yours
    assert client.get(feed_path(theirs)).status_code == 200
    assert client.delete(f"{FEEDS}/{first['id']}", headers=headers).status_code == 204
    gone = client.get(feed_path(first))
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in gone.json()["detail"]
    assert gone.headers["cache-control"] == "no-store"
    assert client.get(feed_path(second)).status_code == 200  # the other feed still works
    assert client.delete(f"{FEEDS}/{first['id']}", headers=headers).status_code == 404  # already revoked
    assert [f["id"] for f in client.get(FEEDS, headers=headers).json()] == [second["id"]]
    assert client.delete(f"{FEEDS}/not-a-uuid", headers=headers).status_code == 422
    assert audit_count(tx, action="calendar_feed.revoke", actor_id=patient.id) == 1


def test_unknown_token_is_not_found(client: TestClient) -> None:
    response = client.get("/calendar/not-a-real-token.ics")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("This calendar feed does not exist or was revoked")


def test_feed_stops_when_the_account_is_deactivated(
    client: TestClient, sign_in: Any, make: Any, tx: Any
) -> None:
    patient = make.patient_user()
    created = new_feed(client, sign_in(patient))
    with tx() as s:
        s.execute(update(User).where(User.id == patient.id).values(is_active=False))
    assert client.get(feed_path(created)).status_code == 404


def test_feed_limit(client: TestClient, sign_in: Any, make: Any) -> None:
    headers = sign_in(make.patient_user())
    for _ in range(MAX_ACTIVE_FEEDS):
        new_feed(client, headers)
    refused = client.post(FEEDS, headers=headers)
    assert refused.status_code == 409
    assert "Revoke one" in refused.json()["detail"]


def test_clinician_without_a_profile_has_no_feed(
    client: TestClient, sign_in: Any, make: Any, tx: Any
) -> None:
    doctor = make.staff("doctor")
    refused = client.post(FEEDS, headers=sign_in(doctor))
    assert refused.status_code == 403
    assert "directory profile" in refused.json()["detail"]
    assert audit_count(tx, action="calendar_feed.create", actor_id=doctor.id, outcome="denied") == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", FEEDS),
        ("GET", FEEDS),
        ("DELETE", f"{FEEDS}/{uuid.UUID(int=1)}"),  # fixed ids: xdist workers must collect the same tests
        ("GET", f"{API}/scheduling/appointments/{uuid.UUID(int=2)}/ics"),
    ],
)
def test_sign_in_required(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


# --- single appointment downloads ---------------------------------------------------------------------------


def test_ics_download_for_own_appointment(
    client: TestClient, sign_in: Any, make: Any, sched: SchedulingFactory, tx: Any
) -> None:
    location = sched.location(name="Harbour Clinic", timezone="America/New_York")
    doctor = sched.practitioner(full_name="Ada Quill")
    patient, other = make.patient_user(), make.patient_user()
    start = datetime(2031, 1, 16, 3, 0, tzinfo=UTC)  # still the 15th in New York
    mine = sched.appointment(doctor, patient, start, location=location)
    cancelled = sched.appointment(doctor, patient, start + 24 * H, status="cancelled", location=location)
    theirs = sched.appointment(doctor, other, start + 48 * H, location=location)
    headers = sign_in(patient)

    response = client.get(f"{API}/scheduling/appointments/{mine.id}/ics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert response.headers["content-disposition"] == 'attachment; filename="appointment-2031-01-15.ics"'
    calendar = parse(response.content)
    assert calendar["METHOD"] == "PUBLISH"
    [event] = calendar.walk("VEVENT")
    assert event["UID"] == uid(mine)
    assert event["DTSTART"].dt == start
    assert event["SUMMARY"] == "Appointment with Dr Ada Quill"
    assert len(event.walk("VALARM")) == 1

    gone = client.get(f"{API}/scheduling/appointments/{cancelled.id}/ics", headers=headers)
    assert parse(gone.content).walk("VEVENT")[0]["STATUS"] == "CANCELLED"

    hidden = client.get(f"{API}/scheduling/appointments/{theirs.id}/ics", headers=headers)
    missing = client.get(f"{API}/scheduling/appointments/{uuid.uuid4()}/ics", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]  # existence does not leak
    assert client.get(f"{API}/scheduling/appointments/nope/ics", headers=headers).status_code == 422
    with tx() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "appointment.ics")).all()
        outcomes = {(e.resource_id, e.outcome, e.patient_id) for e in entries if e.actor_id == patient.id}
        assert (str(mine.id), "success", patient.patient_id) in outcomes
        assert (str(theirs.id), "denied", other.patient_id) in outcomes


def test_ics_for_the_practitioner_and_staff(
    client: TestClient, sign_in: Any, make: Any, sched: SchedulingFactory
) -> None:
    doctor = sched.practitioner(full_name="Ada Quill")
    colleague = make.staff("nurse", org=doctor.person.organisation)
    outsider = make.staff("doctor", org=make.org())
    patient = make.patient_user(given_name="Orla", family_name="Vantongeren")
    appointment = sched.appointment(doctor, patient, NOW + 24 * H)
    path = f"{API}/scheduling/appointments/{appointment.id}/ics"

    own = client.get(path, headers=sign_in(doctor.person))
    assert parse(own.content).walk("VEVENT")[0]["SUMMARY"] == "Patient: O.V."
    staff = client.get(path, headers=sign_in(colleague))
    assert parse(staff.content).walk("VEVENT")[0]["SUMMARY"] == "Patient: O.V. with Dr Ada Quill"
    assert client.get(path, headers=sign_in(outsider)).status_code == 404
