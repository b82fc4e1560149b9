"""Scheduling's periodic work: appointment reminders and follow-up prompts and fresh "next free slot"
values every five minutes, and lapsed waitlist offers passed on every minute."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow
from caresync.scheduling.availability import refresh_stale
from caresync.scheduling.booking import expire_offers
from caresync.scheduling.reminders import send_due_reminders

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="*/5"), name="scheduling.reminders")
def send_reminders() -> int:
    """Send the reminders and follow-up prompts due now, in one transaction (re-runs send nothing twice)."""
    with transaction(session_factory()) as session:
        sent = send_due_reminders(session, utcnow())
    if sent:
        log.info("sent %d appointment reminders and follow-up prompts", sent)
    return sent


@huey.periodic_task(crontab(minute="*"), name="scheduling.waitlist_offers")
def pass_on_lapsed_offers() -> int:
    """Withdraw waitlist offers nobody accepted in time and offer each slot to the next patient waiting."""
    with transaction(session_factory()) as session:
        lapsed = expire_offers(session, utcnow())
    if lapsed:
        log.info("passed on %d lapsed waitlist offers", lapsed)
    return lapsed


@huey.periodic_task(crontab(minute="*/5"), name="scheduling.next_free")
def refresh_stale_next_free() -> int:
    """Recompute the next free slot of practitioners whose stored one has started (time moves on), so that
    directory search shows and filters on current values without computing slots itself."""
    with transaction(session_factory()) as session:
        refreshed = refresh_stale(session, utcnow())
    return refreshed
