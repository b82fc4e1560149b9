"""Every demo role signs in through the browser and lands on its own dashboard, also at phone width."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}

# role: (label in the header, something only this role's dashboard shows, a navigation entry it has)
ROLE_VIEWS = {
    "admin": ("Administrator", "Staff without MFA", "Audit log"),
    "doctor": ("Doctor", "patients in my care", "Patients"),
    "nurse": ("Nurse", "patients in my care", "Patients"),
    "bloodbank_staff": ("Blood bank staff", "Inventory by group and component", "Dashboard"),
    "pharmacist": ("Pharmacist", "Dispense by QR code", "Dashboard"),
    "patient": ("Patient", "My care team", "Who saw my data"),
    "donor": ("Donor", "My donations and eligibility", "Dashboard"),
}


@pytest.mark.parametrize("role", list(ROLE_VIEWS))
def test_each_role_lands_on_its_dashboard(page: Any, log_in: Any, role: str) -> None:
    label, content, nav_entry = ROLE_VIEWS[role]
    log_in(page, DEMO_EMAILS[role])

    assert page.url.endswith("/")
    expect(page.locator("[data-testid=dashboard-title]")).to_contain_text("Welcome, ")
    expect(page.locator("[data-testid=whoami]")).to_have_text(re.compile(rf" · {re.escape(label)}$"))
    expect(page.locator("main")).to_contain_text(content)
    expect(page.locator("#sidebar-menu").get_by_role("link", name=nav_entry, exact=True)).to_have_count(1)
    if role in ("doctor", "nurse"):
        expect(page.locator("[data-testid=care-count]")).to_have_text(re.compile(r"^[1-9]\d*$"))
    else:
        expect(page.locator("[data-testid=care-count]")).to_have_count(0)
    if role == "patient":
        expect(page.locator("[data-testid=health-id]")).to_have_text(re.compile(r"^\d{4}-\d{4}-\d{4}$"))
    if role != "admin":
        expect(page.locator("#sidebar-menu").get_by_role("link", name="Audit log")).to_have_count(0)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("[data-testid=dashboard-title]")).to_be_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"] + 1, f"{role} dashboard overflows a phone screen: {scroll_width}px"
