"""Care-team pages: a patient's care page (the team, the SOAP notes timeline with amendments, the patient's
tasks, with forms for the team), "My tasks", and messages (my conversations with unread badges, one
conversation that fetches new messages when the WebSocket announces them: ``/static/messages.js``).

Thin: they parse forms and call the same services as the API. Forms post normally and are redirected on
success (or shown again with the errors, 422); the message form posts with HTMX and gets the refreshed
conversation back."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import DomainError, NotFound, ValidationFailed
from caresync.db import utcnow
from caresync.identity import patients
from caresync.records.careteam import messaging, notes, tasks, team
from caresync.records.models import CareTask, ClinicalNote
from caresync.records.rules import CATEGORIES, NOTE_CATEGORIES, THREAD_KINDS
from caresync.scheduling import booking
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "careteam"
NOTES_PER_PAGE = 20


def _render(
    request: Request,
    db: Session,
    principal: Principal,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """Render with the reader's unread-messages count (for the navigation badge)."""
    context["messages_unread"] = messaging.unread_total(db, principal)
    return render_page(request, db, principal, f"{T}/{template}", context, status_code)


def _form_error(exc: DomainError) -> dict[str, str]:
    """A domain error as form errors; errors that are not about the form (no access) propagate."""
    if exc.status in (401, 404) or (exc.status == 403 and exc.extra.get("field") is None):
        raise exc
    return domain_field_errors(exc)


def _uuid(value: str, field: str, message: str) -> uuid.UUID | None:
    if not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise ValidationFailed(message, extra={"field": field}) from None


def _local_path(value: str, default: str) -> str:
    """``value`` if it is a path on this site (no open redirects), else ``default``."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else default


# --- the patient's care page ------------------------------------------------------------------------------


@router.get("/me/care")
def my_care(request: Request, db: Db, principal: PageUser, cursor: str | None = None) -> Response:
    """A patient's own care page: their care team and the notes it writes (read-only)."""
    if principal.role != "patient" or principal.patient_id is None:
        return redirect("/patients")
    return _care(request, db, principal, principal.patient_id, cursor=cursor)


@router.get("/patients/{patient_id}/care")
def care_page(
    request: Request,
    db: Db,
    principal: PageUser,
    patient_id: uuid.UUID,
    cursor: str | None = None,
    amend: uuid.UUID | None = None,
    saved: str = "",
) -> Response:
    """The care team with roles, the notes timeline (newest first), and for the team: the new-note form
    (pre-filled to amend a note), the patient's open tasks and the new-task form."""
    return _care(request, db, principal, patient_id, cursor=cursor, amend=amend, saved=saved)


def _care(
    request: Request,
    db: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    cursor: str | None = None,
    amend: uuid.UUID | None = None,
    saved: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    patient = patients.get_patient(db, principal, patient_id)
    members = team.team(db, principal, patient_id)
    page = notes.notes_page(db, principal, patient_id, limit=NOTES_PER_PAGE, cursor=cursor)
    can_write = team.may_coordinate(db, principal, patient_id)
    values = dict(values or {})
    if amend is not None and not values:
        values = _amend_values(notes.get_note(db, principal, amend))
    open_tasks: list[CareTask] = []
    visits: list[tuple[str, str]] = []
    if can_write:
        open_tasks = tasks.list_tasks(db, principal, patient_id=patient_id)
        visits = _recent_visits(db, principal, patient_id)
    authors = team.user_names(
        db,
        {n.author_id for n in page.items}
        | {t.assignee_id for t in open_tasks}
        | {t.created_by for t in open_tasks},
    )
    context = {
        "patient": patient,
        "members": members,
        "notes": page.items,
        "amended": notes.amended_ids(db, page.items),
        "authors": authors,
        "next_url": f"?{urlencode({'cursor': page.next_cursor})}#notes" if page.next_cursor else "",
        "first_url": "?#notes" if cursor else "",
        "can_write": can_write,
        "tasks": open_tasks,
        "today": utcnow().date(),
        "min_due": tasks.earliest_due_date().isoformat(),
        "default_due": (utcnow().date() + timedelta(days=1)).isoformat(),
        "visits": visits,
        "categories": [(c, CATEGORIES[c]) for c in NOTE_CATEGORIES],
        "category_labels": CATEGORIES,
        "assignees": [(str(m.user_id), f"{m.full_name} ({m.role})") for m in members],
        "saved": saved,
        "errors": errors or {},
        "values": values,
        "me": str(principal.user_id),
    }
    return _render(request, db, principal, "care.html", context, status_code)


def _amend_values(note: ClinicalNote) -> dict[str, str]:
    values = {field: getattr(note, field) for field in notes.SOAP_FIELDS}
    values.update(
        amends_id=str(note.id), category=note.category, appointment_id=str(note.appointment_id or "")
    )
    return values


def _recent_visits(db: Session, principal: Principal, patient_id: uuid.UUID) -> list[tuple[str, str]]:
    """The patient's visits of the last 30 days and today, newest first, to attach a note to."""
    now = utcnow()
    page = booking.list_appointments(
        db,
        principal,
        patient_id=patient_id,
        start=now - timedelta(days=30),
        end=now + timedelta(days=1),
        descending=True,
        limit=10,
    )
    return [
        (str(a.id), f"{a.start_at:%Y-%m-%d %H:%M} UTC · {a.practitioner.display_name} · {a.status}")
        for a in page.items
    ]


@router.post("/patients/{patient_id}/care/notes")
def add_note(
    request: Request, db: Db, principal: PageUser, values: FormValues, patient_id: uuid.UUID
) -> Response:
    """Save a new note (or an amendment), then show it in the timeline."""
    try:
        draft = notes.NoteDraft(
            patient_id=patient_id,
            category=values.get("category") or None,
            appointment_id=_uuid(
                values.get("appointment_id", ""), "appointment_id", "Choose a visit from the list."
            ),
            amends_id=_uuid(values.get("amends_id", ""), "amends_id", "The note to amend is not valid."),
            **{field: values.get(field, "") for field in notes.SOAP_FIELDS},
        )
        note = notes.write_note(db, principal, draft)
    except DomainError as exc:
        db.rollback()
        errors = {f"note_{k}" if k != "form" else "note_form": v for k, v in _form_error(exc).items()}
        return _care(request, db, principal, patient_id, errors=errors, values=values, status_code=exc.status)
    note_id = note.id
    db.commit()
    return redirect(f"/patients/{patient_id}/care?saved=note#note-{note_id}")


@router.post("/patients/{patient_id}/care/tasks")
def add_task(
    request: Request, db: Db, principal: PageUser, values: FormValues, patient_id: uuid.UUID
) -> Response:
    """Assign a task to a member of the care team (who is notified)."""
    try:
        assignee = _uuid(values.get("assignee_id", ""), "assignee_id", "Choose who should do it.")
        if assignee is None:
            raise ValidationFailed("Choose who should do it.", extra={"field": "assignee_id"})
        draft = tasks.TaskDraft(
            patient_id,
            values.get("title", ""),
            assignee,
            _due_date(values.get("due_on", "")),
            values.get("detail", ""),
        )
        tasks.create_task(db, principal, draft)
    except DomainError as exc:
        db.rollback()
        errors = {f"task_{k}": v for k, v in _form_error(exc).items()}
        return _care(request, db, principal, patient_id, errors=errors, values=values, status_code=exc.status)
    db.commit()
    return redirect(f"/patients/{patient_id}/care?saved=task#tasks")


def _due_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed("Choose a due date.", extra={"field": "due_on"}) from None


# --- my tasks ---------------------------------------------------------------------------------------------


@router.get("/tasks")
def my_tasks(
    request: Request,
    db: Db,
    principal: PageUser,
    status: str = "open",
    cursor: str | None = None,
    closed: str = "",
) -> Response:
    """The tasks assigned to me across my patients: open ones overdue first (highlighted)."""
    status = status if status in ("open", "done", "cancelled") else "open"
    page = tasks.tasks_page(db, principal, status=status, limit=50, cursor=cursor)
    rows = page.items
    context = {
        "tasks": rows,
        "status": status,
        "names": team.user_names(db, {t.created_by for t in rows}),
        "patients": team.patient_names(db, {t.patient_id for t in rows}),
        "today": utcnow().date(),
        "closed": closed,
        "me": str(principal.user_id),
        "next_url": f"?{urlencode({'status': status, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else "",
        "first_url": f"?{urlencode({'status': status})}" if cursor else "",
    }
    return _render(request, db, principal, "tasks.html", context)


@router.post("/tasks/{task_id}/{action}")
def close_task(db: Db, principal: PageUser, values: FormValues, task_id: uuid.UUID, action: str) -> Response:
    """Complete or cancel a task (after the page's confirmation), then go back where the form was."""
    if action not in ("complete", "cancel"):
        raise NotFound("There is nothing at this address.")
    use_case = tasks.complete_task if action == "complete" else tasks.cancel_task
    use_case(db, principal, task_id)
    db.commit()
    back = _local_path(values.get("next", ""), "/tasks")
    separator = "&" if "?" in back else "?"
    return redirect(f"{back}{separator}closed={'done' if action == 'complete' else 'cancelled'}")


# --- messages ---------------------------------------------------------------------------------------------


@router.get("/messages")
def messages_page(
    request: Request,
    db: Db,
    principal: PageUser,
    cursor: str | None = None,
    patient_id: uuid.UUID | None = None,
) -> Response:
    """My conversations with unread badges, and the form to start one (HTMX asks for the list only)."""
    return _messages(request, db, principal, cursor=cursor, values={"patient_id": str(patient_id or "")})


def _messages(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    page = messaging.list_threads(db, principal, limit=50, cursor=cursor)
    context: dict[str, Any] = {
        "threads": page.items,
        "next_url": f"?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else "",
        "first_url": "/messages" if cursor else "",
        "values": values or {},
        "errors": errors or {},
    }
    if is_htmx(request):
        return _render(request, db, principal, "_threads.html", context)
    if principal.role == "patient":
        has_team = bool(principal.patient_id and team.team(db, principal, principal.patient_id))
        context.update(has_team=has_team, patient_options=[])
    else:
        options = [(str(pid), name) for pid, name in messaging.messageable_patients(db, principal)]
        context.update(has_team=bool(options), patient_options=options)
    context["kinds"] = list(THREAD_KINDS.items())
    return _render(request, db, principal, "messages.html", context, status_code)


@router.post("/messages")
def start_thread(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Start a conversation with its first message, then open it."""
    try:
        if principal.role == "patient":
            patient_id = principal.patient_id
        else:
            patient_id = _uuid(values.get("patient_id", ""), "patient_id", "Choose a patient.")
        if patient_id is None:
            raise ValidationFailed("Choose a patient.", extra={"field": "patient_id"})
        kind = "patient" if principal.role == "patient" else values.get("kind", "patient")
        request_ = messaging.NewThread(patient_id, kind, values.get("subject", ""), values.get("body", ""))
        thread = messaging.start_thread(db, principal, request_)
    except DomainError as exc:
        db.rollback()
        return _messages(
            request, db, principal, values=values, errors=_form_error(exc), status_code=exc.status
        )
    thread_id = thread.id
    db.commit()
    return redirect(f"/messages/{thread_id}")


@router.get("/messages/{thread_id}")
def thread_page(
    request: Request, db: Db, principal: PageUser, thread_id: uuid.UUID, cursor: str | None = None
) -> Response:
    """One conversation, oldest to newest, marked read; HTMX (a live refresh) gets the messages only."""
    return _thread(request, db, principal, thread_id, cursor=cursor, fragment="_messages.html")


def _thread(
    request: Request,
    db: Session,
    principal: Principal,
    thread_id: uuid.UUID,
    *,
    fragment: str,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    conversation = messaging.open_thread(db, principal, thread_id, cursor=cursor)
    thread = conversation.thread
    context = {
        "thread": thread,
        "patient_name": conversation.patient_name,
        "kind_label": THREAD_KINDS.get(thread.kind, thread.kind),
        "messages": list(reversed(conversation.messages.items)),
        "senders": conversation.senders,
        "me": principal.user_id,
        "older_url": f"?{urlencode({'cursor': conversation.messages.next_cursor})}"
        if conversation.messages.next_cursor
        else "",
        "newest_url": f"/messages/{thread.id}" if cursor else "",
        "values": values or {},
        "errors": errors or {},
        "is_patient": principal.role == "patient",
    }
    template = fragment if is_htmx(request) else "thread.html"
    return _render(request, db, principal, template, context, status_code)


@router.post("/messages/{thread_id}")
def post_message(
    request: Request, db: Db, principal: PageUser, values: FormValues, thread_id: uuid.UUID
) -> Response:
    """Send a message. HTMX gets the refreshed conversation and an empty form (or the error, status 200
    so that it is shown); without JavaScript, a redirect (or the page with the error, 422)."""
    try:
        messaging.post_message(db, principal, thread_id, values.get("body", ""))
    except DomainError as exc:
        db.rollback()
        errors = _form_error(exc)
        status = 200 if is_htmx(request) else exc.status
        return _thread(
            request,
            db,
            principal,
            thread_id,
            fragment="_panel.html",
            values=values,
            errors=errors,
            status_code=status,
        )
    db.commit()
    if not is_htmx(request):
        return redirect(f"/messages/{thread_id}#latest")
    return _thread(request, db, principal, thread_id, fragment="_panel.html")
