"""A doctor finds a patient with the live search and opens the profile; the patient sees that access."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def test_doctor_live_search_then_patient_sees_the_access(new_page: Any, log_in: Any) -> None:
    # The demo patient (cared for by the demo doctor): their name and Health ID, from their own dashboard.
    patient = new_page()
    log_in(patient, DEMO_EMAILS["patient"])
    name = patient.locator("[data-testid=whoami]").inner_text().split(" · ")[0]
    given, family = name.rsplit(" ", 1)
    health_id = patient.locator("[data-testid=health-id]").inner_text().strip()

    doctor = new_page()
    log_in(doctor, DEMO_EMAILS["doctor"])
    doctor_name = doctor.locator("[data-testid=whoami]").inner_text().split(" · ")[0]
    doctor.goto("/patients")
    rows = doctor.locator("[data-testid=patient-table] tbody tr")
    expect(rows).to_have_count(20)  # the first page of the care list
    doctor.evaluate("window.__noReload = true")

    query = family[:4].lower()
    with doctor.expect_response(
        lambda r: f"/patients?q={query}&" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        doctor.locator("#q").fill(query)  # one input event; HTMX asks for the table after 300 ms
    expect(doctor).to_have_url(re.compile(rf"/patients\?q={query}&"))  # in the address bar, for "back"
    expect(rows.first).to_contain_text(family[:4])
    for text in rows.all_inner_texts():
        assert query in text.lower(), f"{text!r} does not match {query!r}"
    assert doctor.evaluate("window.__noReload === true"), "the search reloaded the whole page"

    row = rows.filter(has_text=health_id)
    expect(row).to_have_count(1)
    with doctor.expect_navigation():
        row.get_by_role("link").click()
    expect(doctor.locator("[data-testid=patient-name]")).to_have_text(f"{given} {family}")
    expect(doctor.locator("main [data-testid=health-id]")).to_have_text(health_id)

    # A name that matches nobody: a clear empty state instead of a table.
    doctor.goto("/patients")
    doctor.locator("#q").fill("zzzqqq")
    expect(doctor.locator("#patient-table")).to_contain_text("No patient matches")

    patient.goto("/me/access")
    reads = patient.locator("[data-testid=access-table] tbody tr", has_text=doctor_name).filter(
        has_text="patient.read"
    )
    expect(reads.first).to_be_visible()
    expect(reads.first).to_contain_text("Doctor")
    assert re.search(r"\d", reads.first.locator("td").first.inner_text())  # when it happened


def test_back_button_after_live_search_shows_the_whole_page(page: Any, log_in: Any) -> None:
    log_in(page, "doctor1@riverside.demo.caresync.dev")
    page.goto("/patients")
    page.locator("#q").fill("a")
    expect(page).to_have_url(re.compile(r"/patients\?q=a&"))
    with page.expect_navigation():
        page.locator("[data-testid=patient-table] tbody a").first.click()
    expect(page.locator("[data-testid=patient-name]")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"/patients\?q=a&"))
    expect(page.locator("#q")).to_have_value("a", timeout=10_000)
    expect(page.locator("[data-testid=whoami]")).to_be_visible(timeout=1_000)
