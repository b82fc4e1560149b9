"""Keyboard-only use of the sign-in page: skip link, tab order, submitting with Enter."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e

FOCUSED = (
    "(() => { const e = document.activeElement; return e.id || e.getAttribute('href') || e.tagName; })()"
)


def test_login_page_works_with_the_keyboard(page: Any) -> None:
    page.goto("/login")
    skip = page.locator("a.skip-link")
    expect(skip).to_have_attribute("href", "#main")

    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # hidden until focused, then shown

    order = []
    for _ in range(10):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        order.append(focused)
        if page.evaluate("document.activeElement.type === 'submit'"):
            break
    assert "f-email" in order, order
    assert "f-password" in order, order
    assert order.index("f-email") < order.index("f-password") < len(order) - 1, order
    expect(page.locator("main button[type=submit]")).to_be_focused()

    # Every input is labelled.
    for field in ("#f-email", "#f-password"):
        expect(page.locator(field)).to_have_accessible_name(
            re.compile(("^Email", "^Password")[field == "#f-password"])
        )

    # The skip link moves focus past the navigation, to the page content.
    page.goto("/login")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    # Type and submit without the mouse: a patient lands on the dashboard.
    page.locator("#f-email").focus()
    page.keyboard.type(DEMO_EMAILS["patient"])
    page.keyboard.press("Tab")
    page.keyboard.type("CareSync-demo-2026")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("[data-testid=dashboard-title]")).to_be_visible()
