"""The blood bank settings permission matrix: every route of the policy API and page routers x every role
(+ anonymous) -> the expected status. Reading the settings is for administrators and blood bank staff,
changing them for administrators; everyone else gets 403 with a ``denied`` audit entry by them; signed-out
callers get 401 from the API and a redirect to sign in from the pages.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank.policy import api as policy_api
from caresync.bloodbank.policy import pages as policy_pages
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from tests.conftest import ROLES, Cast, login, web_login

ANON = "anonymous"
ALL = (*ROLES, ANON)
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


def only(codes: dict[str, int], others: int, anonymous: int) -> dict[str, int]:
    """``codes`` for the roles named, ``others`` for the other roles, ``anonymous`` when signed out."""
    return {**dict.fromkeys(ROLES, others), **codes, ANON: anonymous}


API_CASES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/v1/bloodbank/policy"): only({"admin": 200, "bloodbank_staff": 200}, 403, 401),
    ("PUT", "/api/v1/bloodbank/policy"): only({"admin": 200}, 403, 401),
}
PAGE_CASES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/bloodbank/settings"): only({"admin": 200}, 403, 303),
    ("POST", "/bloodbank/settings"): only({"admin": 303}, 403, 303),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_matrices_cover_every_route() -> None:
    for router, cases in ((policy_api.router, API_CASES), (policy_pages.router, PAGE_CASES)):
        served = router_routes(router)
        assert served == set(cases), f"missing: {served - set(cases)}; not served: {set(cases) - served}"


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def _check(problems: list[str], where: str, response: Any, wanted: int, denied: int) -> None:
    if response.status_code != wanted:
        problems.append(f"{where}: expected {wanted}, got {response.status_code} {response.text[:200]}")
    if response.status_code == 403 and denied < 1:
        problems.append(f"{where}: refused without a denied audit entry")
    if wanted == 303 and response.status_code == 303 and "location" not in response.headers:
        problems.append(f"{where}: a redirect without a location")


def test_policy_api_permission_matrix(client: TestClient, cast: Cast) -> None:
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    problems: list[str] = []
    for (method, path), expect in API_CASES.items():
        for role in ALL:
            user_id = cast[role].id if role != ANON else None
            before = denied_count(user_id)
            response = client.request(
                method, path, headers=tokens[role], json=BODY if method == "PUT" else None
            )
            if response.status_code >= 400 and not response.headers["content-type"].startswith(
                "application/problem+json"
            ):
                problems.append(f"{method} {path} as {role}: not problem+json")
            _check(
                problems, f"{method} {path} as {role}", response, expect[role], denied_count(user_id) - before
            )
    assert not problems, "\n".join(problems)


def test_policy_page_permission_matrix(app: Any, cast: Cast) -> None:
    problems: list[str] = []
    for role in ALL:
        with TestClient(app) as browser:
            csrf = web_login(browser, cast[role]) if role != ANON else ""
            user_id = cast[role].id if role != ANON else None
            for (method, path), expect in PAGE_CASES.items():
                before = denied_count(user_id)
                data = {**FORM, "csrf_token": csrf} if method == "POST" else None
                response = browser.request(
                    method, path, data=data, headers={"Accept": "text/html"}, follow_redirects=False
                )
                _check(
                    problems,
                    f"{method} {path} as {role}",
                    response,
                    expect[role],
                    denied_count(user_id) - before,
                )
                if role == ANON and response.status_code == 303:
                    assert response.headers["location"].startswith("/login"), response.headers["location"]
    assert not problems, "\n".join(problems)
