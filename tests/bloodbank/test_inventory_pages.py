"""Inventory pages as blood bank staff use them: the stock dashboard (levels, days of supply, links into the
filtered list), the unit list (empty states, filters, paging), receiving a unit through the form (errors
beside their fields), and a unit's page (history, release, discard with a reason, move)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.models import BloodUnit
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import din, make_unit
from tests.bloodbank.test_stock_dashboard import issued, set_policy
from tests.conftest import Cast, web_login


@pytest.fixture
def staff_browser(app: Any, cast: Cast) -> Iterator[tuple[TestClient, str]]:
    """A browser signed in as the cast's blood bank staff member, and its CSRF token."""
    with TestClient(app) as browser:
        yield browser, web_login(browser, cast["bloodbank_staff"])


def cell(html: str, testid: str) -> str:
    """The text of the first element with ``data-testid``, tags removed, spaces collapsed."""
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</(?:td|div|a|span)>', html, re.S)
    assert match, f"no {testid}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def stored(din_text: str) -> BloodUnit | None:
    with transaction(session_factory()) as s:
        return s.scalar(select(BloodUnit).where(BloodUnit.din == din_text))


def test_an_empty_blood_bank(staff_browser: tuple[TestClient, str]) -> None:
    browser, _csrf = staff_browser
    stock = browser.get("/bloodbank/stock")
    assert stock.status_code == 200
    assert 'data-testid="empty-stock"' in stock.text
    assert stock.text.count('data-level="ok"') == 40
    units = browser.get("/bloodbank/units")
    assert 'data-testid="empty-units"' in units.text
    assert "No units yet" in units.text
    assert "No units match" in browser.get("/bloodbank/units?blood_group=AB-").text


def test_the_dashboard_colours_cells_and_links_to_the_units(
    staff_browser: tuple[TestClient, str], cast: Cast
) -> None:
    browser, _csrf = staff_browser
    set_policy(cast.org.id, baseline_daily_use={"A+:plasma": 1.0})
    make_unit(cast.org, "O-", expires_in=timedelta(days=1))
    issued(cast.org, "O-", "red_cells", 14, 2)  # 0.5 a day, 1 available -> 2 days: low
    issued(cast.org, "B+", "platelets", 3, 1)  # none available: critical
    for _ in range(5):
        make_unit(cast.org, "A+", "plasma", expires_in=timedelta(days=200))  # 5 days at 1 a day: ok
    html = browser.get("/bloodbank/stock").text
    assert re.search(r'bg-yellow-lt" data-testid="cell-O--red_cells" data-level="low"', html)
    assert re.search(r'bg-red-lt" data-testid="cell-B\+-platelets" data-level="critical"', html)
    assert 'data-testid="cell-A+-plasma" data-level="ok"' in html
    assert cell(html, "days-O--red_cells").startswith("2.0 days")
    assert cell(html, "days-A+-plasma") == "5.0 days"
    assert cell(html, "days-AB--cryo") == "— no use data"
    assert cell(html, "expiring-O--red_cells") == "1 expiring"
    assert "/bloodbank/units?status=available&amp;blood_group=O-&amp;component=red_cells" in html
    assert cell(html, "total-critical") == "1"


def test_the_list_filters_and_pages(staff_browser: tuple[TestClient, str], cast: Cast) -> None:
    browser, _csrf = staff_browser
    units = [make_unit(cast.org, "O+", expires_in=timedelta(days=2 + i)) for i in range(26)]
    plasma = make_unit(cast.org, "A-", "plasma", expires_in=timedelta(days=300))
    first = browser.get("/bloodbank/units?blood_group=O%2B")
    assert first.text.count('data-testid="unit-row"') == 25
    assert units[0].din in first.text
    assert plasma.din not in first.text
    next_url = re.search(r'href="(\?[^"]+)" rel="next"', first.text)
    assert next_url
    second = browser.get("/bloodbank/units" + next_url.group(1).replace("&amp;", "&"))
    assert second.text.count('data-testid="unit-row"') == 1
    assert units[-1].din in second.text
    by_din = browser.get(f"/bloodbank/units?din={plasma.din[:5]}+{plasma.din[5:7]}+{plasma.din[7:]}")
    assert by_din.text.count('data-testid="unit-row"') == 1
    assert plasma.din in by_din.text
    assert browser.get("/bloodbank/units?status=nonsense&sort=bogus").status_code == 200  # ignored


def test_receiving_a_unit_through_the_form(staff_browser: tuple[TestClient, str]) -> None:
    browser, csrf = staff_browser
    assert 'data-testid="receive-form"' in browser.get("/bloodbank/units/new").text
    number = din()
    collected = utcnow() - timedelta(hours=3)
    form = {
        "csrf_token": csrf,
        "din": f"{number[:5]} {number[5:7]} {number[7:]}",
        "product_code": "e0336",
        "component": "platelets",
        "preparation": "tested_platelets",
        "blood_group": "A+",
        "volume_ml": "250",
        "collected_at": collected.astimezone(ZoneInfo("Europe/Lisbon")).strftime("%Y-%m-%dT%H:%M"),
        "time_zone": "Europe/Lisbon",
        "storage_location": "Agitator 1",
    }
    done = browser.post("/bloodbank/units/new", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    unit = stored(number)
    assert unit is not None
    assert done.headers["location"] == f"/bloodbank/units/{unit.id}?received=1"
    assert (unit.status, unit.product_code, unit.details) == (
        "quarantined",
        "E0336",
        {"bacterial_testing": True},
    )
    assert abs(unit.expires_at - (collected + timedelta(days=7))) < timedelta(minutes=1)
    page = browser.get(done.headers["location"])
    assert "Unit received into quarantine" in page.text
    assert 'data-testid="release"' in page.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"din": "W1234 26 12"}, "din", "donation number"),
        ({"volume_ml": "lots"}, "volume_ml", "whole ml"),
        ({"collected_at": ""}, "collected_at", "date and time"),
        ({"blood_group": ""}, "blood_group", "group"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "time zone"),
    ],
    ids=["din", "volume", "collected", "group", "zone"],
)
def test_the_receive_form_shows_errors_beside_their_fields(
    staff_browser: tuple[TestClient, str], changes: dict[str, str], field: str, message: str
) -> None:
    browser, csrf = staff_browser
    form = {
        "csrf_token": csrf,
        "din": din(),
        "product_code": "E0336",
        "component": "red_cells",
        "blood_group": "O+",
        "volume_ml": "280",
        "collected_at": (utcnow() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        "time_zone": "UTC",
        **changes,
    }
    response = browser.post("/bloodbank/units/new", data=form, follow_redirects=False)
    assert response.status_code == 422
    feedback = re.search(rf'id="e-{field}">([^<]*)<', response.text) or re.search(
        r'invalid-feedback">([^<]*)<', response.text
    )
    assert feedback, response.text[-2000:]
    assert message in feedback.group(1)
    with transaction(session_factory()) as s:
        assert s.scalars(select(BloodUnit)).all() == []


def test_a_duplicate_unit_comes_back_with_the_reason(
    staff_browser: tuple[TestClient, str], cast: Cast
) -> None:
    browser, csrf = staff_browser
    existing = make_unit(cast.org, product_code="E0336")
    form = {"csrf_token": csrf, "din": existing.din, "product_code": "E0336", "component": "red_cells",
            "blood_group": "O+", "volume_ml": "280", "time_zone": "UTC",
            "collected_at": (utcnow() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    response = browser.post("/bloodbank/units/new", data=form, follow_redirects=False)
    assert response.status_code == 409
    assert "already registered" in response.text


def test_the_unit_page_releases_moves_and_discards(staff_browser: tuple[TestClient, str], cast: Cast) -> None:
    browser, csrf = staff_browser
    unit = make_unit(cast.org, "AB+", status="quarantined")
    url = f"/bloodbank/units/{unit.id}"
    page = browser.get(url)
    assert page.text.count('data-testid="history-step"') == 1
    assert 'data-confirm="Discard unit' in page.text
    released = browser.post(f"{url}/release", data={"csrf_token": csrf}, follow_redirects=False)
    assert (released.status_code, released.headers["location"]) == (303, f"{url}?released=1")
    again = browser.post(f"{url}/release", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.status_code == 409
    assert "only a quarantined unit can be released" in again.text
    moved = browser.post(f"{url}/location", data={"csrf_token": csrf, "storage_location": "Fridge 4"})
    assert 'data-testid="unit-location">Fridge 4<' in moved.text
    no_reason = browser.post(
        f"{url}/discard", data={"csrf_token": csrf, "reason": " "}, follow_redirects=False
    )
    assert no_reason.status_code == 422
    assert 'id="e-reason">Say why the unit is discarded.<' in no_reason.text
    discarded = browser.post(f"{url}/discard", data={"csrf_token": csrf, "reason": "Clots seen"})
    assert "Unit discarded." in discarded.text
    assert cell(discarded.text, "unit-status") == "discarded"
    assert discarded.text.count('data-testid="history-step"') == 3
    assert "Clots seen" in discarded.text
    assert 'data-testid="discard"' not in discarded.text  # nothing left to do with it


def test_a_clinician_cannot_open_the_stock_pages(app: Any, cast: Cast) -> None:
    with TestClient(app) as browser:
        web_login(browser, cast["doctor"])
        response = browser.get("/bloodbank/stock", headers={"Accept": "text/html"})
    assert response.status_code == 403
