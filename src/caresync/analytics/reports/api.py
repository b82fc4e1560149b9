"""Report endpoints under ``/api/v1/analytics/reports``: ask for a PDF report (a job; follow it at
``/api/v1/jobs/{id}``) and download it when it is done."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from fastapi.responses import Response

from caresync.analytics.reports import service
from caresync.analytics.reports.jobs import start_report
from caresync.analytics.reports.schemas import ReportIn
from caresync.core import jobs
from caresync.web.api import JobOut
from caresync.web.deps import CurrentUser, Db

router = APIRouter(tags=["analytics"])
PREFIX = "/api/v1/analytics/reports"


@router.post(PREFIX, status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def request_report(principal: CurrentUser, db: Db, body: ReportIn | None = None) -> JobOut:
    """Make a PDF report as a job (administrators, doctors and nurses; see ``kind``). When the job has
    succeeded, download it from ``/api/v1/analytics/reports/{job_id}/pdf``."""
    body = body or ReportIn()
    job = start_report(
        db, principal, kind=body.kind, organisation_id=body.organisation_id, start=body.start, end=body.end
    )
    view = jobs.job_view(job)
    db.commit()
    return JobOut(**view)


@router.get(
    f"{PREFIX}/{{job_id}}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the report"}},
)
def download_report(job_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Your report as a PDF: 404 for a report that is not yours, 409 while it is being made or when it
    failed."""
    pdf, filename = service.report_pdf(db, principal, job_id)
    db.commit()
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
