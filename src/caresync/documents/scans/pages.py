"""Scan pages: the inbox (``/documents/scans``) with each scan's live progress, the upload form of a
patient (``/patients/{id}/scans/new``) and one scan (``/documents/scans/{id}``): the searchable PDF beside
each page's text and confidence, with "Mark as checked" for the pages the OCR was unsure of."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core import jobs
from caresync.core.auth import Principal
from caresync.core.errors import DomainError
from caresync.core.rbac import Perm, authorize_patient
from caresync.documents.models import DocumentScan
from caresync.documents.scans import service
from caresync.documents.scans.jobs import ocr_job
from caresync.identity import patients
from caresync.identity.models import Patient
from caresync.records.rules import CATEGORIES
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "documents/scans"
INBOX = "/documents/scans"
STATUS_LABELS = {"queued": "Waiting", "processing": "Reading", "done": "Done", "failed": "Failed"}


@router.get(INBOX)
def inbox_page(
    request: Request, db: Db, principal: PageUser, status: str = "", cursor: str | None = None
) -> Response:
    """The scans of your patients, newest first, filtered by status."""
    page = service.inbox(db, principal, status=status, cursor=cursor)
    names = _patient_names(db, page.items)
    context = {
        "scans": page.items,
        "names": names,
        "to_review": service.pages_to_review(db, [scan.id for scan in page.items]),
        "total": page.total,
        "status": status,
        "statuses": STATUS_LABELS,
        "next_url": f"{INBOX}?status={status}&cursor={page.next_cursor}" if page.next_cursor else "",
    }
    return render_page(request, db, principal, f"{T}/inbox.html", context)


@router.get("/patients/{patient_id}/scans/new")
def upload_form(request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID) -> Response:
    """The form to upload a scanned document for a patient."""
    return _upload_page(request, db, principal, patient_id, {"category": service.DEFAULT_CATEGORY}, {})


@router.post("/patients/{patient_id}/scans/new")
def upload_submit(
    request: Request,
    db: Db,
    principal: PageUser,
    patient_id: uuid.UUID,
    form: FormValues,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Store the scan, start its OCR and follow it on the scan's page."""
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    if file is None or not file.filename:
        return _upload_page(request, db, principal, patient_id, values, {"file": "Choose a file."}, 422)
    request_ = service.ScanUpload(
        patient_id, values.get("title", ""), values.get("category", ""), file.filename
    )
    try:
        scan = service.upload(db, principal, request_, file.file.read())
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        errors = domain_field_errors(exc)
        if "form" in errors:  # the file itself: too big, not a scan
            errors["file"] = errors.pop("form")
        return _upload_page(request, db, principal, patient_id, values, errors, exc.status)
    scan.job_id = jobs.submit(db, principal, ocr_job, scan_id=str(scan.id)).id
    db.commit()
    return redirect(f"{INBOX}/{scan.id}")


def _upload_page(
    request: Request,
    db: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    authorize_patient(db, principal, patient_id, Perm.PATIENT_WRITE, "document.scan.upload")
    context = {
        "patient": patients.get_patient(db, principal, patient_id),
        "values": values,
        "errors": errors,
        "categories": list(CATEGORIES.items()),
        "types": ", ".join(service.EXTENSIONS.values()).upper(),
    }
    return render_page(request, db, principal, f"{T}/upload.html", context, status_code)


@router.get(f"{INBOX}/{{scan_id}}")
def scan_page(request: Request, db: Db, principal: PageUser, scan_id: uuid.UUID) -> Response:
    """One scan: progress while it is read, then the searchable PDF and the text of each page."""
    scan = service.get(db, principal, scan_id)
    context = {"scan": scan, "names": _patient_names(db, [scan]), "statuses": STATUS_LABELS}
    return render_page(request, db, principal, f"{T}/scan.html", context)


@router.get(f"{INBOX}/{{scan_id}}/status")
def scan_status(request: Request, db: Db, principal: PageUser, scan_id: uuid.UUID) -> Response:
    """A scan's progress (an HTMX fragment that refreshes itself until the OCR ends)."""
    scan = service.get(db, principal, scan_id, "document.scan.progress")
    return render_page(request, db, principal, f"{T}/_status.html", {"scan": scan, "statuses": STATUS_LABELS})


@router.post(f"{INBOX}/{{scan_id}}/pages/{{number}}/review")
def review_page(db: Db, principal: PageUser, scan_id: uuid.UUID, number: int) -> Response:
    """Mark a page as checked by a person."""
    service.review_page(db, principal, scan_id, number)
    db.commit()
    return redirect(f"{INBOX}/{scan_id}#page-{number}")


def _patient_names(db: Session, scans: list[DocumentScan]) -> dict[uuid.UUID, str]:
    """The names of the scans' patients (the caller may see them: the inbox holds only their patients)."""
    ids = {scan.patient_id for scan in scans}
    if not ids:
        return {}
    rows = db.execute(select(Patient.id, Patient.given_name, Patient.family_name).where(Patient.id.in_(ids)))
    return {pid: f"{given} {family}" for pid, given, family in rows}
