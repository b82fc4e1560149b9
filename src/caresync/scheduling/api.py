"""Scheduling endpoints under ``/api/v1/scheduling``: the provider directory, free slots, appointments,
schedules and time off, and the waitlist. Thin: parse, call the services, shape the response."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from caresync.core.errors import ValidationFailed
from caresync.core.pagination import MAX_LIMIT
from caresync.db import utcnow
from caresync.scheduling import availability, booking, directory, reminders
from caresync.scheduling.models import Schedule
from caresync.scheduling.rules import WeeklyHours
from caresync.scheduling.schemas import (
    AppointmentOut,
    AppointmentPage,
    BookIn,
    CancelIn,
    LocationOut,
    MissedOut,
    MissedRateOut,
    PolicyIn,
    PolicyOut,
    PractitionerOut,
    RescheduleIn,
    ScheduleBlockOut,
    ScheduleIn,
    SearchHitOut,
    SearchOut,
    SlotOut,
    TimeOffIn,
    TimeOffOut,
    Vocabularies,
    WaitlistIn,
    WaitlistOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/scheduling", tags=["scheduling"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]
Code = Annotated[str, Query(max_length=40)]


@router.get("/vocabularies", response_model=Vocabularies)
def vocabularies(_principal: CurrentUser) -> Vocabularies:
    """The specialty, language and insurance plan codes search accepts."""
    return Vocabularies()


@router.get("/practitioners", response_model=SearchOut)
def search_practitioners(
    principal: CurrentUser,
    db: Db,
    q: Annotated[str, Query(max_length=100)] = "",
    specialty: Code = "",
    insurance: Code = "",
    language: Code = "",
    mode: Code = "",
    free_before: date | None = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    sort: Code = "relevance",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> SearchOut:
    """Find practitioners. Without ``lat``/``lon``, a patient's own address is the reference point for
    distance. Results carry each practitioner's nearest location and next free slot."""
    if (lat is None) != (lon is None):
        raise ValidationFailed("Give both lat and lon, or neither.", extra={"field": "lat"})
    query = directory.SearchQuery(
        q=q,
        specialty=specialty,
        insurance=insurance,
        language=language,
        mode=mode,
        free_before=free_before,
        near=(lat, lon) if lat is not None and lon is not None else None,
        sort=sort,
    )
    results = directory.search(db, principal, query, limit=limit, cursor=cursor)
    out = SearchOut(
        items=[
            SearchHitOut(
                practitioner=PractitionerOut.of(hit.practitioner, hit.next_free_slot_at),
                location=LocationOut.of(hit.location) if hit.location else None,
                distance_km=hit.distance_km,
            )
            for hit in results.hits
        ],
        total=results.total,
        next_cursor=results.next_cursor,
    )
    db.commit()  # refreshed next-free values are worth keeping
    return out


@router.get("/practitioners/{practitioner_id}", response_model=PractitionerOut)
def get_practitioner(practitioner_id: uuid.UUID, principal: CurrentUser, db: Db) -> PractitionerOut:
    """One directory profile."""
    out = PractitionerOut.of(directory.get_practitioner(db, principal, practitioner_id))
    db.rollback()
    return out


@router.get("/practitioners/{practitioner_id}/slots", response_model=list[SlotOut])
def practitioner_slots(
    practitioner_id: uuid.UUID,
    principal: CurrentUser,
    db: Db,
    start: date | None = None,
    end: date | None = None,
) -> list[SlotOut]:
    """Free slots from ``start`` to ``end`` (dates, inclusive; default: the next 14 days)."""
    first = start or utcnow().date()
    last = end or first + timedelta(days=13)
    out = [SlotOut.of(s) for s in directory.slots_for(db, principal, practitioner_id, first, last)]
    db.rollback()
    return out


# --- appointments ------------------------------------------------------------------------------------------


@router.post("/appointments", status_code=status.HTTP_201_CREATED, response_model=AppointmentOut)
def book(body: BookIn, principal: CurrentUser, db: Db) -> AppointmentOut:
    """Book a free slot (409 if it is taken, also when another booking wins a race for it)."""
    request = booking.BookingRequest(
        practitioner_id=body.practitioner_id,
        start=body.start,
        patient_id=body.patient_id,
        mode=body.mode,
        reason=body.reason,
    )
    out = AppointmentOut.of(booking.book(db, principal, request))
    db.commit()
    return out


@router.get("/appointments", response_model=AppointmentPage)
def list_appointments(
    principal: CurrentUser,
    db: Db,
    status_: Annotated[str, Query(alias="status", max_length=100)] = "",
    start: date | None = None,
    end: date | None = None,
    practitioner_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AppointmentPage:
    """Appointments you may see (yours; a practitioner's own; staff: their organisation's), by time."""
    page = booking.list_appointments(
        db,
        principal,
        status=status_,
        practitioner_id=practitioner_id,
        patient_id=patient_id,
        start=_midnight(start),
        end=_midnight(end + timedelta(days=1)) if end else None,
        descending=order == "desc",
        limit=limit,
        cursor=cursor,
    )
    out = AppointmentPage(items=[AppointmentOut.of(a) for a in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


def _midnight(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


@router.get("/appointments/{appointment_id}", response_model=AppointmentOut)
def get_appointment(appointment_id: uuid.UUID, principal: CurrentUser, db: Db) -> AppointmentOut:
    """One appointment."""
    out = AppointmentOut.of(booking.get_appointment(db, principal, appointment_id))
    db.commit()
    return out


@router.post("/appointments/{appointment_id}/reschedule", response_model=AppointmentOut)
def reschedule(
    appointment_id: uuid.UUID, body: RescheduleIn, principal: CurrentUser, db: Db
) -> AppointmentOut:
    """Move to another free slot of the same practitioner (the old appointment is cancelled)."""
    out = AppointmentOut.of(booking.reschedule(db, principal, appointment_id, body.start))
    db.commit()
    return out


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentOut)
def cancel(appointment_id: uuid.UUID, body: CancelIn, principal: CurrentUser, db: Db) -> AppointmentOut:
    """Cancel (patients: at least the organisation's notice ahead; staff: until it starts)."""
    out = AppointmentOut.of(booking.cancel(db, principal, appointment_id, body.reason))
    db.commit()
    return out


@router.post("/appointments/{appointment_id}/accept", response_model=AppointmentOut)
def accept_offer(appointment_id: uuid.UUID, principal: CurrentUser, db: Db) -> AppointmentOut:
    """Take a slot offered from the waitlist."""
    out = AppointmentOut.of(booking.accept_offer(db, principal, appointment_id))
    db.commit()
    return out


@router.post("/appointments/{appointment_id}/{step}", response_model=AppointmentOut)
def progress(
    appointment_id: uuid.UUID,
    step: Literal["arrive", "check-in", "no-show", "fulfil"],
    principal: CurrentUser,
    db: Db,
) -> AppointmentOut:
    """Record the visit's progress: ``arrive``, ``check-in``, ``no-show`` or ``fulfil`` (staff)."""
    out = AppointmentOut.of(booking.progress(db, principal, appointment_id, step))
    db.commit()
    return out


# --- schedules and time off --------------------------------------------------------------------------------


def _block_out(row: Schedule) -> ScheduleBlockOut:
    return ScheduleBlockOut(
        id=row.id,
        location_id=row.location_id,
        weekday=row.weekday,
        start=row.start_time,
        end=row.end_time,
        slot_minutes=row.slot_minutes,
        breaks=[tuple(b) for b in json.loads(row.breaks)],
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


@router.put("/practitioners/{practitioner_id}/schedule", response_model=list[ScheduleBlockOut])
def set_schedule(
    practitioner_id: uuid.UUID, body: ScheduleIn, principal: CurrentUser, db: Db
) -> list[ScheduleBlockOut]:
    """Replace a practitioner's weekly hours (organisation admins)."""
    blocks = [
        WeeklyHours(
            weekday=b.weekday,
            start=b.start,
            end=b.end,
            slot_minutes=b.slot_minutes,
            location_id=b.location_id,
            breaks=tuple((time.fromisoformat(s), time.fromisoformat(e)) for s, e in b.breaks),
            valid_from=b.valid_from,
            valid_until=b.valid_until,
        )
        for b in body.blocks
    ]
    out = [_block_out(r) for r in availability.set_schedule(db, principal, practitioner_id, blocks)]
    db.commit()
    return out


@router.post(
    "/practitioners/{practitioner_id}/time-off",
    status_code=status.HTTP_201_CREATED,
    response_model=TimeOffOut,
)
def add_time_off(practitioner_id: uuid.UUID, body: TimeOffIn, principal: CurrentUser, db: Db) -> TimeOffOut:
    """Block time (admins; a practitioner for themselves). Reports how many booked appointments fall in
    it, so they can be moved."""
    row = availability.add_time_off(
        db,
        principal,
        practitioner_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        kind=body.kind,
        reason=body.reason,
    )
    out = TimeOffOut.of(
        row, availability.appointments_during(db, practitioner_id, row.starts_at, row.ends_at)
    )
    db.commit()
    return out


@router.delete("/time-off/{time_off_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_time_off(time_off_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Remove a period of time off."""
    availability.remove_time_off(db, principal, time_off_id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- policy -----------------------------------------------------------------------------------------------


@router.get("/policy", response_model=PolicyOut)
def get_policy(principal: CurrentUser, db: Db) -> PolicyOut:
    """Your organisation's cancellation notice and reminder times."""
    policy = booking.booking_policy(db, principal)
    db.rollback()
    return PolicyOut(
        cancel_notice_hours=policy.cancel_notice_hours, reminder_hours=list(policy.reminder_hours)
    )


@router.put("/policy", response_model=PolicyOut)
def put_policy(body: PolicyIn, principal: CurrentUser, db: Db) -> PolicyOut:
    """Set the cancellation notice and reminder times (administrators)."""
    policy = booking.update_booking_policy(
        db, principal, cancel_notice_hours=body.cancel_notice_hours, reminder_hours=body.reminder_hours
    )
    db.commit()
    return PolicyOut(
        cancel_notice_hours=policy.cancel_notice_hours, reminder_hours=list(policy.reminder_hours)
    )


# --- statistics --------------------------------------------------------------------------------------------


@router.get("/stats/missed", response_model=MissedOut)
def missed(principal: CurrentUser, db: Db, days: Annotated[int, Query(ge=1, le=366)] = 30) -> MissedOut:
    """Your organisation's missed-appointment (no-show) rate over the last ``days`` days, overall and per
    practitioner (administrators, doctors and nurses)."""
    overall, per = reminders.organisation_missed_rates(db, principal, days=days)
    out = MissedOut(
        days=days,
        overall=MissedRateOut(**overall),
        practitioners={str(k): MissedRateOut(**v) for k, v in per.items()},
    )
    db.rollback()
    return out


# --- waitlist ----------------------------------------------------------------------------------------------


@router.post("/waitlist", status_code=status.HTTP_201_CREATED, response_model=WaitlistOut)
def join_waitlist(body: WaitlistIn, principal: CurrentUser, db: Db) -> WaitlistOut:
    """Wait for a slot with a practitioner between two dates; a freed slot is offered to the first in line."""
    entry = booking.join_waitlist(
        db,
        principal,
        body.practitioner_id,
        body.earliest,
        body.latest,
        patient_id=body.patient_id,
        reason=body.reason,
    )
    out = WaitlistOut.of(entry)
    db.commit()
    return out


@router.get("/waitlist", response_model=list[WaitlistOut])
def my_waitlist(principal: CurrentUser, db: Db) -> list[WaitlistOut]:
    """Your open waitlist entries (patients)."""
    out = [WaitlistOut.of(e) for e in booking.my_waitlist(db, principal)]
    db.rollback()
    return out


@router.delete("/waitlist/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
def leave_waitlist(entry_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Leave the waitlist."""
    booking.leave_waitlist(db, principal, entry_id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
