"""The activities permission matrix: every ``/api/v1/activities`` route x every role -> the expected status.

The world is the ``cast`` (one person of every role; the doctor and nurse care for the cast's patient) and
``other``, a patient nobody in the hospital cares for, who has logged activities too. Only the patient
writes (others 403); the patient and their care team read (``patient_id=`` for clinicians); everyone else
is told the patient does not exist (404), and no response names the other patient. Every route the router
serves must be in the table (``test_matrix_covers_every_activities_route``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from caresync.engagement.models import ActivityLog
from caresync.identity.rules import format_health_id
from tests.conftest import ROLES, Cast, login
from tests.identity.test_permission_matrix import api_routes

ANON = "anonymous"
ALL = (*ROLES, ANON)
PREFIX = "/api/v1/activities"
READERS = ("patient", "doctor", "nurse")


def expect(default: int, **roles: int) -> dict[str, int]:
    """``default`` for every signed-in role unless named, 401 anonymously."""
    return {**dict.fromkeys(ROLES, default), **roles, ANON: 401}


OWN_READ = expect(403, patient=200, doctor=422, nurse=422)  # clinicians must name the patient
PATIENT_READ = expect(404, patient=200, doctor=200, nurse=200)
NOBODY = expect(404)


@dataclass
class World:
    """What the requests refer to."""

    cast: Cast
    calls: int = 0

    def entry(self, patient_id: uuid.UUID) -> str:
        """A fresh entry logged today by ``patient_id`` (a custom activity with a unique name)."""
        self.calls += 1
        with transaction(session_factory()) as s:
            entry = ActivityLog(
                patient_id=patient_id,
                activity="custom",
                name=f"Matrix {self.calls}",
                day=utcnow().date(),  # the factory's patients live in UTC
                amount="",
            )
            s.add(entry)
            s.flush()
            return str(entry.id)


@dataclass
class Case:
    """How to call one route and what each role gets."""

    method: str
    path: str
    expect: dict[str, int]
    params: Callable[[World], dict[str, str]] | None = None
    target: Callable[[World], dict[str, str]] | None = None
    body: dict[str, Any] | None = None


def _patient(world: World) -> dict[str, str]:
    return {"patient_id": str(world.cast["patient"].patient_id)}


def _other(world: World) -> dict[str, str]:
    return {"patient_id": str(world.cast.other_patient.id)}


CASES = {
    "log": Case("POST", PREFIX, expect(403, patient=201), body={"activity": "water", "amount": "2 l"}),
    "list-own": Case("GET", PREFIX, OWN_READ),
    "list-patient": Case("GET", PREFIX, PATIENT_READ, params=_patient),
    "list-other": Case("GET", PREFIX, NOBODY, params=_other),
    "streaks-own": Case("GET", f"{PREFIX}/streaks", OWN_READ),
    "streaks-patient": Case("GET", f"{PREFIX}/streaks", PATIENT_READ, params=_patient),
    "streaks-other": Case("GET", f"{PREFIX}/streaks", NOBODY, params=_other),
    "badges-own": Case("GET", f"{PREFIX}/badges", OWN_READ),
    "badges-patient": Case("GET", f"{PREFIX}/badges", PATIENT_READ, params=_patient),
    "badges-other": Case("GET", f"{PREFIX}/badges", NOBODY, params=_other),
    "undo-own": Case(
        "DELETE",
        f"{PREFIX}/{{log_id}}",
        expect(403, patient=204),
        target=lambda w: {"log_id": w.entry(w.cast["patient"].patient_id)},
    ),
    "undo-other": Case(
        "DELETE",
        f"{PREFIX}/{{log_id}}",
        expect(403, patient=404),
        target=lambda w: {"log_id": w.entry(w.cast.other_patient.id)},
    ),
    "undo-missing": Case(
        "DELETE",
        f"{PREFIX}/{{log_id}}",
        expect(403, patient=404),
        target=lambda _w: {"log_id": str(uuid.uuid4())},
    ),
}


def test_matrix_covers_every_activities_route(app: Any) -> None:
    served = api_routes(app, prefix=PREFIX, excluding=())
    covered = {(case.method, case.path) for case in CASES.values()}
    assert not served - covered, f"add these routes to the activities matrix: {sorted(served - covered)}"
    assert not covered - served, (
        f"these matrix rows name routes that no longer exist: {sorted(covered - served)}"
    )


def _denials(actor_id: uuid.UUID) -> int:
    with transaction(session_factory()) as s:
        rows = s.execute(
            select(AuditEntry.seq).where(AuditEntry.actor_id == actor_id, AuditEntry.outcome == "denied")
        )
        return len(rows.all())


@pytest.fixture
def world(cast: Cast) -> World:
    made = World(cast=cast)
    made.entry(cast["patient"].patient_id)
    made.entry(cast.other_patient.id)
    return made


@pytest.mark.parametrize("case_id", list(CASES))
def test_activities_permission_matrix(client: TestClient, world: World, case_id: str) -> None:
    case = CASES[case_id]
    cast = world.cast
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    other = cast.other_patient
    secrets_of_other = (other.family_name, other.health_id, format_health_id(other.health_id))
    problems: list[str] = []
    for role in ALL:
        url = case.path.format(**case.target(world)) if case.target else case.path
        params = case.params(world) if case.params else None
        denied_before = _denials(cast[role].id) if role != ANON else 0
        response = client.request(case.method, url, params=params, headers=tokens[role], json=case.body)
        where = f"{case.method} {case.path} ({case_id}) as {role}"
        wanted = case.expect[role]
        if response.status_code != wanted:
            problems.append(f"{where}: expected {wanted}, got {response.status_code} {response.text[:200]}")
        if [s for s in secrets_of_other if s in response.text]:
            problems.append(f"{where}: leaks the other patient's identity")
        if response.status_code >= 400 and not response.headers["content-type"].startswith(
            "application/problem+json"
        ):
            problems.append(f"{where}: error is not problem+json")
        if response.status_code in (403, 404) and _denials(cast[role].id) != denied_before + 1:
            problems.append(f"{where}: the denial was not audited")
    assert not problems, "\n".join(problems)
