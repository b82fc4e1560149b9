"""Blood request pages.

Clinicians (``/blood-requests``): their organisation's requests for the patients they care for, the
"Order blood" form (find one of their patients, then component, units, urgency and how soon), and a
request's tracking page where they confirm transfusions or cancel. Blood bank staff
(``/bloodbank/requests``): the queue, emergency first with a needed-by countdown, and a request's work
page: proposed units to choose and allocate (or auto-allocate), emergency release, crossmatch, issue and
returns.

Thin: forms post normally, call the same services as the API and are redirected on success; a refused
step shows the page again with the reason (status 409/422). Permission errors get the error page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.bloodbank.models import BloodRequest
from caresync.bloodbank.paging import page_links
from caresync.bloodbank.requests import service
from caresync.bloodbank.rules import COMPONENTS, URGENCIES, Urgency
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, NotFound, ValidationFailed
from caresync.core.rbac import Perm, authorize_patient, require
from caresync.db import utcnow
from caresync.identity.models import Patient
from caresync.identity.rules import BLOOD_GROUPS
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "bloodbank/requests"
PER_PAGE = 25
EXTRA_CHOICES = 10  # alternatives shown beyond the units a request still needs
CLINICIAN_TABS = (
    ("queue", "In progress"),
    ("completed", "Completed"),
    ("cancelled", "Cancelled"),
    ("", "All"),
)
STAFF_TABS = (
    ("queue", "To do"),
    ("open", "Open"),
    ("allocated", "Allocated"),
    ("issued", "Issued"),
    ("completed", "Completed"),
    ("cancelled", "Cancelled"),
    ("", "All"),
)
# How soon the blood is needed, in hours (the form offers these rather than a clock time, so that there
# is no time zone to get wrong in an emergency).
NEEDED_WITHIN = (("0", "Now"), ("1", "Within 1 hour"), ("2", "Within 2 hours"), ("4", "Within 4 hours"),
                 ("6", "Within 6 hours"), ("12", "Within 12 hours"), ("24", "Within 24 hours"),
                 ("48", "Within 2 days"), ("72", "Within 3 days"))  # fmt: skip
COMPONENT_LABELS = {
    "red_cells": "Red cells",
    "whole_blood": "Whole blood",
    "platelets": "Platelets",
    "plasma": "Plasma (FFP)",
    "cryo": "Cryoprecipitate",
}
FORM_DEFAULTS = {"component": "red_cells", "units": "2", "urgency": "routine", "needed_within": "4"}


def due_label(needed_by: datetime, now: datetime) -> str:
    """A countdown to the time needed: "in 1 h 20 min", "overdue by 5 min"."""
    minutes = int((needed_by - now).total_seconds() // 60)
    hours, rest = divmod(abs(minutes), 60)
    span = f"{hours} h {rest} min" if hours else f"{rest} min"
    if hours >= 48:
        span = f"{hours // 24} days"
    return f"in {span}" if minutes >= 0 else f"overdue by {span}"


def _tab(status: str, tabs: tuple[tuple[str, str], ...]) -> str:
    return status if status in dict(tabs) else tabs[0][0]


def _list_context(db: Session, principal: Principal, status: str, cursor: str) -> dict[str, Any]:
    page = service.list_requests(
        db, principal, service.Filters(status=status or None), limit=PER_PAGE, cursor=cursor or None
    )
    now = utcnow()
    held = service.held_counts(db, (r.id for r in page.items))
    query = {"status": status}
    return {
        "rows": [(r, held.get(r.id, 0), due_label(r.needed_by, now)) for r in page.items],
        "status": status,
        "components": COMPONENT_LABELS,
        **page_links("", query, page.next_cursor, cursor),
    }


def _step(
    request: Request,
    db: Session,
    principal: Principal,
    done: Callable[[], object],
    back: str,
    show_again: Callable[[str, int], Response],
) -> Response:
    """Run one step; on success commit and go back to the page, else show the page with the reason."""
    try:
        done()
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403) or (isinstance(exc, NotFound) and not exc.extra.get("field")):
            raise
        return show_again(exc.detail, exc.status)
    db.commit()
    return redirect(back)


def _unit_id(values: dict[str, str]) -> uuid.UUID:
    try:
        return uuid.UUID(values.get("unit_id", ""))
    except ValueError:
        raise ValidationFailed("Choose a unit.", extra={"field": "unit_id"}) from None


# --- clinicians ---------------------------------------------------------------------------------------------


@router.get("/blood-requests")
def clinician_list(
    request: Request, db: Db, principal: PageUser, status: str = "queue", cursor: str = ""
) -> Response:
    """The clinician's organisation's requests for their patients."""
    require(db, principal, Perm.BLOOD_ORDER, "bloodbank.request.list")
    context = _list_context(db, principal, _tab(status, CLINICIAN_TABS), cursor)
    return render_page(
        request, db, principal, f"{T}/clinician_list.html", {**context, "tabs": CLINICIAN_TABS}
    )


def _order_form(
    request: Request,
    db: Session,
    principal: Principal,
    patient: Patient | None,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    q = values.get("q", "")
    context = {
        "patient": patient,
        "matches": [] if patient else service.orderable_patients(db, principal, q),
        "q": q,
        "values": values,
        "errors": errors,
        "components": list(COMPONENT_LABELS.items()),
        "urgencies": [(u, u.capitalize()) for u in URGENCIES],
        "groups": [(g, g) for g in BLOOD_GROUPS],
        "needed_within": NEEDED_WITHIN,
    }
    return render_page(request, db, principal, f"{T}/new.html", context, status_code)


def _orderable(db: Session, principal: Principal, patient_id: str) -> Patient | None:
    """The patient named by the form, once the clinician may order for them (404 otherwise)."""
    if not patient_id:
        return None
    try:
        wanted = uuid.UUID(patient_id)
    except ValueError:
        raise NotFound("No such patient.") from None
    authorize_patient(db, principal, wanted, Perm.BLOOD_ORDER, "bloodbank.request.form")
    return db.get(Patient, wanted)


@router.get("/blood-requests/new")
def order_form(request: Request, db: Db, principal: PageUser, patient_id: str = "", q: str = "") -> Response:
    """Order blood: find the patient among the clinician's own, then fill in the order."""
    require(db, principal, Perm.BLOOD_ORDER, "bloodbank.request.form")
    patient = _orderable(db, principal, patient_id)
    return _order_form(request, db, principal, patient, {**FORM_DEFAULTS, "q": q}, {})


def _parse_order(values: dict[str, str], patient: Patient) -> tuple[service.Order | None, dict[str, str]]:
    errors: dict[str, str] = {}
    units = values.get("units", "")
    if not units.isdigit() or not 1 <= int(units) <= 50:
        errors["units"] = "Enter a number of units from 1 to 50."
    if values.get("component") not in COMPONENTS:
        errors["component"] = "Choose a component."
    if values.get("urgency") not in URGENCIES:
        errors["urgency"] = "Choose how urgent it is."
    if values.get("needed_within") not in dict(NEEDED_WITHIN):
        errors["needed_within"] = "Choose how soon it is needed."
    group = values.get("patient_group") or None
    if group is not None and group not in BLOOD_GROUPS:
        errors["patient_group"] = "Choose a blood group, or leave it unknown."
    if len(values.get("indication", "")) > 300:
        errors["indication"] = "Keep the indication under 300 characters."
    if errors:
        return None, errors
    order = service.Order(
        patient_id=patient.id,
        component=values["component"],
        units=int(units),
        urgency=values["urgency"],
        needed_by=utcnow() + timedelta(hours=int(values["needed_within"])),
        indication=values.get("indication", ""),
        patient_group=group,
    )
    return order, {}


@router.post("/blood-requests/new")
def order(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Send the order; then follow it on the request's page."""
    require(db, principal, Perm.BLOOD_ORDER, "bloodbank.request.create")
    patient = _orderable(db, principal, values.get("patient_id", ""))
    if patient is None:
        return _order_form(request, db, principal, None, values, {"form": "Choose the patient first."}, 422)
    parsed, errors = _parse_order(values, patient)
    if parsed is None:
        return _order_form(request, db, principal, patient, values, errors, 422)
    try:
        created = service.create_request(db, principal, parsed)
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404):
            raise
        field = str(exc.extra.get("field") or "form")
        return _order_form(request, db, principal, patient, values, {field: exc.detail}, exc.status)
    created_id = created.id
    db.commit()
    return redirect(f"/blood-requests/{created_id}")


def _tracking(
    request: Request,
    db: Session,
    principal: Principal,
    request_id: uuid.UUID,
    error: str = "",
    status_code: int = 200,
) -> Response:
    view = service.get_request(db, principal, request_id)
    context = {
        "view": view,
        "r": view.request,
        "components": COMPONENT_LABELS,
        "error": error,
        "now": utcnow(),
    }
    return render_page(request, db, principal, f"{T}/clinician_detail.html", context, status_code)


@router.get("/blood-requests/{request_id}")
def tracking(request: Request, request_id: uuid.UUID, db: Db, principal: PageUser) -> Response:
    """Follow a request: status, units, what happened; confirm transfusions."""
    require(db, principal, Perm.BLOOD_ORDER, "bloodbank.request.read")
    return _tracking(request, db, principal, request_id)


@router.post("/blood-requests/{request_id}/transfuse")
def transfuse(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Confirm an issued unit was transfused."""
    return _step(
        request,
        db,
        principal,
        lambda: service.confirm_transfusion(db, principal, request_id, _unit_id(values)),
        f"/blood-requests/{request_id}",
        lambda error, code: _tracking(request, db, principal, request_id, error, code),
    )


@router.post("/blood-requests/{request_id}/cancel")
def clinician_cancel(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Cancel the order (asks for confirmation and a reason)."""
    require(db, principal, Perm.BLOOD_ORDER, "bloodbank.request.cancel")
    return _step(
        request,
        db,
        principal,
        lambda: service.cancel(db, principal, request_id, values.get("reason", "")),
        f"/blood-requests/{request_id}",
        lambda error, code: _tracking(request, db, principal, request_id, error, code),
    )


# --- blood bank staff ---------------------------------------------------------------------------------------


@router.get("/bloodbank/requests")
def queue(request: Request, db: Db, principal: PageUser, status: str = "queue", cursor: str = "") -> Response:
    """The blood bank's queue: emergency first, then by the time needed."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.request.list")
    context = _list_context(db, principal, _tab(status, STAFF_TABS), cursor)
    return render_page(request, db, principal, f"{T}/queue.html", {**context, "tabs": STAFF_TABS})


def _work(
    request: Request,
    db: Session,
    principal: Principal,
    request_id: uuid.UUID,
    error: str = "",
    status_code: int = 200,
) -> Response:
    view = service.get_request(db, principal, request_id)
    r: BloodRequest = view.request
    proposed = service.proposals(db, principal, request_id, limit=view.shortfall + EXTRA_CHOICES)
    context = {
        "view": view,
        "r": r,
        "proposed": proposed,
        "preselected": {u.id for u in proposed[: view.shortfall]},
        "components": COMPONENT_LABELS,
        "error": error,
        "now": utcnow(),
        "due": due_label(r.needed_by, utcnow()),
        "can_release": r.urgency == Urgency.EMERGENCY
        and r.patient_group is None
        and r.status in service.ACTIVE,
    }
    return render_page(request, db, principal, f"{T}/staff_detail.html", context, status_code)


@router.get("/bloodbank/requests/{request_id}")
def work(request: Request, request_id: uuid.UUID, db: Db, principal: PageUser) -> Response:
    """Work a request: match and allocate, release in an emergency, crossmatch, issue, take returns."""
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.request.read")
    return _work(request, db, principal, request_id)


def _staff_step(
    request: Request, db: Session, principal: Principal, request_id: uuid.UUID, done: Callable[[], object]
) -> Response:
    require(db, principal, Perm.BLOOD_STOCK, "bloodbank.request.step")
    return _step(
        request,
        db,
        principal,
        done,
        f"/bloodbank/requests/{request_id}",
        lambda error, code: _work(request, db, principal, request_id, error, code),
    )


def _chosen_units(values: dict[str, str]) -> list[uuid.UUID]:
    """The ticked units (checkboxes named ``unit_<id>``)."""
    chosen = []
    for key in values:
        if key.startswith("unit_"):
            try:
                chosen.append(uuid.UUID(key.removeprefix("unit_")))
            except ValueError:
                raise ValidationFailed("Choose units from the list.", extra={"field": "unit_ids"}) from None
    return sorted(chosen, key=str)


@router.post("/bloodbank/requests/{request_id}/allocate")
def allocate(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Reserve the ticked units."""
    return _staff_step(
        request,
        db,
        principal,
        request_id,
        lambda: service.allocate(db, principal, request_id, _chosen_units(values)),
    )


@router.post("/bloodbank/requests/{request_id}/auto-allocate")
def auto_allocate(request: Request, request_id: uuid.UUID, db: Db, principal: PageUser) -> Response:
    """Reserve the best proposed units."""
    return _staff_step(
        request, db, principal, request_id, lambda: service.auto_allocate(db, principal, request_id)
    )


@router.post("/bloodbank/requests/{request_id}/emergency-release")
def emergency_release(request: Request, request_id: uuid.UUID, db: Db, principal: PageUser) -> Response:
    """Issue uncrossmatched group O red cells / AB plasma now (the button asks for confirmation)."""
    return _staff_step(
        request, db, principal, request_id, lambda: service.emergency_release(db, principal, request_id)
    )


@router.post("/bloodbank/requests/{request_id}/crossmatch")
def crossmatch(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Record a unit's crossmatch result."""
    compatible = values.get("result") == "compatible"
    note = values.get("note", "")[:200]
    return _staff_step(
        request,
        db,
        principal,
        request_id,
        lambda: service.crossmatch(
            db, principal, request_id, _unit_id(values), compatible=compatible, note=note
        ),
    )


@router.post("/bloodbank/requests/{request_id}/issue")
def issue(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Issue the units ready to go (or the one named)."""
    return _staff_step(
        request,
        db,
        principal,
        request_id,
        lambda: service.issue(
            db, principal, request_id, [_unit_id(values)] if values.get("unit_id") else None
        ),
    )


@router.post("/bloodbank/requests/{request_id}/return")
def return_unit(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Take an issued unit back."""
    kept_cold = values.get("kept_cold") == "on"
    reason = values.get("reason", "")[:200]
    return _staff_step(
        request,
        db,
        principal,
        request_id,
        lambda: service.return_unit(
            db, principal, request_id, _unit_id(values), kept_cold=kept_cold, reason=reason
        ),
    )


@router.post("/bloodbank/requests/{request_id}/cancel")
def staff_cancel(
    request: Request, request_id: uuid.UUID, db: Db, principal: PageUser, values: FormValues
) -> Response:
    """Cancel the request (asks for confirmation and a reason); held units go back to stock."""
    return _staff_step(
        request,
        db,
        principal,
        request_id,
        lambda: service.cancel(db, principal, request_id, values.get("reason", "")),
    )
