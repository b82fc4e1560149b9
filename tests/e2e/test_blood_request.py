"""Browser: a doctor orders two units of red cells for a patient; the hospital's blood bank sees the
request arrive, matches units, records the crossmatches and issues them, and the red-cell stock on its
dashboard drops by two; the doctor confirms the transfusions and the request is completed."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def _red_cells_available(page: Any) -> int:
    """The red cells available on the stock dashboard, all groups together."""
    page.locator("#sidebar-menu").get_by_role("link", name="Blood stock").click()
    counts = page.locator("[data-testid^=available-][data-testid$=-red_cells]")
    expect(counts).to_have_count(8)
    return sum(int(text) for text in counts.all_inner_texts())


def _order_red_cells(doctor: Any) -> str:
    """Order two urgent units for the first of the doctor's patients whose group is on record; returns
    the request's page."""
    doctor.locator("#sidebar-menu").get_by_role("link", name="Order blood").click()
    doctor.locator("[data-testid=order-blood]").click()
    patients = doctor.locator("[data-testid=choose-patient]")
    expect(patients.first).to_be_visible()
    for index in range(patients.count()):
        patients.nth(index).click()
        if doctor.locator("[data-testid=group-on-record]").count():
            break
        doctor.go_back()
    doctor.select_option("#f-component", "red_cells")
    doctor.fill("#f-units", "2")
    doctor.select_option("#f-urgency", "urgent")
    doctor.fill("#f-indication", "Symptomatic anaemia, Hb 6.9 g/dL")
    with doctor.expect_navigation():
        doctor.locator("[data-testid=send-order]").click()
    expect(doctor.locator("[data-testid=request-status]").first).to_have_text("Open")
    return str(doctor.url.split("?")[0])


def test_staff_match_and_issue_an_ordered_request_and_stock_drops(new_page: Any, log_in: Any) -> None:
    staff = new_page()
    log_in(staff, DEMO_EMAILS["bloodbank_staff"])
    before = _red_cells_available(staff)

    doctor = new_page()
    log_in(doctor, DEMO_EMAILS["doctor"])
    request_url = _order_red_cells(doctor)
    request_id = request_url.rsplit("/", 1)[1]

    # The request arrives in the blood bank's queue.
    staff.locator("#sidebar-menu").get_by_role("link", name="Blood requests").click()
    row = staff.locator(f"[data-testid=request-row][data-request-id='{request_id}']")
    expect(row).to_be_visible()
    with staff.expect_navigation():
        row.locator("[data-testid=open-request]").click()

    # Matching proposes compatible units; the best two are ticked.
    expect(staff.locator("[data-testid=proposed-unit]").first).to_be_visible()
    picks = staff.locator("[data-testid=pick-unit]")
    for index in range(picks.count()):
        picks.nth(index).set_checked(index < 2)
    with staff.expect_navigation():
        staff.locator("[data-testid=allocate]").click()
    expect(staff.locator("[data-testid=held-unit]")).to_have_count(2)
    expect(staff.locator("[data-testid=request-status]").first).to_have_text("Allocated")

    for _ in range(2):
        with staff.expect_navigation():
            staff.locator("[data-testid=crossmatch-ok]").first.click()
    with staff.expect_navigation():
        staff.locator("[data-testid=issue-all]").click()
    expect(staff.locator("[data-testid=request-status]").first).to_have_text("Issued")

    assert _red_cells_available(staff) == before - 2

    # On the ward, the doctor confirms both transfusions.
    doctor.goto(request_url)
    for _ in range(2):
        with doctor.expect_navigation():
            doctor.locator("[data-testid=confirm-transfusion]").first.click()
    expect(doctor.locator("[data-testid=request-status]").first).to_have_text("Completed")
