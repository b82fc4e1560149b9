"""The scheduling permission matrix: every ``/api/v1/scheduling`` route x every role -> the expected status.

The world: one hospital (the ``cast``: one person of every role; the doctor and nurse care for the cast's
patient), the doctor has a directory profile and weekly hours, and the cast's patient has appointments
with them. A second patient (``other``), cared for by nobody in the hospital, has an appointment with a
doctor of another hospital: no role of the cast may see it (404, with the same body as a missing id), and no
response may contain that patient's name or Health ID.

Routes that change state get a fresh object per call (``Case.target`` builds it), so every role meets the
same situation. Together with the calendar and queue tables (``tests/scheduling/test_calendar.py``,
``test_queue.py``), the table must name every route the app serves under ``/api/v1/scheduling``
(``test_matrix_covers_every_scheduling_route``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import ROLES, Cast, login
from tests.identity.test_permission_matrix import api_routes
from tests.scheduling.test_booking import MONDAY, at, iso

from caresync.identity.rules import format_health_id

ANON = "anonymous"
ALL = (*ROLES, ANON)
PREFIX = "/api/v1/scheduling/"


def everyone(code: int) -> dict[str, int]:
    """``code`` for every signed-in role, 401 anonymously."""
    return {**dict.fromkeys(ROLES, code), ANON: 401}


def only(code: int, roles: tuple[str, ...], others: int = 403) -> dict[str, int]:
    """``code`` for ``roles``, ``others`` for the remaining signed-in roles, 401 anonymously."""
    return {**dict.fromkeys(ROLES, others), **dict.fromkeys(roles, code), ANON: 401}


@dataclass
class World:
    """What the requests refer to, and factories for fresh objects."""

    cast: Cast
    sched: Any
    doctor: Any
    location: Any
    other_appointment: uuid.UUID
    slots_used: int = 0
    appointments_made: int = 0
    made: dict[str, Any] = field(default_factory=dict)

    def next_slot(self) -> str:
        """A free slot not used by an earlier call: weekdays of the next four weeks, 09:00-16:30."""
        self.slots_used += 1
        day, n = divmod(self.slots_used, 16)
        week, weekday = divmod(day, 5)
        return iso(at(MONDAY + timedelta(weeks=week, days=weekday), 9) + timedelta(minutes=30 * n))

    def appointment(self, status: str = "booked") -> str:
        """A fresh appointment of the cast's patient with the cast's doctor, from six weeks ahead on (apart
        from the slots :meth:`next_slot` hands out)."""
        self.appointments_made += 1
        day, n = divmod(self.appointments_made, 16)
        week, weekday = divmod(day, 5)
        start = at(MONDAY + timedelta(weeks=6 + week, days=weekday), 9) + timedelta(minutes=30 * n)
        patient = self.cast["patient"]
        return str(
            self.sched.appointment(self.doctor, patient, start, status=status, location=self.location).id
        )


@dataclass
class Case:
    """How to call one route and what each role should get."""

    expect: dict[str, int]
    target: Callable[[World], dict[str, str]] | None = None  # path parameters (fresh per call)
    body: Callable[[World, str], Any] | None = None
    other_expect: dict[str, int] | None = None  # also call it on the other patient's appointment


def _own_patient(world: World, role: str) -> str | None:
    return None if role == "patient" else str(world.cast["patient"].patient_id)


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/scheduling/vocabularies"): Case(everyone(200)),
    ("GET", "/api/v1/scheduling/practitioners"): Case(everyone(200)),
    ("GET", "/api/v1/scheduling/practitioners/{practitioner_id}"): Case(
        everyone(200), target=lambda w: {"practitioner_id": str(w.doctor.id)}
    ),
    ("GET", "/api/v1/scheduling/practitioners/{practitioner_id}/slots"): Case(
        everyone(200), target=lambda w: {"practitioner_id": str(w.doctor.id)}
    ),
    ("POST", "/api/v1/scheduling/appointments"): Case(
        # staff book for a patient they care for; the admin, donor and others may not book at all
        only(201, ("patient", "doctor", "nurse")),
        body=lambda w, role: {
            "practitioner_id": str(w.doctor.id),
            "start": w.next_slot(),
            "patient_id": _own_patient(w, role),
        },
    ),
    ("GET", "/api/v1/scheduling/appointments"): Case(only(200, ("patient", "doctor", "nurse"))),
    ("GET", "/api/v1/scheduling/appointments/{appointment_id}"): Case(
        only(200, ("patient", "doctor", "nurse"), others=404),
        target=lambda w: {"appointment_id": w.appointment()},
        other_expect=only(404, (), others=404),
    ),
    ("POST", "/api/v1/scheduling/appointments/{appointment_id}/reschedule"): Case(
        only(200, ("patient", "doctor", "nurse"), others=404),
        target=lambda w: {"appointment_id": w.appointment()},
        body=lambda w, _role: {"start": w.next_slot()},
        other_expect=only(404, (), others=404),
    ),
    ("POST", "/api/v1/scheduling/appointments/{appointment_id}/cancel"): Case(
        only(200, ("patient", "doctor", "nurse"), others=404),
        target=lambda w: {"appointment_id": w.appointment()},
        body=lambda _w, _role: {"reason": "matrix"},
        other_expect=only(404, (), others=404),
    ),
    ("POST", "/api/v1/scheduling/appointments/{appointment_id}/accept"): Case(
        only(200, ("patient", "doctor", "nurse"), others=404),
        target=lambda w: {"appointment_id": w.appointment("proposed")},
        other_expect=only(404, (), others=404),
    ),
    ("POST", "/api/v1/scheduling/appointments/{appointment_id}/{step}"): Case(
        # visit steps are for staff: a patient is refused by role (403), others without access get 404
        {**only(200, ("doctor", "nurse"), others=403)},
        target=lambda w: {"appointment_id": w.appointment(), "step": "arrive"},
    ),
    ("PUT", "/api/v1/scheduling/practitioners/{practitioner_id}/schedule"): Case(
        only(200, ("admin",)),
        target=lambda w: {"practitioner_id": str(w.doctor.id)},
        body=lambda w, _role: {
            "blocks": [
                {
                    "location_id": str(w.location.id),
                    "weekday": d,
                    "start": "09:00",
                    "end": "17:00",
                    "slot_minutes": 30,
                }
                for d in range(5)
            ]
        },
    ),
    ("POST", "/api/v1/scheduling/practitioners/{practitioner_id}/time-off"): Case(
        only(201, ("admin", "doctor")),  # the doctor is this practitioner: their own leave
        target=lambda w: {"practitioner_id": str(w.doctor.id)},
        body=lambda _w, _role: {
            "starts_at": iso(at(MONDAY + timedelta(weeks=8), 0)),
            "ends_at": iso(at(MONDAY + timedelta(weeks=8, days=1), 0)),
        },
    ),
    ("DELETE", "/api/v1/scheduling/time-off/{time_off_id}"): Case(
        only(204, ("admin", "doctor")),
        target=lambda w: {
            "time_off_id": str(
                w.sched.time_off(
                    w.doctor, at(MONDAY + timedelta(weeks=9), 0), at(MONDAY + timedelta(weeks=9, days=1), 0)
                ).id
            )
        },
    ),
    ("POST", "/api/v1/scheduling/waitlist"): Case(
        only(201, ("patient", "doctor", "nurse")),
        body=lambda w, role: {
            "practitioner_id": str(w.doctor.id),
            "earliest": str(MONDAY),
            "latest": str(MONDAY + timedelta(days=30)),
            "patient_id": _own_patient(w, role),
        },
    ),
    ("GET", "/api/v1/scheduling/waitlist"): Case(only(200, ("patient",))),
    ("GET", "/api/v1/scheduling/stats/missed"): Case(only(200, ("admin", "doctor", "nurse"))),
    ("GET", "/api/v1/scheduling/policy"): Case(only(200, ("admin", "doctor", "nurse"))),
    ("PUT", "/api/v1/scheduling/policy"): Case(
        only(200, ("admin",)), body=lambda _w, _role: {"cancel_notice_hours": 24, "reminder_hours": [24, 2]}
    ),
    ("DELETE", "/api/v1/scheduling/waitlist/{entry_id}"): Case(
        only(204, ("patient", "doctor", "nurse"), others=404),
        target=lambda w: {"entry_id": w.made["waitlist"](w)},
    ),
}


def scheduling_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every API route under /api/v1/scheduling."""
    return api_routes(app, prefix=PREFIX, excluding=())


def test_matrix_covers_every_scheduling_route(app: Any) -> None:
    """Every route is in this matrix or in the matrix of its sub-area (calendar feeds, clinic queue), each
    of which runs its own table."""
    from tests.scheduling.test_calendar import CALENDAR_ROUTES
    from tests.scheduling.test_queue import QUEUE_ROUTES

    queue = {  # its paths are relative, with shorter parameter names
        (method, f"{PREFIX}queue{path}".replace("{loc}", "{location_id}").replace("{entry}", "{entry_id}"))
        for method, path in QUEUE_ROUTES
    }
    api_feeds = {route for route in CALENDAR_ROUTES if route[1].startswith(PREFIX)}  # not the public feed URL
    covered = set(CASES) | api_feeds | queue
    served = scheduling_routes(app)
    missing = sorted(served - covered)
    stale = sorted(covered - served)
    assert not missing, f"add these routes to the scheduling permission matrix: {missing}"
    assert not stale, f"these matrix rows name routes that no longer exist: {stale}"


def test_scheduling_permission_matrix(client: TestClient, cast: Cast, sched: Any, make: Any) -> None:
    location = sched.location(cast.org)
    doctor = sched.practitioner(person=cast["doctor"])
    sched.hours(doctor, location, weekdays=(0, 1, 2, 3, 4), breaks=())
    other_org = make.org()
    elsewhere = sched.location(other_org)
    stranger_doctor = sched.practitioner(org=other_org)
    sched.hours(stranger_doctor, elsewhere)
    other = sched.appointment(stranger_doctor, cast.other_patient, at(MONDAY, 9), location=elsewhere)
    world = World(cast=cast, sched=sched, doctor=doctor, location=location, other_appointment=other.id)

    def waitlist_entry(w: World) -> str:
        from caresync.db import session_factory, transaction, utcnow
        from caresync.scheduling.models import WaitlistEntry

        with transaction(session_factory()) as s:
            entry = WaitlistEntry(
                patient_id=w.cast["patient"].patient_id,
                practitioner_id=w.doctor.id,
                earliest=MONDAY,
                latest=MONDAY + timedelta(days=7),
                created_at=utcnow(),
            )
            s.add(entry)
            s.flush()
            return str(entry.id)

    world.made["waitlist"] = waitlist_entry
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    secrets_of_other = (
        cast.other_patient.family_name,
        format_health_id(cast.other_patient.health_id),
        cast.other_patient.health_id,
    )
    problems: list[str] = []
    for (method, path), case in CASES.items():
        for role in ALL:
            # each role undoes nothing: give each its own waitlist slot by leaving the previous entry
            if (method, path) == ("POST", "/api/v1/scheduling/waitlist") and role != ANON:
                _leave_waitlist(client, tokens["patient"])
            url = path.format(**case.target(world)) if case.target else path
            body = case.body(world, role) if case.body else None
            response = client.request(method, url, headers=tokens[role], json=body)
            where = f"{method} {path} as {role}"
            if response.status_code != case.expect[role]:
                problems.append(
                    f"{where}: expected {case.expect[role]}, got {response.status_code} {response.text[:300]}"
                )
            leaked = [s for s in secrets_of_other if s in response.text]
            if leaked:
                problems.append(f"{where}: leaks {leaked}")
            if response.status_code >= 400 and not response.headers["content-type"].startswith(
                "application/problem+json"
            ):
                problems.append(f"{where}: error is not problem+json")
            if case.other_expect is not None:
                url = path.format(
                    **{**(case.target(world) if case.target else {}), "appointment_id": str(other.id)}
                )
                response = client.request(method, url, headers=tokens[role], json=body)
                wanted = case.other_expect[role]
                if response.status_code != wanted:
                    problems.append(f"{where} (other patient): expected {wanted}, got {response.status_code}")
                if [s for s in secrets_of_other if s in response.text]:
                    problems.append(f"{where} (other patient): leaks the other patient's identity")
    assert not problems, "\n".join(problems)


def _leave_waitlist(client: TestClient, patient_headers: dict[str, str]) -> None:
    for entry in client.get("/api/v1/scheduling/waitlist", headers=patient_headers).json():
        client.delete(f"/api/v1/scheduling/waitlist/{entry['id']}", headers=patient_headers)
