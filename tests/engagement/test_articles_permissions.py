"""The articles permission matrix: every ``/api/v1/articles`` route x every role -> the expected status.

The world: the cast's hospital; the cast's doctor writes the articles. Routes that change an article get a
fresh one per call (a draft, or a published article for ``archive``), so every role meets the same
situation. Rules: readers (everyone but blood-bank staff) read and get a feed; writers (admin, doctor,
nurse, pharmacist) write; only the author or an administrator of the author's organisation edits,
publishes or archives (other writers: 404 for a draft they cannot see, 403 for a published article);
anonymous callers get 401. Every refusal is problem+json, and refused writes leave a ``denied`` audit entry
by the caller. ``test_matrix_covers_every_article_route`` keeps the table complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from tests.conftest import ROLES, Cast, login
from tests.engagement.test_articles import article_body, write
from tests.identity.test_permission_matrix import api_routes

ANON = "anonymous"
ALL = (*ROLES, ANON)
READERS = ("admin", "doctor", "nurse", "pharmacist", "patient", "donor")
WRITERS = ("admin", "doctor", "nurse", "pharmacist")
EDITORS = ("admin", "doctor")  # the author and their organisation's administrator


def expect(code: int, roles: tuple[str, ...], others: int = 403, **special: int) -> dict[str, int]:
    """``code`` for ``roles``, ``others`` for the remaining signed-in roles (``special`` overrides), 401
    anonymously."""
    return {**dict.fromkeys(ROLES, others), **dict.fromkeys(roles, code), **special, ANON: 401}


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    target: Callable[[Any], dict[str, str]] | None = None  # path parameters, fresh per call
    body: dict[str, Any] | None = None
    audited: bool = False  # a 403/404 leaves a 'denied' audit entry by the caller


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/articles"): Case(expect(200, READERS)),
    ("POST", "/api/v1/articles"): Case(expect(201, WRITERS), body=article_body(), audited=True),
    ("GET", "/api/v1/articles/feed"): Case(expect(200, READERS)),
    ("GET", "/api/v1/articles/{slug}"): Case(
        expect(200, READERS), target=lambda w: {"slug": w.published()["slug"]}
    ),
    ("PATCH", "/api/v1/articles/{article_id}"): Case(
        expect(200, EDITORS, nurse=404, pharmacist=404),
        target=lambda w: {"article_id": w.draft()["id"]},
        body={"summary": "Changed."},
        audited=True,
    ),
    ("POST", "/api/v1/articles/{article_id}/publish"): Case(
        expect(200, EDITORS, nurse=404, pharmacist=404),
        target=lambda w: {"article_id": w.draft()["id"]},
        audited=True,
    ),
    ("POST", "/api/v1/articles/{article_id}/archive"): Case(
        expect(200, EDITORS), target=lambda w: {"article_id": w.published()["id"]}, audited=True
    ),
}


@dataclass
class World:
    """Makes fresh articles by the cast's doctor."""

    client: TestClient
    author: dict[str, str]

    def draft(self) -> dict[str, Any]:
        return write(self.client, self.author, publish=False)

    def published(self) -> dict[str, Any]:
        return write(self.client, self.author)


def test_matrix_covers_every_article_route(app: Any) -> None:
    served = api_routes(app, prefix="/api/v1/articles", excluding=())
    missing = sorted(served - set(CASES))
    stale = sorted(set(CASES) - served)
    assert not missing, f"add these routes to the articles permission matrix: {missing}"
    assert not stale, f"these matrix rows name routes that no longer exist: {stale}"


def _denials(tx: Any, actor_id: Any) -> int:
    with tx() as s:
        query = select(func.count()).where(AuditEntry.actor_id == actor_id, AuditEntry.outcome == "denied")
        return int(s.execute(query).scalar_one())


@pytest.mark.parametrize("route", list(CASES), ids=[f"{m} {p}" for m, p in CASES])
def test_article_permission_matrix(client: TestClient, cast: Cast, tx: Any, route: tuple[str, str]) -> None:
    method, path = route
    case = CASES[route]
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    world = World(client, tokens["doctor"])
    problems: list[str] = []
    for role in ALL:
        url = path.format(**case.target(world)) if case.target else path
        body = {**case.body, "title": f"{case.body.get('title', 'x')} {role}"} if case.body else None
        before = _denials(tx, cast[role].id) if role != ANON else 0
        response = client.request(method, url, headers=tokens[role], json=body)
        where = f"{method} {path} as {role}"
        if response.status_code != case.expect[role]:
            problems.append(
                f"{where}: expected {case.expect[role]}, got {response.status_code} {response.text[:200]}"
            )
        if response.status_code >= 400 and not response.headers["content-type"].startswith(
            "application/problem+json"
        ):
            problems.append(f"{where}: error is not problem+json")
        if case.audited and response.status_code in (403, 404) and _denials(tx, cast[role].id) != before + 1:
            problems.append(f"{where}: the refusal was not audited")
    assert not problems, "\n".join(problems)
