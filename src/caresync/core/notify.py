"""Notifications: an in-app list per user, pushed live, plus email.

Email goes over SMTP when ``CARESYNC_SMTP_HOST`` is set; otherwise each message is written as an ``.eml``
file into ``var/outbox/`` so that nothing is silently dropped on a laptop. Email bodies must not contain
clinical details: they point to the app, where the permission layer applies.
"""

from __future__ import annotations

import smtplib
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import ForeignKey, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from caresync.config import get_settings
from caresync.core import realtime
from caresync.core.auth import Principal
from caresync.core.errors import NotFound
from caresync.core.jobs import JobContext, job_task, submit
from caresync.db import Base, IdMixin, UTCDateTime, on_commit, utcnow


class Notification(IdMixin, Base):
    """A message for one user."""

    __tablename__ = "notifications"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def notify(
    session: Session, user_id: uuid.UUID, kind: str, title: str, body: str = "", link: str = ""
) -> Notification:
    """Add an in-app notification (in the caller's transaction) and push it to the user's open pages."""
    note = Notification(user_id=user_id, kind=kind, title=title, body=body, link=link, created_at=utcnow())
    session.add(note)
    session.flush()
    event = {"type": "notification", "id": str(note.id), "title": title, "link": link}
    # Push only once the notification is really there: a rolled-back change must not announce anything.
    on_commit(session, lambda: realtime.publish(user_id, event))
    return note


def unread_count(session: Session, user_id: uuid.UUID) -> int:
    """How many notifications the user has not read."""
    query = select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    return int(session.execute(query).scalar_one())


def mark_read(session: Session, user_id: uuid.UUID, notification_id: uuid.UUID | None = None) -> int:
    """Mark one (or, without an id, every) notification of the user as read; returns how many."""
    query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if notification_id is not None:
        if session.get(Notification, notification_id) is None:
            raise NotFound("No such notification.")
        query = query.where(Notification.id == notification_id)
    result = session.execute(query.values(read_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def send_email(to: str, subject: str, body: str) -> str:
    """Send an email now (SMTP if configured, else ``var/outbox``). Returns the Message-ID."""
    settings = get_settings()
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="caresync.local")
    message.set_content(body)
    if settings.smtp_host:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
    else:
        outbox = settings.ensure_var_dir() / "outbox"
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        (outbox / name).write_bytes(bytes(message))
    return str(message["Message-ID"])


@job_task("notify.email")
def deliver_email(_ctx: JobContext, *, to: str, subject: str, body: str) -> dict[str, str]:
    """Job: send one email."""
    return {"message_id": send_email(to, subject, body)}


def queue_email(session: Session, owner: Principal, to: str, subject: str, body: str) -> None:
    """Send an email from the worker once the caller's transaction commits."""
    submit(session, owner, deliver_email, to=to, subject=subject, body=body)
