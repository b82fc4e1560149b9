"""Donor pages. Blood bank staff: the donor list with search and registration, a donor's page (profile,
eligibility per donation type, deferrals, availability, history, booking for them), recording a donation
(the screening form; the result is shown on the donor's page) and the day's donation appointments. Donors:
their portal ``/donor`` (profile completion, next eligible dates, upcoming appointment, availability,
history) and ``/donor/book`` (choose a blood bank, a donation type, a day and a free time).

Forms post normally; success redirects (reloading never posts twice), a form error shows the page again
with the messages beside the fields (422 or 409). Permission errors get the error page."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from caresync.bloodbank.donors import din as din_codes
from caresync.bloodbank.donors import service
from caresync.bloodbank.donors.appointments import TIMEZONE, local_day, local_text
from caresync.bloodbank.donors.schemas import (
    AppointmentIn,
    DeferralIn,
    DonationIn,
    DonorIn,
    DonorUpdate,
    SelfDonorIn,
)
from caresync.bloodbank.paging import page_links
from caresync.bloodbank.rules import BLOOD_GROUPS, DONATION_TYPES
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, ValidationFailed
from caresync.core.rbac import Perm, require
from caresync.db import utcnow
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import (
    PageUser,
    domain_field_errors,
    form_field_errors,
    redirect,
    render_page,
)

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
DIR = "bloodbank/donors"
PORTAL = "bloodbank/donor_portal"
PAGE_SIZE = 25
TYPE_LABELS = {
    "whole_blood": "Whole blood",
    "double_red_cells": "Double red cells",
    "platelets": "Platelets",
    "plasma": "Plasma",
}
DEFERRAL_FIELDS = ("kind", "reason", "ends_on")


class FormProblem(Exception):
    """A form that cannot be saved: the field messages and the status to show the page again with."""

    def __init__(self, errors: dict[str, str], status: int) -> None:
        super().__init__(errors)
        self.errors, self.status = errors, status


def _attempt(db: Session, action: Callable[[], T]) -> T:
    """Run a service call; a validation error or conflict becomes a :class:`FormProblem` (the transaction
    rolled back), permission errors and missing objects go to the error page."""
    try:
        return action()
    except ValidationError as exc:
        db.rollback()
        raise FormProblem(form_field_errors(exc), 422) from None
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404) and exc.extra.get("field") is None:
            raise
        raise FormProblem(domain_field_errors(exc), exc.status) from None


def _model(values: dict[str, str], model: type[BaseModel]) -> Any:
    """Form fields as a validated model: an empty optional field takes its default, a checkbox (a plain
    ``bool`` field) is true when sent."""
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.annotation is bool:
            data[name] = name in values
        elif (value := values.get(name, "").strip()) or info.is_required():
            data[name] = value
    return model.model_validate(data)


def _common() -> dict[str, Any]:
    return {
        "type_labels": TYPE_LABELS,
        "donation_types": [(t, TYPE_LABELS[t]) for t in DONATION_TYPES],
        "blood_groups": [(g, g) for g in BLOOD_GROUPS],
        "local_text": local_text,
        "din_label": din_codes.label,
        "timezone": TIMEZONE,
    }


# --- staff: donor list and registration ---------------------------------------------------------------------


@router.get("/bloodbank/donors")
def donor_list(
    request: Request,
    db: Db,
    principal: PageUser,
    q: str = "",
    blood_group: str = "",
    eligible: str = "",
    cursor: str | None = None,
) -> Response:
    """Staff: search their blood bank's donors."""
    filters = {
        "q": q[:100],
        "blood_group": blood_group if blood_group in BLOOD_GROUPS else "",
        "eligible": eligible,
    }
    eligible_now = {"yes": True, "no": False}.get(eligible)
    page = service.list_donors(
        db,
        principal,
        search=filters["q"],
        blood_group=filters["blood_group"] or None,
        eligible_now=eligible_now,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    query = {k: v for k, v in filters.items() if v}
    links = page_links("/bloodbank/donors", query, page.next_cursor, cursor)
    context = {"page": page, "filters": filters, **links, **_common()}
    return render_page(request, db, principal, f"{DIR}/list.html", context)


def _register_form(
    request: Request,
    db: Session,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    context = {"values": values, "errors": errors, **_common()}
    return render_page(request, db, principal, f"{DIR}/new.html", context, status)


@router.get("/bloodbank/donors/new")
def new_donor(request: Request, db: Db, principal: PageUser) -> Response:
    """Staff: the form to register a donor."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donor.register")
    return _register_form(request, db, principal, {}, {}, 200)


@router.post("/bloodbank/donors/new")
def register_donor(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Staff: register a donor, then open their page."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donor.register")
    try:
        donor = _attempt(db, lambda: service.register_donor(db, principal, _model(values, DonorIn)))
    except FormProblem as problem:
        return _register_form(request, db, principal, values, problem.errors, problem.status)
    url = f"/bloodbank/donors/{donor.id}?registered=1"
    db.commit()
    return redirect(url)


# --- staff: a donor's page ----------------------------------------------------------------------------------


def _donor_page(
    request: Request,
    db: Session,
    principal: Principal,
    donor_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    book_date: date | None = None,
    book_type: str = "whole_blood",
    recorded: uuid.UUID | None = None,
) -> Response:
    detail = service.donor_detail(db, principal, donor_id)
    slots: list[datetime] = []
    if book_date is not None and principal.organisation_id is not None:
        slots = service.free_slots(db, principal, principal.organisation_id, book_date, book_type)
    context = {
        "detail": detail,
        "errors": errors or {},
        "values": values or {},
        "today": local_day(utcnow()),
        "book_date": book_date,
        "book_type": book_type,
        "slots": slots,
        "recorded": service.donation_result(db, detail.donor, recorded) if recorded else None,
        **_common(),
    }
    return render_page(request, db, principal, f"{DIR}/detail.html", context, status)


@router.get("/bloodbank/donors/{donor_id}")
def donor_page(
    request: Request,
    db: Db,
    principal: PageUser,
    donor_id: uuid.UUID,
    book_date: date | None = None,
    book_type: str = "whole_blood",
    recorded: uuid.UUID | None = None,
) -> Response:
    """Staff: a donor's profile, eligibility, deferrals, availability and history; free times to book."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donor.read")
    book_type = book_type if book_type in DONATION_TYPES else "whole_blood"
    return _donor_page(
        request, db, principal, donor_id, book_date=book_date, book_type=book_type, recorded=recorded
    )


def _on_donor_page(
    request: Request,
    db: Session,
    principal: Principal,
    donor_id: uuid.UUID,
    values: dict[str, str],
    action: Callable[[], object],
) -> Response:
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donor.update")
    try:
        _attempt(db, action)
    except FormProblem as problem:
        return _donor_page(
            request, db, principal, donor_id, errors=problem.errors, values=values, status=problem.status
        )
    db.commit()
    return redirect(f"/bloodbank/donors/{donor_id}")


@router.post("/bloodbank/donors/{donor_id}/deferrals")
def add_deferral(
    request: Request, db: Db, principal: PageUser, donor_id: uuid.UUID, values: FormValues
) -> Response:
    """Staff: defer the donor."""
    return _on_donor_page(
        request,
        db,
        principal,
        donor_id,
        values,
        lambda: service.add_deferral(db, principal, donor_id, _model(values, DeferralIn)),
    )


@router.post("/bloodbank/donors/{donor_id}/deferrals/{deferral_id}/lift")
def lift_deferral(
    request: Request, db: Db, principal: PageUser, donor_id: uuid.UUID, deferral_id: uuid.UUID
) -> Response:
    """Staff: lift one of the donor's deferrals (the form asks for confirmation first)."""
    return _on_donor_page(
        request,
        db,
        principal,
        donor_id,
        {},
        lambda: service.lift_deferral(db, principal, donor_id, deferral_id),
    )


@router.post("/bloodbank/donors/{donor_id}/availability")
def staff_availability(
    request: Request, db: Db, principal: PageUser, donor_id: uuid.UUID, values: FormValues
) -> Response:
    """Staff: switch the donor's availability for call-outs (optionally paused until a day)."""
    return _on_donor_page(
        request, db, principal, donor_id, values, lambda: _availability(db, principal, donor_id, values)
    )


@router.post("/bloodbank/donors/{donor_id}/profile")
def staff_profile(
    request: Request, db: Db, principal: PageUser, donor_id: uuid.UUID, values: FormValues
) -> Response:
    """Staff: change the donor's contact details, weight, height or typed blood group."""
    fields = {
        k: v
        for k, v in values.items()
        if k in ("phone", "email", "city", "weight_kg", "height_cm", "blood_group") and v.strip()
    }
    return _on_donor_page(
        request,
        db,
        principal,
        donor_id,
        values,
        lambda: service.update_donor(db, principal, donor_id, _model(fields, DonorUpdate)),
    )


def _availability(
    db: Session, principal: Principal, donor_id: uuid.UUID | None, values: dict[str, str]
) -> object:
    """The availability form (``available`` yes/no, an optional ``unavailable_until`` day)."""
    until = values.get("unavailable_until", "").strip()
    pause = _parse_date(until)
    if until and pause is None:
        raise ValidationFailed("Enter a date.", extra={"field": "unavailable_until"})
    return service.set_availability(db, principal, donor_id, values.get("available") == "yes", pause)


@router.post("/bloodbank/donors/{donor_id}/book")
def staff_book(
    request: Request, db: Db, principal: PageUser, donor_id: uuid.UUID, values: FormValues
) -> Response:
    """Staff: book the donor at their blood bank at a free time."""
    return _on_donor_page(
        request, db, principal, donor_id, values, lambda: _book(db, principal, donor_id, values)
    )


def _book(db: Session, principal: Principal, donor_id: uuid.UUID | None, values: dict[str, str]) -> object:
    body = AppointmentIn.model_validate(
        {
            "donor_id": donor_id,
            "organisation_id": values.get("organisation_id") or principal.organisation_id,
            "starts_at": values.get("starts_at", ""),
            "donation_type": values.get("donation_type", "whole_blood"),
        }
    )
    return service.book_appointment(
        db, principal, body.donor_id, body.organisation_id, body.starts_at, body.donation_type
    )


# --- staff: recording a donation ----------------------------------------------------------------------------


def _donation_form(
    request: Request,
    db: Session,
    principal: Principal,
    donor_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    detail = service.donor_detail(db, principal, donor_id)
    context = {"detail": detail, "values": values, "errors": errors, **_common()}
    return render_page(request, db, principal, f"{DIR}/donation_new.html", context, status)


@router.get("/bloodbank/donations/new")
def new_donation(
    request: Request, db: Db, principal: PageUser, donor: uuid.UUID, appointment: uuid.UUID | None = None
) -> Response:
    """Staff: the screening and collection form for a donor (from an appointment, when given)."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donation.record")
    values = {"appointment_id": str(appointment)} if appointment else {}
    return _donation_form(request, db, principal, donor, values, {}, 200)


@router.post("/bloodbank/donations")
def record_donation(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Staff: record the donation; the donor's page then shows the units made or the deferral."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donation.record")
    try:
        donor_id = uuid.UUID(values.get("donor_id", ""))
    except ValueError:
        return redirect("/bloodbank/donors")
    try:
        done = _attempt(db, lambda: service.record_donation(db, principal, _model(values, DonationIn)))
    except FormProblem as problem:
        return _donation_form(request, db, principal, donor_id, values, problem.errors, problem.status)
    url = f"/bloodbank/donors/{donor_id}?recorded={done.donation.id}"
    db.commit()
    return redirect(url)


# --- staff: the day's appointments --------------------------------------------------------------------------


def _day_page(
    request: Request, db: Session, principal: Principal, day: date, error: str = "", status: int = 200
) -> Response:
    items = service.list_appointments(db, principal, day)
    context = {
        "items": items,
        "day": day,
        "previous": day - timedelta(days=1),
        "next": day + timedelta(days=1),
        "now": utcnow(),
        "error": error,
        **_common(),
    }
    return render_page(request, db, principal, f"{DIR}/appointments.html", context, status)


@router.get("/bloodbank/appointments")
def day_appointments(request: Request, db: Db, principal: PageUser, on: date | None = None) -> Response:
    """Staff: their blood bank's donation appointments of a day (today by default)."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donation_appointment.list")
    return _day_page(request, db, principal, on or local_day(utcnow()))


def _appointment_action(
    request: Request, db: Session, principal: Principal, values: dict[str, str], action: Callable[[], object]
) -> Response:
    """Cancel or no-show from the day's list, then back to that day (or the day with the error)."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.donation_appointment.update")
    day = _parse_date(values.get("on", "")) or local_day(utcnow())
    try:
        _attempt(db, action)
    except FormProblem as problem:
        message = next(iter(problem.errors.values()), "")
        return _day_page(request, db, principal, day, message, problem.status)
    db.commit()
    return redirect(f"/bloodbank/appointments?on={day.isoformat()}")


@router.post("/bloodbank/appointments/{appointment_id}/cancel")
def staff_cancel(
    request: Request, db: Db, principal: PageUser, appointment_id: uuid.UUID, values: FormValues
) -> Response:
    """Staff: cancel an appointment (after confirming); the donor is told."""
    return _appointment_action(
        request, db, principal, values, lambda: service.cancel_appointment(db, principal, appointment_id)
    )


@router.post("/bloodbank/appointments/{appointment_id}/no-show")
def staff_no_show(
    request: Request, db: Db, principal: PageUser, appointment_id: uuid.UUID, values: FormValues
) -> Response:
    """Staff: the donor did not come."""
    return _appointment_action(
        request, db, principal, values, lambda: service.mark_no_show(db, principal, appointment_id)
    )


# --- the donor portal ---------------------------------------------------------------------------------------


def _portal(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    require(db, principal, Perm.DONATE, "bloodbank.donor.read")
    detail = None
    if principal.user_id is not None and service.donor_for_user(db, principal.user_id) is not None:
        detail = service.donor_detail(db, principal, None)
    context = {
        "detail": detail,
        "values": values or {},
        "errors": errors or {},
        "today": local_day(utcnow()),
        "now": utcnow(),
        **_common(),
    }
    return render_page(request, db, principal, f"{PORTAL}/home.html", context, status)


@router.get("/donor")
def portal(request: Request, db: Db, principal: PageUser) -> Response:
    """Donors: their portal (the profile form until they complete it)."""
    return _portal(request, db, principal)


def _on_portal(
    request: Request, db: Session, principal: Principal, values: dict[str, str], action: Callable[[], object]
) -> Response:
    require(db, principal, Perm.DONATE, "bloodbank.donor.update")
    try:
        _attempt(db, action)
    except FormProblem as problem:
        return _portal(request, db, principal, values=values, errors=problem.errors, status=problem.status)
    db.commit()
    return redirect("/donor")


@router.post("/donor/profile")
def save_profile(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Donors: complete their profile, or change their contact details, weight and height."""
    if principal.user_id is not None and service.donor_for_user(db, principal.user_id) is not None:
        fields = {
            k: v for k, v in values.items() if k in ("phone", "email", "city", "weight_kg", "height_cm")
        }
        return _on_portal(
            request,
            db,
            principal,
            values,
            lambda: service.update_donor(db, principal, None, _model(fields, DonorUpdate)),
        )
    return _on_portal(
        request,
        db,
        principal,
        values,
        lambda: service.register_self(db, principal, _model(values, SelfDonorIn)),
    )


@router.post("/donor/availability")
def own_availability(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Donors: switch whether they may be called (optionally paused until a day)."""
    return _on_portal(request, db, principal, values, lambda: _availability(db, principal, None, values))


@router.post("/donor/appointments/{appointment_id}/cancel")
def own_cancel(request: Request, db: Db, principal: PageUser, appointment_id: uuid.UUID) -> Response:
    """Donors: cancel their upcoming appointment (after confirming)."""
    return _on_portal(
        request, db, principal, {}, lambda: service.cancel_appointment(db, principal, appointment_id)
    )


def _booking_page(
    request: Request,
    db: Session,
    principal: Principal,
    choice: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    sites = service.donation_sites(db, principal)
    slots: list[datetime] = []
    site_id, day = _parse_uuid(choice.get("organisation_id", "")), _parse_date(choice.get("date", ""))
    eligibility = None
    if site_id and day and choice.get("donation_type") in DONATION_TYPES:
        slots = _attempt_or_empty(
            db, lambda: service.free_slots(db, principal, site_id, day, choice["donation_type"]), errors
        )
        if principal.user_id and (donor := service.donor_for_user(db, principal.user_id)):
            eligibility = service.donor_status(
                db, donor, choice["donation_type"], day, organisation_id=site_id
            )
    context = {
        "sites": sites,
        "choice": choice,
        "slots": slots,
        "errors": errors,
        "eligibility": eligibility,
        "today": local_day(utcnow()),
        **_common(),
    }
    return render_page(request, db, principal, f"{PORTAL}/book.html", context, status)


def _attempt_or_empty(
    db: Session, action: Callable[[], list[datetime]], errors: dict[str, str]
) -> list[datetime]:
    try:
        return _attempt(db, action)
    except FormProblem as problem:
        errors.update(problem.errors)
        return []


def _parse_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@router.get("/donor/book")
def book_page(
    request: Request,
    db: Db,
    principal: PageUser,
    organisation_id: str = "",
    donation_type: str = "whole_blood",
    date: str = "",
) -> Response:
    """Donors: choose a blood bank, a donation type and a day, then a free time."""
    require(db, principal, Perm.DONATE, "bloodbank.donation_slots")
    if principal.user_id is None or service.donor_for_user(db, principal.user_id) is None:
        return redirect("/donor")
    choice = {"organisation_id": organisation_id, "donation_type": donation_type, "date": date}
    return _booking_page(request, db, principal, choice, {})


@router.post("/donor/book")
def book(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Donors: book the chosen time."""
    require(db, principal, Perm.DONATE, "bloodbank.donation_appointment.book")
    try:
        _attempt(db, lambda: _book(db, principal, None, values))
    except FormProblem as problem:
        return _booking_page(request, db, principal, values, problem.errors, problem.status)
    db.commit()
    return redirect("/donor?booked=1")
