"""Throwaway PostgreSQL databases beside the test database, for suites that run on data of their own."""

from __future__ import annotations

import os
from collections.abc import Callable


def scratch_postgres_database(base_url: str, suffix: str) -> tuple[str, Callable[[], None]]:
    """A fresh, empty ``<name>_<suffix>`` database (``<name>_<suffix>_gw0`` … under pytest-xdist) on the
    server of ``base_url``; returns its URL and a function that drops it."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{url.database}_{suffix}" + (f"_{worker}" if worker else "")
    conninfo = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": "postgres",
    }

    def run(sql: str) -> None:
        with psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}, autocommit=True) as conn:
            conn.execute(sql)

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), lambda: run(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )
