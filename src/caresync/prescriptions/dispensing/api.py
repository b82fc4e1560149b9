"""QR code and dispensing endpoints.

For the patient (or anyone who may read the prescription): its signed code as JSON, as a QR code PNG, and
as a printable PDF, under ``/api/v1/prescriptions/{id}``. For pharmacists, under ``/api/v1/pharmacy``:
verify a code (typed, or read from an uploaded photo or screenshot), dispense, and list the pharmacy's
dispenses. Refused codes answer 422 (malformed, forged, altered), 404 (the prescription is gone) or 409
(cancelled, stopped, on hold, expired, used up, superseded, already dispensed), with the machine code in
the problem's ``reason``.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.responses import Response

from caresync.prescriptions.dispensing import qr, service
from caresync.prescriptions.dispensing.pdf import prescription_pdf
from caresync.prescriptions.dispensing.schemas import (
    CodeOut,
    DispenseIn,
    DispenseOut,
    DispensePage,
    VerificationOut,
    VerifyIn,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1", tags=["dispensing"])
PNG_RESPONSE: dict[int | str, dict[str, object]] = {200: {"content": {"image/png": {}}}}
PDF_RESPONSE: dict[int | str, dict[str, object]] = {200: {"content": {"application/pdf": {}}}}


def png_response(data: bytes) -> Response:
    """A QR code image, shown inline."""
    return Response(data, media_type="image/png", headers={"Content-Disposition": "inline"})


def pdf_response(prescription_id: uuid.UUID, data: bytes) -> Response:
    """A printable prescription, shown inline with a sensible file name for saving."""
    name = f"prescription-{prescription_id}.pdf"
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


def upload_bytes(image: UploadFile | None) -> bytes | None:
    """An uploaded picture's bytes (at most one more than ``qr.read_image`` accepts), if a file was sent."""
    if image is None or not image.filename:
        return None
    return image.file.read(qr.MAX_IMAGE_BYTES + 1)  # already received and spooled by the framework


@router.get("/prescriptions/{prescription_id}/qr", response_model=CodeOut)
def prescription_code(prescription_id: uuid.UUID, principal: CurrentUser, db: Db) -> CodeOut:
    """A freshly signed code of a prescription that can be dispensed now (409 otherwise), with the fills
    used and refills left it shows."""
    out = CodeOut.of(service.issue_code(db, principal, prescription_id))
    db.commit()
    return out


@router.get("/prescriptions/{prescription_id}/qr.png", response_class=Response, responses=PNG_RESPONSE)
def prescription_qr_png(prescription_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """The prescription's QR code, as a PNG to show at the pharmacy."""
    response = png_response(qr.render_png(service.issue_code(db, principal, prescription_id).code))
    db.commit()
    return response


@router.get("/prescriptions/{prescription_id}/print.pdf", response_class=Response, responses=PDF_RESPONSE)
def prescription_print(prescription_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """The printable prescription (A4 PDF) with its QR code."""
    issued = service.issue_code(db, principal, prescription_id, "prescription.print")
    db.commit()  # rendering takes a while: hold no database lock meanwhile (everything needed is loaded)
    return pdf_response(prescription_id, prescription_pdf(issued.prescription, issued.code, issued.issued_at))


@router.post("/pharmacy/verify", response_model=VerificationOut)
def verify(body: VerifyIn, principal: CurrentUser, db: Db) -> VerificationOut:
    """Pharmacists: check a typed or scanned code against its signature and the prescription's state."""
    out = VerificationOut.of(service.verify(db, principal, body.code))
    db.commit()
    return out


@router.post("/pharmacy/verify-image", response_model=VerificationOut)
def verify_image(
    principal: CurrentUser,
    db: Db,
    image: Annotated[UploadFile | None, File(description="photo or screenshot of the QR code")] = None,
) -> VerificationOut:
    """Pharmacists: read the QR code in a photo or screenshot (PNG, JPEG, WebP; at most 10 MB and 40
    megapixels) and check it. The response carries the code, to send back when dispensing."""
    out = VerificationOut.of(service.verify_image(db, principal, upload_bytes(image)))
    db.commit()
    return out


@router.post("/pharmacy/dispenses", status_code=status.HTTP_201_CREATED, response_model=DispenseOut)
def dispense(body: DispenseIn, principal: CurrentUser, db: Db) -> DispenseOut:
    """Pharmacists: dispense the next fill of the prescription a code names (409 when another pharmacist
    dispensed it first, or the code is no longer current)."""
    row = service.dispense(db, principal, body.code, body.quantity, body.lot, body.days_supply)
    out = DispenseOut.of(row)
    db.commit()
    return out


@router.get("/pharmacy/dispenses", response_model=DispensePage)
def pharmacy_dispenses(
    principal: CurrentUser,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DispensePage:
    """Pharmacists: their pharmacy's dispenses, newest first."""
    page = service.pharmacy_dispenses(db, principal, cursor, limit)
    out = DispensePage(items=[DispenseOut.of(r) for r in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out
