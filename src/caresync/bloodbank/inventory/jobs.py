"""Inventory's periodic work: every 15 minutes, units past their expiry date become ``expired``."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.bloodbank.inventory.service import expire_due
from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="*/15"), name="bloodbank.expire_units")
def expire_units() -> int:
    """Expire every unit whose expiry has passed (one transaction; a re-run expires nothing twice)."""
    with transaction(session_factory()) as session:
        expired = expire_due(session, utcnow())
    if expired:
        log.info("expired %d blood units", expired)
    return expired
