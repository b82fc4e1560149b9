"""Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import caresync.models
from caresync import config
from caresync.db import engine_for
from caresync.migrations import runner


def _postgres_scratch_url() -> str | None:
    """A fresh empty database next to the PostgreSQL test database (only when the suite runs on it)."""
    base = os.environ.get("CARESYNC_TEST_DATABASE_URL", "").strip()
    return str(make_url(base).set(database=f"caresync_migrations_{uuid.uuid4().hex[:8]}")) if base else None


def _fresh_databases() -> list[str]:
    return ["sqlite", "postgresql"] if _postgres_scratch_url() else ["sqlite"]


@pytest.fixture(params=_fresh_databases())
def fresh_url(request: Any, tmp_path: Path, settings_env: Any) -> Iterator[str]:
    """An empty database; the settings point at it for the test's duration."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        admin = None
    else:
        url = _postgres_scratch_url()
        assert url
        parsed = make_url(url)
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        url = parsed.render_as_string(hide_password=False)
    suite_url = config.get_settings().resolved_database_url
    settings_env(database_url=url)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        engine_for(suite_url).dispose()
        engine_for.cache_clear()  # forget the scratch engine; the suite's engine is recreated on demand
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()


def test_upgrade_head_matches_the_models(fresh_url: str) -> None:
    assert config.get_settings().resolved_database_url == fresh_url
    runner.upgrade("head")
    engine = engine_for(fresh_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": runner.include_object}
        )
        differences = compare_metadata(context, caresync.models.metadata)
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        head = conn.execute(text("SELECT id, seq, hash FROM audit_head")).all()
    assert differences == [], "migrations and models disagree; add a migration:\n" + "\n".join(
        map(str, differences)
    )
    assert set(caresync.models.metadata.tables) <= tables
    assert version == "0001" or version.isdigit()
    assert [tuple(row) for row in head] == [(1, 0, "0" * 64)]  # the audit chain starts at genesis


def test_upgrade_is_idempotent(fresh_url: str) -> None:
    runner.upgrade("head")
    runner.upgrade("head")
    with engine_for(fresh_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 1
