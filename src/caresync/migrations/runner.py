"""Run Alembic programmatically, with the database URL from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from caresync.config import get_settings
from caresync.documents.search.models import FTS_TABLE

HERE = Path(__file__).parent


def include_object(_object: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
    """Whether autogenerate compares this object: not the full-text objects that raw DDL makes beside the
    models (:data:`caresync.documents.search.models.FULLTEXT_DDL`: SQLite's FTS5 tables, PostgreSQL's
    generated ``tsv`` column and its index)."""
    return not (
        (type_ == "table" and (name or "").startswith(FTS_TABLE))
        or (type_ == "column" and name == "tsv")
        or (type_ == "index" and name == "ix_search_chunks_tsv")
    )


def alembic_config() -> Config:
    """An Alembic config pointing at these migrations and the configured database."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", get_settings().resolved_database_url.replace("%", "%%"))
    return config


def upgrade(revision: str = "head") -> None:
    """Migrate the configured database to ``revision``."""
    get_settings().ensure_var_dir()
    command.upgrade(alembic_config(), revision)
