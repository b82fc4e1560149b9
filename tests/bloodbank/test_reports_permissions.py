"""The reports permission matrix: every route of the reports API and page routers x every role -> the
expected status. Reports are for blood bank staff and administrators (their own organisation's figures);
every other role gets 403 with a ``denied`` audit entry; signed-out callers get 401 from the API and a
redirect to sign in from the pages. The chart script is static code, public like the other scripts.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from caresync.bloodbank.reports import api as reports_api
from caresync.bloodbank.reports import pages as reports_pages
from tests.conftest import Cast
from tests.permission_matrix import ALL, Case, Expect, assert_covered, check_api, check_pages, only, pages

READERS = ("bloodbank_staff", "admin")


def _period(_: None) -> dict[str, str]:
    return {"from": "2026-01-01", "to": "2026-01-31"}


def readers(code: int) -> Expect:
    """``code`` for blood bank staff and administrators, 403 for other roles, 401 signed out."""
    return only(code, *READERS)


API_CASES: dict[tuple[str, str], Case[None]] = {
    ("GET", "/api/v1/bloodbank/reports"): Case(readers(200), query=_period),
    ("GET", "/api/v1/bloodbank/reports/export.csv"): Case(readers(200), query=_period),
    ("GET", "/api/v1/bloodbank/reports/export.pdf"): Case(readers(200), query=_period),
}
PAGE_CASES: dict[tuple[str, str], Case[None]] = {
    ("GET", "/bloodbank/reports"): Case(pages(readers(200)), query=_period),
    ("GET", "/bloodbank/reports/export.csv"): Case(pages(readers(200)), query=_period),
    ("GET", "/bloodbank/reports/export.pdf"): Case(pages(readers(200)), query=_period),
    ("GET", "/bloodbank/reports/charts.js"): Case(dict.fromkeys(ALL, 200), query=_period),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((reports_api.router, API_CASES), (reports_pages.router, PAGE_CASES))


def test_reports_api_permission_matrix(client: TestClient, cast: Cast) -> None:
    check_api(client, cast, None, API_CASES)


def test_reports_page_permission_matrix(app: Any, cast: Cast) -> None:
    check_pages(app, cast, None, PAGE_CASES)
