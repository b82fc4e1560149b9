"""Credentials' periodic work: once a day, expire lapsed licences, then send the expiry reminders due."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.credentials.service import expire_lapsed, send_expiry_reminders

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(hour="5", minute="15"), name="credentials.expiry")
def check_expiry() -> dict[str, int]:
    """Expire licences whose expiry date has passed and send the 30- and 7-day reminders due, in one
    transaction (re-runs change and send nothing twice)."""
    with transaction(session_factory()) as session:
        now = utcnow()
        expired = expire_lapsed(session, now)
        reminded = send_expiry_reminders(session, now)
    if expired or reminded:
        log.info("expired %d practitioner credentials, sent %d expiry reminders", expired, reminded)
    return {"expired": expired, "reminded": reminded}
