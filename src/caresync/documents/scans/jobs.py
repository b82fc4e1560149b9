"""The OCR job of a scanned document (see :func:`caresync.documents.scans.service.run_ocr`)."""

from __future__ import annotations

import uuid
from typing import Any

from caresync.core.jobs import JobContext, job_task
from caresync.documents.scans import service

OCR_JOB = "document.scan.ocr"


@job_task(OCR_JOB)
def ocr_job(ctx: JobContext, scan_id: str) -> dict[str, Any]:
    """Job: OCR one scan, page by page, and file the searchable PDF; progress says which page is done."""
    ctx.progress(1, "Reading the document")

    def on_page(done: int, total: int) -> None:
        ctx.progress(5 + 90 * done // max(total, 1), f"Page {done} of {total} recognised")

    return service.run_ocr(uuid.UUID(scan_id), on_page)
