"""Alembic environment: migrates the database named in the settings."""

from __future__ import annotations

from alembic import context

from caresync.db import engine_for
from caresync.migrations.runner import include_object
from caresync.models import metadata

config = context.config


def run_migrations() -> None:
    """Run migrations online against the configured engine."""
    engine = engine_for(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
