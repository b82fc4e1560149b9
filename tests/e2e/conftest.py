"""Browser tests: Playwright (sync API) drives Debian's Chromium against a real CareSync server.

The server runs in its own process with its own environment, so nothing in the in-process test set-up
(``tests/conftest.py``: environment, table truncation between tests) reaches it:

* a temporary ``CARESYNC_VAR_DIR``, ``CARESYNC_ARGON2_FAST=1``, ``CARESYNC_JOBS_IMMEDIATE=1`` and
  ``CARESYNC_RATE_LIMIT_ENABLED=0``;
* SQLite in that directory, or, when ``CARESYNC_TEST_DATABASE_URL`` (PostgreSQL) is set, a separate database
  on the same server named ``<database>_e2e`` (``<database>_e2e_gw0`` … under pytest-xdist), dropped and
  re-created for the session;
* ``caresync migrate``, then ``caresync demo --patients 60 --no-documents`` while ``caresync serve`` starts
  on a free port.

One browser per session, a new context (own cookies) per test. Demo staff sign in with the TOTP code
computed from :func:`caresync.demo.demo_totp_secret`; :func:`totp_code` never hands out the same time step
twice for one account, as the server refuses replayed codes.

``CARESYNC_E2E_BASE_URL`` points the tests at an already running server with demo data instead (handy while
writing tests; that server's data is changed by them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from caresync.demo import DEMO_PASSWORD, demo_totp_secret
from tests.scratch_db import scratch_postgres_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 600  # this machine can be very slow to start Python under load
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)

DEMO_EMAILS = {
    "admin": "admin@riverside.demo.caresync.dev",
    "doctor": "doctor@riverside.demo.caresync.dev",
    "nurse": "nurse@riverside.demo.caresync.dev",
    "bloodbank_staff": "bloodbank@riverside.demo.caresync.dev",
    "pharmacist": "pharmacist@riverside.demo.caresync.dev",
    "patient": "patient@demo.caresync.dev",
    "donor": "donor@demo.caresync.dev",
}
STAFF_ROLES = ("admin", "doctor", "nurse", "bloodbank_staff", "pharmacist")


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Replaces the root conftest's per-test table truncation: the browser suite has its own server."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(var_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARESYNC_")}
    env.update(
        CARESYNC_VAR_DIR=str(var_dir),
        CARESYNC_ARGON2_FAST="1",
        CARESYNC_JOBS_IMMEDIATE="1",
        CARESYNC_RATE_LIMIT_ENABLED="0",
        PYTHONDONTWRITEBYTECODE="",  # reuse .pyc files: Python starts much faster
    )
    if database_url:
        env["CARESYNC_DATABASE_URL"] = database_url
    return env


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the e2e server exited early:\n{log.read_text()[-3000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=5) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the e2e server did not become healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """The URL of a CareSync server with demo data (60 patients), started for this session."""
    external = os.environ.get("CARESYNC_E2E_BASE_URL", "").rstrip("/")
    if external:
        yield external
        return
    var_dir = Path(tempfile.mkdtemp(prefix="caresync-e2e-"))
    drop_database = None
    database_url = ""
    pg_url = os.environ.get("CARESYNC_TEST_DATABASE_URL", "").strip()
    if pg_url:
        database_url, drop_database = scratch_postgres_database(pg_url, "e2e")
    env = _server_env(var_dir, database_url)
    caresync = str(VENV_BIN / "caresync")
    log = var_dir / "server.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = None
    try:
        subprocess.run(  # noqa: S603 (our own venv's caresync command)
            [caresync, "migrate"], env=env, check=True, capture_output=True, timeout=STARTUP_SECONDS
        )
        with log.open("wb") as out:
            # The server's start-up (imports) overlaps with loading the demo data.
            server = subprocess.Popen(  # noqa: S603
                [caresync, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
            subprocess.run(  # noqa: S603 (our own venv's caresync command)
                # The document demo (a real OCR and transcription) would add tens of seconds to every start;
                # the document tests upload their own scans.
                [caresync, "demo", "--patients", "60", "--no-documents"],
                env=env,
                check=True,
                capture_output=True,
                timeout=STARTUP_SECONDS,
            )
            _wait_healthy(url, server, log)
            yield url
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if drop_database is not None:
            drop_database()
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class BrowserErrors(list[str]):
    """Uncaught JavaScript errors of the pages of one test."""


@pytest.fixture
def new_page(browser: Any, base_url: str) -> Iterator[Any]:
    """``new_page(width=1280, height=800)``: a page in a fresh browser context (own cookies). Uncaught
    JavaScript errors fail the test."""
    contexts: list[Any] = []
    errors = BrowserErrors()

    def make(width: int = 1280, height: int = 800) -> Any:
        context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def page(new_page: Any) -> Any:
    """A desktop-sized page (1280x800) in its own browser context."""
    return new_page()


_last_step: dict[str, int] = {}  # per account: the last TOTP time step handed out (this process's server)


def _totp_code(secret: str, account: str) -> str:
    totp = pyotp.TOTP(secret)
    while True:
        current = totp.timecode(datetime.now(UTC))
        step = max(current, _last_step.get(account, -1) + 1)
        if step <= current + 1:
            _last_step[account] = step
            return totp.generate_otp(step)
        time.sleep(1)


@pytest.fixture
def totp_code() -> Callable[[str, str], str]:
    """``totp_code(secret, account)``: a TOTP code the server accepts for ``account`` now: the current time
    step, or the next one (the server allows one step of drift) if the current one was used already by this
    session; waits for the next step if both were (the server refuses replayed codes)."""
    return _totp_code


@pytest.fixture
def log_in() -> Callable[..., None]:
    """``log_in(page, email, password=DEMO_PASSWORD)``: sign in through the login page; demo staff also
    pass the MFA step. Ends on the dashboard."""

    def run(page: Any, email: str, password: str = DEMO_PASSWORD) -> None:
        page.goto("/login")
        page.fill("#f-email", email)
        page.fill("#f-password", password)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        if "/login/mfa" in page.url:
            page.fill("#f-code", _totp_code(demo_totp_secret(email), email))
            with page.expect_navigation():
                page.click("main button[type=submit]")
        page.wait_for_selector("[data-testid=dashboard-title]")

    return run
