"""The clinicians' visits page of a patient (``/patients/{patient_id}/encounters``): the visits, newest
first, and for the care team a "Record a visit" form that posts with HTMX and gets the refreshed panel back
(without JavaScript: a redirect, or the page with the errors, 422).

Thin: it parses the form (times in the patient's time zone) and calls the same service as the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.analytics.encounters import service
from caresync.analytics.rules import CONDITIONS, Department, Outcome
from caresync.core import localtime
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, ValidationFailed
from caresync.core.rbac import Access, Perm, has_perm, patient_access
from caresync.db import utcnow
from caresync.identity import patients
from caresync.identity.models import Patient
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "analytics/encounters"
PER_PAGE = 20
RECORDERS = frozenset({Access.CARE_TEAM, Access.BREAK_GLASS})
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def may_record(db: Session, principal: Principal, patient_id: uuid.UUID) -> bool:
    """Whether to offer the form (no audit; the service checks again)."""
    return (
        has_perm(principal, Perm.ENCOUNTER_RECORD) and patient_access(db, principal, patient_id) in RECORDERS
    )


@router.get("/patients/{patient_id}/encounters")
def encounters_page(
    request: Request, patient_id: uuid.UUID, principal: PageUser, db: Db, cursor: str = "", saved: str = ""
) -> Response:
    """The patient's visits and, for their care team, the form to record one."""
    return _render(request, db, principal, patient_id, cursor=cursor, saved=bool(saved))


@router.post("/patients/{patient_id}/encounters")
def record_visit(
    request: Request, patient_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Record a visit from the form."""
    values = {key: value.strip() for key, value in form.items() if key != "csrf_token"}
    try:
        service.record_encounter(db, principal, _draft(db, patient_id, values))
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 404) or (exc.status == 403 and exc.extra.get("field") is None):
            raise
        errors = domain_field_errors(exc)
        status = 200 if is_htmx(request) else exc.status
        return _render(request, db, principal, patient_id, values=values, errors=errors, status_code=status)
    db.commit()
    if is_htmx(request):
        return _render(request, db, principal, patient_id, saved=True)
    return redirect(f"/patients/{patient_id}/encounters?saved=1")


def _draft(db: Session, patient_id: uuid.UUID, values: dict[str, str]) -> service.Draft:
    """The form as a draft; the time is read in the patient's time zone (the service checks access)."""
    patient = db.get(Patient, patient_id)
    others = [code for code in values.get("other_codes", "").replace(";", ",").split(",") if code.strip()]
    vitals: dict[str, float | None] = {}
    for name in service.VITAL_RANGES:
        text = values.get(name, "")
        try:
            vitals[name] = float(text) if text else None
        except ValueError:
            raise ValidationFailed("Enter a number.", extra={"field": name}) from None
    try:
        local = datetime.strptime(values.get("started_at", ""), LOCAL_FORMAT)
    except ValueError:
        raise ValidationFailed(
            "Enter the date and time of the visit.", extra={"field": "started_at"}
        ) from None
    return service.Draft(
        patient_id=patient_id,
        codes=[values.get("code", ""), *others],
        department=values.get("department", ""),
        outcome=values.get("outcome", ""),
        started_at=local.replace(tzinfo=localtime.zone(patient.timezone if patient else None)),
        vitals=vitals,
    )


def _render(
    request: Request,
    db: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    cursor: str = "",
    saved: bool = False,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    patient = patients.get_patient(db, principal, patient_id)
    page = service.list_encounters(db, principal, patient_id, limit=PER_PAGE, cursor=cursor or None)
    tz = localtime.zone(patient.timezone)
    now = utcnow().astimezone(tz).strftime(LOCAL_FORMAT)
    context: dict[str, Any] = {
        "patient": patient,
        "visits": [(e, e.started_at.astimezone(tz)) for e in page.items],
        "names": {c.code: c.name for c in CONDITIONS},
        "next_url": f"?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else "",
        "first_url": "?" if cursor else "",
        "can_record": may_record(db, principal, patient_id),
        "saved": saved,
        "values": values or {"started_at": now, "department": Department.GENERAL_PRACTICE.value},
        "errors": errors or {},
        "now": now,
        "timezone": patient.timezone,
        "conditions": [(c.code, f"{c.code} · {c.name}") for c in CONDITIONS],
        "departments": [(d.value, d.value.replace("-", " ").capitalize()) for d in Department],
        "outcomes": [(o.value, o.value.replace("-", " ").capitalize()) for o in Outcome],
        "vital_fields": [
            (name, label, low, high, "0.1" if name == "temperature_c" else "1")
            for (name, (low, high, _unit)), label in zip(
                service.VITAL_RANGES.items(),
                ("Systolic (mmHg)", "Heart rate (/min)", "Temperature (°C)", "SpO₂ (%)"),
                strict=True,
            )
        ],
    }
    template = "_panel.html" if is_htmx(request) else "list.html"
    return render_page(request, db, principal, f"{T}/{template}", context, status_code)
