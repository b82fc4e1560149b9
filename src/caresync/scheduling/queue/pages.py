"""Clinic queue pages: the nurse console (triage, call next, walk-ins), the waiting-room board (tickets
only, large type), the patient's own place in the queue, the triage settings of administrators, and the
board's WebSocket ``/ws/queue/{location_id}``. Pages refresh their live parts when the socket announces a
change (``/static/queue-live.js``), without reloading.

Forms post with HTMX and get the refreshed fragment back (errors inline, status 200 so HTMX swaps it);
without JavaScript they post normally and are redirected (or shown the page with errors, 422)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import DomainError, Forbidden, NotFound, ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.db import session_factory
from caresync.identity import service as accounts
from caresync.scheduling.models import QueueEntry
from caresync.scheduling.queue import service
from caresync.scheduling.rules import TRIAGE_LABELS, TRIAGE_LEVELS, TriageScale
from caresync.web.api import socket_token, stream_events
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
TEMPLATE_DIR = "scheduling/queue"


def _console_context(
    view: service.QueueView, errors: dict[str, str], values: dict[str, str]
) -> dict[str, Any]:
    scale = view.policy.scale
    return {
        "view": view,
        "levels": [(level, TRIAGE_LABELS[scale][level]) for level in TRIAGE_LEVELS],
        "max_wait": view.policy.max_wait,
        "errors": errors,
        "values": values,
        "message": values.get("_message", ""),
    }


def _console(
    request: Request,
    db: Session,
    principal: Principal,
    location_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The console page, or just its live part for HTMX (errors inline, 200 so HTMX swaps them in)."""
    view = service.read_queue(db, principal, location_id)
    db.commit()
    context = _console_context(view, errors or {}, values or {})
    if is_htmx(request):
        return render_page(request, db, principal, f"{TEMPLATE_DIR}/_console.html", context)
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/console.html", context, status)


def _after_action(
    request: Request,
    db: Session,
    principal: Principal,
    location_id: uuid.UUID,
    action: Callable[[], str],
    values: dict[str, str] | None = None,
) -> Response:
    """Run ``action`` (one transaction; it returns the message to show) and answer with the refreshed
    console, or the console with the error next to its field. Without HTMX: a redirect on success."""
    try:
        message = action()
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404) and exc.extra.get("field") is None:
            raise
        errors = domain_field_errors(exc)
        return _console(request, db, principal, location_id, errors=errors, values=values, status=exc.status)
    db.commit()
    if not is_htmx(request):
        return redirect(f"/queue/{location_id}")
    return _console(request, db, principal, location_id, values={"_message": message})


# --- the console ------------------------------------------------------------------------------------------


@router.get("/queue")
def choose_location(request: Request, db: Db, principal: PageUser) -> Response:
    """Clinicians pick the location whose queue they run (straight in when there is only one)."""
    places = service.locations(db, principal)
    if len(places) == 1:
        only = places[0].id  # read before the rollback expires it
        db.rollback()
        return redirect(f"/queue/{only}")
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/locations.html", {"locations": places})


@router.get("/queue/settings")
def settings_form(request: Request, db: Db, principal: PageUser, saved: int = 0) -> Response:
    """Administrators: the triage scale and maximum waits."""
    if not has_perm(principal, Perm.SCHEDULE_MANAGE):
        raise Forbidden("Only administrators change the triage settings.")
    policy = service.get_settings(db, principal)
    return render_page(
        request, db, principal, f"{TEMPLATE_DIR}/settings.html", _settings_context(policy, saved)
    )


def _settings_context(
    policy: service.TriagePolicy,
    saved: int,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "policy": policy,
        "scales": [
            (
                s.value,
                "Manchester Triage System" if s is TriageScale.MANCHESTER else "Emergency Severity Index",
            )
            for s in TriageScale
        ],
        "labels": TRIAGE_LABELS,
        "levels": TRIAGE_LEVELS,
        "saved": saved,
        "errors": errors or {},
        "values": values or {},
    }


@router.post("/queue/settings")
def settings_submit(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Save the triage settings (blank maximum waits = the scale's defaults)."""
    scale = values.get("scale", "")
    custom = values.get("custom") == "1"
    errors: dict[str, str] = {}
    max_wait: dict[int, int] | None = None
    if custom:
        max_wait = {}
        for level in TRIAGE_LEVELS:
            raw = values.get(f"max_wait_{level}", "").strip()
            if not raw.isdigit():
                errors.setdefault(f"max_wait_{level}", "Enter a whole number of minutes.")
            else:
                max_wait[level] = int(raw)
    if not errors:
        try:
            service.update_settings(db, principal, scale, max_wait)
        except DomainError as exc:
            db.rollback()
            if exc.status in (401, 403, 404):
                raise
            errors = domain_field_errors(exc)
    if errors:
        policy = service.get_settings(db, principal)
        context = _settings_context(policy, 0, errors, values)
        return render_page(request, db, principal, f"{TEMPLATE_DIR}/settings.html", context, 422)
    db.commit()
    return redirect("/queue/settings?saved=1")


@router.get("/queue/{location_id}")
def console(request: Request, db: Db, principal: PageUser, location_id: uuid.UUID) -> Response:
    """The nurse console: the queue in call order with triage, call next and walk-ins."""
    return _console(request, db, principal, location_id)


@router.post("/queue/{location_id}/walk-in")
def walk_in(
    request: Request, db: Db, principal: PageUser, values: FormValues, location_id: uuid.UUID
) -> Response:
    """Add a walk-in by Health ID."""
    health_id, complaint = values.get("health_id", "")[:20], values.get("complaint", "")[:300]

    def join() -> str:
        if not health_id.strip():
            raise ValidationFailed("Enter the patient's Health ID.", extra={"field": "health_id"})
        return (
            f"Added ticket {service.join_walk_in(db, principal, location_id, health_id, complaint).ticket}."
        )

    return _after_action(request, db, principal, location_id, join, values)


@router.post("/queue/{location_id}/call-next")
def call_next(
    request: Request, db: Db, principal: PageUser, values: FormValues, location_id: uuid.UUID
) -> Response:
    """Call the first patient in call order to a room."""

    def call() -> str:
        entry = service.call_next(db, principal, location_id, values.get("room", ""))
        return f"Called ticket {entry.ticket} to {entry.room}."

    return _after_action(request, db, principal, location_id, call, values)


ENTRY_ACTIONS: dict[str, tuple[Callable[[Session, Principal, uuid.UUID], QueueEntry], str]] = {
    "start": (service.start_consultation, "Consultation started for ticket {ticket}."),
    "finish": (service.finish_consultation, "Ticket {ticket} finished."),
    "left": (service.mark_left, "Ticket {ticket} marked as left without being seen."),
}


def _location_of_entry(db: Session, principal: Principal, entry_id: uuid.UUID) -> uuid.UUID:
    location_id = service.entry_location(db, principal, entry_id)
    db.rollback()
    return location_id


@router.post("/queue/entries/{entry_id}/triage")
def triage(
    request: Request, db: Db, principal: PageUser, values: FormValues, entry_id: uuid.UUID
) -> Response:
    """Set or change a triage level (errors shown on the entry's row)."""
    location_id = _location_of_entry(db, principal, entry_id)
    raw = values.get("level", "").strip()

    def run() -> str:
        if raw not in {str(level) for level in TRIAGE_LEVELS}:
            raise ValidationFailed("Choose a triage level from 1 to 5.", extra={"field": "level"})
        entry = service.triage(db, principal, entry_id, int(raw))
        return f"Ticket {entry.ticket} triaged: {TRIAGE_LABELS[TriageScale(entry.triage_scale)][int(raw)]}."

    return _after_action(request, db, principal, location_id, run, {"entry_id": str(entry_id)})


@router.post("/queue/entries/{entry_id}/{action}")
def entry_action(request: Request, db: Db, principal: PageUser, entry_id: uuid.UUID, action: str) -> Response:
    """Start or finish a consultation, or mark a patient as left without being seen."""
    if action not in ENTRY_ACTIONS:
        raise NotFound("There is nothing at this address.")
    location_id = _location_of_entry(db, principal, entry_id)
    use_case, template = ENTRY_ACTIONS[action]

    def run() -> str:
        return template.format(ticket=use_case(db, principal, entry_id).ticket)

    return _after_action(request, db, principal, location_id, run)


# --- the board and the patient's place --------------------------------------------------------------------


@router.get("/queue/{location_id}/board")
def board(request: Request, db: Db, principal: PageUser, location_id: uuid.UUID) -> Response:
    """The waiting-room board (tickets only, large type; live)."""
    view = service.board(db, principal, location_id)
    template = "_board.html" if is_htmx(request) else "board.html"
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/{template}", {"board": view})


@router.get("/me/queue")
def my_place(request: Request, db: Db, principal: PageUser) -> Response:
    """A patient's place in the queue, with the estimated wait (live)."""
    places = service.own_places(db, principal)
    db.commit()
    template = "_my_place.html" if is_htmx(request) else "my_place.html"
    return render_page(request, db, principal, f"{TEMPLATE_DIR}/{template}", {"places": places})


# --- the board's live channel -----------------------------------------------------------------------------


def _socket_verdict(token: str, client_host: str, location_id: uuid.UUID) -> int:
    """0 if the token's owner may watch the location's board, else the close code (4401 not signed in,
    4403 not staff of the location's organisation). A short transaction on a worker thread."""
    with session_factory()() as session:
        resolved = accounts.resolve_token(session, token, client_host)
        verdict = 4401
        if resolved is not None and resolved.stage == "full":
            try:
                service.board_access(session, resolved.principal, location_id)
                verdict = 0
            except DomainError:
                verdict = 4403
        session.commit()
    return verdict


@router.websocket("/ws/queue/{location_id}")
async def board_socket(socket: WebSocket, location_id: uuid.UUID) -> None:
    """Live changes of one location's queue (``{"type": "queue", "change": …, "ticket": …}``; never
    patient data). Authenticates with the session cookie or an ``Authorization: Bearer`` header; closes
    with 4401 when not signed in and 4403 for anyone but staff of the location's organisation."""
    token = socket_token(socket)
    host = socket.client.host if socket.client else ""
    verdict = await run_in_threadpool(_socket_verdict, token, host, location_id) if token else 4401
    if verdict:
        await socket.close(code=verdict, reason="sign in first" if verdict == 4401 else "not allowed")
        return
    await stream_events(socket, location_id)
