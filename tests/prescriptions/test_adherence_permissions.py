"""The adherence permission matrix: every route of ``prescriptions.adherence.api`` x every role -> the
expected status, on the cast's patient (cared for by the cast's doctor and nurse) and on a patient nobody in
the hospital cares for (404 for everyone, with nothing of that patient in the body).

Rules: the patient reads and marks their own doses, reads their adherence and switches their reminders;
their doctor and nurse read the schedule and adherence (never mark or switch for them: 403); roles without
access to patients get 404 on patient data; the low-adherence list is for doctors and nurses (403 for other
roles); anonymous callers get 401 everywhere. ``test_matrix_covers_every_route`` fails when a route is
added to the router without a row here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from caresync.db import utcnow
from caresync.identity.rules import format_health_id
from caresync.prescriptions.adherence.api import router
from caresync.prescriptions.models import Prescription
from tests.conftest import ROLES, Cast, login
from tests.prescriptions.conftest import PrescriptionFactory

ANON = "anonymous"
ALL = (*ROLES, ANON)
CARERS = ("doctor", "nurse")


def expect(ok: int, carers: int, others: int) -> dict[str, int]:
    """``ok`` for the patient, ``carers`` for their doctor and nurse, ``others`` for the remaining roles,
    401 anonymously."""
    return {**dict.fromkeys(ROLES, others), **dict.fromkeys(CARERS, carers), "patient": ok, ANON: 401}


@dataclass
class World:
    """The cast and a prescription of each patient."""

    cast: Cast
    own: Prescription
    other: Prescription


@dataclass
class Case:
    """How to call one route, and what each role gets on the cast's patient and on the other patient."""

    expect: dict[str, int]
    path: Callable[[Prescription], dict[str, str]] = lambda _p: {}
    params: Callable[[Prescription], dict[str, str]] | None = None
    body: Callable[[Prescription], Any] | None = None
    other: dict[str, int] | None = None  # the same call about the other patient


def _dose(p: Prescription) -> dict[str, str]:
    yesterday = utcnow().date() - timedelta(days=1)
    at = datetime.combine(yesterday, time(8), tzinfo=UTC)
    return {"prescription_id": str(p.id), "scheduled_at": at.isoformat(), "status": "taken"}


NOBODY = {**dict.fromkeys(ROLES, 404), ANON: 401}
CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/prescriptions/doses"): Case(
        expect(200, 200, 404), params=lambda p: {"patient_id": str(p.patient_id)}, other=NOBODY
    ),
    ("PUT", "/api/v1/prescriptions/doses"): Case(expect(200, 403, 404), body=_dose, other=NOBODY),
    ("GET", "/api/v1/prescriptions/adherence"): Case(
        expect(200, 200, 404), params=lambda p: {"patient_id": str(p.patient_id)}, other=NOBODY
    ),
    ("GET", "/api/v1/prescriptions/adherence/flags"): Case(expect(403, 200, 403)),
    ("PUT", "/api/v1/prescriptions/{prescription_id}/reminders"): Case(
        expect(200, 403, 404),
        path=lambda p: {"prescription_id": str(p.id)},
        body=lambda _p: {"enabled": True},
        other=NOBODY,
    ),
}


def test_matrix_covers_every_route() -> None:
    served = {
        (method, route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert served == set(CASES), {
        "missing": sorted(served - set(CASES)),
        "stale": sorted(set(CASES) - served),
    }


def test_adherence_permission_matrix(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    start = utcnow().date() - timedelta(days=10)
    world = World(
        cast=cast,
        own=prescription_factory(cast["doctor"], cast["patient"], start_date=start, duration_days=30),
        other=prescription_factory(cast["doctor"], cast.other_patient, start_date=start, duration_days=30),
    )
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    secrets_of_other = (
        cast.other_patient.family_name,
        cast.other_patient.health_id,
        format_health_id(cast.other_patient.health_id),
    )
    problems: list[str] = []
    for (method, path), case in CASES.items():
        targets = [(world.own, case.expect)] + ([(world.other, case.other)] if case.other else [])
        for prescription, expected in targets:
            which = "own" if prescription is world.own else "other"
            for role in ALL:
                url = path.format(**case.path(prescription))
                params = case.params(prescription) if case.params else None
                if params and role == "patient" and which == "own":
                    params = {}  # the patient asks about themself without naming anyone
                body = case.body(prescription) if case.body else None
                response = client.request(method, url, headers=tokens[role], params=params, json=body)
                where = f"{method} {path} ({which}) as {role}"
                got = f"{response.status_code} {response.text[:200]}"
                if response.status_code != expected[role]:
                    problems.append(f"{where}: expected {expected[role]}, got {got}")
                if response.status_code >= 400 and not response.headers["content-type"].startswith(
                    "application/problem+json"
                ):
                    problems.append(f"{where}: error is not problem+json")
                leaked = [s for s in secrets_of_other if s in response.text]
                if leaked:
                    problems.append(f"{where}: leaks {leaked}")
    assert not problems, "\n".join(problems)


def test_a_patient_naming_themself_is_the_same_as_omitting_it(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    prescription_factory(cast["doctor"], cast["patient"])
    headers = login(client, cast["patient"].email, cast["patient"].password)
    url = "/api/v1/prescriptions/doses"
    named = client.get(url, params={"patient_id": str(cast["patient"].patient_id)}, headers=headers)
    assert named.status_code == 200
    assert named.json() == client.get(url, headers=headers).json()
