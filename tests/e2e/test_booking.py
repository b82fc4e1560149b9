"""Browser: a patient finds a cardiologist who takes their insurance, books a time, reschedules it, sees
it in a calendar feed they subscribe to, and cancels it after confirming."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

PATIENT = "patient@demo.caresync.dev"
CARDIOLOGIST = "Maria Ferreira"  # the demo's first doctor: a cardiologist taking the demo patient's insurer


def weeks_ahead(page: Any, weeks: int = 3) -> None:
    """Show the times three weeks ahead: plenty of free ones, and past the demo's two weeks of bookings (the
    demo patient's own appointments could take the first free time of next week, depending on the day)."""
    for _ in range(weeks):
        page.locator("[data-testid=later]").click()


def test_patient_finds_a_cardiologist_books_reschedules_and_cancels(page: Any, log_in: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, PATIENT)
    page.get_by_role("link", name="Find a doctor").first.click()
    expect(page.locator("#f-insurance")).not_to_have_value("")  # pre-filled from the patient's profile
    page.select_option("#f-specialty", "cardiology")
    results = page.locator("[data-testid=doctor-result]")
    expect(results.filter(has_text=CARDIOLOGIST)).to_have_count(1)
    expect(page).to_have_url(re.compile(r"specialty=cardiology"))  # the search is in the address bar
    for text in results.all_inner_texts():  # every result is a cardiologist taking the patient's plan
        assert "Cardiology" in text

    results.filter(has_text=CARDIOLOGIST).get_by_role("link", name="See times").click()
    expect(page.locator("[data-testid=doctor-name]")).to_contain_text(CARDIOLOGIST)
    weeks_ahead(page)
    first_slot = page.locator("[data-testid=slot]").first
    chosen = first_slot.inner_text()
    first_slot.click()
    page.fill("#f-reason", "Palpitations when climbing stairs")
    page.locator("[data-testid=confirm-booking]").click()
    expect(page.locator("[data-testid=booked]")).to_be_visible()
    expect(page.locator("[data-testid=status]")).to_have_text("booked")
    expect(page.locator("[data-testid=when]")).to_contain_text(chosen)
    booked_url = page.url.split("?")[0]

    page.locator("[data-testid=reschedule]").click()
    weeks_ahead(page)  # (within 24 hours it could not be cancelled online)
    later_slot = page.locator("[data-testid=slot]").nth(3)
    new_time = later_slot.inner_text()
    later_slot.click()  # confirmed by the dialog handler
    expect(page.locator("[data-testid=status]")).to_have_text("booked")
    expect(page.locator("[data-testid=when]")).to_contain_text(new_time)
    moved_path = page.url.split("?")[0].removeprefix(page.url.split("/appointments/")[0])
    assert page.url.split("?")[0] != booked_url  # a new appointment replaced the old one
    page.goto(booked_url)
    expect(page.locator("[data-testid=status]")).to_have_text("cancelled")

    # the rescheduled appointment is in the patient's calendar feed; the cancelled one is not
    page.goto("/appointments")
    page.locator("[data-testid=feeds-link]").click()
    page.locator("[data-testid=create-feed]").click()
    feed_url = page.locator("[data-testid=feed-url]").input_value()
    feed = page.request.get("/calendar/" + feed_url.split("/calendar/")[1])
    assert feed.status == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    assert f"UID:{moved_path.rsplit('/', 1)[1]}@caresync" in feed.text()
    assert booked_url.rsplit("/", 1)[1] not in feed.text()

    page.goto("/appointments")
    page.locator(f"[data-testid=appointments] a[href='{moved_path}']").click()
    page.locator("[data-testid=cancel]").click()
    expect(page.locator("[data-testid=status]")).to_have_text("cancelled")
