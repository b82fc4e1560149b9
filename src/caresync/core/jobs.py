"""Background jobs on Huey, with a status row the API and UI can follow.

The queue is ``SqliteHuey`` under ``var/`` by default and ``RedisHuey`` when ``CARESYNC_REDIS_URL`` is set;
``CARESYNC_JOBS_IMMEDIATE`` runs jobs in-process at once (tests). A job is declared with :func:`job_task`
and started with :func:`submit`, which records a ``jobs`` row and enqueues the task only after the caller's
transaction commits (so the worker never sees a job whose data is not there yet).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from caresync.config import Settings, get_settings
from caresync.core import realtime
from caresync.core.auth import Principal
from caresync.core.errors import NotFound
from caresync.db import Base, IdMixin, UTCDateTime, on_commit, session_factory, transaction, utcnow

log = logging.getLogger(__name__)
STATUSES = ("queued", "running", "succeeded", "failed")
_Row = TypeVar("_Row", bound=Base)


class Job(IdMixin, Base):
    """A unit of long work and how far it got."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
    )

    kind: Mapped[str] = mapped_column(String(60))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(300), default="")
    result: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def make_huey(settings: Settings) -> Huey:
    """The queue for these settings."""
    if settings.jobs_immediate:
        return MemoryHuey("caresync", immediate=True)
    if settings.redis_url:
        return RedisHuey("caresync", url=settings.redis_url)
    settings.ensure_var_dir()
    return SqliteHuey("caresync", filename=str(settings.var_dir / "jobs.db"))


huey: Huey = make_huey(get_settings())


@dataclass
class JobContext:
    """Handed to a job function so it can report progress."""

    job_id: uuid.UUID

    def progress(self, percent: int, message: str = "") -> None:
        """Record progress (0-100) and push it to the job's owner."""
        _update(self.job_id, status="running", progress=max(0, min(100, percent)), message=message)


def _publish(job: Job) -> None:
    if job.owner_id:
        realtime.publish(job.owner_id, {"type": "job", **job_view(job)})


def _update(job_id: uuid.UUID, **fields: Any) -> None:
    with transaction(session_factory()) as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        for key, value in fields.items():
            setattr(job, key, value)
    _publish(job)


JobFunction = Callable[..., dict[str, Any] | None]


def job_task(kind: str) -> Callable[[JobFunction], Any]:
    """Declare a job. The function gets a :class:`JobContext` then its keyword arguments, and returns a
    JSON-serialisable result."""

    def decorate(fn: JobFunction) -> Any:
        @huey.task(name=kind)
        def run(job_id: str, kwargs: dict[str, Any]) -> None:
            jid = uuid.UUID(job_id)
            _update(jid, status="running", started_at=utcnow(), message="Started")
            try:
                result = fn(JobContext(jid), **kwargs) or {}
            except Exception as exc:
                log.exception("job %s (%s) failed", kind, job_id)
                _update(jid, status="failed", finished_at=utcnow(), message=safe_message(exc))
                return
            _update(
                jid,
                status="succeeded",
                progress=100,
                finished_at=utcnow(),
                message="Done",
                result=json.dumps(result, default=str),
            )

        run.kind = kind
        return run

    return decorate


def safe_message(exc: Exception) -> str:
    """What a failed job may tell people: our domain errors' messages; anything else stays in the log."""
    # Only our own domain errors carry messages meant for people; anything else stays in the server log.
    from caresync.core.errors import DomainError

    return exc.detail if isinstance(exc, DomainError) else "The job failed; the error was logged."


def subject_of(session: Session, model: type[_Row], row_id: uuid.UUID, what: str) -> _Row:
    """The row a job works on (a scan, a consultation, an analysis); 404 "The <what> was deleted." if it is
    gone by the time the job runs."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"The {what} was deleted.")
    return row


def mark_failed(model: type[Any], row_id: uuid.UUID, message: str, **fields: Any) -> None:
    """In its own transaction, mark the row a job works on ``failed`` with the message people may see
    (cut to 300 characters), and set ``fields`` too; nothing if the row is gone."""
    with transaction(session_factory()) as session:
        row = session.get(model, row_id)
        if row is not None:
            row.status, row.error = "failed", message[:300]
            for name, value in fields.items():
                setattr(row, name, value)


def submit(session: Session, owner: Principal, task: Any, **kwargs: Any) -> Job:
    """Create the job row in the caller's transaction and enqueue the task once it commits."""
    job = Job(kind=task.kind, owner_id=owner.user_id, status="queued", message="Waiting for a worker")
    session.add(job)
    session.flush()
    job_id = str(job.id)
    on_commit(session, lambda: task(job_id, kwargs))
    return job


def job_view(job: Job) -> dict[str, Any]:
    """The public shape of a job."""
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "result": json.loads(job.result or "{}"),
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def get_job(session: Session, principal: Principal, job_id: uuid.UUID) -> Job:
    """A job its owner may see (others get 404)."""
    job = session.get(Job, job_id)
    if job is None or (job.owner_id != principal.user_id and not principal.is_system):
        raise NotFound("No such job.")
    return job
