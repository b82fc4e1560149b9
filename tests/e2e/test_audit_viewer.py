"""The administrator's audit viewer: entries, filters and the hash-chain check as a background job."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# Not admin@riverside: other tests sign in as that admin, and each TOTP time step works only once.
ADMIN = "admin@harbour.demo.caresync.dev"


def test_admin_filters_the_audit_log_and_verifies_the_chain(page: Any, log_in: Any) -> None:
    log_in(page, ADMIN)
    with page.expect_navigation():
        page.locator("#sidebar-menu").get_by_role("link", name="Audit log").click()
    assert page.url.endswith("/admin/audit")
    rows = page.locator("[data-testid=audit-table] tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("[data-testid=audit-table]")).to_contain_text("auth.login")  # this admin's sign-in

    page.fill("#a-action", "auth.")
    with page.expect_navigation():
        page.locator("main form[role=search]").get_by_role("button", name="Search").click()
    assert "action=auth." in page.url
    expect(rows.first).to_be_visible()
    for action in page.locator("[data-testid=audit-table] tbody code").all_inner_texts():
        assert action.startswith("auth."), action

    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Verify the chain").click()
    assert re.search(r"/jobs/[0-9a-f-]{36}$", page.url), page.url
    expect(page.locator("[data-testid=chain-ok]")).to_contain_text("entries verified")
    expect(page.locator("[data-testid=job-status]")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("[data-testid=chain-broken]")).to_have_count(0)
