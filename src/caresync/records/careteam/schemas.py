"""Pydantic request and response models of the care-team API (``/api/v1/care``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from caresync.records.careteam import messaging, notes, tasks
from caresync.records.careteam.team import Member
from caresync.records.models import CareTask, ClinicalNote, Message

NoteCategory = Literal["note", "mental-health"]


class MemberOut(BaseModel):
    """A clinician of the patient's care team."""

    user_id: uuid.UUID
    full_name: str
    role: str
    organisation: str
    since: datetime

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        """From a team member."""
        return cls(
            user_id=member.user_id,
            full_name=member.full_name,
            role=member.role,
            organisation=member.organisation,
            since=member.since,
        )


class NoteIn(BaseModel):
    """A SOAP note (at least one section written), or an amendment of one (``amends_id``)."""

    subjective: str = Field(default="", max_length=notes.MAX_SECTION)
    objective: str = Field(default="", max_length=notes.MAX_SECTION)
    assessment: str = Field(default="", max_length=notes.MAX_SECTION)
    plan: str = Field(default="", max_length=notes.MAX_SECTION)
    category: NoteCategory | None = Field(
        default=None, description="note (default) or mental-health; an amendment keeps the amended note's"
    )
    appointment_id: uuid.UUID | None = None
    amends_id: uuid.UUID | None = None


class NoteOut(BaseModel):
    """A note with its author and time; ``amended_by`` names its amendment, if any."""

    id: uuid.UUID
    patient_id: uuid.UUID
    category: str
    subjective: str
    objective: str
    assessment: str
    plan: str
    author_id: uuid.UUID
    author_name: str
    created_at: datetime
    appointment_id: uuid.UUID | None
    amends_id: uuid.UUID | None
    amended_by: uuid.UUID | None = None

    @classmethod
    def of(cls, note: ClinicalNote, author_name: str, amended_by: uuid.UUID | None = None) -> NoteOut:
        """From a row."""
        return cls(
            id=note.id,
            patient_id=note.patient_id,
            category=note.category,
            subjective=note.subjective,
            objective=note.objective,
            assessment=note.assessment,
            plan=note.plan,
            author_id=note.author_id,
            author_name=author_name,
            created_at=note.created_at,
            appointment_id=note.appointment_id,
            amends_id=note.amends_id,
            amended_by=amended_by,
        )


class NotePage(BaseModel):
    """One page of a patient's notes, newest first."""

    items: list[NoteOut]
    next_cursor: str | None


class TaskIn(BaseModel):
    """A task for a member of the patient's care team (or yourself)."""

    title: str = Field(min_length=1, max_length=tasks.MAX_TITLE)
    detail: str = Field(default="", max_length=tasks.MAX_DETAIL)
    assignee_id: uuid.UUID
    due_on: date


class TaskOut(BaseModel):
    """A care task and where it stands."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    title: str
    detail: str
    created_by: uuid.UUID
    creator_name: str
    assignee_id: uuid.UUID
    assignee_name: str
    due_on: date
    overdue: bool
    status: str
    created_at: datetime
    completed_at: datetime | None
    completed_by: uuid.UUID | None

    @classmethod
    def of(cls, task: CareTask, names: dict[uuid.UUID, str], patients: dict[uuid.UUID, str]) -> TaskOut:
        """From a row, with user and patient names looked up."""
        return cls(
            id=task.id,
            patient_id=task.patient_id,
            patient_name=patients.get(task.patient_id, ""),
            title=task.title,
            detail=task.detail,
            created_by=task.created_by,
            creator_name=names.get(task.created_by, ""),
            assignee_id=task.assignee_id,
            assignee_name=names.get(task.assignee_id, ""),
            due_on=task.due_on,
            overdue=tasks.is_overdue(task),
            status=task.status,
            created_at=task.created_at,
            completed_at=task.completed_at,
            completed_by=task.completed_by,
        )


class TaskPage(BaseModel):
    """One page of tasks."""

    items: list[TaskOut]
    next_cursor: str | None


class ThreadIn(BaseModel):
    """A new conversation about a patient, with its first message. ``kind``: ``patient`` (the patient and
    their care team) or ``team`` (the care team only)."""

    patient_id: uuid.UUID
    kind: Literal["patient", "team"] = "patient"
    subject: str = Field(min_length=1, max_length=messaging.MAX_SUBJECT)
    body: str = Field(min_length=1, max_length=messaging.MAX_BODY)


class MessageIn(BaseModel):
    """A message (1 to 5000 characters)."""

    body: str = Field(min_length=1, max_length=messaging.MAX_BODY)


class MessageOut(BaseModel):
    """A message with its sender."""

    id: uuid.UUID
    thread_id: uuid.UUID
    sender_id: uuid.UUID
    sender_name: str
    sender_role: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, message: Message, sender: messaging.Sender | None) -> MessageOut:
        """From a row and its sender."""
        return cls(
            id=message.id,
            thread_id=message.thread_id,
            sender_id=message.sender_id,
            sender_name=sender.full_name if sender else "",
            sender_role=sender.role if sender else "",
            body=message.body,
            created_at=message.created_at,
        )


class ThreadOut(BaseModel):
    """A conversation, the patient it is about, and how many of its messages you have not read."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    kind: str
    subject: str
    created_by: uuid.UUID
    created_at: datetime
    last_message_at: datetime
    unread: int = 0


class ThreadPage(BaseModel):
    """One page of your conversations, latest activity first, and your unread total."""

    items: list[ThreadOut]
    next_cursor: str | None
    unread_total: int


class ConversationOut(BaseModel):
    """A conversation with one page of its messages, newest first (``next_cursor`` pages to older ones).
    Reading it marks it read."""

    thread: ThreadOut
    messages: list[MessageOut]
    next_cursor: str | None


class UnreadOut(BaseModel):
    """How many messages by others you have not read, over all your conversations."""

    unread: int


def thread_out(summary: messaging.ThreadSummary) -> ThreadOut:
    """A thread summary as the API shows it."""
    thread = summary.thread
    return ThreadOut(
        id=thread.id,
        patient_id=thread.patient_id,
        patient_name=summary.patient_name,
        kind=thread.kind,
        subject=thread.subject,
        created_by=thread.created_by,
        created_at=thread.created_at,
        last_message_at=thread.last_message_at,
        unread=summary.unread,
    )
