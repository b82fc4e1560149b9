"""Prescription pages: a patient's prescriptions for their clinicians with the doctor's prescribe form
(formulary search over HTMX, the allergy and duplicate warnings shown on submit with an explicit "prescribe
anyway" and reason), one prescription (status changes for the prescriber, refill or renewal requests and
the QR code for the patient, dispenses and requests), the patient's "My medications", and the doctor's
request inbox.

Thin: they parse forms and call the same services as the API. Forms post normally and are redirected on
success, or shown again with their values and errors."""

from __future__ import annotations

import uuid
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from caresync.core import localtime
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, DomainError, ValidationFailed
from caresync.core.rbac import Access, Perm, has_perm, patient_access
from caresync.identity import patients
from caresync.prescriptions import formulary, requests, service
from caresync.prescriptions.access import require_prescriber
from caresync.prescriptions.dispensing import service as dispensing
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import FREQUENCIES, MAX_REFILLS, REQUEST_STATUSES, ROUTES, STATUSES, Status
from caresync.records.careteam.team import user_names
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "prescriptions"
PER_PAGE = 20
FORMULARY_RESULTS = 8
NUMBERS = ("duration_days", "quantity", "days_supply", "refills")
FORM_DEFAULTS = {
    "frequency": "QD",
    "duration_days": "30",
    "quantity": "30",
    "days_supply": "30",
    "refills": "0",
    "reminders_enabled": "on",
}
PRESCRIBERS = frozenset({Access.CARE_TEAM, Access.BREAK_GLASS})


def _page_errors(exc: DomainError) -> dict[str, str]:
    """A domain error as form errors; errors about access (401, 403 without a field, 404) propagate."""
    if exc.status in (401, 404) or (exc.status == 403 and exc.extra.get("field") is None):
        raise exc
    return domain_field_errors(exc)


def _warnings_or_errors(exc: DomainError) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The checks' warnings a 409 (or a missing override reason) carries, and the form errors."""
    warnings = list(exc.extra.get("warnings") or [])
    errors = {} if isinstance(exc, Conflict) and warnings else _page_errors(exc)
    return warnings, errors


def may_prescribe(db: Session, principal: Principal, patient_id: uuid.UUID) -> bool:
    """Whether to offer the prescribe form and status buttons (no audit; the service checks again)."""
    return has_perm(principal, Perm.PRESCRIBE) and patient_access(db, principal, patient_id) in PRESCRIBERS


# --- a patient's prescriptions, for their clinicians --------------------------------------------------------


@router.get("/patients/{patient_id}/prescriptions", response_model=None)
def patient_prescriptions(
    request: Request, patient_id: uuid.UUID, principal: PageUser, db: Db, status: str = "", cursor: str = ""
) -> Response:
    """The patient's prescriptions, newest first, filtered by status; doctors of the care team get the
    "Prescribe" button. The patient is sent to their own page."""
    if principal.role == "patient":
        return redirect("/me/medications")
    patient = patients.get_patient(db, principal, patient_id)
    chosen = status if status in STATUSES or status in service.STATUS_GROUPS else ""
    page = service.list_prescriptions(
        db, principal, patient_id, status=chosen or None, limit=PER_PAGE, cursor=cursor or None
    )
    query = {"status": chosen} if chosen else {}
    context = {
        "patient": patient,
        "rows": [(p, service.progress(p)) for p in page.items],
        "status": chosen,
        "can_prescribe": may_prescribe(db, principal, patient_id),
        "next_url": f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else "",
        "first_url": f"?{urlencode(query)}" if cursor else "",
        "filters": [("", "All"), ("open", "Open"), ("draft", "Drafts"), ("closed", "Closed")],
    }
    return render_page(request, db, principal, f"{T}/list.html", context)


@router.get("/patients/{patient_id}/prescriptions/new", response_model=None)
def prescribe_form(
    request: Request, patient_id: uuid.UUID, principal: PageUser, db: Db, code: str = ""
) -> Response:
    """The prescribe form (doctors of the patient's care team)."""
    require_prescriber(db, principal, patient_id, "prescription.form")
    values = {**FORM_DEFAULTS, "medication_code": code}
    return _form(request, db, principal, patient_id, values, {})


def _form(
    request: Request,
    db: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    warnings: list[dict[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    patient = patients.get_patient(db, principal, patient_id)
    drug = formulary.get(values.get("medication_code", ""))
    context = {
        "patient": patient,
        "values": values,
        "errors": errors,
        "warnings": warnings or [],
        "drug": drug,
        "drugs": formulary.search(values.get("q", ""), FORMULARY_RESULTS) if drug is None else [drug],
        "routes": list(ROUTES.items()),
        "frequencies": [(code, label) for code, (label, _times) in FREQUENCIES.items()],
        "max_refills": MAX_REFILLS,
        "today": localtime.local_date(patient.timezone).isoformat(),
    }
    return render_page(request, db, principal, f"{T}/new.html", context, status_code)


@router.post("/patients/{patient_id}/prescriptions/new", response_model=None)
def prescribe(
    request: Request, patient_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Prescribe; with warnings the form comes back showing them, with "Prescribe anyway" and a reason."""
    values = {key: value.strip() for key, value in form.items() if key != "csrf_token"}
    try:
        draft = _draft(patient_id, values)
        prescribed = service.prescribe(db, principal, draft)
    except DomainError as exc:
        db.rollback()
        warnings, errors = _warnings_or_errors(exc)
        return _form(request, db, principal, patient_id, values, errors, warnings, status_code=exc.status)
    prescription_id = prescribed.prescription.id
    db.commit()
    return redirect(f"/prescriptions/{prescription_id}?saved=1")


def _draft(patient_id: uuid.UUID, values: dict[str, str]) -> service.Draft:
    numbers: dict[str, int] = {}
    for name in NUMBERS:
        try:
            numbers[name] = int(values.get(name, ""))
        except ValueError:
            raise ValidationFailed("Enter a whole number.", extra={"field": name}) from None
    return service.Draft(
        patient_id=patient_id,
        medication_code=values.get("medication_code", ""),
        dose=values.get("dose", ""),
        route=values.get("route") or None,
        frequency=values.get("frequency", ""),
        instructions=values.get("instructions", ""),
        start_date=_date(values.get("start_date", ""), "start_date"),
        valid_until=_date(values.get("valid_until", ""), "valid_until"),
        status="draft" if values.get("save_as") == "draft" else "active",
        reminders_enabled=values.get("reminders_enabled") == "on",
        acknowledge_warnings=values.get("acknowledge_warnings") == "on",
        override_reason=values.get("override_reason", ""),
        **numbers,
    )


def _date(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("Enter a date.", extra={"field": field}) from None


@router.get("/prescriptions/formulary", response_class=HTMLResponse)
def formulary_search(request: Request, principal: PageUser, db: Db, q: str = "") -> HTMLResponse:
    """The formulary matches for the prescribe form (an HTMX fragment of radio choices)."""
    drugs = formulary.search(q[:100], FORMULARY_RESULTS)
    return render_page(request, db, principal, f"{T}/_formulary.html", {"drugs": drugs, "values": {}})


# --- the doctor's inbox -------------------------------------------------------------------------------------


@router.get("/prescriptions/requests", response_model=None)
def inbox(
    request: Request, principal: PageUser, db: Db, status: str = "pending", cursor: str = ""
) -> Response:
    """Refill and renewal requests of the patients the doctor cares for: pending ones to decide, oldest
    first, or those already decided."""
    if principal.role == "patient":
        return redirect("/me/medications")
    return _inbox(request, db, principal, status, cursor, {})


def _inbox(
    request: Request,
    db: Session,
    principal: Principal,
    status: str,
    cursor: str,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    chosen = status if status in REQUEST_STATUSES else "pending"
    page = requests.list_requests(db, principal, status=chosen, limit=PER_PAGE, cursor=cursor or None)
    context = {
        "items": page.items,
        "status": chosen,
        "errors": errors,
        "decided": request.query_params.get("decided", ""),
        "tabs": [("pending", "To decide"), ("approved", "Approved"), ("declined", "Declined")],
        "next_url": f"?{urlencode({'status': chosen, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else "",
        "first_url": f"?{urlencode({'status': chosen})}" if cursor else "",
    }
    return render_page(request, db, principal, f"{T}/requests.html", context, status_code)


@router.post("/prescriptions/requests/{request_id}/decision", response_model=None)
def decide(
    request: Request, request_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Approve or decline a request (declining needs a note for the patient)."""
    try:
        decision = requests.decide(db, principal, request_id, form.get("decision", ""), form.get("note", ""))
    except DomainError as exc:
        db.rollback()
        errors = {str(request_id): " ".join(_page_errors(exc).values())}
        return _inbox(request, db, principal, "pending", "", errors, status_code=exc.status)
    outcome = decision.request.status
    db.commit()
    return redirect(f"/prescriptions/requests?decided={outcome}")


@router.post("/prescriptions/requests/{request_id}/withdraw", response_model=None)
def withdraw(request: Request, request_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """The patient withdraws their pending request."""
    try:
        withdrawn = requests.withdraw(db, principal, request_id)
    except DomainError as exc:
        db.rollback()
        _page_errors(exc)
        return redirect("/me/medications")
    prescription_id = withdrawn.prescription_id
    db.commit()
    return redirect(f"/prescriptions/{prescription_id}?withdrawn=1")


# --- one prescription ---------------------------------------------------------------------------------------


@router.get("/prescriptions/{prescription_id}", response_class=HTMLResponse)
def prescription_page(
    request: Request, prescription_id: uuid.UUID, principal: PageUser, db: Db
) -> HTMLResponse:
    """One prescription for the patient and their clinicians."""
    prescription = service.get_prescription(db, principal, prescription_id)
    return _detail(request, db, principal, prescription, {}, {})


def _detail(
    request: Request,
    db: Session,
    principal: Principal,
    prescription: Prescription,
    errors: dict[str, str],
    values: dict[str, str],
    warnings: list[dict[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    history = requests.requests_for(db, prescription)
    prescriber = may_prescribe(db, principal, prescription.patient_id)
    is_patient = principal.role == "patient"
    progress = service.progress(prescription)
    context = {
        "p": prescription,
        "progress": progress,
        "frequency_label": FREQUENCIES[prescription.frequency][0],
        "route_label": ROUTES.get(prescription.route, prescription.route),
        "dispenses": service.dispenses(db, prescription),
        "requests": history,
        "deciders": user_names(db, {r.decided_by for r in history if r.decided_by}),
        "pending": next((r for r in history if r.status == "pending"), None),
        "is_patient": is_patient,
        "can_show_qr": is_patient and dispensing.state_refusal(prescription) is None,
        "can_request": {
            kind: is_patient and requests.request_refusal(prescription, kind) is None
            for kind in ("refill", "renewal")
        },
        "targets": _targets(prescription) if prescriber else [],
        "errors": errors,
        "values": values,
        "warnings": warnings or [],
        "notice": next(
            (k for k in ("saved", "changed", "requested", "withdrawn") if request.query_params.get(k)), ""
        ),
    }
    return render_page(request, db, principal, f"{T}/detail.html", context, status_code)


def _targets(prescription: Prescription) -> list[tuple[str, str, bool]]:
    """The status changes offered to the prescriber: (status, button label, needs a reason)."""
    labels = {
        Status.ACTIVE.value: "Issue" if prescription.status == Status.DRAFT else "Reactivate",
        Status.ON_HOLD.value: "Put on hold",
        Status.STOPPED.value: "Stop",
        Status.CANCELLED.value: "Cancel",
    }
    return [
        (target, label, target in service.REASON_REQUIRED)
        for target, label in labels.items()
        if service.transition_refusal(prescription.status, target, prescription.dispense_count) is None
    ]


@router.post("/prescriptions/{prescription_id}/status", response_model=None)
def change_status(
    request: Request, prescription_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Change the status (after the page's confirmation); errors and warnings come back on the page."""
    values = {key: form.get(key, "").strip() for key in ("status", "reason")}
    try:
        service.change_status(
            db,
            principal,
            prescription_id,
            values["status"],
            values["reason"],
            acknowledge_warnings=form.get("acknowledge_warnings") == "on",
        )
    except DomainError as exc:
        db.rollback()
        warnings, errors = _warnings_or_errors(exc)
        prescription = service.get_prescription(db, principal, prescription_id)
        return _detail(request, db, principal, prescription, errors, values, warnings, exc.status)
    db.commit()
    return redirect(f"/prescriptions/{prescription_id}?changed=1")


@router.post("/prescriptions/{prescription_id}/requests", response_model=None)
def ask(
    request: Request, prescription_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """The patient asks for a refill or a renewal."""
    values = {"kind": form.get("kind", ""), "note": form.get("note", "")}
    try:
        requests.create_request(db, principal, prescription_id, values["kind"], values["note"])
    except DomainError as exc:
        db.rollback()
        errors = {"request": " ".join(_page_errors(exc).values())}
        prescription = service.get_prescription(db, principal, prescription_id)
        return _detail(request, db, principal, prescription, errors, values, None, exc.status)
    db.commit()
    return redirect(f"/prescriptions/{prescription_id}?requested=1")


# --- the patient's medications ------------------------------------------------------------------------------


@router.get("/me/medications", response_model=None)
def my_medications(request: Request, principal: PageUser, db: Db, cursor: str = "") -> Response:
    """The patient's prescriptions: current ones (active, on hold) first with fills left and what to do
    next, then past ones a page at a time."""
    if principal.role != "patient" or principal.patient_id is None:
        return redirect("/patients")
    patient_id = principal.patient_id
    current = service.list_prescriptions(db, principal, patient_id, status="open", limit=200).items
    past = service.list_prescriptions(
        db, principal, patient_id, status="closed", limit=PER_PAGE, cursor=cursor or None
    )
    active_first = sorted(current, key=lambda p: p.status != Status.ACTIVE)
    context = {
        "current": [(p, service.progress(p)) for p in active_first],
        "past": [(p, service.progress(p)) for p in past.items],
        "pending": {
            r.prescription_id: r for r in requests.list_requests(db, principal, status="pending").items
        },
        "next_url": f"?{urlencode({'cursor': past.next_cursor})}#past" if past.next_cursor else "",
        "first_url": "?#past" if cursor else "",
        "frequencies": {code: label for code, (label, _times) in FREQUENCIES.items()},
    }
    return render_page(request, db, principal, f"{T}/mine.html", context)
