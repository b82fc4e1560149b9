"""The reports page (``/analytics/reports``): choose a report and a period, "Generate report" (a job whose
progress the page follows), and the download links of your latest reports."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.analytics.reports import service
from caresync.analytics.reports.jobs import start_report
from caresync.core.errors import NotFound, ValidationFailed
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, redirect, render_page

router = APIRouter(include_in_schema=False)
PAGE = "/analytics/reports"


@router.get(PAGE)
def reports_page(request: Request, db: Db, principal: PageUser, job: uuid.UUID | None = None) -> Response:
    """The form, the report being made (``job``) and the latest reports."""
    recent = service.recent_reports(db, principal)
    running = None
    if job is not None:
        try:
            running = service.report_job_view(db, principal, job)
        except NotFound:
            running = None
    context = {
        "kinds": service.allowed_kinds(principal),
        "titles": service.TITLES,
        "job": running,
        "recent": recent,
    }
    return render_page(request, db, principal, "analytics/reports/page.html", context)


@router.post(PAGE)
def generate_report(db: Db, principal: PageUser, form: FormValues) -> Response:
    """Start a report (the form's ``kind``, ``start`` and ``end``) and follow it on the page."""
    job = start_report(
        db, principal, kind=form.get("kind") or None, start=_day(form, "start"), end=_day(form, "end")
    )
    db.commit()
    return redirect(f"{PAGE}?job={job.id}")


@router.get(f"{PAGE}/jobs/{{job_id}}")
def report_status(request: Request, db: Db, principal: PageUser, job_id: uuid.UUID) -> Response:
    """The report job's progress (an HTMX fragment that refreshes itself until the job ends), then the
    download link."""
    context = {"job": service.report_job_view(db, principal, job_id)}
    return render_page(request, db, principal, "analytics/reports/_job.html", context)


def _day(form: dict[str, str], name: str) -> date | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"`{name}` must be a date (YYYY-MM-DD).") from None
