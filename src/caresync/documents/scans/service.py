"""Scanned documents: upload for a patient, OCR as a job, the inbox, and reading the results.

The upload is checked and stored (encrypted) at once; a job runs OCR (:mod:`caresync.documents.ocr`) and,
as the uploader, files the searchable PDF into the patient's record through
:func:`caresync.records.service.upload` (signed, versioned, under consent like any record). The recognised
text and each page's confidence are kept on the scan; pages the OCR was unsure of await a person's review.
Reading a scan's text or files follows the record's consent: whoever may not read the record's category
may not read the scan either.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from caresync.core import audit, jobs, storage
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, authorize_patient, cared_for_patient_ids, require
from caresync.core.text import clean_line
from caresync.db import session_factory, transaction, utcnow
from caresync.documents.models import DocumentScan, ScanPage
from caresync.documents.search import service as search
from caresync.identity.service import acting_user
from caresync.records import service as records
from caresync.records.consent import read_scope
from caresync.records.rules import CATEGORIES

if TYPE_CHECKING:  # the engine imports OCRmyPDF: only the job needs it
    from caresync.documents.ocr.engine import OcrResult

SCAN_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/tiff")
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "image/tiff": "tif"}
DEFAULT_CATEGORY = "document"
INBOX_STATUSES = frozenset({"queued", "processing", "done", "failed"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScanUpload:
    """What an upload carries besides the file."""

    patient_id: uuid.UUID
    title: str
    category: str = DEFAULT_CATEGORY
    filename: str = ""


def upload(session: Session, principal: Principal, request: ScanUpload, data: bytes) -> DocumentScan:
    """Check and store a scanned document for a patient; the caller submits the OCR job. Whoever may add
    to the patient's record may upload a scan."""
    authorize_patient(session, principal, request.patient_id, Perm.PATIENT_WRITE, "document.scan.upload")
    if request.category not in CATEGORIES:
        raise ValidationFailed(f"Unknown category {request.category!r}.", extra={"field": "category"})
    title = clean_line(request.title)[:200]
    if not title:
        raise ValidationFailed("Give the document a title.", extra={"field": "title"})
    pages = _readable_pages(data)
    stored = storage.put(session, data, allowed_types=SCAN_TYPES)
    assert principal.user_id is not None  # authorize_patient lets only signed-in users write
    scan = DocumentScan(
        patient_id=request.patient_id,
        organisation_id=principal.organisation_id,
        uploaded_by=principal.user_id,
        title=title,
        category=request.category,
        filename=clean_line(request.filename)[:200] or f"scan.{EXTENSIONS[stored.media_type]}",
        media_type=stored.media_type,
        original_sha256=stored.sha256,
        page_count=pages,
    )
    session.add(scan)
    session.flush()
    audit.record(
        session,
        principal,
        "document.scan.upload",
        patient_id=request.patient_id,
        resource_type="DocumentScan",
        resource_id=scan.id,
        detail={"media_type": stored.media_type, "size": stored.size, "category": request.category},
    )
    return scan


def _readable_pages(data: bytes) -> int:
    """A PDF's page count, refusing a damaged, encrypted or over-long one at once (422) rather than in the
    job; 0 for an image or anything else (``storage.put`` checks the type, the job decodes images)."""
    if storage.sniff(data) != "application/pdf":
        return 0
    from caresync.documents.ocr import engine, inputs

    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        return inputs.check_pdf(Path(handle.name), engine.MAX_PAGES)


def inbox(
    session: Session,
    principal: Principal,
    *,
    status: str = "",
    patient_id: uuid.UUID | None = None,
    limit: int = 25,
    cursor: str | None = None,
) -> Page[DocumentScan]:
    """The scans the caller uploaded or that belong to patients in their care, newest first (titles and
    progress only: opening one checks consent)."""
    require(session, principal, Perm.PATIENT_WRITE, "document.scan.inbox")
    if status and status not in INBOX_STATUSES:
        raise ValidationFailed(f"Unknown status {status!r}.", extra={"field": "status"})
    query = select(DocumentScan).where(
        or_(
            DocumentScan.uploaded_by == principal.user_id,
            DocumentScan.patient_id.in_(cared_for_patient_ids(principal)),
        )
    )
    if status:
        query = query.where(DocumentScan.status == status)
    if patient_id is not None:
        query = query.where(DocumentScan.patient_id == patient_id)
    page = paginate(
        session,
        query,
        sort_column=DocumentScan.created_at,
        id_column=DocumentScan.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=True,
    )
    audit.record(session, principal, "document.scan.inbox", detail={"count": len(page.items)})
    return page


def pages_to_review(session: Session, scan_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many pages of each of these scans still await a person's check (scans without any: absent)."""
    if not scan_ids:
        return {}
    rows = session.execute(
        select(ScanPage.scan_id, func.count())
        .where(ScanPage.scan_id.in_(scan_ids), ScanPage.needs_review.is_(True))
        .group_by(ScanPage.scan_id)
    )
    return {scan_id: int(count) for scan_id, count in rows}


def get(
    session: Session, principal: Principal, scan_id: uuid.UUID, action: str = "document.scan.read"
) -> DocumentScan:
    """One scan with its pages, if the caller may read its category of the patient's record (404
    otherwise, audited)."""
    scan = session.get(DocumentScan, scan_id)
    if scan is None:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="DocumentScan", resource_id=scan_id
        )
        raise NotFound("No such scanned document.")
    scope = read_scope(session, principal, scan.patient_id, action)
    if not scope.allows(scan.category):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=scan.patient_id,
            resource_type="DocumentScan",
            resource_id=scan.id,
        )
        raise NotFound("No such scanned document.")
    audit.record(
        session,
        principal,
        action,
        patient_id=scan.patient_id,
        resource_type="DocumentScan",
        resource_id=scan.id,
        flagged=scope.break_glass,
    )
    return scan


def original(session: Session, principal: Principal, scan_id: uuid.UUID) -> tuple[DocumentScan, bytes]:
    """A scan and its original file, as uploaded (audited as a download)."""
    scan = get(session, principal, scan_id, "document.scan.download")
    return scan, storage.get(scan.original_sha256)


def searchable_pdf(session: Session, principal: Principal, scan_id: uuid.UUID) -> tuple[DocumentScan, bytes]:
    """A scan and its searchable PDF (the record it was filed as); 409 while OCR is not done."""
    scan = get(session, principal, scan_id, "document.scan.download")
    if scan.record_id is None:
        raise Conflict(
            "The searchable PDF is not ready yet." if scan.status != "failed" else scan.error or ""
        )
    _, data = records.content(session, principal, scan.record_id)
    return scan, data


def review_page(session: Session, principal: Principal, scan_id: uuid.UUID, number: int) -> ScanPage:
    """Mark a low-confidence page as checked by a person."""
    scan = get(session, principal, scan_id, "document.scan.review")
    authorize_patient(session, principal, scan.patient_id, Perm.PATIENT_WRITE, "document.scan.review")
    page = session.get(ScanPage, (scan.id, number))
    if page is None:
        raise NotFound(f"The document has no page {number}.")
    page.reviewed_by = principal.user_id
    page.needs_review = False
    session.flush()
    return page


# --- the OCR job --------------------------------------------------------------------------------------------


def run_ocr(scan_id: uuid.UUID, progress: Progress) -> dict[str, object]:
    """Job body: OCR the scan, keep its pages, and file the searchable PDF into the record as the uploader.
    Each step runs in its own short transaction; a problem with the file marks the scan failed with a
    message for the user (no half-written record is left)."""
    from caresync.documents.ocr import engine

    with transaction(session_factory()) as session:
        scan = jobs.subject_of(session, DocumentScan, scan_id, "scanned document")
        scan.status = "processing"
        data = storage.get(scan.original_sha256)
        media_type = scan.media_type

    def on_page(done: int, total: int) -> None:
        with transaction(session_factory()) as session:
            row = jobs.subject_of(session, DocumentScan, scan_id, "scanned document")
            row.page_count, row.pages_done = total, done
        progress(done, total)

    with tempfile.TemporaryDirectory(prefix="caresync-ocr-") as folder:
        source = Path(folder) / f"original.{EXTENSIONS[media_type]}"
        source.write_bytes(data)
        output = Path(folder) / "searchable.pdf"
        try:
            result = engine.ocr_document(source, media_type, output, progress=on_page)
            with transaction(session_factory()) as session:
                return _file(session, scan_id, result, output.read_bytes())
        except Exception as exc:
            jobs.mark_failed(DocumentScan, scan_id, jobs.safe_message(exc), completed_at=utcnow())
            raise


def _file(session: Session, scan_id: uuid.UUID, result: OcrResult, pdf: bytes) -> dict[str, object]:
    scan = jobs.subject_of(session, DocumentScan, scan_id, "scanned document")
    principal = acting_user(session, scan.uploaded_by)
    pages = result.pages
    scan.pages = [
        ScanPage(number=p.number, text=p.text, confidence=p.confidence, needs_review=p.needs_review)
        for p in pages
    ]
    record = records.upload(
        session,
        principal,
        records.Upload(
            patient_id=scan.patient_id,
            category=scan.category,
            title=scan.title,
            recorded_on=scan.created_at.date(),
            client_id="ocr",
        ),
        pdf,
    )
    scan.record_id = record.id
    scan.status = "done"
    scan.page_count = scan.pages_done = len(pages)
    scan.ocr_skipped = result.ocr_skipped
    scan.completed_at = utcnow()
    search.index_scan(session, scan)
    review = sum(1 for p in pages if p.needs_review)
    audit.record(
        session,
        principal,
        "document.scan.ocr",
        patient_id=scan.patient_id,
        resource_type="DocumentScan",
        resource_id=scan.id,
        detail={"pages": len(pages), "needs_review": review, "skipped": scan.ocr_skipped},
    )
    return {"scan_id": str(scan.id), "record_id": str(record.id), "pages": len(pages), "needs_review": review}
