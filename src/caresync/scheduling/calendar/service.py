"""Calendar feeds and ``.ics`` files (RFC 5545).

A feed is a private URL ``/calendar/{token}.ics`` that a calendar app (Google, Outlook, Apple) polls with
no other credential: the token is shown once, only its SHA-256 digest is stored, and revoking the feed (or
deactivating its owner's account) makes the URL answer 404. Patients get their own appointments;
practitioners (doctors and nurses with a directory profile) the appointments booked with them.

Calendars sync to third parties, so events carry as little as possible: the patient sees "Appointment with
Dr X"; the practitioner sees only the patient's initials; never the reason for the visit. Every feed read
is audited with the feed's owner as the actor.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from icalendar import Alarm, Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import audit, crypto
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound
from caresync.core.rbac import CLINICIANS, Perm, has_perm
from caresync.db import utcnow
from caresync.identity.models import Patient, User
from caresync.scheduling.models import Appointment, CalendarFeed, Practitioner
from caresync.scheduling.reminders import appointment_link, local_datetime, place_label, practitioner_label
from caresync.scheduling.rules import AppointmentStatus, ConsultationMode

PRODID = "-//CareSync//Appointments//EN"
FEED_PAST = timedelta(days=30)
FEED_FUTURE = timedelta(days=365)
FEED_REFRESH = timedelta(hours=1)  # a hint to calendar apps; most poll on their own schedule anyway
ALARM_BEFORE = timedelta(hours=1)
MAX_ACTIVE_FEEDS = 5
NOT_IN_FEEDS = (AppointmentStatus.CANCELLED.value, AppointmentStatus.WAITLIST.value)
ICAL_STATUS = {
    AppointmentStatus.CANCELLED.value: "CANCELLED",
    AppointmentStatus.PROPOSED.value: "TENTATIVE",
    AppointmentStatus.WAITLIST.value: "TENTATIVE",
}
FEED_GONE = "This calendar feed does not exist or was revoked. Create a new feed in CareSync."
NO_APPOINTMENT = "No such appointment."


class Audience(StrEnum):
    """Whose calendar an event is written for (it decides what the event says)."""

    PATIENT = "patient"
    PRACTITIONER = "practitioner"
    STAFF = "staff"  # organisation staff who manage the practitioner's appointments


@dataclass(frozen=True)
class FeedOwner:
    """What a feed shows: one patient's appointments, or one practitioner's."""

    user_id: uuid.UUID
    audience: Audience
    patient_id: uuid.UUID | None = None
    practitioner: Practitioner | None = None


@dataclass(frozen=True)
class NewFeed:
    """A newly created feed and its subscription URLs (the only time the token is available)."""

    feed: CalendarFeed
    url: str
    webcal_url: str


@dataclass(frozen=True)
class IcsFile:
    """A single-event calendar file to download."""

    content: bytes
    filename: str


def _owner(session: Session, user_id: uuid.UUID, role: str) -> FeedOwner | None:
    """What a feed of this user would show, or ``None`` if the user may not have feeds."""
    if role == "patient":
        patient_id = session.scalar(select(Patient.id).where(Patient.user_id == user_id))
        return FeedOwner(user_id, Audience.PATIENT, patient_id=patient_id) if patient_id else None
    if role in CLINICIANS:
        practitioner = session.scalar(select(Practitioner).where(Practitioner.user_id == user_id))
        return FeedOwner(user_id, Audience.PRACTITIONER, practitioner=practitioner) if practitioner else None
    return None


def _require_owner(session: Session, principal: Principal, action: str) -> FeedOwner:
    owner = _owner(session, principal.user_id, principal.role) if principal.user_id else None
    if owner is None:
        audit.record_and_commit(session, principal, action, outcome="denied", resource_type="CalendarFeed")
        raise Forbidden(
            "Calendar feeds are for patients, and for doctors and nurses with a directory profile."
        )
    return owner


def feed_urls(token: str) -> tuple[str, str]:
    """The feed's ``https`` URL and the same as ``webcal://`` (which makes calendar apps subscribe)."""
    url = f"{get_settings().base_url.rstrip('/')}/calendar/{token}.ics"
    return url, "webcal://" + url.split("://", 1)[1]


def create_feed(session: Session, principal: Principal) -> NewFeed:
    """Create a private feed URL for the caller (403 unless a patient or a practitioner; 409 beyond
    ``MAX_ACTIVE_FEEDS`` active feeds). The token is returned once, inside the URLs."""
    owner = _require_owner(session, principal, "calendar_feed.create")
    if len(_active_feeds(session, owner.user_id)) >= MAX_ACTIVE_FEEDS:
        raise Conflict(
            f"You already have {MAX_ACTIVE_FEEDS} calendar feeds. Revoke one you no longer use first."
        )
    token = crypto.new_token()
    feed = CalendarFeed(user_id=owner.user_id, token_digest=crypto.token_digest(token), created_at=utcnow())
    session.add(feed)
    session.flush()
    audit.record(
        session, principal, "calendar_feed.create", resource_type="CalendarFeed", resource_id=feed.id
    )
    url, webcal_url = feed_urls(token)
    return NewFeed(feed=feed, url=url, webcal_url=webcal_url)


def list_feeds(session: Session, principal: Principal) -> list[CalendarFeed]:
    """The caller's active (not revoked) feeds, newest first. Tokens are never shown again."""
    return _active_feeds(session, _require_owner(session, principal, "calendar_feed.list").user_id)


def _active_feeds(session: Session, user_id: uuid.UUID) -> list[CalendarFeed]:
    query = (
        select(CalendarFeed)
        .where(CalendarFeed.user_id == user_id, CalendarFeed.revoked_at.is_(None))
        .order_by(CalendarFeed.created_at.desc())
    )
    return list(session.scalars(query))


def revoke_feed(session: Session, principal: Principal, feed_id: uuid.UUID) -> None:
    """Revoke one of the caller's active feeds: its URL stops working at once (404 for anyone else's, or
    one already revoked)."""
    owner = _require_owner(session, principal, "calendar_feed.revoke")
    feed = session.get(CalendarFeed, feed_id)
    if feed is None or feed.user_id != owner.user_id or feed.revoked_at is not None:
        raise NotFound("No such calendar feed.")
    feed.revoked_at = utcnow()
    session.flush()
    audit.record(
        session, principal, "calendar_feed.revoke", resource_type="CalendarFeed", resource_id=feed.id
    )


def feed_calendar(session: Session, token: str, now: datetime, *, client_ip: str = "") -> bytes:
    """The feed's calendar: its owner's appointments from ``FEED_PAST`` before ``now`` to ``FEED_FUTURE``
    after, cancelled ones left out (so calendar apps remove them). 404 for an unknown or revoked token or an
    inactive owner. The read is audited with the owner as actor."""
    found = session.execute(
        select(CalendarFeed, User)
        .join(User, User.id == CalendarFeed.user_id)
        .where(CalendarFeed.token_digest == crypto.token_digest(token))
    ).first()
    if found is None:
        raise NotFound(FEED_GONE)
    feed, user = found
    owner = _owner(session, user.id, user.role) if feed.revoked_at is None and user.is_active else None
    if owner is None:
        raise NotFound(FEED_GONE)
    query = select(Appointment).where(
        Appointment.status.not_in(NOT_IN_FEEDS),
        Appointment.start_at >= now - FEED_PAST,
        Appointment.start_at <= now + FEED_FUTURE,
    )
    if owner.audience is Audience.PATIENT:
        query = query.where(Appointment.patient_id == owner.patient_id)
        name = "CareSync appointments"
    else:
        assert owner.practitioner is not None
        query = query.where(Appointment.practitioner_id == owner.practitioner.id)
        name = f"CareSync: {practitioner_label(owner.practitioner)}"
    appointments = list(session.scalars(query.order_by(Appointment.start_at)))
    calendar = _calendar(name, feed=True)
    for appointment in appointments:
        calendar.add_component(_event(appointment, owner.audience, now))
    actor = Principal(
        user_id=user.id,
        role=user.role,
        full_name=user.full_name,
        organisation_id=user.organisation_id,
        client_ip=client_ip,
        patient_id=owner.patient_id,
    )
    audit.record(
        session,
        actor,
        "calendar_feed.read",
        patient_id=owner.patient_id,
        resource_type="CalendarFeed",
        resource_id=feed.id,
        detail={"events": len(appointments), "patients": len({a.patient_id for a in appointments})},
    )
    return bytes(calendar.to_ical())


def _audience(principal: Principal, appointment: Appointment) -> Audience | None:
    """How the caller may see the appointment, or ``None`` if they may not."""
    if principal.role == "patient":
        return Audience.PATIENT if principal.patient_id == appointment.patient_id else None
    practitioner = appointment.practitioner
    if principal.user_id is not None and practitioner.user_id == principal.user_id:
        return Audience.PRACTITIONER
    if (
        has_perm(principal, Perm.APPOINTMENT_MANAGE)
        and principal.organisation_id == practitioner.organisation_id
    ):
        return Audience.STAFF
    return None


def appointment_ics(session: Session, principal: Principal, appointment_id: uuid.UUID) -> IcsFile:
    """A one-event calendar of an appointment, for its patient, its practitioner, or staff of the
    practitioner's organisation who manage appointments; anyone else gets 404 (audited). Cancelled
    appointments come out with ``STATUS:CANCELLED`` so that importing the file removes the event."""
    appointment = session.get(Appointment, appointment_id)
    audience = _audience(principal, appointment) if appointment else None
    if appointment is None or audience is None:
        audit.record_and_commit(
            session,
            principal,
            "appointment.ics",
            outcome="denied",
            patient_id=appointment.patient_id if appointment else None,
            resource_type="Appointment",
            resource_id=appointment_id,
        )
        raise NotFound(NO_APPOINTMENT)
    now = utcnow()
    calendar = _calendar("CareSync appointment", feed=False)
    calendar.add_component(_event(appointment, audience, now))
    audit.record(
        session,
        principal,
        "appointment.ics",
        patient_id=appointment.patient_id,
        resource_type="Appointment",
        resource_id=appointment.id,
    )
    zone = appointment.location.timezone if appointment.location else None
    local_day = local_datetime(appointment.start_at, zone).date()
    return IcsFile(content=bytes(calendar.to_ical()), filename=f"appointment-{local_day.isoformat()}.ics")


def _calendar(name: str, *, feed: bool) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    if feed:
        calendar.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", FEED_REFRESH)
    return calendar


def initials(patient: Patient) -> str:
    """A patient's initials, ``A.B.``: all a practitioner's synced calendar needs to tell patients apart."""
    return "".join(
        f"{name.strip()[0].upper()}." for name in (patient.given_name, patient.family_name) if name.strip()
    )


def summary(appointment: Appointment, audience: Audience) -> str:
    """The event's title for ``audience``, minimising personal data."""
    video = " (video)" if appointment.mode == ConsultationMode.VIDEO.value else ""
    if audience is Audience.PATIENT:
        return f"Appointment with {practitioner_label(appointment.practitioner)}{video}"
    text = f"Patient: {initials(appointment.patient)}"
    if audience is Audience.STAFF:
        text += f" with {practitioner_label(appointment.practitioner)}"
    return text + video


def sequence(appointment: Appointment) -> int:
    """``SEQUENCE``: seconds between creation and the last change, so it grows with every revision."""
    return max(0, int((appointment.updated_at - appointment.created_at).total_seconds()))


def _event(appointment: Appointment, audience: Audience, now: datetime) -> Event:
    url = f"{get_settings().base_url.rstrip('/')}{appointment_link(appointment.id)}"
    event = Event()
    event.add("uid", f"{appointment.id}@caresync")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("created", appointment.created_at.astimezone(UTC))
    event.add("last-modified", appointment.updated_at.astimezone(UTC))
    event.add("dtstart", appointment.start_at.astimezone(UTC))
    event.add("dtend", appointment.end_at.astimezone(UTC))
    event.add("summary", summary(appointment, audience))
    place = place_label(appointment)
    if place:
        event.add("location", place)
    event.add("description", f"Details, changes and cancellation: {url}")
    event.add("url", url)
    event.add("status", ICAL_STATUS.get(appointment.status, "CONFIRMED"))
    event.add("sequence", sequence(appointment))
    event.add("class", "PRIVATE")
    event.add("transp", "OPAQUE")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary(appointment, audience))
    alarm.add("trigger", -ALARM_BEFORE)
    event.add_component(alarm)
    return event
