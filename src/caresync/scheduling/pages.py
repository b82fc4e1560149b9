"""Scheduling pages: find a doctor, pick a slot and book, my appointments (reschedule, cancel, accept an
offer), one appointment with its visit steps, the clinic's day, and working hours and leave for admins.
Thin: they parse forms and call the same services as the API."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from caresync.core.errors import DomainError, Forbidden, ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.db import utcnow
from caresync.identity import patients
from caresync.identity.models import Patient
from caresync.scheduling import availability, booking, directory, reminders
from caresync.scheduling.calendar import service as calendar
from caresync.scheduling.models import Appointment, Location, Practitioner, Schedule, TimeOff
from caresync.scheduling.rules import (
    ACTIVE,
    INSURANCE_PLANS,
    LANGUAGES,
    SPECIALTIES,
    AppointmentStatus,
    WeeklyHours,
    can_transition,
    cancellation_refusal,
    plan_for_insurer,
)
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
S = AppointmentStatus
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SLOT_DAYS = 7  # days of slots shown at a time


def _parse_date(value: str, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


# --- find a doctor -----------------------------------------------------------------------------------------


@router.get("/doctors", response_class=HTMLResponse)
def find_doctor(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """Search the directory; HTMX requests get just the results."""
    params = request.query_params
    insurance = params.get("insurance")
    if insurance is None and principal.role == "patient" and principal.patient_id:
        patient = db.get(Patient, principal.patient_id)
        insurance = plan_for_insurer(patient.insurance_provider or "") if patient else ""
    values = {
        "q": params.get("q", "")[:100],
        "specialty": params.get("specialty", ""),
        "insurance": insurance or "",
        "language": params.get("language", ""),
        "mode": params.get("mode", ""),
        "free_before": params.get("free_before", ""),
        "sort": params.get("sort", "relevance"),
    }
    errors: dict[str, str] = {}
    results = None
    try:
        query = directory.SearchQuery(
            q=values["q"],
            specialty=values["specialty"],
            insurance=values["insurance"],
            language=values["language"],
            mode=values["mode"],
            free_before=date.fromisoformat(values["free_before"]) if values["free_before"] else None,
            sort=values["sort"],
        )
        results = directory.search(db, principal, query, limit=20, cursor=params.get("cursor"))
    except ValueError:
        errors["free_before"] = "Enter a date."
    except DomainError as exc:
        errors = domain_field_errors(exc)
    context = {
        "values": values,
        "errors": errors,
        "results": results,
        "specialties": sorted(SPECIALTIES.items(), key=lambda kv: kv[1]),
        "plans": list(INSURANCE_PLANS.items()),
        "languages": sorted(LANGUAGES.items(), key=lambda kv: kv[1]),
        "next_url": f"/doctors?{urlencode({**values, 'cursor': results.next_cursor})}"
        if results and results.next_cursor
        else "",
    }
    template = "scheduling/_results.html" if is_htmx(request) else "scheduling/find.html"
    return render_page(request, db, principal, template, context)


@router.get("/doctors/{practitioner_id}", response_class=HTMLResponse)
def doctor(
    request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db, start: str = ""
) -> HTMLResponse:
    """A practitioner's profile and free slots, a week at a time."""
    practitioner = directory.get_practitioner(db, principal, practitioner_id)
    return _slot_picker(request, db, principal, practitioner, start, appointment=None)


def _slot_picker(
    request: Request,
    db: Db,
    principal: Any,
    practitioner: Practitioner,
    start: str,
    appointment: Appointment | None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    today = utcnow().date()
    first = max(_parse_date(start, today), today)
    last = first + timedelta(days=SLOT_DAYS - 1)
    slots = availability.free_slots(db, practitioner.id, first, last)
    locations = {loc.id: loc for loc in directory.practitioner_locations(db, practitioner.id)}
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for slot in slots:
        location = locations.get(slot.location_id)
        zone = ZoneInfo(location.timezone if location else "UTC")
        local = slot.start.astimezone(zone)
        by_day[local.date()].append({"start": slot.start, "local": local, "location": location})
    context = {
        "practitioner": practitioner,
        "locations": list(locations.values()),
        "days": [
            (first + timedelta(days=i), by_day.get(first + timedelta(days=i), [])) for i in range(SLOT_DAYS)
        ],
        "previous": (first - timedelta(days=SLOT_DAYS)).isoformat() if first > today else "",
        "next": (last + timedelta(days=1)).isoformat(),
        "appointment": appointment,
        "errors": errors or {},
        "can_wait": principal.role == "patient" and appointment is None,
        "today": today.isoformat(),
    }
    return render_page(request, db, principal, "scheduling/doctor.html", context, status_code)


@router.post("/doctors/{practitioner_id}/waitlist", response_model=None)
def join_waitlist(
    request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """A patient asks to be offered an earlier time with this practitioner between two dates."""
    practitioner = directory.get_practitioner(db, principal, practitioner_id)
    try:
        earliest = date.fromisoformat(form.get("earliest", ""))
        latest = date.fromisoformat(form.get("latest", ""))
        booking.join_waitlist(
            db, principal, practitioner.id, earliest, latest, reason=form.get("reason", "")[:500]
        )
    except ValueError:
        db.rollback()
        return _slot_picker(
            request, db, principal, practitioner, "", None, {"waitlist": "Enter the first and last day."}, 422
        )
    except DomainError as exc:
        db.rollback()
        if exc.status == 404:
            raise
        return _slot_picker(
            request, db, principal, practitioner, "", None, {"waitlist": exc.detail}, exc.status
        )
    db.commit()
    return redirect("/appointments?waitlisted=1")


@router.get("/doctors/{practitioner_id}/book", response_model=None)
def confirm_booking(
    request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db, start: str = ""
) -> Response:
    """Confirm the chosen slot: consultation mode, reason (and, for staff, the patient)."""
    practitioner = directory.get_practitioner(db, principal, practitioner_id)
    return _confirm(request, db, principal, practitioner, {"start": start}, {})


def _confirm(
    request: Request,
    db: Db,
    principal: Any,
    practitioner: Practitioner,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    try:
        when = TypeAdapter(datetime).validate_python(values.get("start", ""))
    except ValidationError:
        return redirect(f"/doctors/{practitioner.id}")
    context = {
        "practitioner": practitioner,
        "when": when,
        "values": values,
        "errors": errors,
        "staff": principal.role != "patient",
    }
    return render_page(request, db, principal, "scheduling/confirm.html", context, status_code)


@router.post("/doctors/{practitioner_id}/book", response_model=None)
def book(
    request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Book the confirmed slot, then show the appointment."""
    practitioner = directory.get_practitioner(db, principal, practitioner_id)
    try:
        start = TypeAdapter(datetime).validate_python(form.get("start", ""))
        if start.tzinfo is None:
            raise ValidationFailed("The slot's time is missing its time zone.")
        patient_id = (
            _patient_by_health_id(db, form.get("health_id", "")) if principal.role != "patient" else None
        )
        appointment = booking.book(
            db,
            principal,
            booking.BookingRequest(
                practitioner_id=practitioner.id,
                start=start.astimezone(UTC),
                patient_id=patient_id,
                mode=form.get("mode", "in-person"),
                reason=form.get("reason", "")[:500],
            ),
        )
    except ValidationError:
        db.rollback()
        return redirect(f"/doctors/{practitioner.id}")
    except DomainError as exc:
        db.rollback()
        return _confirm(request, db, principal, practitioner, form, domain_field_errors(exc), exc.status)
    db.commit()
    return redirect(f"/appointments/{appointment.id}?booked=1")


def _patient_by_health_id(db: Db, raw: str) -> uuid.UUID:
    if not raw.strip():
        raise ValidationFailed("Enter the patient's Health ID (12 digits).", extra={"field": "health_id"})
    patient = patients.patient_by_health_id(db, raw)
    if patient is None:
        raise ValidationFailed("No patient has this Health ID.", extra={"field": "health_id"})
    return patient.id


# --- appointments ------------------------------------------------------------------------------------------


@router.get("/appointments", response_model=None)
def my_appointments(request: Request, principal: PageUser, db: Db, show: str = "upcoming") -> Response:
    """A patient's appointments (upcoming or past) and open waitlist offers."""
    if principal.role != "patient":
        return redirect("/schedule/day")
    now = utcnow()
    upcoming = show != "past"
    page = booking.list_appointments(
        db,
        principal,
        start=now - timedelta(hours=2) if upcoming else None,
        end=None if upcoming else now,
        descending=not upcoming,
        limit=50,
    )
    offers = [a for a in page.items if a.status == S.PROPOSED.value]
    items = [a for a in page.items if a.status != S.PROPOSED.value]
    context = {
        "items": items,
        "offers": offers,
        "show": "upcoming" if upcoming else "past",
        "waitlist": booking.my_waitlist(db, principal),
    }
    return render_page(request, db, principal, "scheduling/appointments.html", context)


@router.get("/appointments/{appointment_id}", response_class=HTMLResponse)
def appointment_page(
    request: Request, appointment_id: uuid.UUID, principal: PageUser, db: Db, booked: str = ""
) -> HTMLResponse:
    """One appointment, with the actions its state and the viewer's role allow."""
    appointment = booking.get_appointment(db, principal, appointment_id)
    return _appointment(request, db, principal, appointment, {}, booked=bool(booked))


def _appointment(
    request: Request,
    db: Db,
    principal: Any,
    appointment: Appointment,
    errors: dict[str, str],
    *,
    booked: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    zone = ZoneInfo(appointment.location.timezone if appointment.location else "UTC")
    staff = principal.role != "patient" and has_perm(principal, Perm.APPOINTMENT_MANAGE)
    steps = [
        step for step, (status, _stamp) in booking.PROGRESS.items() if staff and _allowed(appointment, status)
    ]
    context = {
        "a": appointment,
        "local_start": appointment.start_at.astimezone(zone),
        "local_end": appointment.end_at.astimezone(zone),
        "errors": errors,
        "booked": booked,
        "active": appointment.status in {s.value for s in ACTIVE},
        "can_change": appointment.status == S.BOOKED.value and appointment.start_at > utcnow(),
        "refusal": _patient_refusal(db, principal, appointment),
        "is_offer": appointment.status == S.PROPOSED.value,
        "steps": steps,
    }
    return render_page(request, db, principal, "scheduling/appointment.html", context, status_code)


def _patient_refusal(db: Db, principal: Any, appointment: Appointment) -> str | None:
    """Why a patient may not change this appointment online any more (shown instead of the buttons)."""
    if principal.role != "patient" or appointment.status != S.BOOKED.value:
        return None
    notice = timedelta(hours=booking.notice_hours(db, appointment.practitioner.organisation_id))
    return cancellation_refusal(appointment.start_at, utcnow(), min_notice=notice, by_staff=False)


def _allowed(appointment: Appointment, status: AppointmentStatus) -> bool:
    if status == S.NOSHOW and utcnow() < appointment.start_at:
        return False
    return can_transition(appointment.status, status)


@router.post("/appointments/{appointment_id}/cancel", response_model=None)
def cancel(
    request: Request, appointment_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Cancel (or decline an offer), after the page's confirmation."""
    return _act(
        request,
        db,
        principal,
        appointment_id,
        lambda: booking.cancel(db, principal, appointment_id, form.get("reason", "")[:300]),
    )


@router.post("/appointments/{appointment_id}/accept", response_model=None)
def accept(request: Request, appointment_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Accept a slot offered from the waitlist."""
    return _act(
        request, db, principal, appointment_id, lambda: booking.accept_offer(db, principal, appointment_id)
    )


@router.post("/appointments/{appointment_id}/step/{step}", response_model=None)
def step(request: Request, appointment_id: uuid.UUID, step: str, principal: PageUser, db: Db) -> Response:
    """Record a visit step (arrived, checked in, no-show, fulfilled)."""
    return _act(
        request, db, principal, appointment_id, lambda: booking.progress(db, principal, appointment_id, step)
    )


def _act(request: Request, db: Db, principal: Any, appointment_id: uuid.UUID, action: Any) -> Response:
    try:
        result = action()
    except DomainError as exc:
        db.rollback()
        if exc.status == 404:
            raise
        appointment = booking.get_appointment(db, principal, appointment_id)
        return _appointment(
            request, db, principal, appointment, domain_field_errors(exc), status_code=exc.status
        )
    db.commit()
    return redirect(f"/appointments/{result.id}")


@router.get("/appointments/{appointment_id}/reschedule", response_class=HTMLResponse)
def reschedule_picker(
    request: Request, appointment_id: uuid.UUID, principal: PageUser, db: Db, start: str = ""
) -> HTMLResponse:
    """Pick a new slot with the same practitioner."""
    appointment = booking.get_appointment(db, principal, appointment_id)
    return _slot_picker(request, db, principal, appointment.practitioner, start, appointment=appointment)


@router.post("/appointments/{appointment_id}/reschedule", response_model=None)
def reschedule(
    request: Request, appointment_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Move the appointment to the chosen slot."""

    def move() -> Appointment:
        try:
            start = TypeAdapter(datetime).validate_python(form.get("start", ""))
        except ValidationError:
            raise ValidationFailed("Pick a new time.") from None
        return booking.reschedule(db, principal, appointment_id, start.astimezone(UTC))

    return _act(request, db, principal, appointment_id, move)


# --- the clinic's day --------------------------------------------------------------------------------------


@router.get("/schedule/day", response_model=None)
def day(request: Request, principal: PageUser, db: Db, on: str = "", practitioner: str = "") -> Response:
    """A day's appointments: a doctor's own by default; front-desk staff may pick any colleague."""
    if principal.role == "patient":
        return redirect("/appointments")
    if not has_perm(principal, Perm.APPOINTMENT_MANAGE) and not has_perm(principal, Perm.SCHEDULE_MANAGE):
        raise Forbidden("Your role has no clinic calendar.")
    the_day = _parse_date(on, utcnow().date())
    colleagues = list(
        db.execute(
            select(Practitioner)
            .where(Practitioner.organisation_id == principal.organisation_id)
            .order_by(Practitioner.display_name)
        ).scalars()
    )
    own = directory.profile_for_user(db, principal.user_id)
    chosen = next((p for p in colleagues if str(p.id) == practitioner), own)
    items: list[Appointment] = []
    if chosen is not None and has_perm(principal, Perm.APPOINTMENT_MANAGE):
        start = datetime.combine(the_day, time(), tzinfo=UTC) - timedelta(hours=14)
        page = booking.list_appointments(
            db, principal, practitioner_id=chosen.id, start=start, end=start + timedelta(hours=38), limit=200
        )
        zone_of = {a.id: ZoneInfo(a.location.timezone if a.location else "UTC") for a in page.items}
        items = [a for a in page.items if a.start_at.astimezone(zone_of[a.id]).date() == the_day]
    context = {
        "day": the_day,
        "previous": (the_day - timedelta(days=1)).isoformat(),
        "next": (the_day + timedelta(days=1)).isoformat(),
        "colleagues": colleagues,
        "chosen": chosen,
        "items": items,
        "can_manage": has_perm(principal, Perm.APPOINTMENT_MANAGE),
    }
    return render_page(request, db, principal, "scheduling/day.html", context)


# --- working hours and leave (admins) ----------------------------------------------------------------------


@router.get("/admin/schedules", response_class=HTMLResponse)
def schedules(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """The organisation's practitioners and their weekly hours."""
    if not has_perm(principal, Perm.SCHEDULE_MANAGE):
        raise Forbidden("Only administrators manage working hours.")
    practitioners = list(
        db.execute(
            select(Practitioner)
            .where(Practitioner.organisation_id == principal.organisation_id)
            .order_by(Practitioner.display_name)
        ).scalars()
    )
    hours: dict[uuid.UUID, list[Schedule]] = defaultdict(list)
    for row in db.execute(
        select(Schedule).where(Schedule.practitioner_id.in_([p.id for p in practitioners]))
    ).scalars():
        hours[row.practitioner_id].append(row)
    overall, missed = reminders.organisation_missed_rates(db, principal)
    policy = booking.booking_policy(db, principal)
    context = {
        "policy": policy,
        "errors": {},
        "practitioners": practitioners,
        "hours": hours,
        "weekdays": WEEKDAYS,
        "overall": overall,
        "missed": missed,
    }
    return render_page(request, db, principal, "scheduling/schedules.html", context)


@router.post("/admin/schedules/policy", response_model=None)
def policy_save(principal: PageUser, db: Db, form: FormValues) -> Response:
    """Save the cancellation notice and reminder times."""
    try:
        notice = int(form.get("cancel_notice_hours", ""))
        hours = [int(h) for h in form.get("reminder_hours", "").replace(" ", "").split(",") if h]
    except ValueError:
        raise ValidationFailed("Enter whole hours, e.g. 24 and 24,2.") from None
    booking.update_booking_policy(db, principal, cancel_notice_hours=notice, reminder_hours=hours)
    db.commit()
    return redirect("/admin/schedules?saved=1")


@router.get("/admin/schedules/{practitioner_id}", response_class=HTMLResponse)
def schedule_edit(request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db) -> HTMLResponse:
    """Edit one practitioner's weekly hours and time off."""
    return _schedule_page(request, db, principal, practitioner_id, {}, {})


def _schedule_page(
    request: Request,
    db: Db,
    principal: Any,
    practitioner_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    if not has_perm(principal, Perm.SCHEDULE_MANAGE):
        raise Forbidden("Only administrators manage working hours.")
    practitioner = availability.managed_practitioner(db, principal, practitioner_id)
    rows = db.execute(select(Schedule).where(Schedule.practitioner_id == practitioner.id)).scalars().all()
    by_day = {row.weekday: row for row in rows}
    locations = list(
        db.execute(
            select(Location)
            .where(Location.organisation_id == practitioner.organisation_id)
            .order_by(Location.name)
        ).scalars()
    )
    time_off = list(
        db.execute(
            select(TimeOff)
            .where(TimeOff.practitioner_id == practitioner.id, TimeOff.ends_at > utcnow())
            .order_by(TimeOff.starts_at)
        ).scalars()
    )
    context = {
        "p": practitioner,
        "by_day": by_day,
        "weekdays": WEEKDAYS,
        "locations": locations,
        "time_off": time_off,
        "values": values,
        "errors": errors,
    }
    return render_page(request, db, principal, "scheduling/schedule_edit.html", context, status_code)


@router.post("/admin/schedules/{practitioner_id}", response_model=None)
def schedule_save(
    request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Save the weekly hours: one block per working weekday (start, end, slot length, one break)."""
    try:
        blocks = _blocks_from(form)
        availability.set_schedule(db, principal, practitioner_id, blocks)
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        return _schedule_page(request, db, principal, practitioner_id, form, domain_field_errors(exc), 422)
    db.commit()
    return redirect(f"/admin/schedules/{practitioner_id}?saved=1")


def _blocks_from(form: dict[str, str]) -> list[WeeklyHours]:
    try:
        location_id = uuid.UUID(form.get("location_id", ""))
    except ValueError:
        raise ValidationFailed("Pick a location.", extra={"field": "location_id"}) from None
    blocks = []
    for day in range(7):
        if form.get(f"on_{day}") != "1":
            continue
        try:
            start, end = time.fromisoformat(form[f"start_{day}"]), time.fromisoformat(form[f"end_{day}"])
            minutes = int(form.get(f"slot_{day}", "15"))
            breaks: tuple[tuple[time, time], ...] = ()
            if form.get(f"break_start_{day}") and form.get(f"break_end_{day}"):
                breaks = (
                    (
                        time.fromisoformat(form[f"break_start_{day}"]),
                        time.fromisoformat(form[f"break_end_{day}"]),
                    ),
                )
        except (KeyError, ValueError):
            raise ValidationFailed(
                f"{WEEKDAYS[day]}: enter times as HH:MM.", extra={"field": f"start_{day}"}
            ) from None
        if start >= end or not 5 <= minutes <= 240 or any(b >= e or b < start or e > end for b, e in breaks):
            raise ValidationFailed(
                f"{WEEKDAYS[day]}: the end must follow the start, slots last 5-240 minutes, "
                "and the break must fall inside the hours.",
                extra={"field": f"start_{day}"},
            )
        blocks.append(WeeklyHours(day, start, end, minutes, location_id, breaks))
    return blocks


@router.post("/admin/schedules/{practitioner_id}/time-off", response_model=None)
def time_off_add(
    request: Request, practitioner_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Add leave, a holiday or a block (whole days, in the practitioner's first location's time zone)."""
    try:
        first = date.fromisoformat(form.get("from", ""))
        last = date.fromisoformat(form.get("until", "") or form.get("from", ""))
    except ValueError:
        return _schedule_page(
            request, db, principal, practitioner_id, form, {"from": "Enter the first and last day."}, 422
        )
    locations = directory.practitioner_locations(db, practitioner_id)
    zone = ZoneInfo(locations[0].timezone if locations else "UTC")
    try:
        availability.add_time_off(
            db,
            principal,
            practitioner_id,
            starts_at=datetime.combine(first, time(), tzinfo=zone).astimezone(UTC),
            ends_at=datetime.combine(last + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC),
            kind=form.get("kind", "leave") if form.get("kind") in ("leave", "holiday", "block") else "leave",
            reason=form.get("reason", "")[:200],
        )
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        errors = domain_field_errors(exc)
        if "ends_at" in errors:
            errors["until"] = errors.pop("ends_at")
        return _schedule_page(request, db, principal, practitioner_id, form, errors, 422)
    db.commit()
    return redirect(f"/admin/schedules/{practitioner_id}")


@router.post("/admin/time-off/{time_off_id}/delete", response_model=None)
def time_off_remove(time_off_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Remove a period of time off (after the page's confirmation)."""
    row = db.get(TimeOff, time_off_id)
    practitioner_id = row.practitioner_id if row else None
    availability.remove_time_off(db, principal, time_off_id)
    db.commit()
    return redirect(f"/admin/schedules/{practitioner_id}")


# --- calendar feeds ----------------------------------------------------------------------------------------


@router.get("/calendar-feeds", response_class=HTMLResponse)
def feeds(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """Your private calendar subscription URLs: create one (shown once), revoke old ones."""
    return _feeds_page(request, db, principal, new=None)


def _feeds_page(
    request: Request, db: Db, principal: Any, new: calendar.NewFeed | None, status_code: int = 200
) -> HTMLResponse:
    context = {"feeds": calendar.list_feeds(db, principal), "new": new}
    return render_page(request, db, principal, "scheduling/feeds.html", context, status_code)


@router.post("/calendar-feeds", response_class=HTMLResponse)
def feed_create(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """Create a feed and show its URL, this once."""
    new = calendar.create_feed(db, principal)
    db.flush()
    return _feeds_page(request, db, principal, new=new, status_code=201)


@router.post("/calendar-feeds/{feed_id}/revoke", response_model=None)
def feed_revoke(feed_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Revoke a feed (after the page's confirmation): calendar apps stop receiving updates."""
    calendar.revoke_feed(db, principal, feed_id)
    db.commit()
    return redirect("/calendar-feeds")
