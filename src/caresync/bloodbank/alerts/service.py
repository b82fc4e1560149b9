"""Blood bank alerts: conditions staff must act on, raised and resolved by :func:`scan`.

Three kinds, one open alert per organisation, kind and subject (a partial unique index guards it):

* ``low_stock`` — a group/component whose days of supply fall to the policy's low or critical threshold
  (the inventory's stock dashboard decides the level); subject ``"O-:red_cells"``;
* ``expiring`` — available units expiring within ``policy.expiry_warning_days``, one alert per
  group/component with the count and the first expiry; subject ``"expiring:O-:red_cells"``;
* ``unmet_request`` — an urgent or emergency request still short of units when it is due within
  :data:`UNMET_WINDOW` or overdue; subject = the request id. Messages never name the patient.

A scan refreshes the figures of alerts still true, resolves those whose condition cleared and raises new
ones, telling the organisation's blood bank staff once per new alert (and again if one becomes critical)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.bloodbank.access import blood_bank_staff, staff_organisation
from caresync.bloodbank.inventory.service import stock_dashboard
from caresync.bloodbank.models import BloodAlert, BloodBankPolicy, BloodRequest, BloodUnit
from caresync.bloodbank.policy.service import get_policy
from caresync.bloodbank.requests.service import shortfall
from caresync.bloodbank.rules import ALERT_KINDS, IN_STOCK, UnitStatus, Urgency
from caresync.config import get_settings
from caresync.core import audit
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import ValidationFailed
from caresync.core.notify import notify, queue_email
from caresync.core.pagination import Page, paginate

UNMET_WINDOW = timedelta(hours=2)  # an urgent request short of units this close to its needed-by time
ALERTS_PAGE = "/bloodbank/alerts"
SENDER = "Blood bank alerts"
SEVERITY_RANK = {"critical": 0, "warning": 1}
ALERT_STATES = ("open", "resolved", "all")


@dataclass(frozen=True)
class Draft:
    """An alert a scan finds true now."""

    kind: str
    subject: str
    severity: str
    message: str
    figures: dict[str, Any]


@dataclass
class ScanResult:
    """What one scan changed: alerts raised, escalated to critical, resolved, and left open unchanged."""

    raised: list[BloodAlert] = field(default_factory=list)
    escalated: list[BloodAlert] = field(default_factory=list)
    resolved: list[BloodAlert] = field(default_factory=list)
    still_open: int = 0


def component_label(component: str) -> str:
    """``"red_cells"`` -> ``"red cells"`` (for messages people read)."""
    return component.replace("_", " ")


# --- what is true now ---------------------------------------------------------------------------------------


def _low_stock(session: Session, organisation_id: uuid.UUID, now: datetime) -> list[Draft]:
    critical_days = float(get_policy(session, organisation_id).critical_stock_days)
    drafts = []
    for cell in stock_dashboard(session, organisation_id, now=now):
        if cell.level not in ("low", "critical"):
            continue
        days = cell.days_of_supply
        drafts.append(
            Draft(
                kind="low_stock",
                subject=cell.key,
                severity="critical" if cell.level == "critical" else "warning",
                message=(
                    f"{cell.blood_group} {component_label(cell.component)}: {cell.available} available, "
                    f"{days or 0:.1f} days of supply (low below {cell.low_stock_days:g} days)."
                ),
                figures={
                    "blood_group": cell.blood_group,
                    "component": cell.component,
                    "available": cell.available,
                    "daily_use": cell.daily_use,
                    "days_of_supply": days,
                    "low_days": cell.low_stock_days,
                    "critical_days": min(critical_days, cell.low_stock_days),
                },
            )
        )
    return drafts


def _expiring(session: Session, organisation_id: uuid.UUID, now: datetime) -> list[Draft]:
    window = timedelta(days=get_policy(session, organisation_id).expiry_warning_days)
    rows = session.execute(
        select(BloodUnit.blood_group, BloodUnit.component, func.count(), func.min(BloodUnit.expires_at))
        .where(
            BloodUnit.organisation_id == organisation_id,
            BloodUnit.status == UnitStatus.AVAILABLE.value,
            BloodUnit.expires_at > now,
            BloodUnit.expires_at <= now + window,
        )
        .group_by(BloodUnit.blood_group, BloodUnit.component)
    ).all()
    drafts = []
    for group, component, count, first in rows:
        first_expiry = _aware(first)
        plural = "unit expires" if count == 1 else "units expire"
        drafts.append(
            Draft(
                kind="expiring",
                subject=f"expiring:{group}:{component}",
                severity="critical" if first_expiry - now <= timedelta(days=1) else "warning",
                message=(
                    f"{count} available {group} {component_label(component)} {plural} within "
                    f"{window.days} days: issue them first or offer them to the network."
                ),
                figures={
                    "blood_group": group,
                    "component": component,
                    "count": int(count),
                    "first_expiry": first_expiry.isoformat(),
                    "window_days": window.days,
                },
            )
        )
    return drafts


def _aware(value: datetime) -> datetime:
    """Aggregates bypass the column type on SQLite: give a naive UTC value its zone back."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _unmet(session: Session, organisation_id: uuid.UUID, now: datetime) -> list[Draft]:
    requests = session.scalars(
        select(BloodRequest).where(
            BloodRequest.organisation_id == organisation_id,
            BloodRequest.status == "open",
            BloodRequest.urgency.in_((Urgency.URGENT.value, Urgency.EMERGENCY.value)),
            BloodRequest.needed_by <= now + UNMET_WINDOW,
        )
    ).all()
    drafts = []
    for request in requests:
        missing = shortfall(session, request)
        if missing <= 0:
            continue
        overdue = request.needed_by <= now
        group = request.patient_group or "group unknown"
        drafts.append(
            Draft(
                kind="unmet_request",
                subject=str(request.id),
                severity="critical" if overdue or request.urgency == Urgency.EMERGENCY else "warning",
                message=(
                    f"{request.urgency.capitalize()} request for {request.units_requested} "
                    f"{component_label(request.component)} ({group}) is {missing} short"
                    f"{', past its needed-by time' if overdue else ''}."
                ),
                figures={
                    "request_id": str(request.id),
                    "urgency": request.urgency,
                    "component": request.component,
                    "patient_group": request.patient_group,
                    "units_requested": request.units_requested,
                    "missing": missing,
                    "needed_by": request.needed_by.isoformat(),
                },
            )
        )
    return drafts


def current_conditions(session: Session, organisation_id: uuid.UUID, now: datetime) -> list[Draft]:
    """Every alert condition true now for the organisation (pure reading, nothing stored)."""
    return [
        *_low_stock(session, organisation_id, now),
        *_expiring(session, organisation_id, now),
        *_unmet(session, organisation_id, now),
    ]


# --- raising and resolving ----------------------------------------------------------------------------------


def scan(session: Session, organisation_id: uuid.UUID, now: datetime) -> ScanResult:
    """Bring the organisation's open alerts in line with what is true at ``now``: raise new ones (and tell
    the blood bank staff), refresh those still true, resolve those that cleared. Safe to run from several
    workers at once: a second scan raising the same alert finds it already open and leaves it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    wanted = {(d.kind, d.subject): d for d in current_conditions(session, organisation_id, now)}
    open_alerts = session.scalars(
        select(BloodAlert).where(
            BloodAlert.organisation_id == organisation_id, BloodAlert.resolved_at.is_(None)
        )
    ).all()
    result = ScanResult()
    for alert in open_alerts:
        draft = wanted.pop((alert.kind, alert.subject), None)
        if draft is None:
            alert.resolved_at = now
            result.resolved.append(alert)
            continue
        if draft.severity == "critical" and alert.severity != "critical":
            result.escalated.append(alert)
        alert.severity, alert.message, alert.figures = draft.severity, draft.message, draft.figures
        result.still_open += 1
    for draft in wanted.values():
        raised = _raise(session, organisation_id, draft, now)
        if raised is not None:
            result.raised.append(raised)
    session.flush()
    _tell_staff(session, organisation_id, result.raised, "New blood bank alert")
    _tell_staff(session, organisation_id, result.escalated, "Blood bank alert now critical")
    return result


def _raise(session: Session, organisation_id: uuid.UUID, draft: Draft, now: datetime) -> BloodAlert | None:
    """Insert a new open alert, or ``None`` when a concurrent scan raised it first."""
    alert = BloodAlert(
        organisation_id=organisation_id,
        kind=draft.kind,
        subject=draft.subject,
        severity=draft.severity,
        message=draft.message,
        figures=draft.figures,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:
        return None
    return alert


def _tell_staff(
    session: Session, organisation_id: uuid.UUID, alerts: Iterable[BloodAlert], title: str
) -> None:
    alerts = list(alerts)
    if not alerts:
        return
    sender = system_principal(SENDER)
    link = f"{get_settings().base_url.rstrip('/')}{ALERTS_PAGE}"
    for user_id, email in blood_bank_staff(session, organisation_id):
        for alert in alerts:
            notify(session, user_id, f"bloodbank.alert.{alert.kind}", title, alert.message, ALERTS_PAGE)
        summary = "\n".join(f"- [{a.severity}] {email_line(a)}" for a in alerts)
        queue_email(session, sender, email, f"{title} ({len(alerts)})", f"{summary}\n\nSee: {link}\n")


def email_line(alert: BloodAlert) -> str:
    """What an email may say about an alert: stock figures, but nothing about a patient's request (emails
    leave the permission layer; the app shows the details)."""
    if alert.kind == "unmet_request":
        return "An urgent blood request is still short of units."
    return alert.message


def organisations_to_scan(session: Session) -> list[uuid.UUID]:
    """Organisations that run a blood bank (a saved policy) or hold units in stock, or with open alerts
    (which may need resolving), or with open urgent requests."""
    configured = select(BloodBankPolicy.organisation_id)
    holders = select(BloodUnit.organisation_id).where(BloodUnit.status.in_([s.value for s in IN_STOCK]))
    alerting = select(BloodAlert.organisation_id).where(BloodAlert.resolved_at.is_(None))
    requesting = select(BloodRequest.organisation_id).where(
        BloodRequest.status == "open", BloodRequest.urgency != Urgency.ROUTINE.value
    )
    rows = session.execute(union(configured, holders, alerting, requesting)).scalars().all()
    return sorted(set(rows), key=str)


def scan_all(session: Session, now: datetime) -> dict[str, int]:
    """Scan every organisation that may have alerts (the periodic job)."""
    totals = {"organisations": 0, "raised": 0, "resolved": 0}
    for organisation_id in organisations_to_scan(session):
        result = scan(session, organisation_id, now)
        totals["organisations"] += 1
        totals["raised"] += len(result.raised)
        totals["resolved"] += len(result.resolved)
    return totals


# --- staff use cases ----------------------------------------------------------------------------------------


def scan_now(session: Session, principal: Principal, now: datetime) -> ScanResult:
    """Staff: scan their organisation now (audited)."""
    organisation_id = staff_organisation(session, principal, "bloodbank.alerts.scan")
    result = scan(session, organisation_id, now)
    audit.record(
        session,
        principal,
        "bloodbank.alerts.scan",
        resource_type="blood_alert",
        detail={"raised": len(result.raised), "resolved": len(result.resolved)},
    )
    return result


def list_alerts(
    session: Session,
    principal: Principal,
    *,
    state: str = "open",
    kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[BloodAlert]:
    """Staff: their organisation's alerts (open by default), newest first."""
    organisation_id = staff_organisation(session, principal, "bloodbank.alerts.list")
    if state not in ALERT_STATES:
        raise ValidationFailed(f"state must be one of {', '.join(ALERT_STATES)}.", extra={"field": "state"})
    query = select(BloodAlert).where(BloodAlert.organisation_id == organisation_id)
    if state == "open":
        query = query.where(BloodAlert.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(BloodAlert.resolved_at.is_not(None))
    if kind:
        if kind not in ALERT_KINDS:
            raise ValidationFailed(f"kind must be one of {', '.join(ALERT_KINDS)}.", extra={"field": "kind"})
        query = query.where(BloodAlert.kind == kind)
    return paginate(
        session,
        query,
        sort_column=BloodAlert.created_at,
        id_column=BloodAlert.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def open_alerts(session: Session, principal: Principal) -> list[BloodAlert]:
    """Staff: every open alert of their organisation, critical first, then newest."""
    organisation_id = staff_organisation(session, principal, "bloodbank.alerts.list")
    alerts = session.scalars(
        select(BloodAlert)
        .where(BloodAlert.organisation_id == organisation_id, BloodAlert.resolved_at.is_(None))
        .order_by(BloodAlert.created_at.desc(), BloodAlert.id)
    ).all()
    return sorted(alerts, key=lambda a: SEVERITY_RANK.get(a.severity, 9))


def get_alert(session: Session, organisation_id: uuid.UUID, alert_id: uuid.UUID) -> BloodAlert | None:
    """An alert of the organisation (``None`` when missing or another organisation's)."""
    alert = session.get(BloodAlert, alert_id)
    return alert if alert is not None and alert.organisation_id == organisation_id else None
