"""Alerts' periodic work, every 15 minutes: scan every organisation's stock, expiry and urgent requests,
then move donor call-outs on (next wave when too few accepted, close when enough did)."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.bloodbank.alerts import callouts, service
from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="*/15"), name="bloodbank.alerts.scan")
def scan_alerts() -> dict[str, int]:
    """Raise, refresh and resolve the blood bank alerts of every organisation holding stock."""
    with transaction(session_factory()) as session:
        totals = service.scan_all(session, utcnow())
    if totals["raised"] or totals["resolved"]:
        log.info("blood bank alerts: %d raised, %d resolved", totals["raised"], totals["resolved"])
    return totals


@huey.periodic_task(crontab(minute="*/15"), name="bloodbank.callouts.advance")
def advance_callouts() -> dict[str, int]:
    """Send the next wave of call-outs still short of donors; close those that have enough."""
    with transaction(session_factory()) as session:
        totals = callouts.advance(session, utcnow())
    if totals["waves"] or totals["closed"]:
        log.info(
            "donor call-outs: %d waves (%d donors), %d closed",
            totals["waves"],
            totals["contacted"],
            totals["closed"],
        )
    return totals
