"""The patient's activity pages: ``/me/activities`` (one big button per activity to log today, streaks
with a flame, badges, the next badge's progress, a 12-week heatmap, undo today's entry, custom activities)
and ``/me/activities/panel``, the fragment the patient dashboard loads.

Logging from a card with HTMX answers with that card (and the heatmap, out of band); adding a custom
activity answers with the whole board. Without JavaScript the forms post normally and are redirected, or
shown the page with the error (422)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import DomainError
from caresync.engagement.rules import BADGES
from caresync.engagement.streaks import rules, service
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
TEMPLATE_DIR = "streaks"
PAGE = "/me/activities"
ICONS = {"exercise": "run", "meditation": "yoga", "medication": "pill", "water": "droplet", "custom": "star"}
HELPERS = {
    "badge_name": rules.badge_name,
    "activity_phrase": lambda activity: rules.ACTIVITY_PHRASES.get(activity, activity),
    "icons": ICONS,
}


def _context(
    board: service.Board,
    heatmap: service.Heatmap,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    message: str = "",
) -> dict[str, Any]:
    return {
        "board": board,
        "heatmap": heatmap,
        "badge_levels": sorted(BADGES.items()),
        **HELPERS,
        "errors": errors or {},
        "values": values or {},
        "message": message,
    }


def _read(db: Session, principal: Principal, **kwargs: Any) -> dict[str, Any]:
    """The board and heatmap (both reads audited), as a template context. Patients only (403 for others:
    clinicians read a patient's streaks through the API)."""
    service.own_patient_id(db, principal, "activity.page")
    return _context(service.streaks(db, principal), service.history(db, principal), **kwargs)


@router.get("/me/activities")
def activities(request: Request, db: Db, principal: PageUser) -> Response:
    """The patient's activities, streaks, badges and calendar."""
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/activities.html", _read(db, principal))


@router.get("/me/activities/panel")
def panel(request: Request, db: Db, principal: PageUser) -> Response:
    """A fragment for the patient dashboard: current streaks and the latest badge."""
    service.own_patient_id(db, principal, "activity.page")
    context = {"board": service.streaks(db, principal), **HELPERS}
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/panel.html", context)


def _message(logged: service.Logged) -> str:
    if logged.new_badges:
        top = logged.new_badges[-1]
        return rules.badge_title(top.days, top.activity, top.name) + "!"
    if not logged.created:
        return "Already logged today."
    return "Logged. Well done!"


def _board(request: Request, db: Session, principal: Principal, context: dict[str, Any]) -> Response:
    """The whole board (HTMX), swapped in place of the board whichever element the request targeted."""
    response = render_page(request, db, principal, f"{TEMPLATE_DIR}/_board.html", context)
    response.headers["HX-Retarget"] = "#activity-board"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


def _failed(
    request: Request, db: Session, principal: Principal, exc: DomainError, values: dict[str, str]
) -> Response:
    """The board with the error next to its field (HTMX: 200 so it is swapped in), or the page (422/409)."""
    db.rollback()
    if exc.status in (401, 403, 404):
        raise exc
    context = _read(db, principal, errors=domain_field_errors(exc), values=values)
    if is_htmx(request):
        return _board(request, db, principal, context)
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/activities.html", context, exc.status)


@router.post("/me/activities/log")
def log(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Log an activity for today: answers with its card (HTMX), or the board for a new custom activity."""
    activity = values.get("activity", "")[:20]
    name, amount = values.get("name", "")[:200], values.get("amount", "")[:200]
    try:
        logged = service.log_activity(db, principal, activity, name, amount)
    except DomainError as exc:
        return _failed(request, db, principal, exc, values)
    key = (logged.entry.activity, logged.entry.name)
    message = _message(logged)
    db.commit()
    if not is_htmx(request):
        return redirect(PAGE)
    context = _read(db, principal, message=message)
    if values.get("target") == "board":
        return _board(request, db, principal, context)
    streak = next(s for s in context["board"].streaks if (s.activity, s.name) == key)
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/_card_update.html", {**context, "s": streak})


@router.post("/me/activities/{log_id}/undo")
def undo(request: Request, db: Db, principal: PageUser, log_id: uuid.UUID) -> Response:
    """Remove one of today's entries (after a confirmation in the page); answers with the board (HTMX)."""
    try:
        entry = service.undo(db, principal, log_id)
    except DomainError as exc:
        return _failed(request, db, principal, exc, {})
    label = rules.activity_label(entry.activity, entry.name)
    db.commit()
    if not is_htmx(request):
        return redirect(PAGE)
    return _board(request, db, principal, _read(db, principal, message=f"Removed today's entry for {label}."))
