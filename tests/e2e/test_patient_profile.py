"""A patient edits their own profile: saved values show up; an invalid value is explained inline and
changes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def _save(page: Any) -> None:
    with page.expect_navigation():
        page.click("main button[type=submit]")


def test_patient_edits_profile_and_sees_inline_errors(page: Any, log_in: Any) -> None:
    log_in(page, DEMO_EMAILS["patient"])
    with page.expect_navigation():
        page.locator("main").get_by_role("link", name="Edit", exact=True).click()
    assert re.search(r"/patients/[0-9a-f-]{36}/edit$", page.url), page.url
    profile_url = page.url.removesuffix("/edit")
    expect(page.locator("h1")).to_have_text("Edit profile")
    # Patients cannot change their own blood group: there is no field for it.
    expect(page.locator("#f-blood_group")).to_have_count(0)

    page.fill("#f-phone", "+351 912 000 111")
    page.fill("#f-emergency_contact_name", "Rosa Teixeira")
    page.fill("#f-emergency_contact_phone", "+351 933 444 555")
    page.fill("#f-emergency_contact_relation", "sister")
    _save(page)

    assert page.url == f"{profile_url}?saved=1"
    expect(page.locator("[data-testid=saved]")).to_have_text("Profile saved.")
    expect(page.locator("[data-field=Phone]")).to_have_text("+351 912 000 111")
    expect(page.locator('[data-field="Emergency contact"]')).to_have_text(
        "Rosa Teixeira (sister) +351 933 444 555"
    )

    # An out-of-range latitude: the form comes back with the error next to the field and the typed values.
    page.goto(f"{profile_url}/edit")
    page.fill("#f-phone", "+351 911 999 999")
    page.fill("#f-latitude", "200")
    _save(page)
    latitude = page.locator("#f-latitude")
    expect(latitude).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(latitude).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-latitude")).to_be_visible()
    expect(page.locator("#e-latitude")).to_contain_text("90")
    expect(page.locator("#f-phone")).to_have_value("+351 911 999 999")
    expect(page.locator(".is-invalid")).to_have_count(1)

    # A country that is not a 2-letter code and an incomplete email: both fields are marked.
    page.fill("#f-latitude", "")
    page.fill("#f-country", "Portugal")
    page.fill("#f-email", "someone@")
    _save(page)
    for field in ("country", "email"):
        expect(page.locator(f"#f-{field}")).to_have_class(re.compile(r"\bis-invalid\b"))
        expect(page.locator(f"#e-{field}")).to_be_visible()
    expect(page.locator("#f-latitude")).not_to_have_class(re.compile(r"\bis-invalid\b"))

    # Nothing of the refused submissions was stored.
    page.goto(profile_url)
    expect(page.locator("[data-testid=saved]")).to_have_count(0)
    expect(page.locator("[data-field=Phone]")).to_have_text("+351 912 000 111")
    expect(page.locator("[data-field=Address]")).not_to_contain_text("Portugal")
    expect(page.locator("[data-field=Email]")).not_to_contain_text("someone@")
