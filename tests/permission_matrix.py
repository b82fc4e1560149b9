"""The permission-matrix harness shared by the domains' matrices (``tests/*/test_*_permissions.py``).

A matrix is one table per router, ``(method, path) -> Case``: what each role (and a signed-out caller)
should get, and how to build the call (fresh path parameters, JSON body, form fields, query string) from
the test's *world* (whatever rows the table refers to). :func:`check_api` and :func:`check_pages` call every
route as every role and check, on every response:

- the status is the one the table expects;
- a refusal (403/404) left a ``denied`` audit entry by the caller;
- no response contains a secret of the world (another patient's name or Health ID, another blood bank's
  donation number...);
- an API error is ``application/problem+json``; a redirect has a location, and a signed-out visitor is
  sent to the sign-in page;
- a route with ``foreign`` path parameters (an object the cast has no part in: another organisation's, a
  stranger's) is also called with them, signed in: 404 for a role that may use the route, exactly like a
  missing id (a role refused the route keeps its refusal).

:func:`assert_covered` is the "the table names every route of my routers" check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from caresync.identity.models import Patient
from caresync.identity.rules import format_health_id
from tests.conftest import ROLES, Cast, login, web_login

ANON = "anonymous"
ALL = (*ROLES, ANON)
PAGE_HEADERS = {"Accept": "text/html"}

W = TypeVar("W")
Expect = dict[str, int]
Route = tuple[str, str]


def only(code: int, *roles: str, others: int = 403, anonymous: int = 401) -> Expect:
    """``code`` for ``roles``, ``others`` for every other role, ``anonymous`` for a signed-out caller."""
    return {**dict.fromkeys(ROLES, others), **dict.fromkeys(roles, code), ANON: anonymous}


def pages(expect: Expect) -> Expect:
    """The same expectations for a page: signed-out visitors are redirected to sign in (303)."""
    return {**expect, ANON: 303}


@dataclass(frozen=True)
class Case(Generic[W]):
    """How to call one route and what each role should get. The callables take the world and are called
    once per call, so a route that changes state gets fresh rows for every role."""

    expect: Expect
    path: Callable[[W], dict[str, str]] | None = None  # path parameters
    json: Callable[[W], dict[str, Any]] | None = None
    data: Callable[[W], dict[str, str]] | None = None  # form fields (the CSRF token is added)
    files: Callable[[W], dict[str, Any]] | None = None  # multipart uploads (API)
    query: Callable[[W], dict[str, str]] | None = None
    foreign: Callable[[W], dict[str, str]] | None = None  # an object the caller has no part in


Cases = Mapping[Route, Case[W]]
Call = Callable[[str, str, str, Case[W]], Response]


def router_routes(router: APIRouter) -> set[Route]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def assert_covered(*tables: tuple[APIRouter, Mapping[Route, object]]) -> None:
    """Each table names exactly the routes of its router."""
    for router, cases in tables:
        served = router_routes(router)
        assert not served - set(cases), f"add these routes to the matrix: {sorted(served - set(cases))}"
        assert not set(cases) - served, (
            f"these rows name routes that do not exist: {sorted(set(cases) - served)}"
        )


def denied_count(user_id: uuid.UUID | None) -> int:
    """Denied audit entries by this user so far."""
    with transaction(session_factory()) as s:
        query = select(func.count()).where(AuditEntry.actor_id == user_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


def identities(*patients: Patient) -> tuple[str, ...]:
    """What would identify these patients in a response: family name, Health ID (raw and formatted)."""
    return tuple(
        text for p in patients for text in (p.family_name, p.health_id, format_health_id(p.health_id))
    )


def _problems(
    where: str, response: Response, wanted: int, *, denied: int, secrets: tuple[str, ...], signed_in: bool
) -> list[str]:
    """What is wrong with one response (``denied``: the caller's new ``denied`` audit entries)."""
    found = []
    if response.status_code != wanted:
        found.append(f"{where}: expected {wanted}, got {response.status_code} {response.text[:300]}")
    if any(secret in response.text for secret in secrets):
        found.append(f"{where}: shows a secret of another organisation or patient")
    if response.status_code in (403, 404) and denied < 1:
        found.append(f"{where}: refused without a denied audit entry")
    if response.status_code == 303:
        location = response.headers.get("location", "")
        if not location:
            found.append(f"{where}: a redirect without a location")
        elif not signed_in and not location.startswith("/login"):
            found.append(f"{where}: sends a signed-out visitor to {location}, not to sign in")
    return found


def _run(cast: Cast, world: W, cases: Cases[W], call: Call[W], secrets: tuple[str, ...]) -> list[str]:
    """Call every case as every role (and on the foreign object, signed in) and collect the problems."""
    problems: list[str] = []
    for (method, path), case in cases.items():
        for role in ALL:
            user_id = cast[role].id if role != ANON else None
            targets = [(case.path, case.expect[role], "")]
            if case.foreign and role != ANON:
                wanted = case.expect[role] if case.expect[role] >= 400 else 404
                targets.append((case.foreign, wanted, " (someone else's)"))
            for params, wanted, note in targets:
                before = denied_count(user_id)
                response = call(role, method, path.format(**params(world)) if params else path, case)
                denied = denied_count(user_id) - before
                where = f"{method} {path}{note} as {role}"
                problems += _problems(
                    where, response, wanted, denied=denied, secrets=secrets, signed_in=role != ANON
                )
    return problems


def check_api(
    client: TestClient, cast: Cast, world: W, cases: Cases[W], *, secrets: tuple[str, ...] = ()
) -> None:
    """Call every API route of ``cases`` as every role with bearer tokens; fail listing every problem."""
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES} | {ANON: {}}
    problems: list[str] = []

    def call(role: str, method: str, url: str, case: Case[W]) -> Response:
        response = client.request(
            method,
            url,
            headers=tokens[role],
            json=case.json(world) if case.json else None,
            params=case.query(world) if case.query else None,
            files=case.files(world) if case.files else None,
        )
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 400 and not content_type.startswith("application/problem+json"):
            problems.append(f"{method} {url} as {role}: an error that is not problem+json ({content_type})")
        return response

    problems += _run(cast, world, cases, call, secrets)
    assert not problems, "\n".join(problems)


@contextmanager
def _browsers(app: Any, cast: Cast) -> Iterator[dict[str, tuple[TestClient, str]]]:
    """A browser (cookie jar) per role, signed in through the login pages, with its CSRF token."""
    with ExitStack() as stack:
        sessions = {}
        for role in ALL:
            browser = TestClient(app)
            stack.callback(browser.close)
            sessions[role] = (browser, web_login(browser, cast[role]) if role != ANON else "")
        yield sessions


def check_pages(app: Any, cast: Cast, world: W, cases: Cases[W], *, secrets: tuple[str, ...] = ()) -> None:
    """Call every page route of ``cases`` as every role, signed in through the login pages (forms carry
    the CSRF token); fail listing every problem."""
    with _browsers(app, cast) as sessions:

        def call(role: str, method: str, url: str, case: Case[W]) -> Response:
            browser, csrf = sessions[role]
            return browser.request(
                method,
                url,
                data={**case.data(world), "csrf_token": csrf} if case.data else None,
                params=case.query(world) if case.query else None,
                headers=PAGE_HEADERS,
                follow_redirects=False,
            )

        problems = _run(cast, world, cases, call, secrets)
    assert not problems, "\n".join(problems)
