"""The landing dashboards of blood bank staff and donors: each card's figures, gathered from the blood bank's
public services (which check permissions and audit what they read)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.bloodbank.alerts import callouts
from caresync.bloodbank.alerts import service as alerts
from caresync.bloodbank.donors import service as donors
from caresync.bloodbank.donors.appointments import local_day
from caresync.bloodbank.inventory import service as inventory
from caresync.bloodbank.models import BloodAlert, BloodRequest, Donation
from caresync.bloodbank.network import offers, transfers
from caresync.bloodbank.requests import service as requests
from caresync.bloodbank.rules import Component, DonationType, Eligibility
from caresync.core.auth import Principal
from caresync.core.rbac import Perm, require
from caresync.db import utcnow

TOP_ALERTS = 3
TOP_REQUESTS = 5
ACT_ON_LIMIT = 50  # offers or transfers counted on the dashboard ("50+" beyond)
QUEUE_STATUSES = ("open", "allocated")
SEVERITIES = ("critical", "warning")
DONATION_TYPE_LABELS = {
    DonationType.WHOLE_BLOOD.value: "Whole blood",
    DonationType.DOUBLE_RED_CELLS.value: "Double red cells",
    DonationType.PLATELETS.value: "Platelets",
    DonationType.PLASMA.value: "Plasma",
}


@dataclass(frozen=True)
class Tally:
    """A count shown on a card, capped at the number a dashboard bothers to fetch."""

    count: int
    more: bool = False

    def __str__(self) -> str:
        return f"{self.count}+" if self.more else str(self.count)


@dataclass(frozen=True)
class TypeEligibility:
    """Whether the donor may give one donation type today, else from when (None: no date can be given)."""

    donation_type: str
    label: str
    eligible: bool
    next_date: date | None
    reason: str


# --- blood bank staff ---------------------------------------------------------------------------------------


def staff_dashboard(session: Session, principal: Principal) -> dict[str, Any]:
    """The staff member's own blood bank at a glance: red-cell stock by group, open alerts, the request
    queue, offers and transfers waiting for them, and today's donation appointments."""
    require(session, principal, Perm.BLOOD_STOCK, "bloodbank.dashboard")
    stock = inventory.stock_for(session, principal)
    open_alerts = alerts.open_alerts(session, principal)
    queue = requests.list_requests(
        session, principal, requests.Filters(status="queue"), limit=TOP_REQUESTS
    ).items
    appointments = donors.list_appointments(session, principal)
    return {
        "red_cells": [cell for cell in stock if cell.component == Component.RED_CELLS.value],
        "other_short": sum(
            1 for cell in stock if cell.component != Component.RED_CELLS.value and cell.level != "ok"
        ),
        "alert_counts": {severity: _count_severity(open_alerts, severity) for severity in SEVERITIES},
        "alerts": open_alerts[:TOP_ALERTS],
        "queue_counts": _queue_counts(session, principal),
        "urgent_requests": [r for r in queue if r.status in QUEUE_STATUSES],
        "offers_waiting": _tally(
            offers.list_offers(session, principal, "incoming", status="pending", limit=ACT_ON_LIMIT)
        ),
        "to_dispatch": _tally(
            transfers.list_transfers(
                session, principal, direction="outgoing", status="requested", limit=ACT_ON_LIMIT
            )
        ),
        "to_receive": _tally(
            transfers.list_transfers(
                session, principal, direction="incoming", status="dispatched", limit=ACT_ON_LIMIT
            )
        ),
        "appointments_today": sum(1 for a in appointments if a.status == "booked"),
        "appointments_total": len(appointments),
    }


def _count_severity(found: list[BloodAlert], severity: str) -> int:
    return sum(1 for alert in found if alert.severity == severity)


def _queue_counts(session: Session, principal: Principal) -> dict[str, int]:
    """Open and allocated requests of the staff member's organisation (figures only, no patient)."""
    rows = session.execute(
        select(BloodRequest.status, func.count())
        .where(
            BloodRequest.organisation_id == principal.organisation_id,
            BloodRequest.status.in_(QUEUE_STATUSES),
        )
        .group_by(BloodRequest.status)
    ).all()
    found = {status: int(number) for status, number in rows}
    return {status: found.get(status, 0) for status in QUEUE_STATUSES}


def _tally(page: Any) -> Tally:
    return Tally(len(page.items), more=page.next_cursor is not None)


# --- donors -------------------------------------------------------------------------------------------------


def donor_dashboard(session: Session, principal: Principal) -> dict[str, Any]:
    """The signed-in donor's eligibility per donation type, next appointment, active call-outs and history
    (``donor`` is None until they complete their donor profile)."""
    require(session, principal, Perm.DONATE, "bloodbank.dashboard")
    assert principal.user_id is not None  # donors are people with accounts
    if donors.donor_for_user(session, principal.user_id) is None:
        return {"donor": None}
    detail = donors.donor_detail(session, principal, None)
    now = utcnow()
    calls = callouts.my_calls(session, principal)
    given = [d for d in detail.donations if d.outcome == "completed"]
    return {
        "donor": detail.donor,
        "eligibility": [_eligibility(kind, verdict) for kind, verdict in detail.eligibility.items()],
        "upcoming": detail.upcoming,
        "calls": calls,
        "calls_to_answer": sum(1 for call in calls if call.contact.response == "pending"),
        "donations_given": _completed_donations(session, detail.donor.id),
        "last_donation": given[0] if given else None,
        "today": local_day(now),
    }


def _eligibility(kind: str, verdict: Eligibility) -> TypeEligibility:
    return TypeEligibility(
        donation_type=kind,
        label=DONATION_TYPE_LABELS.get(kind, kind),
        eligible=verdict.eligible,
        next_date=verdict.next_eligible_date,
        reason="" if verdict.eligible or not verdict.reasons else verdict.reasons[0],
    )


def _completed_donations(session: Session, donor_id: uuid.UUID) -> int:
    return int(
        session.execute(
            select(func.count()).where(Donation.donor_id == donor_id, Donation.outcome == "completed")
        ).scalar_one()
    )
