"""API shapes of scanned documents."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from caresync.documents.models import DocumentScan, ScanPage


class ScanPageOut(BaseModel):
    """One page's recognised text and confidence (0-1)."""

    number: int
    text: str
    confidence: float | None
    needs_review: bool
    reviewed: bool

    @classmethod
    def of(cls, page: ScanPage) -> ScanPageOut:
        return cls(
            number=page.number,
            text=page.text,
            confidence=page.confidence,
            needs_review=page.needs_review,
            reviewed=page.reviewed_by is not None,
        )


class ScanOut(BaseModel):
    """A scanned document and where its OCR stands (pages only when asked for one scan)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    title: str
    category: str
    filename: str
    media_type: str
    status: str
    page_count: int
    pages_done: int
    ocr_skipped: bool
    error: str | None
    job_id: uuid.UUID | None
    record_id: uuid.UUID | None
    created_at: datetime
    completed_at: datetime | None
    pages_to_review: int | None = None
    pages: list[ScanPageOut] | None = None

    @classmethod
    def of(cls, scan: DocumentScan, *, with_pages: bool = False) -> ScanOut:
        out = cls(
            id=scan.id,
            patient_id=scan.patient_id,
            title=scan.title,
            category=scan.category,
            filename=scan.filename,
            media_type=scan.media_type,
            status=scan.status,
            page_count=scan.page_count,
            pages_done=scan.pages_done,
            ocr_skipped=scan.ocr_skipped,
            error=scan.error,
            job_id=scan.job_id,
            record_id=scan.record_id,
            created_at=scan.created_at,
            completed_at=scan.completed_at,
        )
        if with_pages:
            out.pages = [ScanPageOut.of(page) for page in scan.pages]
            out.pages_to_review = sum(1 for page in scan.pages if page.needs_review)
        return out


class ScanPageList(BaseModel):
    """One page of the inbox."""

    items: list[ScanOut]
    next_cursor: str | None
    total: int | None
