"""Secure messaging about a patient: ``patient`` threads between the patient and their care team, and
``team`` threads within the care team only.

Who takes part follows the care team as it changes: a patient thread's participants are the patient's
portal account and the active care team, a team thread's the care team alone (for anyone else, the patient
included, a team thread does not exist). Only participants read or post. A post is announced over each
other participant's WebSocket once it is committed, as ``{"type": "message", "thread_id", "patient_id"}``
(never the text: the page fetches it through the permission layer). Unread counts are the messages by
others newer than the reader's read marker, which opening a thread moves forward. Every read and write is
audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from caresync.core import audit, realtime
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import CLINICIANS, Perm, authorize_patient, cared_for_patient_ids
from caresync.core.text import clean_line, clean_text
from caresync.db import on_commit, utcnow
from caresync.identity.models import Patient, User
from caresync.records.careteam.team import (
    is_member,
    member_ids,
    patient_names,
)
from caresync.records.models import Message, MessageThread, ThreadRead
from caresync.records.rules import THREAD_KINDS

MAX_BODY = 5000
MAX_SUBJECT = 200
MESSAGING_ROLES = frozenset({"patient", *CLINICIANS})


@dataclass(frozen=True)
class NewThread:
    """A conversation to start, with its first message."""

    patient_id: uuid.UUID
    kind: str
    subject: str
    body: str


@dataclass(frozen=True)
class ThreadSummary:
    """A thread in someone's list: the patient it is about and how many messages they have not read."""

    thread: MessageThread
    patient_name: str
    unread: int


@dataclass(frozen=True)
class Sender:
    """Who wrote a message, as the reader sees them."""

    full_name: str
    role: str


@dataclass(frozen=True)
class Conversation:
    """An opened thread: one page of its messages (newest first) and their senders."""

    thread: MessageThread
    patient_name: str
    messages: Page[Message]
    senders: dict[uuid.UUID, Sender]


def takes_part(principal: Principal) -> bool:
    """Whether the principal's role has conversations at all (patients, doctors and nurses)."""
    return principal.role in MESSAGING_ROLES and principal.user_id is not None


def require_messaging(session: Session, principal: Principal, action: str) -> None:
    """403 (audited) for roles that have no conversations."""
    if not takes_part(principal):
        audit.record_and_commit(session, principal, action, outcome="denied")
        raise Forbidden("Messages are for patients and their care teams.")


def _my_threads(principal: Principal) -> Select[MessageThread]:
    if principal.role == "patient":
        return select(MessageThread).where(
            MessageThread.patient_id == principal.patient_id, MessageThread.kind == "patient"
        )
    return select(MessageThread).where(MessageThread.patient_id.in_(cared_for_patient_ids(principal)))


def is_participant(session: Session, principal: Principal, thread: MessageThread) -> bool:
    """Whether the principal takes part in the thread now."""
    if principal.role == "patient":
        return thread.kind == "patient" and thread.patient_id == principal.patient_id
    return principal.role in CLINICIANS and is_member(session, thread.patient_id, principal.user_id)


def participants(session: Session, thread: MessageThread) -> set[uuid.UUID]:
    """The user ids taking part in the thread now."""
    people = member_ids(session, thread.patient_id)
    if thread.kind == "patient":
        patient = session.get(Patient, thread.patient_id)
        if patient is not None and patient.user_id is not None:
            people.add(patient.user_id)
    return people


def _check_text(subject: str | None, body: str) -> tuple[str, str]:
    body = clean_text(body)
    if not body:
        raise ValidationFailed("Write a message.", extra={"field": "body"})
    if len(body) > MAX_BODY:
        raise ValidationFailed(f"Keep the message under {MAX_BODY} characters.", extra={"field": "body"})
    if subject is None:
        return "", body
    subject = clean_line(subject)
    if not subject:
        raise ValidationFailed("Give the conversation a subject.", extra={"field": "subject"})
    if len(subject) > MAX_SUBJECT:
        raise ValidationFailed(
            f"Keep the subject under {MAX_SUBJECT} characters.", extra={"field": "subject"}
        )
    return subject, body


def start_thread(session: Session, principal: Principal, request: NewThread) -> MessageThread:
    """Start a conversation about a patient with its first message. The patient writes to their care
    team; a member of the care team writes to the patient and the team, or to the team only."""
    action = "message.thread_create"
    require_messaging(session, principal, action)
    perm = Perm.PATIENT_WRITE if principal.role == "patient" else Perm.PATIENT_READ
    authorize_patient(session, principal, request.patient_id, perm, action)
    if request.kind not in THREAD_KINDS:
        raise ValidationFailed("Choose who the conversation is with.", extra={"field": "kind"})
    patient = session.get(Patient, request.patient_id)
    assert patient is not None  # authorize_patient found it
    if principal.role == "patient":
        if request.kind != "patient":
            raise ValidationFailed(
                "You can write to your care team; team-only conversations are for the team.",
                extra={"field": "kind"},
            )
        if not member_ids(session, request.patient_id):
            raise ValidationFailed(
                "You have no care team yet. Once a doctor or nurse cares for you (for example after you book "
                "an appointment), you can write to them here."
            )
    elif not is_member(session, request.patient_id, principal.user_id):
        _deny(session, principal, action, request.patient_id)
        raise Forbidden("Only members of the patient's care team take part in its conversations.")
    elif request.kind == "patient" and patient.user_id is None:
        raise ValidationFailed(
            "This patient has no portal account to write to; start a care-team conversation instead.",
            extra={"field": "kind"},
        )
    subject, body = _check_text(request.subject, request.body)
    assert principal.user_id is not None  # takes_part
    now = utcnow()
    thread = MessageThread(
        patient_id=request.patient_id,
        kind=request.kind,
        subject=subject,
        created_by=principal.user_id,
        created_at=now,
        last_message_at=now,
    )
    session.add(thread)
    session.flush()
    message = Message(thread_id=thread.id, sender_id=principal.user_id, body=body, created_at=now)
    session.add(message)
    session.flush()
    _mark_read(session, thread.id, principal.user_id, now)
    audit.record(
        session,
        principal,
        action,
        patient_id=thread.patient_id,
        resource_type="MessageThread",
        resource_id=thread.id,
        detail={"kind": thread.kind},
    )
    _announce(session, thread, principal.user_id)
    return thread


def post_message(session: Session, principal: Principal, thread_id: uuid.UUID, body: str) -> Message:
    """A participant adds a message; the others are told live once it is committed."""
    thread = _participant_thread(session, principal, thread_id, "message.send")
    _subject, text = _check_text(None, body)
    assert principal.user_id is not None  # a participant
    now = utcnow()
    message = Message(thread_id=thread.id, sender_id=principal.user_id, body=text, created_at=now)
    session.add(message)
    thread.last_message_at = now
    session.flush()
    _mark_read(session, thread.id, principal.user_id, now)
    audit.record(
        session,
        principal,
        "message.send",
        patient_id=thread.patient_id,
        resource_type="Message",
        resource_id=message.id,
        detail={"thread_id": str(thread.id)},
    )
    _announce(session, thread, principal.user_id)
    return message


def _announce(session: Session, thread: MessageThread, sender_id: uuid.UUID) -> None:
    """Tell every other participant's open pages, after commit (no text, no names: only ids)."""
    event = {"type": "message", "thread_id": str(thread.id), "patient_id": str(thread.patient_id)}
    recipients = sorted(participants(session, thread) - {sender_id})

    def publish() -> None:
        for user_id in recipients:
            realtime.publish(user_id, event)

    on_commit(session, publish)


def open_thread(
    session: Session,
    principal: Principal,
    thread_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Conversation:
    """One page of a thread's messages, newest first, for a participant; marks the thread read."""
    thread = _participant_thread(session, principal, thread_id, "message.read")
    assert principal.user_id is not None  # a participant
    page = paginate(
        session,
        select(Message).where(Message.thread_id == thread.id),
        sort_column=Message.created_at,
        id_column=Message.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    newest = session.execute(select(func.max(Message.created_at)).where(Message.thread_id == thread.id))
    latest = newest.scalar()
    if latest is not None:
        _mark_read(session, thread.id, principal.user_id, latest)
    sender_ids = {m.sender_id for m in page.items}
    rows = session.execute(select(User.id, User.full_name, User.role).where(User.id.in_(sender_ids))).all()
    audit.record(
        session,
        principal,
        "message.read",
        patient_id=thread.patient_id,
        resource_type="MessageThread",
        resource_id=thread.id,
        detail={"count": len(page.items)},
    )
    return Conversation(
        thread=thread,
        patient_name=patient_names(session, {thread.patient_id}).get(thread.patient_id, ""),
        messages=page,
        senders={row.id: Sender(row.full_name, row.role) for row in rows},
    )


def _participant_thread(
    session: Session, principal: Principal, thread_id: uuid.UUID, action: str
) -> MessageThread:
    thread = session.get(MessageThread, thread_id)
    if thread is None or not takes_part(principal) or not is_participant(session, principal, thread):
        _deny(session, principal, action, thread.patient_id if thread else None, thread_id)
        raise NotFound("No such conversation.")
    return thread


def _deny(
    session: Session,
    principal: Principal,
    action: str,
    patient_id: uuid.UUID | None,
    thread_id: uuid.UUID | None = None,
) -> None:
    audit.record_and_commit(
        session,
        principal,
        action,
        outcome="denied",
        patient_id=patient_id,
        resource_type="MessageThread" if thread_id else "Patient",
        resource_id=thread_id or patient_id or "",
    )


def _mark_read(session: Session, thread_id: uuid.UUID, user_id: uuid.UUID, at: Any) -> None:
    """Move the user's read marker of the thread forward to ``at`` (never back). One statement, so that
    two pages opening the thread at once cannot both try to create the marker."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ThreadRead).values(thread_id=thread_id, user_id=user_id, read_at=at)
    later = statement.excluded.read_at
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ThreadRead.thread_id, ThreadRead.user_id],
            set_={"read_at": case((ThreadRead.read_at < later, later), else_=ThreadRead.read_at)},
        )
    )


def _unread_query(principal: Principal) -> Select[uuid.UUID, int]:
    """(thread id, unread count) of the principal's threads that have unread messages."""
    mine = _my_threads(principal).with_only_columns(MessageThread.id)
    marker = and_(ThreadRead.thread_id == Message.thread_id, ThreadRead.user_id == principal.user_id)
    return (
        select(Message.thread_id, func.count(Message.id))
        .outerjoin(ThreadRead, marker)
        .where(
            Message.thread_id.in_(mine),
            Message.sender_id != principal.user_id,
            or_(ThreadRead.read_at.is_(None), Message.created_at > ThreadRead.read_at),
        )
        .group_by(Message.thread_id)
    )


def unread_total(session: Session, principal: Principal) -> int:
    """How many messages by others the principal has not read, over all their threads (0 for roles that
    have no conversations). A count only: not audited."""
    if not takes_part(principal):
        return 0
    return sum(count for _thread, count in session.execute(_unread_query(principal)).all())


def list_threads(
    session: Session, principal: Principal, *, limit: int = 50, cursor: str | None = None
) -> Page[ThreadSummary]:
    """The principal's threads, latest activity first, each with its unread count (audited per patient)."""
    require_messaging(session, principal, "message.thread_list")
    page = paginate(
        session,
        _my_threads(principal),
        sort_column=MessageThread.last_message_at,
        id_column=MessageThread.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    ids = [thread.id for thread in page.items]
    unread: dict[uuid.UUID, int] = {}
    if ids:
        query = _unread_query(principal).where(Message.thread_id.in_(ids))
        unread = dict(session.execute(query).all())
    patients = {thread.patient_id for thread in page.items}
    names = patient_names(session, patients)
    for patient_id in sorted(patients):
        audit.record(
            session, principal, "message.thread_list", patient_id=patient_id, resource_type="MessageThread"
        )
    items = [ThreadSummary(t, names.get(t.patient_id, ""), unread.get(t.id, 0)) for t in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


def messageable_patients(
    session: Session, principal: Principal, limit: int = 500
) -> list[tuple[uuid.UUID, str]]:
    """The patients whose care team the clinician belongs to, by family name (for starting a
    conversation); audited like a patient list."""
    if principal.role not in CLINICIANS:
        return []
    query = (
        select(Patient.id, Patient.given_name, Patient.family_name)
        .where(Patient.id.in_(cared_for_patient_ids(principal)))
        .order_by(Patient.family_name, Patient.given_name, Patient.id)
        .limit(limit)
    )
    rows = session.execute(query).all()
    audit.record(session, principal, "patient.list", resource_type="Patient", detail={"count": len(rows)})
    return [(row.id, f"{row.given_name} {row.family_name}") for row in rows]
