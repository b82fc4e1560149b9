"""The administrators' backups page: the archives with their verification status, "Verify now" and "Back up
now" (both run as jobs whose progress shows on the page). Restoring stays on the command line."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from caresync.config import get_settings
from caresync.core import audit, jobs
from caresync.core.errors import NotFound
from caresync.core.rbac import Perm, require
from caresync.operations.backup import service
from caresync.operations.backup.archive import backup_dir
from caresync.operations.backup.jobs import backup_now_job, verify_job
from caresync.web.deps import Db
from caresync.web.pagekit import PageUser, redirect, render_page

router = APIRouter(include_in_schema=False)


@router.get("/admin/backups", response_class=HTMLResponse)
def backups_page(request: Request, db: Db, principal: PageUser, job: uuid.UUID | None = None) -> HTMLResponse:
    """The backups, newest first, with their last verification and the buttons to verify or back up."""
    require(db, principal, Perm.BACKUP_MANAGE, "backup.list")
    backups = service.list_backups()
    running = None
    if job is not None:
        try:
            running = jobs.job_view(jobs.get_job(db, principal, job))
        except NotFound:
            running = None
    audit.record(db, principal, "backup.list", resource_type="Backup", detail={"count": len(backups)})
    settings = get_settings()
    context = {
        "backups": backups,
        "job": running,
        "folder": str(backup_dir(settings)),
        "schedule": {
            "hour": settings.backup_hour_utc,
            "daily": settings.backup_keep_daily,
            "weekly": settings.backup_keep_weekly,
        },
        "human_size": service.human_size,
    }
    return render_page(request, db, principal, "admin/backups.html", context)


@router.post("/admin/backups", response_model=None)
def back_up_now(db: Db, principal: PageUser) -> Response:
    """Start a backup as a job (it is verified when written) and follow it on the page."""
    require(db, principal, Perm.BACKUP_MANAGE, "backup.create")
    audit.record(db, principal, "backup.create", resource_type="Backup")
    job = jobs.submit(db, principal, backup_now_job)
    db.commit()
    return redirect(f"/admin/backups?job={job.id}")


@router.post("/admin/backups/{name}/verify", response_model=None)
def verify_now(db: Db, principal: PageUser, name: str) -> Response:
    """Verify one archive as a job (decrypts it and checks every checksum) and follow it on the page."""
    require(db, principal, Perm.BACKUP_MANAGE, "backup.verify")
    info = service.find(name)
    audit.record(db, principal, "backup.verify", resource_type="Backup", resource_id=info.name)
    job = jobs.submit(db, principal, verify_job, name=info.name)
    db.commit()
    return redirect(f"/admin/backups?job={job.id}")
