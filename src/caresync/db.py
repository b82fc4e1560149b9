"""Database plumbing: engine, sessions, the declarative ``Base`` and shared column types.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE`` so that two writers never read the same audit-chain head; PostgreSQL uses row locks.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp always stored and returned as timezone-aware UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """``datetime`` (a ``TypeDecorator`` does not inherit it from its impl; pagination needs it)."""
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store timezone-aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sql_in(column: str, values: Iterable[object]) -> str:
    """``column IN ('a', 'b', …)`` for a CHECK constraint or a partial index (values are our own codes)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base for every table, with a constraint naming convention Alembic can diff."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    """A random UUID primary key (never a guessable sequence in URLs)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    """Creation and last-update times."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and immediate transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    # SQLite admits one writer at a time, and its busy handler makes waiting writers sleep with a growing
    # back-off, so under load requests spend most of their time asleep. Writers of this process therefore
    # queue on a lock first (handed over at once) and meet SQLite's own lock only across processes.
    writer = WriterLock(engine.url.database or "")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not connection.info.get(_HOLDS_WRITER):
            connection.info[_HOLDS_WRITER] = writer.acquire()
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS_WRITER, False):
            writer.release()

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        _release(connection.info)

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        _release(connection.info)

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _release(record.info)


_HOLDS_WRITER = "caresync_holds_writer_lock"
WRITER_WAIT_SECONDS = 30


class WriterLock:
    """One writer at a time for a SQLite file, across threads and processes, handed over without delay.

    Threads of one process queue on a ``threading.Lock``; processes (several web workers, the job worker)
    then queue on an exclusive ``flock`` of ``<database>.writer``, which the kernel grants the moment it is
    released. (SQLite's own busy handler would make them poll with growing sleeps.)"""

    def __init__(self, database: str) -> None:
        self._threads = threading.Lock()
        self._path = f"{database}.writer" if database and database != ":memory:" else ""
        self._fd: int | None = None
        self._pid = os.getpid()

    def acquire(self) -> bool:
        """Take the lock (False after ``WRITER_WAIT_SECONDS``; SQLite's busy timeout then still applies)."""
        if not self._threads.acquire(timeout=WRITER_WAIT_SECONDS):
            return False
        if self._path:
            try:
                if self._fd is None or self._pid != os.getpid():  # a forked child needs its own file
                    self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:
                self._threads.release()
                raise
        return True

    def release(self) -> None:
        """Give the lock to the next writer."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once, after the session's current outermost transaction commits; never if it rolls
    back. (SQLAlchemy also fires ``after_commit`` when a savepoint is released, which is too early: the
    data is not committed yet, and on SQLite the write lock is still held.)"""
    armed = [True]

    def committed(current: Session) -> None:
        if armed[0] and not current.in_nested_transaction():
            armed[0] = False
            callback()

    def rolled_back(_current: Session, previous: Any) -> None:
        if not previous.nested:
            armed[0] = False

    event.listen(session, "after_commit", committed)
    event.listen(session, "after_soft_rollback", rolled_back)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    """The process-wide engine for ``url`` (one pool per database per process)."""
    return make_engine(url)


def session_factory() -> sessionmaker[Session]:
    """The process-wide session factory for the configured database."""
    from caresync.config import get_settings

    return _factory_for(engine_for(get_settings().resolved_database_url))


@lru_cache(maxsize=4)
def _factory_for(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
