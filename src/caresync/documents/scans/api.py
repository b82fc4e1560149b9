"""Scanned documents under ``/api/v1/documents/scans``: upload (multipart; OCR runs as a job), the inbox,
one scan with its pages' text, its original and searchable PDF, and page review."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response

from caresync.core import jobs
from caresync.documents.scans import service
from caresync.documents.scans.jobs import ocr_job
from caresync.documents.scans.schemas import ScanOut, ScanPageList, ScanPageOut
from caresync.records.api import stored_file_response
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/documents/scans", tags=["documents"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ScanOut)
def upload(
    principal: CurrentUser,
    db: Db,
    patient_id: Annotated[uuid.UUID, Form()],
    title: Annotated[str, Form(max_length=200)],
    file: Annotated[UploadFile, File(description="PDF (one or more pages), PNG, JPEG or TIFF")],
    category: Annotated[str, Form(max_length=20)] = service.DEFAULT_CATEGORY,
) -> ScanOut:
    """Upload a scanned document for a patient. OCR runs as a job (follow ``job_id``); when it is done
    the searchable PDF is in the patient's record (``record_id``)."""
    data = file.file.read()  # already spooled by the framework
    request = service.ScanUpload(patient_id, title, category, file.filename or "")
    scan = service.upload(db, principal, request, data)
    scan.job_id = jobs.submit(db, principal, ocr_job, scan_id=str(scan.id)).id
    out = ScanOut.of(scan)
    db.commit()
    return out


@router.get("", response_model=ScanPageList)
def inbox(
    principal: CurrentUser,
    db: Db,
    status_: Annotated[str, Query(alias="status", max_length=12)] = "",
    patient_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> ScanPageList:
    """The scans you uploaded or that belong to patients in your care, newest first."""
    page = service.inbox(db, principal, status=status_, patient_id=patient_id, limit=limit, cursor=cursor)
    out = ScanPageList(
        items=[ScanOut.of(s) for s in page.items], next_cursor=page.next_cursor, total=page.total
    )
    db.commit()
    return out


@router.get("/{scan_id}", response_model=ScanOut)
def get_scan(scan_id: uuid.UUID, principal: CurrentUser, db: Db) -> ScanOut:
    """One scan with each page's recognised text and confidence."""
    out = ScanOut.of(service.get(db, principal, scan_id), with_pages=True)
    db.commit()
    return out


@router.get("/{scan_id}/pdf", response_class=Response)
def searchable_pdf(scan_id: uuid.UUID, principal: CurrentUser, db: Db, download: bool = False) -> Response:
    """The searchable PDF (409 until OCR is done)."""
    scan, data = service.searchable_pdf(db, principal, scan_id)
    response = stored_file_response(f"{scan.id}.pdf", "application/pdf", data, download)
    db.commit()
    return response


@router.get("/{scan_id}/original", response_class=Response)
def original(scan_id: uuid.UUID, principal: CurrentUser, db: Db, download: bool = False) -> Response:
    """The file as uploaded."""
    scan, data = service.original(db, principal, scan_id)
    response = stored_file_response(scan.filename, scan.media_type, data, download)
    db.commit()
    return response


@router.post("/{scan_id}/pages/{number}/review", response_model=ScanPageOut)
def review_page(scan_id: uuid.UUID, number: int, principal: CurrentUser, db: Db) -> ScanPageOut:
    """Mark a page the OCR was unsure of as checked."""
    out = ScanPageOut.of(service.review_page(db, principal, scan_id, number))
    db.commit()
    return out
