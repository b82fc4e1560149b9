"""Take the README screenshots: ``.venv/bin/python scripts/screenshots.py [--out docs/screenshots]``.

Starts CareSync on a free port with a fresh SQLite database and the demo data (60 patients) in a temporary
``CARESYNC_VAR_DIR``, drives Debian's Chromium (``/usr/bin/chromium``, headless, 1280x800) through
Playwright and saves:

* ``login.png``: the sign-in page;
* ``dashboard-doctor.png``: the demo doctor's dashboard;
* ``patient-profile.png``: the demo patient's own profile;
* ``find-a-doctor.png`` and ``doctor-slots.png``: the patient searching for a cardiologist, and one's free
  times;
* ``queue-console.png``: the nurse's clinic queue after two walk-ins were triaged;
* ``analytics-admin.png``: the administrator's analytics dashboard;
* ``audit.png``: the administrator's audit log;
* ``mfa-enrol.png``: a newly created doctor's forced two-step verification enrolment.

The server is stopped and the temporary directory removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
from playwright.sync_api import expect, sync_playwright

from caresync.demo import DEMO_PASSWORD, demo_totp_secret

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
STARTUP_SECONDS = 600
DOCTOR = "doctor@riverside.demo.caresync.dev"
ADMIN = "admin@riverside.demo.caresync.dev"
PATIENT = "patient@demo.caresync.dev"
NURSE = "nurse@riverside.demo.caresync.dev"
PHARMACIST = "pharmacist@riverside.demo.caresync.dev"
WALK_INS = (("Sprained ankle", 4), ("Chest pain radiating to the left arm", 2), ("Fever and cough", 3))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def demo_server() -> Iterator[str]:
    """A CareSync server with demo data on SQLite; yields its base URL."""
    var_dir = Path(tempfile.mkdtemp(prefix="caresync-screenshots-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARESYNC_")}
    env.update(
        CARESYNC_VAR_DIR=str(var_dir),
        CARESYNC_ARGON2_FAST="1",
        CARESYNC_JOBS_IMMEDIATE="1",
        PYTHONDONTWRITEBYTECODE="",
    )
    caresync = str(Path(sys.executable).parent / "caresync")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = var_dir / "server.log"
    server = None
    try:
        subprocess.run(  # noqa: S603 (our own venv's caresync command)
            [caresync, "migrate"], env=env, check=True, capture_output=True, timeout=STARTUP_SECONDS
        )
        with log.open("wb") as out:
            server = subprocess.Popen(  # noqa: S603
                [caresync, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
            subprocess.run(  # noqa: S603 (our own venv's caresync command)
                [caresync, "demo", "--patients", "60"],
                env=env,
                check=True,
                capture_output=True,
                timeout=STARTUP_SECONDS,
            )
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{url}/api/v1/health", timeout=5) as response,  # noqa: S310
                ):
                    if response.status == 200:
                        break
                time.sleep(0.5)
            yield url
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(var_dir, ignore_errors=True)


def sign_in(page: Any, email: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login page, with the demo TOTP code for staff."""
    page.goto("/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    if "/login/mfa" in page.url:
        page.fill("#f-code", pyotp.TOTP(demo_totp_secret(email)).now())
        with page.expect_navigation():
            page.click("main button[type=submit]")


def _settle(page: Any) -> None:
    """Wait for fonts and icons so that the picture is complete."""
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready")


def take(base_url: str, out: Path) -> list[Path]:
    """Take every screenshot into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shot(page: Any, name: str) -> None:
        _settle(page)
        path = out / name
        page.screenshot(path=str(path))
        written.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        def new_page() -> Any:
            context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
            context.set_default_timeout(120_000)
            return context.new_page()

        try:
            page = new_page()
            page.goto("/login")
            shot(page, "login.png")

            page = new_page()
            sign_in(page, DOCTOR)
            page.wait_for_selector("[data-testid=care-count]")
            shot(page, "dashboard-doctor.png")

            page = new_page()
            sign_in(page, PATIENT)
            page.goto("/me/profile")
            page.wait_for_selector("[data-testid=patient-name]")
            shot(page, "patient-profile.png")

            page.goto("/doctors?specialty=cardiology")
            page.wait_for_selector("[data-testid=doctor-result]")
            shot(page, "find-a-doctor.png")
            page.locator("[data-testid=doctor-result]").first.get_by_role("link", name="See times").click()
            page.wait_for_selector("[data-testid=slot]")
            shot(page, "doctor-slots.png")

            page.goto("/")
            page.wait_for_selector("[data-testid=activity-panel]")
            page.wait_for_selector("[data-testid=dose-panel]")
            page.wait_for_selector("[data-testid=article-feed]")
            shot(page, "dashboard-patient.png")
            page.goto("/me/medications")
            page.get_by_role("link", name=re.compile("^Salbutamol")).first.click()
            qr_image = page.get_by_role("img", name="Prescription QR code")
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=qr_image.element_handle()
            )
            shot(page, "prescription-qr.png")
            qr_code = qr_image.screenshot()
            page.goto("/me/medications/adherence")
            page.wait_for_selector("[data-testid=pdc]")
            shot(page, "adherence.png")

            pharmacist = new_page()
            sign_in(pharmacist, PHARMACIST)
            pharmacist.goto("/pharmacy")
            qr_file = {"name": "qr.png", "mimeType": "image/png", "buffer": qr_code}
            pharmacist.set_input_files("#f-image", files=[qr_file])
            pharmacist.locator("[data-testid=verify]").click()
            pharmacist.wait_for_selector("[data-testid=verified]")
            pharmacist.fill("#f-lot", "SB24-118")
            shot(pharmacist, "pharmacy-console.png")

            nurse = new_page()
            sign_in(nurse, NURSE)
            patients = nurse.request.get("/api/v1/patients?limit=3").json()["items"]
            nurse.goto("/queue")
            if nurse.locator("[data-testid=queue-locations]").count():
                nurse.locator("[data-testid=queue-locations] a").first.click()
            nurse.wait_for_selector("[data-testid=walk-in-form]")
            for patient, (complaint, level) in zip(patients, WALK_INS, strict=False):
                nurse.evaluate("document.getElementById('queue-flash').replaceChildren()")
                nurse.fill("#f-health_id", patient["health_id"])
                nurse.fill("#f-complaint", complaint)
                nurse.click("[data-testid=walk-in-form] button[type=submit]")
                expect(nurse.locator("[data-testid=queue-message]")).to_contain_text("Added ticket")
                ticket = nurse.locator("[data-testid=queue-message]").inner_text().split()[-1].rstrip(".")
                nurse.evaluate("document.getElementById('queue-flash').replaceChildren()")
                row = nurse.locator(f"[data-testid=queue-row][data-ticket='{ticket}']")
                row.locator("[data-testid=triage-select]").select_option(str(level))
                message = nurse.locator("[data-testid=queue-message]")
                expect(message).to_contain_text(f"Ticket {ticket} triaged")
            shot(nurse, "queue-console.png")

            admin = new_page()
            sign_in(admin, ADMIN)
            admin.goto("/analytics")
            admin.wait_for_selector("[data-testid=volume] canvas")
            admin.wait_for_selector("[data-testid=association-table], [data-testid=associations]")
            shot(admin, "analytics-admin.png")
            admin.goto("/admin/audit")
            admin.wait_for_selector("[data-testid=audit-table]")
            shot(admin, "audit.png")

            # A new doctor, created by the admin, must set up two-step verification at first sign-in.
            email = f"ines.duarte.{datetime.now(UTC):%H%M%S}@riverside.example.org"
            password = "Amber-Lantern-Harbour-31"  # noqa: S105 (a throwaway demo account)
            admin.goto("/admin/users/new")
            admin.fill("#f-full_name", "Dr. Ines Duarte")
            admin.fill("#f-email", email)
            admin.select_option("#f-role", "doctor")
            admin.fill("#f-password", password)
            with admin.expect_navigation():
                admin.click("main button[type=submit]")
            admin.wait_for_selector("[data-testid=created]")
            page = new_page()
            sign_in(page, email, password)
            page.wait_for_selector("[data-testid=mfa-secret]")
            shot(page, "mfa-enrol.png")
        finally:
            browser.close()
    return written


def main() -> None:
    """Start the demo server, take the screenshots, report their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="output folder")
    args = parser.parse_args()
    with demo_server() as url:
        for path in take(url, args.out):
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}  {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
