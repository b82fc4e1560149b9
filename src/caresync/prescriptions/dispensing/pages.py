"""Pharmacy pages: the pharmacist's counter console (type, paste or photograph a prescription's QR code; see
the verified prescription or why it is refused; dispense after confirming; the pharmacy's recent
dispenses), and, for the patient's own pages, a prescription's QR code image and printable PDF.

Console forms post with HTMX and get the refreshed console back (errors and refusals inline, status 200 so
that HTMX swaps them in); without JavaScript they post normally: a dispense is then followed by a redirect
(so reloading cannot post it again), everything else answers with the whole page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import DomainError
from caresync.prescriptions.dispensing import qr, service
from caresync.prescriptions.dispensing.api import pdf_response, png_response, upload_bytes
from caresync.prescriptions.dispensing.pdf import prescription_pdf
from caresync.prescriptions.rules import FREQUENCIES, ROUTES
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
RECENT = 10  # dispenses per page of the console's list
NO_CODE_GIVEN = "Type or paste the code, or choose a photo or screenshot of the QR code."
REFUSAL_TITLES = {
    "malformed": "Not a prescription code",
    "forged": "Forged code: do not dispense",
    "altered": "Altered code: do not dispense",
    "not_found": "Unknown prescription: do not dispense",
    "draft": "Not issued yet",
    "cancelled": "Prescription cancelled",
    "stopped": "Prescription stopped",
    "on_hold": "Prescription on hold",
    "expired": "Prescription expired",
    "used_up": "Prescription fully used",
    "superseded": "Out-of-date code",
    "already_dispensed": "Already dispensed",
    "no_code": "No QR code found",
    "several_codes": "More than one code",
    "not_an_image": "Not a picture",
}


@dataclass
class Outcome:
    """What the console shows under the scan form: a verified code, a refusal, or a finished dispense."""

    checked: service.Verification | None = None
    refusal: dict[str, str] | None = None
    dispensed: service.DispenseRow | None = None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _refusal(exc: DomainError) -> dict[str, str]:
    reason = str(exc.extra.get("reason", ""))
    return {"reason": reason, "title": REFUSAL_TITLES.get(reason, exc.title), "detail": exc.detail}


def _console(
    request: Request,
    db: Session,
    principal: Principal,
    outcome: Outcome,
    *,
    cursor: str | None = None,
    status: int = 200,
) -> Response:
    """The console (its live part alone for HTMX, with status 200 so that HTMX swaps errors in)."""
    recent = service.pharmacy_dispenses(db, principal, cursor, RECENT)
    context: dict[str, Any] = {
        "outcome": outcome,
        "recent": recent,
        "cursor": cursor,
        "routes": ROUTES,
        "frequencies": {code: label for code, (label, _times) in FREQUENCIES.items()},
    }
    if is_htmx(request):
        return render_page(request, db, principal, "prescriptions/pharmacy_console.html", context)
    return render_page(request, db, principal, "prescriptions/pharmacy.html", context, status)


@router.get("/pharmacy")
def console(
    request: Request,
    db: Db,
    principal: PageUser,
    cursor: str | None = None,
    dispensed: uuid.UUID | None = None,
) -> Response:
    """The pharmacist's counter: scan or type a code, then dispense; the pharmacy's recent dispenses."""
    outcome = Outcome()
    if dispensed is not None:
        outcome.dispensed = service.pharmacy_dispense(db, principal, dispensed)
    return _console(request, db, principal, outcome, cursor=cursor)


@router.post("/pharmacy/verify")
def verify(
    request: Request,
    db: Db,
    principal: PageUser,
    values: FormValues,
    image: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Check a typed code or the QR code in an uploaded picture."""
    code, picture = values.get("code", "").strip(), upload_bytes(image)
    if not code and not picture:
        outcome = Outcome(errors={"code": NO_CODE_GIVEN})
        return _console(request, db, principal, outcome, status=422)
    outcome, status = Outcome(), 200
    try:
        outcome.checked = (
            service.verify_image(db, principal, picture) if picture else service.verify(db, principal, code)
        )
        db.commit()
    except DomainError as exc:
        status = _refused(db, exc, outcome)
        outcome.values = {"code": code}
    return _console(request, db, principal, outcome, status=status)


@router.post("/pharmacy/dispense")
def dispense(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Dispense the verified code's next fill (the form asks for confirmation first)."""
    code = values.get("code", "")
    outcome = Outcome(values={k: values.get(k, "").strip() for k in ("quantity", "lot", "days_supply")})
    quantity = _whole_number(outcome, "quantity")
    days_supply = _whole_number(outcome, "days_supply", required=False)
    status = 422
    if not outcome.errors:
        try:
            lot = values.get("lot", "")
            outcome.dispensed = service.dispense(db, principal, code, quantity or 0, lot, days_supply)
        except DomainError as exc:
            status = _refused(db, exc, outcome)
    if outcome.dispensed is not None:
        dispense_id = outcome.dispensed.dispense.id
        db.commit()
        if not is_htmx(request):
            return redirect(f"/pharmacy?dispensed={dispense_id}")
        return _console(request, db, principal, outcome)
    if outcome.errors:  # show the prescription and its dispense form again, with the errors
        try:
            outcome.checked = service.verify(db, principal, code)
            db.commit()
        except DomainError as exc:
            status = _refused(db, exc, outcome)
    return _console(request, db, principal, outcome, status=status)


def _refused(db: Session, exc: DomainError, outcome: Outcome) -> int:
    """Put a refusal (or a form field's error) into ``outcome``; returns the status for a full page.
    Permission errors are raised on: they get the error page."""
    db.rollback()
    if exc.status in (401, 403):
        raise exc
    if exc.extra.get("field") and "reason" not in exc.extra:
        outcome.errors = domain_field_errors(exc)
    else:
        outcome.refusal = _refusal(exc)
    return exc.status


def _whole_number(outcome: Outcome, name: str, *, required: bool = True) -> int | None:
    """A form field as a whole number (``None`` when optional and empty, or when not a number: the error
    is then in ``outcome.errors``)."""
    raw = outcome.values.get(name, "")
    if not raw and not required:
        return None
    if not raw.isdigit() or len(raw) > 6:
        outcome.errors[name] = "Enter a whole number."
        return None
    return int(raw)


# --- the patient's QR code and printout (linked from the prescription's page) -------------------------------


@router.get("/prescriptions/{prescription_id}/qr.png")
def qr_png(prescription_id: uuid.UUID, db: Db, principal: PageUser) -> Response:
    """The prescription's QR code, freshly signed, to show at the pharmacy."""
    response = png_response(qr.render_png(service.issue_code(db, principal, prescription_id).code))
    db.commit()
    return response


@router.get("/prescriptions/{prescription_id}/print.pdf")
def print_pdf(prescription_id: uuid.UUID, db: Db, principal: PageUser) -> Response:
    """The printable prescription with its QR code."""
    issued = service.issue_code(db, principal, prescription_id, "prescription.print")
    db.commit()  # rendering takes a while: hold no database lock meanwhile (everything needed is loaded)
    return pdf_response(prescription_id, prescription_pdf(issued.prescription, issued.code, issued.issued_at))
