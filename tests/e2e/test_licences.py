"""Browser: a doctor whose licence lapsed is not in "Find a doctor"; the hospital administrator reviews the
renewal waiting in the queue (with the certificate shown) and approves it; the patient then finds the
doctor."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def _search(patient: Any, name: str) -> Any:
    patient.goto(f"/doctors?q={name}")
    return patient.locator("[data-testid=doctor-result]")


def test_an_admin_approves_a_licence_and_the_doctor_appears_in_search(new_page: Any, log_in: Any) -> None:
    admin = new_page()
    log_in(admin, DEMO_EMAILS["admin"])
    admin.locator("#sidebar-menu").get_by_role("link", name="Licences").click()
    row = admin.locator("[data-testid=queue-row]", has=admin.locator("[data-status=pending]"))
    expect(row).to_have_count(1)
    doctor_name = row.locator("td").first.inner_text().splitlines()[0].removeprefix("Dr. ")

    patient = new_page()
    log_in(patient, DEMO_EMAILS["patient"])
    expect(_search(patient, doctor_name)).to_have_count(0)  # not listed while the licence is not valid

    row.locator("[data-testid=open]").click()
    expect(admin.locator("[data-testid=preview-pdf]")).to_be_visible()  # the certificate, to check it
    with admin.expect_navigation():
        admin.locator("[data-testid=approve]").click()
    expect(admin.locator("[data-testid=done]")).to_contain_text("approved")

    expect(_search(patient, doctor_name).filter(has_text=doctor_name)).to_have_count(1)
