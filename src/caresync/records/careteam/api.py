"""Care-team endpoints under ``/api/v1/care``: a patient's care team, SOAP notes (with amendments),
tasks between team members, and secure messaging with unread counts (new messages are announced over
``/ws``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from caresync.records.careteam import messaging, notes, tasks
from caresync.records.careteam.schemas import (
    ConversationOut,
    MemberOut,
    MessageIn,
    MessageOut,
    NoteIn,
    NoteOut,
    NotePage,
    TaskIn,
    TaskOut,
    TaskPage,
    ThreadIn,
    ThreadOut,
    ThreadPage,
    UnreadOut,
    thread_out,
)
from caresync.records.careteam.team import patient_names, team, user_names
from caresync.records.models import CareTask, ClinicalNote
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/care", tags=["care team"])
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
TaskStatus = Annotated[str, Query(alias="status", pattern="^(open|done|cancelled)$")]


def _notes_out(db: Session, rows: Sequence[ClinicalNote]) -> list[NoteOut]:
    names = user_names(db, {note.author_id for note in rows})
    amended = notes.amended_ids(db, list(rows))
    return [NoteOut.of(note, names.get(note.author_id, ""), amended.get(note.id)) for note in rows]


def _tasks_out(db: Session, rows: Sequence[CareTask]) -> list[TaskOut]:
    names = user_names(db, {t.created_by for t in rows} | {t.assignee_id for t in rows})
    patients = patient_names(db, {t.patient_id for t in rows})
    return [TaskOut.of(task, names, patients) for task in rows]


@router.get("/patients/{patient_id}/team", response_model=list[MemberOut])
def care_team(patient_id: uuid.UUID, principal: CurrentUser, db: Db) -> list[MemberOut]:
    """The doctors and nurses caring for the patient, with their roles."""
    out = [MemberOut.of(member) for member in team(db, principal, patient_id)]
    db.commit()
    return out


@router.get("/patients/{patient_id}/notes", response_model=NotePage)
def list_notes(
    patient_id: uuid.UUID, principal: CurrentUser, db: Db, limit: Limit = 20, cursor: Cursor = None
) -> NotePage:
    """The patient's notes you may read, newest first (notes outside your consented categories, and their
    amendments, are left out)."""
    page = notes.notes_page(db, principal, patient_id, limit=limit, cursor=cursor)
    out = NotePage(items=_notes_out(db, page.items), next_cursor=page.next_cursor)
    db.commit()
    return out


@router.post("/patients/{patient_id}/notes", status_code=status.HTTP_201_CREATED, response_model=NoteOut)
def write_note(patient_id: uuid.UUID, body: NoteIn, principal: CurrentUser, db: Db) -> NoteOut:
    """Add a SOAP note (doctors and nurses of the care team), or amend one by naming it in ``amends_id``:
    the amended note stays, marked as amended."""
    draft = notes.NoteDraft(
        patient_id=patient_id,
        subjective=body.subjective,
        objective=body.objective,
        assessment=body.assessment,
        plan=body.plan,
        category=body.category,
        appointment_id=body.appointment_id,
        amends_id=body.amends_id,
    )
    note = notes.write_note(db, principal, draft)
    out = NoteOut.of(note, principal.full_name)
    db.commit()
    return out


@router.get("/notes/{note_id}", response_model=NoteOut)
def read_note(note_id: uuid.UUID, principal: CurrentUser, db: Db) -> NoteOut:
    """One note you may read."""
    out = _notes_out(db, [notes.get_note(db, principal, note_id)])[0]
    db.commit()
    return out


@router.get("/patients/{patient_id}/tasks", response_model=TaskPage)
def patient_tasks(
    patient_id: uuid.UUID,
    principal: CurrentUser,
    db: Db,
    task_status: TaskStatus = "open",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TaskPage:
    """The patient's care tasks (for their care team): open ones soonest due first."""
    page = tasks.tasks_page(
        db, principal, patient_id=patient_id, status=task_status, limit=limit, cursor=cursor
    )
    out = TaskPage(items=_tasks_out(db, page.items), next_cursor=page.next_cursor)
    db.commit()
    return out


@router.post("/patients/{patient_id}/tasks", status_code=status.HTTP_201_CREATED, response_model=TaskOut)
def create_task(patient_id: uuid.UUID, body: TaskIn, principal: CurrentUser, db: Db) -> TaskOut:
    """Assign a task about the patient to a member of their care team (who is notified) or yourself."""
    draft = tasks.TaskDraft(patient_id, body.title, body.assignee_id, body.due_on, body.detail)
    out = _tasks_out(db, [tasks.create_task(db, principal, draft)])[0]
    db.commit()
    return out


@router.get("/tasks", response_model=TaskPage)
def my_tasks(
    principal: CurrentUser,
    db: Db,
    task_status: TaskStatus = "open",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TaskPage:
    """Tasks assigned to you, across the patients you care for: open ones overdue first."""
    page = tasks.tasks_page(db, principal, status=task_status, limit=limit, cursor=cursor)
    out = TaskPage(items=_tasks_out(db, page.items), next_cursor=page.next_cursor)
    db.commit()
    return out


@router.post("/tasks/{task_id}/complete", response_model=TaskOut)
def complete_task(task_id: uuid.UUID, principal: CurrentUser, db: Db) -> TaskOut:
    """Mark an open task done (its assignee or creator)."""
    out = _tasks_out(db, [tasks.complete_task(db, principal, task_id)])[0]
    db.commit()
    return out


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut)
def cancel_task(task_id: uuid.UUID, principal: CurrentUser, db: Db) -> TaskOut:
    """Cancel an open task (its assignee or creator)."""
    out = _tasks_out(db, [tasks.cancel_task(db, principal, task_id)])[0]
    db.commit()
    return out


@router.get("/threads", response_model=ThreadPage)
def list_threads(principal: CurrentUser, db: Db, limit: Limit = 50, cursor: Cursor = None) -> ThreadPage:
    """Your conversations, latest activity first, with unread counts."""
    page = messaging.list_threads(db, principal, limit=limit, cursor=cursor)
    out = ThreadPage(
        items=[thread_out(summary) for summary in page.items],
        next_cursor=page.next_cursor,
        unread_total=messaging.unread_total(db, principal),
    )
    db.commit()
    return out


@router.post("/threads", status_code=status.HTTP_201_CREATED, response_model=ThreadOut)
def start_thread(body: ThreadIn, principal: CurrentUser, db: Db) -> ThreadOut:
    """Start a conversation about a patient with its first message: ``patient`` (the patient and their
    care team) or ``team`` (the care team only). Patients write to their own care team."""
    request = messaging.NewThread(body.patient_id, body.kind, body.subject, body.body)
    thread = messaging.start_thread(db, principal, request)
    name = patient_names(db, {thread.patient_id}).get(thread.patient_id, "")
    out = thread_out(messaging.ThreadSummary(thread, name, 0))
    db.commit()
    return out


@router.get("/threads/{thread_id}", response_model=ConversationOut)
def read_thread(
    thread_id: uuid.UUID, principal: CurrentUser, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> ConversationOut:
    """A conversation's messages, newest first (``cursor`` pages to older ones); marks it read."""
    conversation = messaging.open_thread(db, principal, thread_id, limit=limit, cursor=cursor)
    out = ConversationOut(
        thread=thread_out(messaging.ThreadSummary(conversation.thread, conversation.patient_name, 0)),
        messages=[
            MessageOut.of(m, conversation.senders.get(m.sender_id)) for m in conversation.messages.items
        ],
        next_cursor=conversation.messages.next_cursor,
    )
    db.commit()
    return out


@router.post("/threads/{thread_id}/messages", status_code=status.HTTP_201_CREATED, response_model=MessageOut)
def post_message(thread_id: uuid.UUID, body: MessageIn, principal: CurrentUser, db: Db) -> MessageOut:
    """Add a message; the other participants' open pages are told at once."""
    message = messaging.post_message(db, principal, thread_id, body.body)
    out = MessageOut.of(message, messaging.Sender(principal.full_name, principal.role))
    db.commit()
    return out


@router.get("/unread", response_model=UnreadOut)
def unread(principal: CurrentUser, db: Db) -> UnreadOut:
    """How many messages by others you have not read, over all your conversations."""
    messaging.require_messaging(db, principal, "message.unread")
    out = UnreadOut(unread=messaging.unread_total(db, principal))
    db.commit()
    return out
