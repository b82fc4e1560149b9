"""Browser: O-negative red cells run short at Riverside; the blood bank's check raises the shortage, staff
call donors from the alert, and the demo donor (O-negative, eligible, living nearby) answers the call by
booking a donation time, which the staff member then sees as accepted."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def test_a_shortage_calls_donors_and_a_donor_books(new_page: Any, log_in: Any) -> None:
    staff = new_page()
    log_in(staff, DEMO_EMAILS["bloodbank_staff"])
    staff.locator("#sidebar-menu").get_by_role("link", name="Blood alerts and call-outs").click()
    with staff.expect_navigation():
        staff.locator("[data-testid=scan-now]").click()
    shortage = staff.locator("[data-testid=alert][data-kind=low_stock][data-subject='O-:red_cells']")
    expect(shortage).to_be_visible()
    expect(shortage.locator("[data-testid=alert-message]")).to_contain_text("O-")

    with staff.expect_navigation():
        shortage.locator("[data-testid=call-donors]").click()
    # The first wave went out at once, nearest donors first: the demo donor lives by the hospital.
    expect(staff.locator("[data-testid=waves-sent]")).to_have_text("1")
    expect(staff.locator("[data-testid=contact]", has_text="Daniel Donor")).to_contain_text("No reply yet")
    callout_url = staff.url

    donor = new_page()
    log_in(donor, DEMO_EMAILS["donor"])
    donor.on("dialog", lambda dialog: dialog.accept())
    # The demo donor already has a donation booked later this week: they come sooner instead.
    donor.locator("#sidebar-menu").get_by_role("link", name="My donations").click()
    if donor.locator("[data-testid=cancel]").count():
        with donor.expect_navigation():
            donor.locator("[data-testid=cancel]").click()
    expect(donor.locator("[data-testid=upcoming]")).to_have_count(0)

    donor.locator("#sidebar-menu").get_by_role("link", name="Calls for donors").click()
    call = donor.locator("[data-testid=call]").first
    expect(call.locator("[data-testid=call-reason]")).to_contain_text("O-")
    first_time = call.locator("[data-testid=slot] option").first.get_attribute("value")
    call.locator("[data-testid=slot]").select_option(first_time)
    with donor.expect_navigation():
        call.locator("[data-testid=accept]").click()
    expect(donor.locator("[data-testid=booked]")).to_be_visible()

    donor.locator("#sidebar-menu").get_by_role("link", name="My donations").click()
    expect(donor.locator("[data-testid=upcoming]")).to_contain_text("Riverside")

    staff.goto(callout_url)
    expect(staff.locator("[data-testid=contact]", has_text="Daniel Donor")).not_to_contain_text(
        "No reply yet"
    )
    staff.locator("#sidebar-menu").get_by_role("link", name="Blood alerts and call-outs").click()
    callout = staff.locator("[data-testid=callout-row]").first
    expect(callout.locator("[data-testid=accepted]")).to_have_text("1")
    expect(
        staff.locator("[data-testid=alert][data-subject='O-:red_cells'] [data-testid=calling]")
    ).to_be_visible()
