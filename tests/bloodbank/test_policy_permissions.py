"""The blood bank settings permission matrix: every route of the policy API and page routers x every role
(+ anonymous) -> the expected status. Reading the settings is for administrators and blood bank staff,
changing them for administrators; everyone else gets 403 with a ``denied`` audit entry by them; signed-out
callers get 401 from the API and a redirect to sign in from the pages.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from caresync.bloodbank.policy import api as policy_api
from caresync.bloodbank.policy import pages as policy_pages
from tests.conftest import Cast
from tests.permission_matrix import Case, assert_covered, check_api, check_pages, only, pages

BODY = {
    "rule_profile": "UK",
    "low_stock_days": 4,
    "critical_stock_days": 1,
    "stock_thresholds": {"O-:red_cells": 5},
    "baseline_daily_use": {},
    "expiry_warning_days": 3,
    "callout_wave_size": 20,
    "callout_cooldown_days": 7,
    "donation_chairs": 4,
    "return_window_minutes": 30,
}
FORM = {key: str(value) for key, value in BODY.items() if not isinstance(value, dict)} | {
    "threshold:O-:red_cells": "5"
}

API_CASES: dict[tuple[str, str], Case[None]] = {
    ("GET", "/api/v1/bloodbank/policy"): Case(only(200, "admin", "bloodbank_staff")),
    ("PUT", "/api/v1/bloodbank/policy"): Case(only(200, "admin"), json=lambda _: BODY),
}
PAGE_CASES: dict[tuple[str, str], Case[None]] = {
    ("GET", "/bloodbank/settings"): Case(pages(only(200, "admin"))),
    ("POST", "/bloodbank/settings"): Case(pages(only(303, "admin")), data=lambda _: FORM),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((policy_api.router, API_CASES), (policy_pages.router, PAGE_CASES))


def test_policy_api_permission_matrix(client: TestClient, cast: Cast) -> None:
    check_api(client, cast, None, API_CASES)


def test_policy_page_permission_matrix(app: Any, cast: Cast) -> None:
    check_pages(app, cast, None, PAGE_CASES)
