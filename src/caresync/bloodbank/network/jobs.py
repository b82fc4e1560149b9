"""The network's periodic work: every minute, expire offers left unanswered past their urgency's time limit
and pass each request to the next organisation in rank."""

from __future__ import annotations

import logging

from huey import crontab

from caresync.bloodbank.network.offers import expire_offers
from caresync.core.jobs import huey
from caresync.db import session_factory, transaction, utcnow

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="*"), name="bloodbank.offers.expire")
def expire_unanswered_offers() -> dict[str, int]:
    """Expire unanswered offers and offer their requests to the next organisation, in one transaction."""
    with transaction(session_factory()) as session:
        expired = expire_offers(session, utcnow())
    if expired:
        log.info("expired %d unanswered blood request offers", expired)
    return {"expired": expired}
