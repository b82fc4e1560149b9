"""The report job: build, render and store one PDF report for its owner (see :mod:`.service`)."""

from __future__ import annotations

import gc
import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from caresync.analytics.reports import service
from caresync.core import jobs
from caresync.core.auth import Principal
from caresync.core.jobs import JobContext, huey, job_task


@huey.on_startup()
def warm_up() -> None:
    """When a worker starts: load what reports need (WeasyPrint, matplotlib, fonts) before the first one,
    then freeze what is loaded by then (modules, fonts: kept for the worker's life) out of the cyclic
    garbage collector's reach. Without it, a full collection during a report re-scans those ~400,000
    objects: a quarter of a doctor's report's rendering time."""
    service.warm_up()
    gc.collect()
    gc.freeze()


@job_task(service.REPORT_JOB)
def report_job(
    ctx: JobContext, kind: str, user_id: str, organisation_id: str | None, start: str, end: str
) -> dict[str, Any]:
    """Job: the report of this kind, organisation and period, made as its owner; its result holds the
    stored PDF's address."""
    request = service.ReportRequest(
        kind,
        uuid.UUID(organisation_id) if organisation_id else None,
        date.fromisoformat(start),
        date.fromisoformat(end),
    )
    ctx.progress(2, "Checking your access")
    return service.make_report(uuid.UUID(user_id), request, ctx.progress)


def start_report(
    session: Session,
    principal: Principal,
    *,
    kind: str | None = None,
    organisation_id: uuid.UUID | None = None,
    start: date | None = None,
    end: date | None = None,
) -> jobs.Job:
    """Check and audit the request and queue the report job (enqueued when the caller's transaction
    commits)."""
    request = service.authorize_request(
        session, principal, kind=kind, organisation_id=organisation_id, start=start, end=end
    )
    return jobs.submit(
        session,
        principal,
        report_job,
        kind=request.kind,
        user_id=str(principal.user_id),
        organisation_id=str(request.organisation_id) if request.organisation_id else None,
        start=request.start.isoformat(),
        end=request.end.isoformat(),
    )
