"""Dose schedule and adherence pages: the patient's day of doses (Taken / Skip, reminder switches), the
dashboard's "next doses" fragment, adherence per medication with a weekly coverage chart (for the patient
and for their clinicians), and the care team's low-adherence list. Thin: they call the same services as the
API.

Marking a dose posts with HTMX and gets the refreshed dose row back (an error inline, status 200 so HTMX
swaps it in); without JavaScript the form posts normally and is redirected back to the day."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.core import localtime
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, Forbidden, ValidationFailed
from caresync.db import utcnow
from caresync.prescriptions.adherence import reminders, schedule, service
from caresync.prescriptions.adherence.schedule import MARK_AHEAD, DaySchedule, Dose
from caresync.prescriptions.rules import ADHERENCE_THRESHOLD, ROUTES
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
TEMPLATE_DIR = "prescriptions"
SCHEDULE_URL = "/me/medications/schedule"
# Parts of the day the schedule is grouped in: (label, icon, first hour, first hour of the next part).
DAY_PARTS = (("Morning", "sunrise", 0, 12), ("Afternoon", "sun", 12, 17), ("Evening", "moon", 17, 24))
PANEL_DOSES = 4
PANEL_FLAGS = 5  # patients on the clinician dashboard's low-adherence card
PERIOD_CHOICES = (30, 90, 180)
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)  # days the pages navigate between


def _own_patient(principal: Principal) -> uuid.UUID:
    """The signed-in patient's id (these pages show one's own medications)."""
    if principal.role != "patient" or principal.patient_id is None:
        raise Forbidden("This page is for patients: it shows your own medications.")
    return principal.patient_id


def _day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query value (``None`` when absent, not a date or absurdly far off: today is shown)."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is not None and FIRST_DAY <= day <= LAST_DAY else None


def _day_url(day: date, **extra: str) -> str:
    return f"{SCHEDULE_URL}?{urlencode({'day': day.isoformat(), **extra})}"


def _parts(doses: list[Dose]) -> list[tuple[str, str, list[Dose]]]:
    """The day's doses grouped into morning, afternoon and evening (empty parts left out)."""
    grouped = [
        (label, icon, [d for d in doses if first <= d.local.hour < last])
        for label, icon, first, last in DAY_PARTS
    ]
    return [part for part in grouped if part[2]]


# --- the day's doses ------------------------------------------------------------------------------------


@router.get(SCHEDULE_URL)
def day_page(
    request: Request, db: Db, principal: PageUser, day: str | None = None, saved: str = ""
) -> Response:
    """The patient's doses of one day in their local time, grouped by part of the day."""
    day_schedule = schedule.day_schedule(db, principal, _own_patient(principal), _day(day))
    return _render_day(request, db, principal, day_schedule, saved=saved)


def _render_day(
    request: Request,
    db: Session,
    principal: Principal,
    day_schedule: DaySchedule,
    *,
    saved: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    today = localtime.local_date(day_schedule.timezone)
    context: dict[str, Any] = {
        "schedule": day_schedule,
        "parts": _parts(day_schedule.doses),
        "day": day_schedule.day,
        "today": today,
        "now": utcnow(),
        "previous_url": _day_url(day_schedule.day - timedelta(days=1)),
        "next_url": _day_url(day_schedule.day + timedelta(days=1)),
        "today_url": SCHEDULE_URL,
        "saved": saved,
        "error": error,
        "routes": ROUTES,
    }
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/dose_schedule.html", context, status_code)


def _scheduled_at(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("That is not a dose time.", extra={"field": "scheduled_at"}) from None


def _prescription_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationFailed("Choose a medication.", extra={"field": "prescription_id"}) from None


@router.post(f"{SCHEDULE_URL}/mark")
def mark(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Mark a dose taken or skipped: the refreshed dose row for HTMX, else back to the day."""
    patient_id = _own_patient(principal)
    day = _day(values.get("day"))
    try:
        dose = schedule.mark_dose(
            db,
            principal,
            _prescription_id(values.get("prescription_id", "")),
            _scheduled_at(values.get("scheduled_at", "")),
            values.get("status", ""),
        )
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404) and exc.extra.get("field") is None:
            raise
        message = domain_field_errors(exc).popitem()[1]
        if is_htmx(request):
            return _dose_row(request, db, principal, values, error=message)
        day_schedule = schedule.day_schedule(db, principal, patient_id, day)
        return _render_day(request, db, principal, day_schedule, error=message, status_code=exc.status)
    if not is_htmx(request):
        db.commit()
        return redirect(_day_url(dose.local.date(), saved="dose"))
    context = {"dose": dose, "now": utcnow(), "day": dose.local.date(), "message": f"Marked {dose.mark}."}
    context["routes"] = ROUTES
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/dose_row.html", context)


def _dose_row(
    request: Request, db: Session, principal: Principal, values: dict[str, str], *, error: str
) -> Response:
    """The row the patient tried to mark, as it stands, with the error (HTMX swaps it in place)."""
    day = _day(values.get("day"))
    day_schedule = schedule.day_schedule(db, principal, _own_patient(principal), day)
    wanted = (values.get("prescription_id", ""), values.get("scheduled_at", ""))
    dose = next(
        (d for d in day_schedule.doses if (str(d.prescription_id), d.scheduled_at.isoformat()) == wanted),
        None,
    )
    context = {"dose": dose, "now": utcnow(), "day": day_schedule.day, "error": error, "routes": ROUTES}
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/dose_row.html", context)


@router.post("/me/medications/{prescription_id}/reminders")
def toggle_reminders(
    request: Request, db: Db, principal: PageUser, values: FormValues, prescription_id: uuid.UUID
) -> Response:
    """Turn one medication's dose reminders on or off, then back to the day."""
    _own_patient(principal)
    enabled = values.get("enabled") == "1"
    reminders.set_reminders(db, principal, prescription_id, enabled)
    db.commit()
    day = _day(values.get("day"))
    saved = "reminders-on" if enabled else "reminders-off"
    return redirect(_day_url(day, saved=saved) if day else f"{SCHEDULE_URL}?saved={saved}")


@router.get(f"{SCHEDULE_URL}/panel")
def panel(request: Request, db: Db, principal: PageUser) -> Response:
    """Fragment for the patient dashboard: today's next doses not marked yet."""
    day_schedule = schedule.day_schedule(db, principal, _own_patient(principal))
    now = utcnow()
    pending = [d for d in day_schedule.doses if d.mark is None and d.markable(now)]
    upcoming = [d for d in day_schedule.doses if d.mark is None and d.scheduled_at > now + MARK_AHEAD]
    context = {
        "doses": (pending + upcoming)[:PANEL_DOSES],
        "total": len(day_schedule.doses),
        "left": len(pending) + len(upcoming),
        "now": now,
        "day": day_schedule.day,
        "timezone": day_schedule.timezone,
        "routes": ROUTES,
    }
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/dose_panel.html", context)


# --- adherence ------------------------------------------------------------------------------------------


def _days(value: int) -> int:
    return value if value in PERIOD_CHOICES else service.DEFAULT_DAYS


def _render_adherence(
    request: Request, db: Session, principal: Principal, patient_id: uuid.UUID, days: int, base_url: str
) -> Response:
    report = service.patient_adherence(db, principal, patient_id, _days(days))
    context = {
        "report": report,
        "periods": PERIOD_CHOICES,
        "base_url": base_url,
        "own": principal.role == "patient",
        "threshold": ADHERENCE_THRESHOLD,
    }
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/adherence.html", context)


@router.get("/me/medications/adherence")
def my_adherence(request: Request, db: Db, principal: PageUser, days: int = service.DEFAULT_DAYS) -> Response:
    """The patient's adherence per medication, with weekly coverage over the last twelve weeks."""
    patient_id = _own_patient(principal)
    return _render_adherence(request, db, principal, patient_id, days, "/me/medications/adherence")


@router.get("/patients/{patient_id}/adherence")
def patient_adherence(
    request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID, days: int = service.DEFAULT_DAYS
) -> Response:
    """A clinician's view of a patient's adherence (within the medication consent scope)."""
    return _render_adherence(request, db, principal, patient_id, days, f"/patients/{patient_id}/adherence")


@router.get("/prescriptions/adherence")
def flags(request: Request, db: Db, principal: PageUser, cursor: str | None = None) -> Response:
    """Doctors and nurses: their patients' medications below the adherence threshold."""
    page = service.low_adherence(db, principal, limit=50, cursor=cursor or None)
    context = {
        "page": page,
        "threshold": ADHERENCE_THRESHOLD,
        "days": service.DEFAULT_DAYS,
        "min_age": service.MIN_FLAG_AGE_DAYS,
        "next_url": f"/prescriptions/adherence?cursor={page.next_cursor}" if page.next_cursor else "",
        "first_url": "/prescriptions/adherence" if cursor else "",
    }
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/adherence_flags.html", context)


@router.get("/prescriptions/adherence/panel")
def flags_panel(request: Request, db: Db, principal: PageUser) -> Response:
    """Fragment for the doctor's and nurse's dashboard: the first patients below the threshold."""
    page = service.low_adherence(db, principal, limit=PANEL_FLAGS)
    context = {"page": page, "threshold": ADHERENCE_THRESHOLD}
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/adherence_flags_panel.html", context)
