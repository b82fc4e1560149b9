"""Fixtures for fuzzing the API from its OpenAPI schema, in-process (ASGI), on a database of its own.

The fuzzer needs data that survives from one generated request to the next (demo organisations, staff,
patients), so this package does not use the root conftest's per-test table truncation: it swaps in its own
database for the duration of the session fixture, SQLite in a temporary ``CARESYNC_VAR_DIR`` or, when
``CARESYNC_TEST_DATABASE_URL`` is set, a PostgreSQL database ``<name>_fuzz`` (``<name>_fuzz_gw0`` … under
pytest-xdist) on the same server. The fixture is module-scoped and restores the previous environment and
settings afterwards, so tests that run later in the same process are unaffected.
"""

from __future__ import annotations

import os

# Set before caresync is imported (if this runs first): jobs in-process, cheap argon2.
os.environ["CARESYNC_JOBS_IMMEDIATE"] = "1"
os.environ["CARESYNC_ARGON2_FAST"] = "1"
os.environ["CARESYNC_RATE_LIMIT_ENABLED"] = "0"

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from tests.scratch_db import scratch_postgres_database

FUZZ_ENV = (
    "CARESYNC_VAR_DIR",
    "CARESYNC_DATABASE_URL",
    "CARESYNC_JOBS_IMMEDIATE",
    "CARESYNC_ARGON2_FAST",
    "CARESYNC_RATE_LIMIT_ENABLED",
)
DOCTOR = "doctor@riverside.demo.caresync.dev"


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Replaces the root conftest's per-test table truncation: the fuzzer runs on its own database."""


@dataclass(frozen=True)
class FuzzTarget:
    """The fuzzing database and a demo doctor's bearer token on it."""

    database_url: str
    doctor_headers: dict[str, str]


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    """Points the settings at a new migrated database with a small demo dataset (30 patients) and signs in
    a demo doctor (password and TOTP) over the API."""
    from fastapi.testclient import TestClient

    from caresync import config
    from caresync.db import engine_for
    from caresync.demo import DEMO_PASSWORD, demo_totp_secret, load_demo
    from caresync.migrations.runner import upgrade

    saved = {name: os.environ.get(name) for name in FUZZ_ENV}
    var_dir = Path(tempfile.mkdtemp(prefix="caresync-fuzz-"))
    drop_database = None
    pg_url = os.environ.get("CARESYNC_TEST_DATABASE_URL", "").strip()
    if pg_url:
        database_url, drop_database = scratch_postgres_database(pg_url, "fuzz")
    else:
        database_url = f"sqlite:///{var_dir / 'fuzz.db'}"
    os.environ.update(
        CARESYNC_VAR_DIR=str(var_dir),
        CARESYNC_DATABASE_URL=database_url,
        CARESYNC_JOBS_IMMEDIATE="1",
        CARESYNC_ARGON2_FAST="1",
        CARESYNC_RATE_LIMIT_ENABLED="0",
    )
    # Settings are cached per process; engines and session factories are cached per URL, so a new URL
    # gets its own engine without disturbing the one other tests use.
    config.get_settings.cache_clear()
    try:
        upgrade()
        load_demo(patients=30, documents=False, imaging=False)
        from caresync.app import create_app

        app = create_app()
        with TestClient(app) as client:
            response = client.post(
                "/api/v1/auth/login",
                json={
                    "email": DOCTOR,
                    "password": DEMO_PASSWORD,
                    "otp": pyotp.TOTP(demo_totp_secret(DOCTOR)).now(),
                },
            )
        assert response.status_code == 200, response.text
        assert response.json()["stage"] == "full", response.json()
        yield FuzzTarget(
            database_url=database_url,
            doctor_headers={"Authorization": f"Bearer {response.json()['access_token']}"},
        )
    finally:
        engine_for(database_url).dispose()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.get_settings.cache_clear()
        if drop_database is not None:
            drop_database()
        shutil.rmtree(var_dir, ignore_errors=True)
