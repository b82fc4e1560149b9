"""Platform endpoints every domain shares: health, notifications, jobs, the audit-chain check, and the
``/ws`` WebSocket for per-user live events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Response, WebSocket, WebSocketDisconnect, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text

from caresync.core import jobs, notify, realtime
from caresync.core.audit import verify_audit_job
from caresync.core.jobs import Job
from caresync.core.rbac import Perm, require
from caresync.db import session_factory
from caresync.identity import service as accounts
from caresync.web.deps import SESSION_COOKIE, CurrentUser, Db

router = APIRouter(prefix="/api/v1", tags=["platform"])
ws_router = APIRouter()


class NotificationOut(BaseModel):
    """An in-app notification."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    title: str
    body: str
    link: str
    created_at: Any
    read_at: Any


class NotificationList(BaseModel):
    """Recent notifications and the unread count."""

    items: list[NotificationOut]
    unread: int


class JobOut(BaseModel):
    """A background job's status."""

    id: uuid.UUID
    kind: str
    status: str
    progress: int
    message: str
    result: dict[str, Any]
    created_at: str | None
    finished_at: str | None


@router.get("/health", tags=["platform"])
def health(db: Db) -> dict[str, str]:
    """Liveness and database reachability (for load balancers)."""
    db.execute(text("SELECT 1"))
    db.rollback()
    return {"status": "ok"}


@router.get("/notifications", response_model=NotificationList)
def list_notifications(principal: CurrentUser, db: Db, unread_only: bool = False) -> NotificationList:
    """The 50 most recent notifications."""
    query = select(notify.Notification).where(notify.Notification.user_id == principal.user_id)
    if unread_only:
        query = query.where(notify.Notification.read_at.is_(None))
    rows = db.execute(query.order_by(notify.Notification.created_at.desc()).limit(50)).scalars().all()
    assert principal.user_id
    unread = notify.unread_count(db, principal.user_id)
    out = NotificationList(items=[NotificationOut.model_validate(r) for r in rows], unread=unread)
    db.rollback()  # a read: end the transaction (after reading the rows: a rollback expires them)
    return out


@router.post("/notifications/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT)
def read_notification(notification_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Mark one notification read."""
    assert principal.user_id
    if not notify.mark_read(db, principal.user_id, notification_id):
        from caresync.core.errors import NotFound

        raise NotFound("No such unread notification.")
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/notifications/read-all", status_code=status.HTTP_204_NO_CONTENT)
def read_all(principal: CurrentUser, db: Db) -> Response:
    """Mark every notification read."""
    assert principal.user_id
    notify.mark_read(db, principal.user_id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(principal: CurrentUser, db: Db) -> list[JobOut]:
    """Your 50 most recent jobs."""
    rows = (
        db.execute(
            select(Job).where(Job.owner_id == principal.user_id).order_by(Job.created_at.desc()).limit(50)
        )
        .scalars()
        .all()
    )
    out = [JobOut(**jobs.job_view(j)) for j in rows]
    db.rollback()
    return out


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, principal: CurrentUser, db: Db) -> JobOut:
    """One of your jobs: status, progress, result."""
    view = jobs.job_view(jobs.get_job(db, principal, job_id))
    db.rollback()
    return JobOut(**view)


@router.post("/admin/audit/verify", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def start_audit_verify(principal: CurrentUser, db: Db) -> JobOut:
    """Admins: check the audit chain end to end, as a background job."""
    require(db, principal, Perm.AUDIT_READ, "audit.verify")
    job = jobs.submit(db, principal, verify_audit_job)
    view = jobs.job_view(job)
    db.commit()
    return JobOut(**view)


@ws_router.websocket("/ws")
async def websocket(socket: WebSocket) -> None:
    """Per-user live events (notifications, job progress). Authenticates with the session cookie or an
    ``Authorization: Bearer`` header."""
    client_host = socket.client.host if socket.client else ""
    resolved = await run_in_threadpool(_resolve_socket, socket_token(socket), client_host)
    if resolved is None or resolved.stage != "full" or resolved.principal.user_id is None:
        await socket.close(code=4401, reason="sign in first")
        return
    await stream_events(socket, resolved.principal.user_id)


def socket_token(socket: WebSocket) -> str | None:
    """The credential a WebSocket presents: an ``Authorization: Bearer`` header or the session cookie."""
    header = socket.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else socket.cookies.get(SESSION_COOKIE)


async def stream_events(socket: WebSocket, key: uuid.UUID) -> None:
    """Accept the socket and send it every event published for ``key`` (a user, or e.g. a clinic's queue)
    until the client goes away."""
    await socket.accept()
    queue = realtime.hub.subscribe(key)
    receiver = asyncio.create_task(_drain(socket))
    try:
        while not receiver.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await socket.send_json(getter.result())
            else:
                getter.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        realtime.hub.unsubscribe(key, queue)


def _resolve_socket(token: str | None, client_host: str) -> accounts.Resolved | None:
    """Resolve a socket's token in a short transaction on a worker thread (never on the event loop)."""
    if not token:
        return None
    with session_factory()() as session:
        resolved = accounts.resolve_token(session, token, client_host)
        session.commit()
    return resolved


async def _drain(socket: WebSocket) -> None:
    """Read (and ignore) client messages until the socket closes."""
    try:
        while True:
            await socket.receive_text()
    except WebSocketDisconnect:
        return
