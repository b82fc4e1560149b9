"""The administrator's analytics dashboard updates live: a doctor of the same organisation (Riverside)
records a visit through the API, and the admin's open page shows the new count and chart data without a
reload (the small demo may have no encounter at Riverside yet: the chart then appears with the visit)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def _csrf(page: Any) -> str:
    """The page's CSRF token (sent by HTMX in the body's ``hx-headers``)."""
    return str(json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"])


THIS_WEEK_IS = """(expected) => {
  const node = document.getElementById("chart-volume-data");
  if (!node) { return false; }
  const weekly = JSON.parse(node.textContent).data.datasets[0].data.filter((v) => v !== null);
  return weekly[weekly.length - 1] === expected;
}"""


def test_admin_dashboard_updates_live_when_a_visit_is_recorded(new_page: Any, log_in: Any) -> None:
    admin = new_page()
    log_in(admin, DEMO_EMAILS["admin"])
    admin.goto("/analytics")
    week = admin.locator("[data-testid=kpi-week]")
    expect(week).to_have_text(re.compile(r"^\d+$"))
    expect(admin.locator("[data-testid=volume-table]")).to_have_count(1)
    before = int(week.inner_text())
    admin.evaluate("window.__notReloaded = true")

    doctor = new_page()
    log_in(doctor, DEMO_EMAILS["doctor"])
    patients = doctor.request.get("/api/v1/patients?limit=1")
    assert patients.ok, patients.text()
    visit = {
        "patient_id": patients.json()["items"][0]["id"],
        "codes": ["J11"],
        "department": "general-practice",
        "outcome": "discharged",
        "started_at": datetime.now(UTC).isoformat(),
    }
    recorded = doctor.request.post(
        "/api/v1/encounters",
        data=json.dumps(visit),
        headers={"X-CSRF-Token": _csrf(doctor), "Content-Type": "application/json"},
    )
    assert recorded.status == 201, recorded.text()

    expect(week).to_have_text(str(before + 1))
    expect(admin.locator("[data-testid=volume] canvas")).to_have_count(1)
    # The sections refresh independently: wait for the volume chart's own refresh (this week's point of the
    # weekly volume, before any forecast weeks).
    admin.wait_for_function(THIS_WEEK_IS, arg=before + 1, timeout=15_000)
    chart = json.loads(admin.locator("#chart-volume-data").inner_text())
    weekly = [value for value in chart["data"]["datasets"][0]["data"] if value is not None]
    assert weekly[-1] == before + 1
    expect(admin.locator("[data-testid=analytics-updated]")).to_have_text("Updated just now")
    assert admin.evaluate("window.__notReloaded") is True
