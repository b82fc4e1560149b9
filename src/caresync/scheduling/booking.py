"""Appointments: book, reschedule, cancel (with the organisation's notice policy), the visit's progress
(arrived, checked in, no-show, fulfilled), and the waitlist (a freed slot is offered to the first waiting
patient). The database's partial unique index is the last word on double booking: a booking that loses a
race gets a 409, never a second appointment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.core import audit, notify
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, authorize_patient, has_perm, require, require_any
from caresync.db import utcnow
from caresync.identity import patients
from caresync.identity.models import Patient
from caresync.scheduling import availability
from caresync.scheduling.models import Appointment, ClinicSettings, Location, Practitioner, WaitlistEntry
from caresync.scheduling.queue import service as queue
from caresync.scheduling.reminders import local_time_text, parse_reminder_hours, practitioner_label
from caresync.scheduling.rules import (
    ACTIVE,
    AppointmentStatus,
    ConsultationMode,
    can_transition,
    cancellation_refusal,
)

S = AppointmentStatus
OFFER_HOURS = 4  # how long a waitlist offer is held before it goes to the next patient
DEFAULT_NOTICE_HOURS = 24


@dataclass(frozen=True)
class BookingRequest:
    """What a booking asks for."""

    practitioner_id: uuid.UUID
    start: datetime
    patient_id: uuid.UUID | None = None  # staff booking for a patient; patients book for themselves
    mode: str = ConsultationMode.IN_PERSON.value
    reason: str = ""


def _practitioner(session: Session, practitioner_id: uuid.UUID) -> Practitioner:
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFound("No such practitioner.")
    return practitioner


def _patient_for(
    session: Session, principal: Principal, patient_id: uuid.UUID | None, action: str
) -> uuid.UUID:
    """Whose appointment this is: a patient books for themselves; staff for a patient they may see."""
    require(session, principal, Perm.APPOINTMENT_BOOK, action)
    if principal.role == "patient":
        if principal.patient_id is None or patient_id not in (None, principal.patient_id):
            raise NotFound("No such patient.")
        return principal.patient_id
    if patient_id is None:
        raise ValidationFailed("Choose the patient to book for.", extra={"field": "patient_id"})
    authorize_patient(session, principal, patient_id, Perm.APPOINTMENT_BOOK, action)
    return patient_id


def book(
    session: Session, principal: Principal, request: BookingRequest, now: datetime | None = None
) -> Appointment:
    """Book a free slot. 409 if it is taken (also when another booking wins a race for it)."""
    now = now or utcnow()
    patient_id = _patient_for(session, principal, request.patient_id, "appointment.book")
    practitioner = _practitioner(session, request.practitioner_id)
    if not practitioner.accepting_patients and principal.role == "patient":
        raise Conflict("This practitioner is not taking new bookings online. Please call the clinic.")
    if request.mode not in practitioner.modes:
        raise ValidationFailed(
            f"{practitioner.display_name} does not offer {request.mode} consultations.",
            extra={"field": "mode"},
        )
    slot = availability.find_free_slot(session, practitioner.id, request.start, now)
    _refuse_patient_overlap(session, patient_id, slot.start, slot.end)
    appointment = Appointment(
        patient_id=patient_id,
        practitioner_id=practitioner.id,
        location_id=slot.location_id,
        start_at=slot.start,
        end_at=slot.end,
        status=S.BOOKED.value,
        mode=request.mode,
        reason=request.reason.strip(),
        booked_by=principal.user_id,
    )
    _insert(session, appointment)
    _ensure_care(session, principal, practitioner, patient_id)
    availability.refresh_next_free(session, practitioner.id, now)
    audit.record(
        session,
        principal,
        "appointment.book",
        patient_id=patient_id,
        resource_type="Appointment",
        resource_id=appointment.id,
        detail={"start": slot.start.isoformat(), "practitioner": str(practitioner.id)},
    )
    _tell_patient(session, appointment, "Appointment booked", "booked")
    return appointment


def _insert(session: Session, appointment: Appointment) -> None:
    """Insert, turning a lost race (the partial unique index) into a 409."""
    try:
        with session.begin_nested():
            session.add(appointment)
    except IntegrityError:
        raise Conflict("That slot was just taken by someone else. Pick another time.") from None


def _refuse_patient_overlap(
    session: Session, patient_id: uuid.UUID, start: datetime, end: datetime, ignore: uuid.UUID | None = None
) -> None:
    clash = select(Appointment.id).where(
        Appointment.patient_id == patient_id,
        Appointment.status.in_([s.value for s in ACTIVE]),
        Appointment.start_at < end,
        Appointment.end_at > start,
    )
    if ignore is not None:
        clash = clash.where(Appointment.id != ignore)
    if session.execute(clash.limit(1)).first():
        raise Conflict("You already have an appointment at that time.")


def _ensure_care(
    session: Session, principal: Principal, practitioner: Practitioner, patient_id: uuid.UUID
) -> None:
    """A booking makes the practitioner part of the patient's care team in their organisation (audited)."""
    patients.link_care(
        session,
        patient_id,
        practitioner.user_id,
        practitioner.organisation_id,
        "appointment",
        actor=principal,
    )


# --- reading -----------------------------------------------------------------------------------------------


def visible_appointments(principal: Principal) -> Select[Appointment]:
    """Appointments the principal may list: a patient's own; a practitioner's own; staff with appointment
    management see their organisation's."""
    query = select(Appointment)
    if principal.role == "patient":
        return query.where(Appointment.patient_id == principal.patient_id)
    own_profile = select(Practitioner.id).where(Practitioner.user_id == principal.user_id)
    if has_perm(principal, Perm.APPOINTMENT_MANAGE):
        of_org = select(Practitioner.id).where(Practitioner.organisation_id == principal.organisation_id)
        return query.where(Appointment.practitioner_id.in_(of_org))
    return query.where(Appointment.practitioner_id.in_(own_profile))


def get_appointment(session: Session, principal: Principal, appointment_id: uuid.UUID) -> Appointment:
    """One appointment the principal may see (others: 404, audited)."""
    found = session.execute(visible_appointments(principal).where(Appointment.id == appointment_id)).scalar()
    if found is None:
        audit.record_and_commit(
            session,
            principal,
            "appointment.read",
            outcome="denied",
            resource_type="Appointment",
            resource_id=appointment_id,
        )
        raise NotFound("No such appointment.")
    audit.record(
        session,
        principal,
        "appointment.read",
        patient_id=found.patient_id,
        resource_type="Appointment",
        resource_id=found.id,
    )
    return found


def appointment_belongs_to(session: Session, appointment_id: uuid.UUID, patient_id: uuid.UUID) -> bool:
    """Whether the appointment is the patient's (for attaching records and notes to an encounter)."""
    appointment = session.get(Appointment, appointment_id)
    return appointment is not None and appointment.patient_id == patient_id


def list_appointments(
    session: Session,
    principal: Principal,
    *,
    status: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    practitioner_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    descending: bool = False,
    limit: int = 50,
    cursor: str | None = None,
    location_id: uuid.UUID | None = None,
    count_total: bool = False,
) -> Page[Appointment]:
    """Appointments in time order, filtered (``count_total``: the page carries the number of matches)."""
    if principal.role != "patient" and not has_perm(principal, Perm.APPOINTMENT_MANAGE):
        require(session, principal, Perm.APPOINTMENT_BOOK, "appointment.list")
    query = visible_appointments(principal)
    if status:
        statuses = [s.strip() for s in status.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in {x.value for x in S}]
        if unknown:
            raise ValidationFailed(f"Unknown status: {', '.join(unknown)}.", extra={"field": "status"})
        query = query.where(Appointment.status.in_(statuses))
    if start:
        query = query.where(Appointment.start_at >= start)
    if end:
        query = query.where(Appointment.start_at < end)
    if practitioner_id:
        query = query.where(Appointment.practitioner_id == practitioner_id)
    if patient_id:
        query = query.where(Appointment.patient_id == patient_id)
    if location_id:
        query = query.where(Appointment.location_id == location_id)
    page = paginate(
        session,
        query,
        sort_column=Appointment.start_at,
        id_column=Appointment.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    listed = {a.patient_id for a in page.items}
    audit.record(
        session,
        principal,
        "appointment.list",
        resource_type="Appointment",
        patient_id=next(iter(listed)) if len(listed) == 1 else None,
        detail={"count": len(page.items)},
    )
    return page


def patient_appointments(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[Appointment]:
    """All of one patient's appointments the principal may see, in time order, in one query (a patient's
    whole record, e.g. FHIR ``Patient/$everything``); audited once."""
    if principal.role != "patient" and not has_perm(principal, Perm.APPOINTMENT_MANAGE):
        require(session, principal, Perm.APPOINTMENT_BOOK, "appointment.list")
    query = visible_appointments(principal).where(Appointment.patient_id == patient_id)
    found = list(session.execute(query.order_by(Appointment.start_at, Appointment.id)).scalars())
    audit.record(
        session,
        principal,
        "appointment.list",
        resource_type="Appointment",
        patient_id=patient_id,
        detail={"count": len(found)},
    )
    return found


# --- changing ----------------------------------------------------------------------------------------------


def _for_change(
    session: Session, principal: Principal, appointment_id: uuid.UUID, action: str
) -> Appointment:
    appointment = session.execute(
        visible_appointments(principal)
        .where(Appointment.id == appointment_id)
        .with_for_update(of=Appointment)
    ).scalar()
    if appointment is None:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            resource_type="Appointment",
            resource_id=appointment_id,
        )
        raise NotFound("No such appointment.")
    return appointment


def notice_hours(session: Session, organisation_id: uuid.UUID) -> int:
    """The organisation's cancellation notice for patients, in hours."""
    settings = session.get(ClinicSettings, organisation_id)
    return settings.cancel_notice_hours if settings else DEFAULT_NOTICE_HOURS


def _check_cancellable(
    session: Session, principal: Principal, appointment: Appointment, now: datetime
) -> None:
    if not can_transition(appointment.status, S.CANCELLED):
        raise Conflict(f"A {appointment.status} appointment cannot be cancelled.")
    by_staff = principal.role != "patient" and has_perm(principal, Perm.APPOINTMENT_MANAGE)
    if appointment.status == S.PROPOSED.value:  # declining an offer is always possible
        return
    refusal = cancellation_refusal(
        appointment.start_at,
        now,
        min_notice=timedelta(hours=notice_hours(session, appointment.practitioner.organisation_id)),
        by_staff=by_staff,
    )
    if refusal:
        raise Conflict(refusal)


def cancel(
    session: Session,
    principal: Principal,
    appointment_id: uuid.UUID,
    reason: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Cancel (policy: patients need the organisation's notice; staff may cancel until the start). The
    freed slot is offered to the waitlist."""
    now = now or utcnow()
    appointment = _for_change(session, principal, appointment_id, "appointment.cancel")
    _check_cancellable(session, principal, appointment, now)
    # Cancelling a waitlist offer declines it: the slot goes to the next in line, and is not offered again.
    declined = appointment.status == S.PROPOSED.value
    _release(session, appointment, "declined" if declined else reason or "cancelled", now)
    audit.record(
        session,
        principal,
        "appointment.cancel",
        patient_id=appointment.patient_id,
        resource_type="Appointment",
        resource_id=appointment.id,
        detail={"reason": reason[:200]},
    )
    if principal.role != "patient":
        _tell_patient(session, appointment, "Appointment cancelled", "cancelled")
    return appointment


def _release(session: Session, appointment: Appointment, reason: str, now: datetime) -> None:
    was_offer = appointment.status == S.PROPOSED.value
    appointment.status = S.CANCELLED.value
    appointment.cancelled_at = now
    appointment.cancel_reason = reason[:300]
    session.flush()
    if was_offer:
        entry = session.execute(
            select(WaitlistEntry).where(WaitlistEntry.offered_appointment_id == appointment.id)
        ).scalar_one_or_none()
        if entry is not None:
            entry.status = "waiting"
            entry.offered_appointment_id = None
    if appointment.start_at > now:
        offer_freed_slot(session, appointment.practitioner_id, appointment.start_at, now)
    availability.refresh_next_free(session, appointment.practitioner_id, now)


def reschedule(
    session: Session,
    principal: Principal,
    appointment_id: uuid.UUID,
    new_start: datetime,
    now: datetime | None = None,
) -> Appointment:
    """Move an appointment to another free slot of the same practitioner: the old one is cancelled and a
    new one booked, in one transaction (both or neither)."""
    now = now or utcnow()
    old = _for_change(session, principal, appointment_id, "appointment.reschedule")
    if old.status != S.BOOKED.value:
        raise Conflict(f"Only booked appointments can be rescheduled; this one is {old.status}.")
    _check_cancellable(session, principal, old, now)
    slot = availability.find_free_slot(session, old.practitioner_id, new_start, now)
    _refuse_patient_overlap(session, old.patient_id, slot.start, slot.end, ignore=old.id)
    old.status = S.CANCELLED.value
    old.cancelled_at = now
    old.cancel_reason = "rescheduled"
    session.flush()
    new = Appointment(
        patient_id=old.patient_id,
        practitioner_id=old.practitioner_id,
        location_id=slot.location_id,
        start_at=slot.start,
        end_at=slot.end,
        status=S.BOOKED.value,
        mode=old.mode,
        reason=old.reason,
        booked_by=principal.user_id,
        rescheduled_from_id=old.id,
    )
    _insert(session, new)
    if old.start_at > now:
        offer_freed_slot(session, old.practitioner_id, old.start_at, now)
    availability.refresh_next_free(session, old.practitioner_id, now)
    audit.record(
        session,
        principal,
        "appointment.reschedule",
        patient_id=old.patient_id,
        resource_type="Appointment",
        resource_id=new.id,
        detail={"from": str(old.id), "start": slot.start.isoformat()},
    )
    _tell_patient(session, new, "Appointment moved", "rescheduled")
    return new


PROGRESS = {
    "arrive": (S.ARRIVED, "arrived_at"),
    "check-in": (S.CHECKED_IN, "checked_in_at"),
    "no-show": (S.NOSHOW, None),
    "fulfil": (S.FULFILLED, "fulfilled_at"),
}


def progress(
    session: Session, principal: Principal, appointment_id: uuid.UUID, step: str, now: datetime | None = None
) -> Appointment:
    """Record the visit's progress (front desk and clinicians of the practitioner's organisation)."""
    if step not in PROGRESS:
        raise ValidationFailed(f"Unknown step {step!r}; use one of {', '.join(PROGRESS)}.")
    now = now or utcnow()
    require(session, principal, Perm.APPOINTMENT_MANAGE, f"appointment.{step}")
    appointment = _for_change(session, principal, appointment_id, f"appointment.{step}")
    status, stamp = PROGRESS[step]
    if not can_transition(appointment.status, status):
        raise Conflict(f"A {appointment.status} appointment cannot be marked {status.value}.")
    if status == S.NOSHOW and now < appointment.start_at:
        raise Conflict("A patient can only be marked as a no-show once the appointment has started.")
    appointment.status = status.value
    if stamp:
        setattr(appointment, stamp, now)
    session.flush()
    if status == S.CHECKED_IN and appointment.location_id is not None and appointment.mode != "video":
        queue.join_from_appointment(session, principal, appointment)  # checked in = waiting to be seen
    audit.record(
        session,
        principal,
        f"appointment.{step}",
        patient_id=appointment.patient_id,
        resource_type="Appointment",
        resource_id=appointment.id,
    )
    return appointment


# --- waitlist ----------------------------------------------------------------------------------------------


def join_waitlist(
    session: Session,
    principal: Principal,
    practitioner_id: uuid.UUID,
    earliest: date,
    latest: date,
    *,
    patient_id: uuid.UUID | None = None,
    reason: str = "",
) -> WaitlistEntry:
    """Wait for a slot with the practitioner between two dates."""
    patient_id = _patient_for(session, principal, patient_id, "waitlist.join")
    _practitioner(session, practitioner_id)
    if latest < earliest:
        raise ValidationFailed("The last date must not be before the first.", extra={"field": "latest"})
    if latest < utcnow().date():
        raise ValidationFailed("The dates are in the past.", extra={"field": "latest"})
    duplicate = session.execute(
        select(WaitlistEntry.id).where(
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.practitioner_id == practitioner_id,
            WaitlistEntry.status.in_(("waiting", "offered")),
        )
    ).first()
    if duplicate:
        raise Conflict("You are already on this practitioner's waitlist.")
    entry = WaitlistEntry(
        patient_id=patient_id,
        practitioner_id=practitioner_id,
        earliest=earliest,
        latest=latest,
        reason=reason.strip()[:500],
        created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        principal,
        "waitlist.join",
        patient_id=patient_id,
        resource_type="WaitlistEntry",
        resource_id=entry.id,
    )
    return entry


def leave_waitlist(session: Session, principal: Principal, entry_id: uuid.UUID) -> None:
    """Leave the waitlist (an offer held for the patient is released too)."""
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None or (principal.role == "patient" and entry.patient_id != principal.patient_id):
        raise NotFound("No such waitlist entry.")
    if principal.role != "patient":
        authorize_patient(session, principal, entry.patient_id, Perm.APPOINTMENT_BOOK, "waitlist.leave")
    if entry.offered_appointment_id:
        offer = session.get(Appointment, entry.offered_appointment_id)
        if offer is not None and offer.status == S.PROPOSED.value:
            _release(session, offer, "declined", utcnow())
    entry.status = "cancelled"
    audit.record(
        session,
        principal,
        "waitlist.leave",
        patient_id=entry.patient_id,
        resource_type="WaitlistEntry",
        resource_id=entry.id,
    )


def my_waitlist(session: Session, principal: Principal) -> list[WaitlistEntry]:
    """The patient's open waitlist entries."""
    if principal.role != "patient":
        raise Forbidden("Only patients have a waitlist of their own.")
    return list(
        session.execute(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.patient_id == principal.patient_id,
                WaitlistEntry.status.in_(("waiting", "offered")),
            )
            .order_by(WaitlistEntry.created_at)
        ).scalars()
    )


def offer_freed_slot(
    session: Session, practitioner_id: uuid.UUID, start: datetime, now: datetime
) -> Appointment | None:
    """Offer a slot that just became free to the first waiting patient whose window covers it (and who has
    not declined this very slot and is free then): a ``proposed`` appointment held for ``OFFER_HOURS``."""
    try:
        slot = availability.find_free_slot(session, practitioner_id, start, now)
    except (Conflict, ValidationFailed):
        return None  # taken again, in the past, or no longer in the schedule
    declined = exists().where(
        Appointment.practitioner_id == practitioner_id,
        Appointment.start_at == start,
        Appointment.status == S.CANCELLED.value,
        Appointment.patient_id == WaitlistEntry.patient_id,
        Appointment.cancel_reason.in_(("declined", "offer expired")),
    )
    busy = exists().where(
        Appointment.patient_id == WaitlistEntry.patient_id,
        Appointment.status.in_([s.value for s in ACTIVE]),
        Appointment.start_at < slot.end,
        Appointment.end_at > slot.start,
    )
    local_day = start.date()
    entry = session.execute(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.practitioner_id == practitioner_id,
            WaitlistEntry.status == "waiting",
            WaitlistEntry.earliest <= local_day,
            WaitlistEntry.latest >= local_day,
            ~declined,
            ~busy,
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .limit(1)
        .with_for_update(of=WaitlistEntry)
    ).scalar_one_or_none()
    if entry is None:
        return None
    offer = Appointment(
        patient_id=entry.patient_id,
        practitioner_id=practitioner_id,
        location_id=slot.location_id,
        start_at=slot.start,
        end_at=slot.end,
        status=S.PROPOSED.value,
        reason=entry.reason,
        offer_expires_at=min(now + timedelta(hours=OFFER_HOURS), slot.start),
    )
    _insert(session, offer)
    entry.status = "offered"
    entry.offered_appointment_id = offer.id
    session.flush()
    audit.record(
        session,
        system_principal("Waitlist"),
        "waitlist.offer",
        patient_id=entry.patient_id,
        resource_type="Appointment",
        resource_id=offer.id,
    )
    _tell_patient(session, offer, "An earlier appointment is free", "offered")
    return offer


def accept_offer(
    session: Session, principal: Principal, appointment_id: uuid.UUID, now: datetime | None = None
) -> Appointment:
    """The patient takes the slot offered from the waitlist."""
    now = now or utcnow()
    offer = _for_change(session, principal, appointment_id, "waitlist.accept")
    if offer.status != S.PROPOSED.value:
        raise Conflict("There is no open offer for this appointment.")
    if offer.offer_expires_at is not None and offer.offer_expires_at <= now:
        raise Conflict("This offer has expired.")
    offer.status = S.BOOKED.value
    offer.booked_by = principal.user_id
    entry = session.execute(
        select(WaitlistEntry).where(WaitlistEntry.offered_appointment_id == offer.id)
    ).scalar_one_or_none()
    if entry is not None:
        entry.status = "booked"
    _ensure_care(session, principal, offer.practitioner, offer.patient_id)
    session.flush()
    audit.record(
        session,
        principal,
        "waitlist.accept",
        patient_id=offer.patient_id,
        resource_type="Appointment",
        resource_id=offer.id,
    )
    return offer


def expire_offers(session: Session, now: datetime) -> int:
    """Withdraw lapsed waitlist offers and pass each slot on to the next waiting patient."""
    lapsed = (
        session.execute(
            select(Appointment).where(
                Appointment.status == S.PROPOSED.value, Appointment.offer_expires_at <= now
            )
        )
        .scalars()
        .all()
    )
    for offer in lapsed:
        _release(session, offer, "offer expired", now)
    return len(lapsed)


def _tell_patient(session: Session, appointment: Appointment, title: str, verb: str) -> None:
    """An in-app notification to the patient (if they have an account), with the clinic's local time."""
    patient = session.get(Patient, appointment.patient_id)
    practitioner = session.get(Practitioner, appointment.practitioner_id)
    if patient is None or patient.user_id is None or practitioner is None:
        return
    location = session.get(Location, appointment.location_id) if appointment.location_id else None
    when = local_time_text(appointment.start_at, location.timezone if location else None)
    who = practitioner_label(practitioner)
    body = f"Your appointment with {who} on {when} is {verb}."
    if verb == "offered":
        body = f"A time with {who} on {when} is free for you. Accept it before it goes to the next person."
    notify.notify(
        session, patient.user_id, "appointment", title, body, link=f"/appointments/{appointment.id}"
    )


# --- the organisation's booking policy ---------------------------------------------------------------------


@dataclass(frozen=True)
class BookingPolicy:
    """How much notice patients must give to cancel online, and when reminders go out (hours before)."""

    cancel_notice_hours: int
    reminder_hours: tuple[int, ...]


def booking_policy(session: Session, principal: Principal) -> BookingPolicy:
    """The caller's organisation's booking policy (staff who manage schedules or appointments)."""
    require_any(session, principal, (Perm.SCHEDULE_MANAGE, Perm.APPOINTMENT_MANAGE), "scheduling.policy_read")
    row = session.get(ClinicSettings, principal.organisation_id)
    if row is None:
        return BookingPolicy(DEFAULT_NOTICE_HOURS, parse_reminder_hours(None))
    return BookingPolicy(row.cancel_notice_hours, parse_reminder_hours(row.reminder_hours))


def update_booking_policy(
    session: Session, principal: Principal, *, cancel_notice_hours: int, reminder_hours: list[int]
) -> BookingPolicy:
    """Administrators set the cancellation notice (0-168 hours) and up to three reminder offsets (1-336
    hours before; none turns reminders off)."""
    require(session, principal, Perm.SCHEDULE_MANAGE, "scheduling.policy_update")
    if not 0 <= cancel_notice_hours <= MAX_NOTICE_HOURS:
        raise ValidationFailed(
            f"The cancellation notice must be between 0 and {MAX_NOTICE_HOURS} hours.",
            extra={"field": "cancel_notice_hours"},
        )
    offsets = sorted(set(reminder_hours), reverse=True)
    if len(offsets) > MAX_REMINDERS or any(not 1 <= h <= MAX_REMINDER_OFFSET for h in offsets):
        raise ValidationFailed(
            f"Give up to {MAX_REMINDERS} reminder times, each 1 to {MAX_REMINDER_OFFSET} hours before.",
            extra={"field": "reminder_hours"},
        )
    assert principal.organisation_id is not None
    row = session.get(ClinicSettings, principal.organisation_id)
    if row is None:
        row = ClinicSettings(organisation_id=principal.organisation_id)
        session.add(row)
    row.cancel_notice_hours = cancel_notice_hours
    row.reminder_hours = ",".join(str(h) for h in offsets)
    session.flush()
    audit.record(
        session,
        principal,
        "scheduling.policy_update",
        resource_type="ClinicSettings",
        resource_id=principal.organisation_id,
        detail={"cancel_notice_hours": cancel_notice_hours, "reminder_hours": offsets},
    )
    return BookingPolicy(cancel_notice_hours, tuple(offsets))


MAX_NOTICE_HOURS = 168
MAX_REMINDERS = 3
MAX_REMINDER_OFFSET = 336
