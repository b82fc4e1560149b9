"""The reports permission matrix: every route of the reports API and page routers x every role -> the
expected status. Reports are for blood bank staff and administrators (their own organisation's figures);
every other role gets 403 with a ``denied`` audit entry; signed-out callers get 401 from the API and a
redirect to sign in from the pages. The chart script is static code, public like the other scripts.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank.reports import api as reports_api
from caresync.bloodbank.reports import pages as reports_pages
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from tests.conftest import ROLES, Cast, login, web_login

ANON = "anonymous"
ALL = (*ROLES, ANON)
READERS = ("bloodbank_staff", "admin")
QUERY = "?from=2026-01-01&to=2026-01-31"


def readers(code: int, anonymous: int) -> dict[str, int]:
    """``code`` for blood bank staff and administrators, 403 for other roles, ``anonymous`` signed out."""
    return {**dict.fromkeys(ROLES, 403), **dict.fromkeys(READERS, code), ANON: anonymous}


API_CASES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/v1/bloodbank/reports"): readers(200, 401),
    ("GET", "/api/v1/bloodbank/reports/export.csv"): readers(200, 401),
    ("GET", "/api/v1/bloodbank/reports/export.pdf"): readers(200, 401),
}
PAGE_CASES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/bloodbank/reports"): readers(200, 303),
    ("GET", "/bloodbank/reports/export.csv"): readers(200, 303),
    ("GET", "/bloodbank/reports/export.pdf"): readers(200, 303),
    ("GET", "/bloodbank/reports/charts.js"): dict.fromkeys(ALL, 200),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_matrices_cover_every_route() -> None:
    for router, cases in ((reports_api.router, API_CASES), (reports_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert served == set(cases), (
            f"missing: {sorted(served - set(cases))}, extra: {sorted(set(cases) - served)}"
        )


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def _run(cast: Cast, cases: dict[tuple[str, str], dict[str, int]], call: Any) -> list[str]:
    problems: list[str] = []
    for (method, path), expect in cases.items():
        for role in ALL:
            user_id = cast[role].id if role != ANON else None
            before = denied_count(user_id)
            response = call(role, method, path + QUERY)
            where = f"{method} {path} as {role}"
            if response.status_code != expect[role]:
                problems.append(
                    f"{where}: expected {expect[role]}, got {response.status_code} {response.text[:200]}"
                )
            if response.status_code == 403 and denied_count(user_id) - before < 1:
                problems.append(f"{where}: refused without a denied audit entry")
            if response.status_code == 303 and not response.headers["location"].startswith("/login"):
                problems.append(f"{where}: redirected elsewhere than the sign-in page")
    return problems


def test_reports_api_permission_matrix(client: TestClient, cast: Cast) -> None:
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}

    def call(role: str, method: str, url: str) -> Any:
        response = client.request(method, url, headers=tokens[role])
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
        return response

    problems = _run(cast, API_CASES, call)
    assert not problems, "\n".join(problems)


def test_reports_page_permission_matrix(app: Any, cast: Cast) -> None:
    sessions: dict[str, TestClient] = {}
    for role in ALL:
        sessions[role] = TestClient(app)
        if role != ANON:
            web_login(sessions[role], cast[role])

    def call(role: str, method: str, url: str) -> Any:
        return sessions[role].request(method, url, headers={"Accept": "text/html"}, follow_redirects=False)

    try:
        problems = _run(cast, PAGE_CASES, call)
    finally:
        for browser in sessions.values():
            browser.close()
    assert not problems, "\n".join(problems)
