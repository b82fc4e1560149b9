"""The clinic queue in the browser: a nurse adds two walk-ins and triages them so that the later arrival
becomes more urgent; a waiting-room board open in another browser reorders live, without a reload.

Needs a location of the demo hospital (Riverside) in the demo data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e

BOARD_ORDER = """([first, second]) => {
  const order = [...document.querySelectorAll('[data-testid=board-ticket]')].map((row) => row.dataset.ticket);
  return order.includes(first) && order.includes(second) && order.indexOf(first) < order.indexOf(second);
}"""


def _open_console(page: Any) -> str:
    """Open the clinic queue of the first Riverside location; returns the location id."""
    page.goto("/queue")
    if page.locator("[data-testid=queue-locations]").count():
        with page.expect_navigation():
            page.locator("[data-testid=queue-locations] a").first.click()
    page.wait_for_selector("[data-testid=queue-live][data-connected]")
    return str(page.url.rstrip("/").rsplit("/", 1)[-1])


def _health_ids(page: Any) -> list[str]:
    """Health IDs of patients the signed-in doctor cares for (the browser's session cookie)."""
    response = page.request.get("/api/v1/patients?limit=40")
    assert response.ok, response.text()
    return [item["health_id"] for item in response.json()["items"]]


def _add_walk_in(page: Any, candidates: list[str], complaint: str) -> str:
    """Add the first candidate not already in the queue; returns the new ticket."""
    while candidates:
        _clear_flash(page)
        page.evaluate("document.getElementById('e-health_id')?.remove()")  # the last attempt's error
        page.fill("#f-health_id", candidates.pop())
        page.fill("#f-complaint", complaint)
        with page.expect_response(lambda response: response.url.endswith("/walk-in")):
            page.click("[data-testid=walk-in-form] button[type=submit]")
        outcome = page.wait_for_selector("[data-testid=queue-message], #e-health_id")
        text = outcome.inner_text()
        if text.startswith("Added ticket "):
            return str(text.removeprefix("Added ticket ").rstrip("."))
        assert "already in the queue" in text, text
    raise AssertionError("no demo patient left to add")


def _clear_flash(page: Any) -> None:
    """Remove the last confirmation, so that the next one can be awaited."""
    page.evaluate("document.getElementById('queue-flash').replaceChildren()")


def _triage(page: Any, ticket: str, level: int) -> None:
    _clear_flash(page)
    row = page.locator(f"[data-testid=queue-row][data-ticket='{ticket}']")
    row.locator("[data-testid=triage-select]").select_option(str(level))  # choosing sends it
    expect(page.locator("[data-testid=queue-message]")).to_contain_text(f"Ticket {ticket} triaged")


def test_nurse_triages_two_walk_ins_and_the_board_reorders_live(
    new_page: Callable[..., Any], log_in: Callable[..., None]
) -> None:
    board = new_page()
    log_in(board, DEMO_EMAILS["doctor"])
    candidates = _health_ids(board)
    location_id = _open_console(board)
    board.goto(f"/queue/{location_id}/board")
    board.wait_for_selector("[data-testid=queue-live][data-connected]")
    board.evaluate("window.__notReloaded = true")

    nurse = new_page(390, 844)  # a phone-sized screen
    log_in(nurse, DEMO_EMAILS["nurse"])
    assert _open_console(nurse) == location_id
    first = _add_walk_in(nurse, candidates, "Sprained wrist")
    second = _add_walk_in(nurse, candidates, "Chest pain on exertion")

    # Both untriaged: the board lists them in arrival order, updated live.
    board.wait_for_function(BOARD_ORDER, arg=[first, second])
    expect(board.locator("[data-testid=board-table]")).not_to_contain_text("Sprained")

    # The nurse triages: the earlier arrival is standard, the later one very urgent.
    _triage(nurse, first, 4)
    _triage(nurse, second, 2)
    rows = nurse.locator("[data-testid=queue-row]")
    expect(rows.filter(has_text=second).locator("[data-testid=triage-badge]")).to_contain_text("2 ·")
    order = [row.get_attribute("data-ticket") for row in rows.all()]
    assert order.index(second) < order.index(first)

    # The board, open all along, reorders without a reload.
    board.wait_for_function(BOARD_ORDER, arg=[second, first])
    assert board.evaluate("window.__notReloaded") is True

    # Calling the next patient announces the more urgent ticket on the board.
    _clear_flash(nurse)
    nurse.fill("#f-room", "Room 4")
    nurse.click("#queue-console button:has-text('Call next')")
    expect(nurse.locator("[data-testid=queue-message]")).to_contain_text("Called ticket")
    expect(board.locator("[data-testid=now-calling-room]")).to_have_text("Room 4")
    called = board.locator("[data-testid=now-calling-ticket]").inner_text()
    expect(board.locator(f"[data-testid=board-ticket][data-ticket='{called}']")).to_have_count(0)
    assert board.evaluate("window.__notReloaded") is True
