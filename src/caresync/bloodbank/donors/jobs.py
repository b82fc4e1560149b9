"""Donors' periodic work: every 15 minutes, remind donors of their donation appointments of the next 24
hours (each once, however many workers run it)."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.bloodbank.donors.service import send_reminders
from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="*/15"), name="bloodbank.donation_reminders")
def donation_reminders() -> dict[str, int]:
    """Send the donation appointment reminders due."""
    with transaction(session_factory()) as session:
        sent = send_reminders(session, utcnow())
    if sent:
        log.info("sent %d donation appointment reminders", sent)
    return {"reminded": sent}
