"""Adherence's periodic work: dose reminders every five minutes."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow
from caresync.prescriptions.adherence.reminders import send_due_dose_reminders

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="*/5"), name="prescriptions.dose_reminders")
def send_dose_reminders() -> int:
    """Send the dose reminders due now, in one transaction (re-runs send nothing twice)."""
    with transaction(session_factory()) as session:
        sent = send_due_dose_reminders(session, utcnow())
    if sent:
        log.info("sent %d dose reminders", sent)
    return sent
