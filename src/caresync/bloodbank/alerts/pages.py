"""Alert and call-out pages.

Blood bank staff: ``/bloodbank/alerts`` (open alerts, critical first, with "Call donors" on shortages; a
form to call donors for any group; call-outs with their progress) and ``/bloodbank/callouts/{id}`` (the
donors contacted, wave by wave, with their replies; send the next wave; close). Donors:
``/donor/callouts`` (the calls sent to them, with the reason; pick a free time to accept, or decline).

Forms post normally: success redirects (so reloading posts nothing twice), a refused form shows the page
again with the reason next to it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.bloodbank.alerts import callouts, service
from caresync.bloodbank.donors import appointments
from caresync.bloodbank.donors import service as donors
from caresync.bloodbank.rules import BLOOD_GROUPS, DONATION_TYPES
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, ValidationFailed
from caresync.db import utcnow
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
ALERTS_DIR = "bloodbank/alerts"
CALLOUTS_DIR = "bloodbank/callouts"
RECENT_CALLOUTS = 20
DEFAULT_DONORS = 10  # the call-out forms' suggestion
SLOT_DAYS = 7  # a donor answering a call picks a time within the next week
MAX_CHOICES = 60
DONATION_LABELS = {t: t.replace("_", " ").capitalize() for t in DONATION_TYPES}
DONE_MESSAGES = {
    "scanned": "Stock, expiry and urgent requests checked.",
    "created": "Call-out created: the first wave of donors has been contacted.",
    "wave": "The next wave of donors has been contacted.",
    "no_donors": "No other suitable donor can be contacted now (all contacted, cooling down, unavailable or "
    "not eligible).",
    "closed": "Call-out closed.",
    "accepted": "Thank you! Your donation appointment is booked.",
    "declined": "Thank you for letting us know.",
}


def _refusal(db: Session, exc: DomainError) -> dict[str, str]:
    """Roll back and turn a refused form into its errors; permission and missing-thing errors are raised
    on (they get the error page)."""
    db.rollback()
    if exc.status in (401, 403, 404):
        raise exc
    return domain_field_errors(exc)


# --- staff: alerts and call-outs


def _alerts_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    cursor: str | None = None,
    done: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    alerts = service.open_alerts(db, principal)
    rows, next_cursor = callouts.list_callouts(db, principal, limit=RECENT_CALLOUTS, cursor=cursor)
    calling = {p.callout.alert_id for p in rows if p.callout.status == "active" and p.callout.alert_id}
    context: dict[str, Any] = {
        "alerts": alerts,
        "callouts": rows,
        "calling": calling,
        "next_url": f"/bloodbank/alerts?cursor={next_cursor}" if next_cursor else "",
        "first_url": "/bloodbank/alerts" if cursor else "",
        "groups": [(g, g) for g in BLOOD_GROUPS],
        "default_donors": DEFAULT_DONORS,
        "donation_types": list(DONATION_LABELS.items()),
        "message": DONE_MESSAGES.get(done, ""),
        "errors": errors or {},
        "values": values or {"donors_needed": str(DEFAULT_DONORS)},
    }
    return render_page(request, db, principal, f"{ALERTS_DIR}/alerts.html", context, status)


@router.get("/bloodbank/alerts")
def alerts_page(
    request: Request, db: Db, principal: PageUser, cursor: str | None = None, done: str = ""
) -> Response:
    """Staff: open alerts and call-outs."""
    return _alerts_page(request, db, principal, cursor=cursor, done=done)


@router.post("/bloodbank/alerts/scan")
def scan_now(db: Db, principal: PageUser) -> Response:
    """Staff: check now instead of waiting for the next scan."""
    service.scan_now(db, principal, utcnow())
    db.commit()
    return redirect("/bloodbank/alerts?done=scanned")


def _whole_number(values: dict[str, str], name: str) -> int:
    raw = values.get(name, "").strip()
    if not raw.isdigit() or len(raw) > 4:
        raise ValidationFailed("Enter a whole number.", extra={"field": name})
    return int(raw)


def _optional_id(values: dict[str, str], name: str) -> uuid.UUID | None:
    raw = values.get(name, "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed("Not a valid reference.", extra={"field": name}) from None


@router.post("/bloodbank/callouts")
def create_callout(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Staff: call donors (from an alert, or for a group), first wave at once."""
    try:
        callout = callouts.create_callout(
            db,
            principal,
            donors_needed=_whole_number(values, "donors_needed"),
            now=utcnow(),
            needed_group=values.get("needed_group") or None,
            alert_id=_optional_id(values, "alert_id"),
            donation_type=values.get("donation_type") or None,
            reason=values.get("reason", ""),
        )
    except DomainError as exc:
        errors = _refusal(db, exc)
        if values.get("alert_id"):  # posted from an alert's button: say it above the page, not in the form
            errors = {"form": exc.detail}
        return _alerts_page(request, db, principal, errors=errors, values=values, status=exc.status)
    callout_id = callout.id
    db.commit()
    return redirect(f"/bloodbank/callouts/{callout_id}?done=created")


def _callout_page(
    request: Request,
    db: Session,
    principal: Principal,
    callout_id: uuid.UUID,
    *,
    done: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    progress, contacts = callouts.callout_detail(db, principal, callout_id)
    context = {
        "p": progress,
        "contacts": contacts,
        "message": DONE_MESSAGES.get(done, ""),
        "error": error,
        "donation_labels": DONATION_LABELS,
    }
    return render_page(request, db, principal, f"{CALLOUTS_DIR}/detail.html", context, status)


@router.get("/bloodbank/callouts/{callout_id}")
def callout_page(
    request: Request, db: Db, principal: PageUser, callout_id: uuid.UUID, done: str = ""
) -> Response:
    """Staff: a call-out's donors and replies."""
    return _callout_page(request, db, principal, callout_id, done=done)


@router.post("/bloodbank/callouts/{callout_id}/waves")
def send_wave(request: Request, db: Db, principal: PageUser, callout_id: uuid.UUID) -> Response:
    """Staff: contact the next wave now."""
    try:
        contacted = callouts.send_wave(db, principal, callout_id, utcnow())
    except DomainError as exc:
        error = _refusal(db, exc).get("form", exc.detail)
        return _callout_page(request, db, principal, callout_id, error=error, status=exc.status)
    db.commit()
    return redirect(f"/bloodbank/callouts/{callout_id}?done={'wave' if contacted else 'no_donors'}")


@router.post("/bloodbank/callouts/{callout_id}/close")
def close_callout(request: Request, db: Db, principal: PageUser, callout_id: uuid.UUID) -> Response:
    """Staff: stop calling donors (the button asks for confirmation)."""
    try:
        callouts.close_callout(db, principal, callout_id, utcnow())
    except DomainError as exc:
        error = _refusal(db, exc).get("form", exc.detail)
        return _callout_page(request, db, principal, callout_id, error=error, status=exc.status)
    db.commit()
    return redirect(f"/bloodbank/callouts/{callout_id}?done=closed")


# --- donors: answering calls


def _free_times(
    db: Session, principal: Principal, organisation_id: uuid.UUID, donation_type: str, now: datetime
) -> list[tuple[datetime, str]]:
    """The blood bank's free donation times over the next days (at most :data:`MAX_CHOICES`), labelled in
    the blood bank's local time."""
    today = appointments.local_day(now)
    times: list[tuple[datetime, str]] = []
    for offset in range(SLOT_DAYS):
        day = today + timedelta(days=offset)
        for start in donors.free_slots(db, principal, organisation_id, day, donation_type, now=now):
            times.append((start, appointments.local_text(start)))
        if len(times) >= MAX_CHOICES:
            break
    return times[:MAX_CHOICES]


def _donor_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    done: str = "",
    errors: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    calls = callouts.my_calls(db, principal)
    now = utcnow()
    slots = {
        call.callout.id: _free_times(
            db, principal, call.callout.organisation_id, call.callout.donation_type, now
        )
        for call in calls
        if call.contact.response != "accepted"
    }
    context = {
        "calls": calls,
        "slots": slots,
        "donation_labels": DONATION_LABELS,
        "message": DONE_MESSAGES.get(done, ""),
        "errors": errors or {},
    }
    return render_page(request, db, principal, f"{CALLOUTS_DIR}/mine.html", context, status)


@router.get("/donor/callouts")
def my_callouts(request: Request, db: Db, principal: PageUser, done: str = "") -> Response:
    """Donors: the calls sent to me."""
    return _donor_page(request, db, principal, done=done)


def _starts_at(values: dict[str, str]) -> datetime | None:
    raw = values.get("starts_at", "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed("Choose one of the times offered.", extra={"field": "starts_at"}) from None


@router.post("/donor/callouts/{callout_id}/reply")
def reply(
    request: Request, db: Db, principal: PageUser, callout_id: uuid.UUID, values: FormValues
) -> Response:
    """Donors: accept with a time (books the appointment) or decline."""
    accept = values.get("answer") == "accept"
    try:
        callouts.reply(db, principal, callout_id, accept=accept, starts_at=_starts_at(values), now=utcnow())
    except DomainError as exc:
        errors = {str(callout_id): _refusal(db, exc)}
        return _donor_page(request, db, principal, errors=errors, status=exc.status)
    db.commit()
    return redirect(f"/donor/callouts?done={'accepted' if accept else 'declined'}")
