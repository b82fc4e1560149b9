"""Run Alembic programmatically, with the database URL from the settings."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from caresync.config import get_settings

HERE = Path(__file__).parent


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
