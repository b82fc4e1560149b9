"""Clinic queue jobs: every minute, escalate waiting patients who have passed their triage level's maximum
wait (once per patient) and tell their organisation's nurses. Registered by listing this module in
``caresync.tasks.JOB_MODULES``."""

from __future__ import annotations

from huey import crontab

from caresync.core.auth import system_principal
from caresync.core.jobs import huey
from caresync.db import session_factory, transaction
from caresync.scheduling.queue import service


@huey.periodic_task(crontab(minute="*"), name="scheduling.queue.escalate_overdue")
def escalate_overdue() -> int:
    """Escalate newly overdue queue entries at every location; returns how many were escalated."""
    with transaction(session_factory()) as session:
        return service.escalate_overdue(session, system_principal("Clinic queue escalation"))
