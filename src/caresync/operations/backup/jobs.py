"""Backup jobs: the daily scheduled backup (at ``CARESYNC_BACKUP_HOUR_UTC``, then verify, then prune), and
the "Back up now" and "Verify now" buttons of the admin page, which run as jobs with progress."""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab

from caresync.config import get_settings
from caresync.core.jobs import JobContext, huey, job_task
from caresync.operations.backup import service

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="0", hour=str(get_settings().backup_hour_utc)), name="operations.backup")
def scheduled_backup() -> dict[str, Any]:
    """Back up the database and files, verify the archive, then apply retention (all logged)."""
    try:
        return service.scheduled_backup()
    except Exception:
        log.exception("scheduled backup failed")
        raise


@job_task("backup.create")
def backup_now_job(ctx: JobContext) -> dict[str, Any]:
    """Job: make a backup now (the page that submits it audits the request), then verify it."""
    path = service.create_backup(
        None, progress=lambda percent, message: ctx.progress(percent * 8 // 10, message)
    )
    ctx.progress(85, "Verifying the new backup")
    report = service.verify_and_record(path)
    return {
        "backup": path.name,
        "size": path.stat().st_size,
        "verified": report.ok,
        "problems": report.problems,
    }


@job_task("backup.verify")
def verify_job(ctx: JobContext, name: str) -> dict[str, Any]:
    """Job: verify one archive of the backup folder and record the outcome."""
    info = service.find(name)
    ctx.progress(10, f"Verifying {info.name}")
    report = service.verify_and_record(info.path)
    return {"backup": info.name, "verified": report.ok, "problems": report.problems}
