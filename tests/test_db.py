"""Database helpers: ``on_commit`` runs after the real commit only (not on a savepoint, never after a
rollback), which is what keeps jobs and live notifications from announcing uncommitted data."""

from __future__ import annotations

from sqlalchemy import text

from caresync.db import on_commit, session_factory


def test_on_commit_waits_for_the_outermost_commit_and_fires_once() -> None:
    calls: list[str] = []
    with session_factory()() as session:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: calls.append("fired"))
        with session.begin_nested():
            session.execute(text("SELECT 1"))
        assert calls == []  # releasing a savepoint is not a commit
        session.commit()
        assert calls == ["fired"]
        session.execute(text("SELECT 1"))
        session.commit()
    assert calls == ["fired"]


def test_on_commit_never_fires_after_a_rollback() -> None:
    calls: list[str] = []
    with session_factory()() as session:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: calls.append("fired"))
        with session.begin_nested() as savepoint:
            savepoint.rollback()  # a savepoint's rollback leaves the outer transaction armed
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert calls == []
