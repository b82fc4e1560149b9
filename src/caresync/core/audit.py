"""The append-only, SHA-256 hash-chained audit log.

Each entry stores the hash of the entry before it, and its own hash covers its content and that previous
hash. Altering, deleting, inserting or reordering any entry therefore breaks the chain at that point, and
:func:`verify_chain` names the first broken entry. A one-row ``audit_head`` table holds the last sequence
number and hash: it serialises appends (a row lock on PostgreSQL; SQLite transactions are already
``BEGIN IMMEDIATE``) and detects truncation of the tail.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Text, Uuid, event, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from caresync.core.auth import Principal
from caresync.core.jobs import JobContext, job_task
from caresync.db import Base, UTCDateTime, session_factory, utcnow

GENESIS_HASH = "0" * 64


class AuditEntry(Base):
    """One audited event. Never updated, never deleted."""

    __tablename__ = "audit_entries"
    __table_args__ = (CheckConstraint("outcome IN ('success', 'denied', 'failure')", name="outcome"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    outcome: Mapped[str] = mapped_column(String(10))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    resource_type: Mapped[str] = mapped_column(String(40), default="")
    resource_id: Mapped[str] = mapped_column(String(64), default="")
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's tip: a single row (id 1)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


@event.listens_for(AuditHead.__table__, "after_create")
def _seed_head(_target: Any, connection: Connection, **_kw: Any) -> None:
    connection.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS_HASH))


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 over the entry's content and its ``prev_hash`` (canonical JSON). The sequence number is
    left out on purpose: order is carried by the chain itself, which lets verification tell a reordered
    entry from an altered one."""
    payload = {
        "at": entry.at.isoformat(),
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "actor_role": entry.actor_role,
        "actor_name": entry.actor_name,
        "organisation_id": str(entry.organisation_id) if entry.organisation_id else None,
        "action": entry.action,
        "outcome": entry.outcome,
        "patient_id": str(entry.patient_id) if entry.patient_id else None,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "client_ip": entry.client_ip,
        "flagged": bool(entry.flagged),
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    actor: Principal,
    action: str,
    *,
    outcome: str = "success",
    patient_id: uuid.UUID | None = None,
    resource_type: str = "",
    resource_id: str | uuid.UUID = "",
    detail: dict[str, Any] | None = None,
    flagged: bool = False,
) -> AuditEntry:
    """Append an entry in the caller's transaction (it commits or rolls back with the change it audits).

    ``detail`` must not hold secrets; keep PHI to identifiers."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    entry = AuditEntry(
        seq=head.seq + 1,
        at=utcnow(),
        actor_id=actor.user_id,
        actor_role=actor.role,
        actor_name=actor.full_name,
        organisation_id=actor.organisation_id,
        action=action,
        outcome=outcome,
        patient_id=patient_id,
        resource_type=resource_type,
        resource_id=str(resource_id),
        client_ip=actor.client_ip,
        flagged=flagged,
        detail=json.dumps(detail or {}, sort_keys=True, default=str),
        prev_hash=head.hash,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


def record_and_commit(session: Session, actor: Principal, action: str, **kwargs: Any) -> None:
    """Discard the caller's pending changes, then durably record an entry (for denials and failed
    logins, which must be logged although the request fails)."""
    session.rollback()
    record(session, actor, action, **kwargs)
    session.commit()


@dataclass(frozen=True)
class ChainProblem:
    """The first place where the chain does not hold."""

    seq: int
    kind: str  # altered | deleted | inserted | reordered
    message: str


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify_chain`."""

    entries: int
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        """True when the whole chain verified."""
        return self.problem is None


def _iter_entries(session: Session, batch: int = 2000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = (
            session.execute(
                select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole chain in order and report the first altered, deleted, inserted or reordered entry."""
    all_hashes = set(session.execute(select(AuditEntry.hash)).scalars())
    seen: dict[str, int] = {GENESIS_HASH: 0}
    previous_hash, previous_prev, expected_seq, count = GENESIS_HASH, None, 1, 0
    for entry in _iter_entries(session):
        count += 1
        if entry_hash(entry) != entry.hash:
            return ChainReport(count, ChainProblem(entry.seq, "altered", f"entry {entry.seq} was altered"))
        if entry.prev_hash != previous_hash:
            if entry.prev_hash == previous_prev:
                kind, msg = "inserted", f"entry {entry.seq - 1} was inserted into the chain"
                return ChainReport(count, ChainProblem(entry.seq - 1, kind, msg))
            if entry.prev_hash in all_hashes and entry.prev_hash not in seen:
                kind, msg = "reordered", f"entry {entry.seq} is out of order"
            else:
                kind, msg = "deleted", f"the entry before {entry.seq} was deleted"
            return ChainReport(count, ChainProblem(entry.seq, kind, msg))
        if entry.seq != expected_seq:
            return ChainReport(
                count,
                ChainProblem(entry.seq, "deleted", f"entries {expected_seq}..{entry.seq - 1} are missing"),
            )
        seen[entry.hash] = entry.seq
        previous_prev, previous_hash, expected_seq = previous_hash, entry.hash, entry.seq + 1
    head = session.get(AuditHead, 1)
    if head is None:
        return ChainReport(count, ChainProblem(0, "deleted", "the chain head is missing"))
    if head.seq > expected_seq - 1 or (head.seq == expected_seq - 1 and head.hash != previous_hash):
        return ChainReport(
            count, ChainProblem(expected_seq, "deleted", f"entries after {expected_seq - 1} were deleted")
        )
    if head.seq < expected_seq - 1:
        return ChainReport(
            count,
            ChainProblem(head.seq + 1, "inserted", f"entry {head.seq + 1} was appended outside the log"),
        )
    return ChainReport(count, None)


@job_task("audit.verify")
def verify_audit_job(ctx: JobContext) -> dict[str, Any]:
    """Job: verify the whole audit chain and report the first problem, if any."""
    ctx.progress(5, "Reading the audit log")
    with session_factory()() as session:
        report = verify_chain(session)
    problem = report.problem
    return {
        "ok": report.ok,
        "entries": report.entries,
        "problem": None
        if problem is None
        else {"seq": problem.seq, "kind": problem.kind, "message": problem.message},
    }
