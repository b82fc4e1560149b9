"""The clinic queue end to end over the API (and its pages): joining, triage, call order, calling, seeing,
escalation, the patient's own place, settings, audit entries, the permission matrix and the board's
WebSocket."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect
from tests.conftest import API, ROLES, Cast, Factory, Person, web_login
from tests.core.test_realtime import _receive_json, _wait_subscribed
from tests.scheduling.conftest import SchedulingFactory

from caresync.core import realtime
from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import CareRelationship, Patient
from caresync.identity.rules import format_health_id
from caresync.scheduling.models import ClinicSettings, Location, QueueEntry
from caresync.scheduling.queue import jobs, service
from caresync.scheduling.rules import AppointmentStatus, QueueStatus

Q = f"{API}/scheduling/queue"
ANON = "anonymous"
ALL_ROLES = (*ROLES, ANON)

# Every route of the clinic queue -> the status each role gets (staff of the location's organisation;
# staff of another organisation get 404 for location- and entry-scoped routes, see
# test_other_organisation_sees_nothing). ``{loc}`` is a location and ``{entry}`` a queue entry in the state
# the route needs (waiting; called for start/finish).
QUEUE_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/locations"): {**dict.fromkeys(ALL_ROLES, 403), "doctor": 200, "nurse": 200, ANON: 401},
    ("GET", "/settings"): {
        **dict.fromkeys(ALL_ROLES, 403),
        "doctor": 200,
        "nurse": 200,
        "admin": 200,
        ANON: 401,
    },
    ("PUT", "/settings"): {**dict.fromkeys(ALL_ROLES, 403), "admin": 200, ANON: 401},
    ("GET", "/me"): {**dict.fromkeys(ALL_ROLES, 403), "patient": 200, ANON: 401},
    ("GET", "/{loc}"): {**dict.fromkeys(ALL_ROLES, 403), "doctor": 200, "nurse": 200, ANON: 401},
    ("GET", "/{loc}/board"): {
        **dict.fromkeys(ALL_ROLES, 200),
        "patient": 403,
        "donor": 403,
        ANON: 401,
    },
    ("POST", "/{loc}/entries"): {**dict.fromkeys(ALL_ROLES, 403), "doctor": 201, "nurse": 201, ANON: 401},
    ("POST", "/{loc}/call-next"): {**dict.fromkeys(ALL_ROLES, 403), "doctor": 200, "nurse": 200, ANON: 401},
    ("POST", "/entries/{entry}/triage"): {
        **dict.fromkeys(ALL_ROLES, 403),
        "doctor": 200,
        "nurse": 200,
        ANON: 401,
    },
    ("POST", "/entries/{entry}/start"): {
        **dict.fromkeys(ALL_ROLES, 403),
        "doctor": 200,
        "nurse": 200,
        ANON: 401,
    },
    ("POST", "/entries/{entry}/finish"): {
        **dict.fromkeys(ALL_ROLES, 403),
        "doctor": 200,
        "nurse": 200,
        ANON: 401,
    },
    ("POST", "/entries/{entry}/left"): {
        **dict.fromkeys(ALL_ROLES, 403),
        "doctor": 200,
        "nurse": 200,
        ANON: 401,
    },
}
# The board's WebSocket /ws/queue/{loc}: staff of the organisation connect; patients and donors are closed
# with 4403, anonymous callers with 4401 (test_board_socket_refuses_*).


# --- helpers ------------------------------------------------------------------------------------------------


@dataclass
class Clinic:
    """A location of the cast's hospital, with signed-in headers per role."""

    cast: Cast
    location: Location
    headers: dict[str, dict[str, str]]

    @property
    def url(self) -> str:
        return f"{Q}/{self.location.id}"


@pytest.fixture
def clinic(cast: Cast, sched: SchedulingFactory, sign_in: Callable[[Person], dict[str, str]]) -> Clinic:
    location = sched.location(cast.org, name="Riverside walk-in clinic")
    headers = {role: sign_in(cast[role]) for role in ("nurse", "doctor", "patient", "admin")}
    return Clinic(cast=cast, location=location, headers=headers)


def health_id(patient: Patient | Person) -> str:
    row = patient.patient if isinstance(patient, Person) else patient
    assert row is not None
    return format_health_id(row.health_id)


def join(
    client: TestClient, clinic: Clinic, patient: Patient | Person, complaint: str = ""
) -> dict[str, Any]:
    response = client.post(
        f"{clinic.url}/entries",
        json={"health_id": health_id(patient), "complaint": complaint},
        headers=clinic.headers["nurse"],
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def triage(client: TestClient, clinic: Clinic, entry_id: str, level: int, role: str = "nurse") -> Any:
    return client.post(f"{Q}/entries/{entry_id}/triage", json={"level": level}, headers=clinic.headers[role])


def read(client: TestClient, clinic: Clinic, role: str = "nurse") -> dict[str, Any]:
    response = client.get(clinic.url, headers=clinic.headers[role])
    assert response.status_code == 200, response.text
    return dict(response.json())


def tickets(queue: dict[str, Any]) -> list[str]:
    return [item["ticket"] for item in queue["waiting"]]


def set_entry(entry_id: str | uuid.UUID, **fields: Any) -> None:
    """Change a queue entry directly (to move its arrival into the past, for instance)."""
    with transaction(session_factory()) as s:
        entry = s.get(QueueEntry, uuid.UUID(str(entry_id)))
        assert entry is not None
        for key, value in fields.items():
            setattr(entry, key, value)


def audit_entries(action: str) -> list[AuditEntry]:
    with transaction(session_factory()) as s:
        rows = s.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq))
        return list(rows.scalars())


def raw_entry(location: Location, patient: Patient, status: str = "waiting", **fields: Any) -> QueueEntry:
    """A queue entry row written directly (no rules applied), for arranging a scenario."""
    now = utcnow()
    with transaction(session_factory()) as s:
        entry = QueueEntry(
            organisation_id=location.organisation_id,
            location_id=location.id,
            patient_id=patient.id,
            ticket=fields.pop("ticket", f"T{uuid.uuid4().hex[:3]}"),
            arrived_at=fields.pop("arrived_at", now),
            status=status,
            **fields,
        )
        s.add(entry)
        s.flush()
        s.expunge(entry)
    return entry


# --- the permission matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", list(QUEUE_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_permission_matrix(
    route: tuple[str, str],
    client: TestClient,
    cast: Cast,
    make: Factory,
    sched: SchedulingFactory,
    sign_in: Callable[[Person], dict[str, str]],
) -> None:
    method, template = route
    location = sched.location(cast.org)
    for role in ALL_ROLES:
        headers = {} if role == ANON else sign_in(cast[role])
        patient = make.patient()
        status = "called" if template.endswith(("/start", "/finish")) else "waiting"
        entry = raw_entry(location, patient, status, called_at=utcnow() if status == "called" else None)
        path = template.format(loc=location.id, entry=entry.id)
        body: dict[str, Any] | None = None
        if template.endswith("/entries"):
            body = {"health_id": health_id(make.patient()), "complaint": "cough"}
        elif template.endswith("/call-next"):
            body = {"room": "Room 1"}
        elif template.endswith("/triage"):
            body = {"level": 3}
        elif method == "PUT":
            body = {"scale": "esi"}
        response = client.request(method, f"{Q}{path}", json=body, headers=headers)
        expected = QUEUE_ROUTES[route][role]
        assert response.status_code == expected, (role, response.text)
        if expected >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert patient.family_name not in response.text


def test_matrix_names_every_queue_route(app: Any) -> None:
    served = {
        (
            method,
            context.path.removeprefix(Q).replace("{location_id}", "{loc}").replace("{entry_id}", "{entry}"),
        )
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path.startswith(Q)
        for method in context.methods or ()
    }
    assert served == set(QUEUE_ROUTES)


def test_other_organisation_sees_nothing(
    client: TestClient,
    clinic: Clinic,
    make: Factory,
    sign_in: Callable[[Person], dict[str, str]],
) -> None:
    entry = join(client, clinic, clinic.cast["patient"], "chest pain")
    other_org = make.org("Elsewhere Clinic", kind="clinic")
    outsider = make.staff("nurse", other_org)
    headers = sign_in(outsider)
    calls = [
        ("GET", clinic.url, None),
        ("GET", f"{clinic.url}/board", None),
        ("POST", f"{clinic.url}/entries", {"health_id": health_id(clinic.cast.other_patient)}),
        ("POST", f"{clinic.url}/call-next", {"room": "Room 9"}),
        ("POST", f"{Q}/entries/{entry['id']}/triage", {"level": 1}),
        ("POST", f"{Q}/entries/{entry['id']}/left", None),
    ]
    missing_location = client.get(f"{Q}/{uuid.uuid4()}", headers=headers)
    for method, url, body in calls:
        response = client.request(method, url, json=body, headers=headers)
        assert response.status_code == 404, (url, response.text)
        assert clinic.cast["patient"].patient.family_name not in response.text  # type: ignore[union-attr]
        assert "chest pain" not in response.text
    assert missing_location.status_code == 404
    denied = [e for e in audit_entries("queue.triage") if e.outcome == "denied"]
    assert [e.actor_id for e in denied] == [outsider.id]
    assert read(client, clinic)["waiting"][0]["triage_level"] is None  # nothing changed


# --- joining ----------------------------------------------------------------------------------------------


def test_walk_in_joins_with_a_ticket_and_is_audited(client: TestClient, clinic: Clinic) -> None:
    patient = clinic.cast.other_patient  # nobody in the hospital cares for them yet
    entry = join(client, clinic, patient, "  Twisted ankle  ")
    assert entry["ticket"] == "W001"
    assert entry["status"] == "waiting"
    assert entry["complaint"] == "Twisted ankle"
    assert entry["triage_level"] is None
    second = join(client, clinic, clinic.cast["patient"])
    assert second["ticket"] == "W002"
    (audited, _) = audit_entries("queue.join")
    assert audited.patient_id == patient.id
    assert audited.actor_id == clinic.cast["nurse"].id
    assert audited.resource_id == entry["id"]
    # registering the walk-in is a basis for care: the nurse can now open the profile
    with transaction(session_factory()) as s:
        link = s.execute(
            select(CareRelationship).where(
                CareRelationship.patient_id == patient.id,
                CareRelationship.practitioner_id == clinic.cast["nurse"].id,
            )
        ).scalar_one()
        assert link.reason == "walk-in"
        assert link.ended_at is None
    care_audit = [e for e in audit_entries("patient.care_team_add") if e.patient_id == patient.id]
    assert len(care_audit) == 1
    profile = client.get(f"{API}/patients/{patient.id}", headers=clinic.headers["nurse"])
    assert profile.status_code == 200


def test_duplicate_join_is_refused(client: TestClient, clinic: Clinic) -> None:
    join(client, clinic, clinic.cast["patient"])
    again = client.post(
        f"{clinic.url}/entries",
        json={"health_id": health_id(clinic.cast["patient"])},
        headers=clinic.headers["doctor"],
    )
    assert again.status_code == 409
    assert again.json()["detail"] == "This patient is already in the queue at this location."
    assert len(read(client, clinic)["waiting"]) == 1


def test_a_patient_who_finished_may_join_again(client: TestClient, clinic: Clinic) -> None:
    first = join(client, clinic, clinic.cast["patient"])
    assert client.post(f"{Q}/entries/{first['id']}/left", headers=clinic.headers["nurse"]).status_code == 200
    second = join(client, clinic, clinic.cast["patient"])
    assert second["id"] != first["id"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"health_id": "1234"}, 422, "That Health ID is not valid; check the digits."),
        ({"health_id": ""}, 422, "health_id: String should have at least 1 character"),
        ({}, 422, "health_id: Field required"),
        ({"health_id": "1234-5678-9012", "complaint": "x" * 301}, 422, None),
        ({"health_id": "1234-5678-9012", "colour": "red"}, 422, None),
    ],
)
def test_join_validation(
    client: TestClient, clinic: Clinic, body: dict[str, Any], status: int, detail: str | None
) -> None:
    response = client.post(f"{clinic.url}/entries", json=body, headers=clinic.headers["nurse"])
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if detail:
        assert response.json()["detail"] == detail


def test_join_with_an_unknown_health_id_is_404_and_audited(client: TestClient, clinic: Clinic) -> None:
    from caresync.identity.rules import new_health_id

    unknown = new_health_id()
    response = client.post(
        f"{clinic.url}/entries", json={"health_id": unknown}, headers=clinic.headers["nurse"]
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "No patient has this Health ID."
    (failure,) = audit_entries("queue.join")
    assert failure.outcome == "failure"


def test_join_from_appointment_is_idempotent(clinic: Clinic, sched: SchedulingFactory) -> None:
    doctor = sched.practitioner(org=clinic.cast.org)
    start = utcnow() - timedelta(minutes=5)
    appointment = sched.appointment(
        doctor,
        clinic.cast["patient"],
        start,
        location=clinic.location,
        status=AppointmentStatus.CHECKED_IN.value,
        checked_in_at=start,
        reason="Follow-up of blood pressure",
    )
    nurse = _principal(clinic.cast["nurse"])
    with transaction(session_factory()) as s:
        entry = service.join_from_appointment(s, nurse, appointment)
        entry_id, ticket = entry.id, entry.ticket
        assert entry.appointment_id == appointment.id
        assert entry.complaint == "Follow-up of blood pressure"
        assert entry.arrived_at == start
    with transaction(session_factory()) as s:
        again = service.join_from_appointment(s, nurse, appointment)
        assert again.id == entry_id
    assert ticket == "A001"


def _principal(person: Person) -> Any:
    from caresync.core.auth import Principal

    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
        patient_id=person.patient.id if person.patient else None,
    )


# --- triage and order ---------------------------------------------------------------------------------------


def test_triage_orders_the_queue(client: TestClient, clinic: Clinic, make: Factory) -> None:
    first = join(client, clinic, make.patient(), "sore throat")
    second = join(client, clinic, make.patient(), "chest pain")
    third = join(client, clinic, make.patient(), "rash")
    assert tickets(read(client, clinic)) == ["W001", "W002", "W003"]  # untriaged: arrival order
    assert triage(client, clinic, first["id"], 4).status_code == 200
    assert triage(client, clinic, third["id"], 4).status_code == 200
    response = triage(client, clinic, second["id"], 2)
    assert response.status_code == 200
    assert response.json()["triage_level"] == 2
    assert response.json()["triage_scale"] == "manchester"
    queue = read(client, clinic)
    assert tickets(queue) == ["W002", "W001", "W003"]
    assert [i["position"] for i in queue["waiting"]] == [1, 2, 3]
    assert queue["waiting"][0]["triage_label"] == "Very urgent (orange)"
    assert queue["waiting"][0]["patient_name"].startswith("Test ")
    # no history: 15 minutes per consultation, one clinician
    assert [i["estimated_wait_minutes"] for i in queue["waiting"]] == [0, 15, 30]
    # re-triage is allowed and audited with the previous level
    assert triage(client, clinic, third["id"], 1).status_code == 200
    assert tickets(read(client, clinic)) == ["W003", "W002", "W001"]
    last = audit_entries("queue.triage")[-1]
    assert json.loads(last.detail) == {"level": 1, "previous": 4, "scale": "manchester"}
    assert last.patient_id is not None


@pytest.mark.parametrize("level", [0, 6, -1, "urgent", None, 2.5])
def test_triage_level_must_be_1_to_5(client: TestClient, clinic: Clinic, level: Any) -> None:
    entry = join(client, clinic, clinic.cast["patient"])
    response = client.post(
        f"{Q}/entries/{entry['id']}/triage", json={"level": level}, headers=clinic.headers["nurse"]
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "level"
    assert read(client, clinic)["waiting"][0]["triage_level"] is None


def test_triage_of_a_missing_entry_is_404(client: TestClient, clinic: Clinic) -> None:
    response = triage(client, clinic, str(uuid.uuid4()), 3)
    assert response.status_code == 404
    assert response.json()["detail"] == "No such queue entry."


def test_only_waiting_patients_can_be_triaged(client: TestClient, clinic: Clinic) -> None:
    entry = join(client, clinic, clinic.cast["patient"])
    client.post(f"{clinic.url}/call-next", json={"room": "Room 2"}, headers=clinic.headers["doctor"])
    response = triage(client, clinic, entry["id"], 2)
    assert response.status_code == 409
    assert response.json()["detail"] == "Only patients still waiting can be triaged."


# --- escalation -------------------------------------------------------------------------------------------


def test_overdue_patient_is_escalated_once_and_nurses_are_told(
    client: TestClient, clinic: Clinic, make: Factory
) -> None:
    second_nurse = make.staff("nurse", clinic.cast.org)
    early = join(client, clinic, make.patient(), "abdominal pain")
    urgent = join(client, clinic, make.patient(), "head injury")
    triage(client, clinic, early["id"], 3)
    triage(client, clinic, urgent["id"], 2)
    assert tickets(read(client, clinic)) == ["W002", "W001"]
    set_entry(early["id"], arrived_at=utcnow() - timedelta(minutes=61))  # Manchester 3: 60 minutes
    queue = read(client, clinic)
    assert tickets(queue) == ["W001", "W002"]  # escalated to level 2 and arrived first
    overdue = queue["waiting"][0]
    assert overdue["overdue"] is True
    assert overdue["effective_level"] == 2
    assert overdue["escalated_at"] is not None
    assert overdue["waited_minutes"] == 61
    read(client, clinic)  # reading again does not escalate again
    assert len(audit_entries("queue.escalate")) == 1
    with transaction(session_factory()) as s:
        notes = s.execute(select(Notification).where(Notification.kind == "queue_overdue")).scalars().all()
        assert {n.user_id for n in notes} == {clinic.cast["nurse"].id, second_nurse.id}
        assert all("W001" in n.title for n in notes)


def test_escalation_at_the_limit_exactly_waits_for_the_next_second(clinic: Clinic, make: Factory) -> None:
    patient = make.patient()
    arrived = utcnow() - timedelta(hours=1)
    entry = raw_entry(clinic.location, patient, triage_level=3, arrived_at=arrived)
    system = _system()
    with transaction(session_factory()) as s:
        assert service.escalate_overdue(s, system, now=arrived + timedelta(minutes=60)) == 0
    with transaction(session_factory()) as s:
        assert service.escalate_overdue(s, system, now=arrived + timedelta(minutes=60, seconds=1)) == 1
    with transaction(session_factory()) as s:
        row = s.get(QueueEntry, entry.id)
        assert row is not None
        assert row.escalated_at is not None
        assert service.escalate_overdue(s, system, now=arrived + timedelta(minutes=90)) == 0


def test_the_periodic_job_escalates(clinic: Clinic, make: Factory) -> None:
    entry = raw_entry(
        clinic.location, make.patient(), triage_level=2, arrived_at=utcnow() - timedelta(minutes=11)
    )
    assert jobs.escalate_overdue.call_local() == 1
    assert jobs.escalate_overdue.call_local() == 0
    with transaction(session_factory()) as s:
        row = s.get(QueueEntry, entry.id)
        assert row is not None
        assert row.escalated_at is not None
    (audited,) = audit_entries("queue.escalate")
    assert audited.actor_role == "system"


def test_esi_settings_change_labels_and_limits(client: TestClient, clinic: Clinic, make: Factory) -> None:
    response = client.put(
        f"{Q}/settings",
        json={"scale": "esi", "max_wait_minutes": {"1": 0, "2": 5, "3": 20, "4": 40, "5": 90}},
        headers=clinic.headers["admin"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["customised"] is True
    assert response.json()["labels"]["3"] == "Urgent"
    entry = join(client, clinic, make.patient())
    triage(client, clinic, entry["id"], 3)
    set_entry(entry["id"], arrived_at=utcnow() - timedelta(minutes=21))
    item = read(client, clinic)["waiting"][0]
    assert item["triage_scale"] == "esi"
    assert item["triage_label"] == "Urgent"
    assert item["overdue"] is True
    settings = client.get(f"{Q}/settings", headers=clinic.headers["nurse"]).json()
    assert settings["max_wait_minutes"] == {"1": 0, "2": 5, "3": 20, "4": 40, "5": 90}
    (audited,) = audit_entries("queue.settings_update")
    assert audited.actor_id == clinic.cast["admin"].id
    back = client.put(f"{Q}/settings", json={"scale": "manchester"}, headers=clinic.headers["admin"])
    assert back.json() == {
        "scale": "manchester",
        "max_wait_minutes": {"1": 0, "2": 10, "3": 60, "4": 120, "5": 240},
        "customised": False,
        "labels": {
            "1": "Immediate (red)",
            "2": "Very urgent (orange)",
            "3": "Urgent (yellow)",
            "4": "Standard (green)",
            "5": "Non-urgent (blue)",
        },
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scale": "triage-o-matic"}, "scale"),
        ({"scale": "esi", "max_wait_minutes": {"1": 0, "2": 10}}, "max_wait_minutes"),
        ({"scale": "esi", "max_wait_minutes": {"1": 0, "2": 10, "3": 5, "4": 60, "5": 90}}, "max_wait_3"),
        ({"scale": "esi", "max_wait_minutes": {"1": 0, "2": 10, "3": 30, "4": 60, "5": 9999}}, "max_wait"),
    ],
)
def test_settings_validation(client: TestClient, clinic: Clinic, body: dict[str, Any], message: str) -> None:
    response = client.put(f"{Q}/settings", json=body, headers=clinic.headers["admin"])
    assert response.status_code == 422, response.text
    assert message in response.text
    with transaction(session_factory()) as s:
        assert s.get(ClinicSettings, clinic.cast.org.id) is None  # nothing half-written


# --- calling and seeing -----------------------------------------------------------------------------------


def test_call_next_calls_the_most_urgent_and_the_doctor_gets_a_care_link(
    client: TestClient, clinic: Clinic, make: Factory
) -> None:
    routine = join(client, clinic, make.patient())
    urgent_patient = make.patient()
    urgent = join(client, clinic, urgent_patient)
    triage(client, clinic, routine["id"], 4)
    triage(client, clinic, urgent["id"], 2)
    response = client.post(
        f"{clinic.url}/call-next", json={"room": " Room 3 "}, headers=clinic.headers["doctor"]
    )
    assert response.status_code == 200, response.text
    called = response.json()
    assert called["id"] == urgent["id"]
    assert called["status"] == "called"
    assert called["room"] == "Room 3"
    queue = read(client, clinic)
    assert tickets(queue) == ["W001"]
    assert [i["ticket"] for i in queue["in_progress"]] == ["W002"]
    assert queue["clinicians"] == 1
    with transaction(session_factory()) as s:
        link = s.execute(
            select(CareRelationship).where(
                CareRelationship.patient_id == urgent_patient.id,
                CareRelationship.practitioner_id == clinic.cast["doctor"].id,
            )
        ).scalar_one()
        assert link.reason == "queue call"
        row = s.get(QueueEntry, uuid.UUID(urgent["id"]))
        assert row is not None
        assert row.called_by == clinic.cast["doctor"].id
    (audited,) = audit_entries("queue.call")
    assert audited.patient_id == urgent_patient.id
    assert json.loads(audited.detail)["room"] == "Room 3"


def test_call_next_validation_and_empty_queue(client: TestClient, clinic: Clinic) -> None:
    empty = client.post(f"{clinic.url}/call-next", json={"room": "Room 1"}, headers=clinic.headers["nurse"])
    assert empty.status_code == 409
    assert empty.json()["detail"] == "Nobody is waiting at this location."
    for room in ("", "   ", "x" * 41):
        response = client.post(
            f"{clinic.url}/call-next", json={"room": room}, headers=clinic.headers["nurse"]
        )
        assert response.status_code == 422, room


def test_consultation_lifecycle_and_estimates_from_history(
    client: TestClient, clinic: Clinic, make: Factory
) -> None:
    patient_user = clinic.cast["patient"]
    entry = join(client, clinic, patient_user)
    client.post(f"{clinic.url}/call-next", json={"room": "Room 1"}, headers=clinic.headers["doctor"])
    started = client.post(f"{Q}/entries/{entry['id']}/start", headers=clinic.headers["doctor"])
    assert started.status_code == 200
    assert started.json()["status"] == "in-consultation"
    again = client.post(f"{Q}/entries/{entry['id']}/start", headers=clinic.headers["doctor"])
    assert again.status_code == 409
    finished = client.post(f"{Q}/entries/{entry['id']}/finish", headers=clinic.headers["doctor"])
    assert finished.status_code == 200
    assert finished.json()["status"] == "done"
    assert finished.json()["finished_at"] is not None
    assert client.post(f"{Q}/entries/{entry['id']}/left", headers=clinic.headers["nurse"]).status_code == 409
    assert read(client, clinic)["in_progress"] == []
    # with the consultation above (seconds long), five lasting ~0, 20, 20, 30 and 40 minutes: median 20
    base = utcnow() - timedelta(minutes=50)
    for minutes in (20, 20, 30, 40):
        raw_entry(
            clinic.location,
            make.patient(),
            QueueStatus.DONE.value,
            arrived_at=base,
            called_at=base,
            called_by=clinic.cast["doctor"].id,
            consultation_started_at=base,
            finished_at=base + timedelta(minutes=minutes),
        )
    for _ in range(3):
        join(client, clinic, make.patient())
    queue = read(client, clinic)
    assert queue["consultation_minutes"] == 20
    assert queue["clinicians"] == 1
    assert [i["estimated_wait_minutes"] for i in queue["waiting"]] == [0, 20, 40]
    # a second clinician calling patients halves the waits
    client.post(f"{clinic.url}/call-next", json={"room": "Room 2"}, headers=clinic.headers["nurse"])
    for _ in range(2):
        join(client, clinic, make.patient())
    queue = read(client, clinic)
    assert queue["clinicians"] == 2
    assert [i["estimated_wait_minutes"] for i in queue["waiting"]] == [0, 0, 20, 20]
    assert {e.action for e in audit_entries("queue.start") + audit_entries("queue.finish")} == {
        "queue.start",
        "queue.finish",
    }


def test_left_without_being_seen(client: TestClient, clinic: Clinic) -> None:
    entry = join(client, clinic, clinic.cast["patient"])
    response = client.post(f"{Q}/entries/{entry['id']}/left", headers=clinic.headers["nurse"])
    assert response.status_code == 200
    assert response.json()["status"] == "left"
    assert read(client, clinic)["waiting"] == []
    (audited,) = audit_entries("queue.left")
    assert audited.patient_id == clinic.cast["patient"].patient_id


# --- the patient's own view ---------------------------------------------------------------------------------


def test_patient_sees_only_their_own_place(client: TestClient, clinic: Clinic, make: Factory) -> None:
    ahead = make.patient(family_name="Ahead-Of-You")
    first = join(client, clinic, ahead, "confidential complaint")
    mine = join(client, clinic, clinic.cast["patient"], "my complaint")
    triage(client, clinic, first["id"], 2)
    triage(client, clinic, mine["id"], 4)
    response = client.get(f"{Q}/me", headers=clinic.headers["patient"])
    assert response.status_code == 200
    (place,) = response.json()
    assert place["ticket"] == mine["ticket"]
    assert place["position"] == 2
    assert place["ahead"] == 1
    assert place["estimated_wait_minutes"] == 15
    assert place["location_name"] == "Riverside walk-in clinic"
    assert "Ahead-Of-You" not in response.text
    assert "confidential" not in response.text
    assert first["ticket"] not in response.text
    (audited,) = audit_entries("queue.own_place")
    assert audited.patient_id == clinic.cast["patient"].patient_id
    # called: the place shows the room
    client.post(f"{clinic.url}/call-next", json={"room": "Room 5"}, headers=clinic.headers["doctor"])
    client.post(f"{clinic.url}/call-next", json={"room": "Room 7"}, headers=clinic.headers["doctor"])
    (place,) = client.get(f"{Q}/me", headers=clinic.headers["patient"]).json()
    assert place["status"] == "called"
    assert place["room"] == "Room 7"
    assert place["position"] is None


def test_patient_not_in_a_queue_gets_an_empty_list(client: TestClient, clinic: Clinic) -> None:
    response = client.get(f"{Q}/me", headers=clinic.headers["patient"])
    assert response.status_code == 200
    assert response.json() == []


def test_patient_is_notified_when_called(client: TestClient, clinic: Clinic) -> None:
    join(client, clinic, clinic.cast["patient"])
    client.post(f"{clinic.url}/call-next", json={"room": "Room 4"}, headers=clinic.headers["doctor"])
    notes = client.get(f"{API}/notifications", headers=clinic.headers["patient"]).json()["items"]
    assert notes[0]["title"] == "It is your turn: please go to Room 4"
    assert notes[0]["link"] == "/me/queue"


# --- the board and its live channel ---------------------------------------------------------------------


def test_board_shows_tickets_never_names(client: TestClient, clinic: Clinic, make: Factory) -> None:
    patient = make.patient(family_name="Nameonboard")
    entry = join(client, clinic, patient, "private complaint")
    join(client, clinic, make.patient())
    triage(client, clinic, entry["id"], 5)
    client.post(f"{clinic.url}/call-next", json={"room": "Room 8"}, headers=clinic.headers["doctor"])
    response = client.get(f"{clinic.url}/board", headers=clinic.headers["admin"])
    assert response.status_code == 200
    body = response.json()
    assert [t["ticket"] for t in body["tickets"]] == ["W002"]
    assert body["calls"][0]["ticket"] == "W001"
    assert body["calls"][0]["room"] == "Room 8"
    for secret in ("Nameonboard", "private complaint", str(patient.id), patient.health_id):
        assert secret not in response.text


def test_board_socket_receives_an_event_after_triage(client: TestClient, clinic: Clinic) -> None:
    entry = join(client, clinic, clinic.cast["patient"])
    with client.websocket_connect(f"/ws/queue/{clinic.location.id}", headers=clinic.headers["admin"]) as ws:
        _wait_subscribed(clinic.location.id)
        assert triage(client, clinic, entry["id"], 2).status_code == 200
        event = _receive_json(ws)
    assert event == {
        "type": "queue",
        "change": "triaged",
        "location_id": str(clinic.location.id),
        "entry_id": entry["id"],
        "ticket": "W001",
        "status": "waiting",
        "room": "",
    }
    assert realtime.hub.connected(clinic.location.id) == 0


def test_patient_socket_receives_their_queue_events(client: TestClient, clinic: Clinic) -> None:
    patient = clinic.cast["patient"]
    with client.websocket_connect("/ws", headers=clinic.headers["patient"]) as ws:
        _wait_subscribed(patient.id)
        join(client, clinic, patient)
        event = _receive_json(ws)
    assert event["type"] == "queue"
    assert event["change"] == "joined"


@pytest.mark.parametrize("who", ["patient", "other-org nurse", "nobody", "bad token"])
def test_board_socket_refuses_outsiders(
    client: TestClient,
    clinic: Clinic,
    make: Factory,
    sign_in: Callable[[Person], dict[str, str]],
    who: str,
) -> None:
    headers: dict[str, str] = {}
    expected = 4403
    if who == "patient":
        headers = clinic.headers["patient"]
    elif who == "other-org nurse":
        headers = sign_in(make.staff("nurse", make.org("Faraway Clinic", kind="clinic")))
    else:
        expected = 4401
        headers = {"Authorization": "Bearer not-a-token"} if who == "bad token" else {}
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        client.websocket_connect(f"/ws/queue/{clinic.location.id}", headers=headers),
    ):
        pass
    assert caught.value.code == expected


# --- pages ------------------------------------------------------------------------------------------------


def test_console_page_triage_and_board_page(client: TestClient, clinic: Clinic, make: Factory) -> None:
    patient = make.patient(family_name="Consolepatient")
    entry = join(client, clinic, patient, "dizzy spells")
    csrf = web_login(client, clinic.cast["nurse"])
    page = client.get(f"/queue/{clinic.location.id}")
    assert page.status_code == 200
    assert "Consolepatient" in page.text
    assert "dizzy spells" in page.text
    assert f'data-ws="/ws/queue/{clinic.location.id}"' in page.text
    # HTMX triage: the refreshed console comes back as a fragment
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    fragment = client.post(f"/queue/entries/{entry['id']}/triage", data={"level": "1"}, headers=hx)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="queue-console">')
    assert "Immediate (red)" in fragment.text
    assert "Ticket W001 triaged" in fragment.text
    # an invalid level is shown on the row, nothing changes
    bad = client.post(f"/queue/entries/{entry['id']}/triage", data={"level": "9"}, headers=hx)
    assert bad.status_code == 200
    assert "Choose a triage level from 1 to 5." in bad.text
    # walk-in with an unknown Health ID: inline error on the field
    walk = client.post(f"/queue/{clinic.location.id}/walk-in", data={"health_id": "1"}, headers=hx)
    assert "That Health ID is not valid" in walk.text
    assert 'aria-invalid="true"' in walk.text
    board = client.get(f"/queue/{clinic.location.id}/board")
    assert board.status_code == 200
    assert "W001" in board.text
    assert "Consolepatient" not in board.text
    assert "dizzy" not in board.text
    script = client.get("/static/queue-live.js")
    assert script.status_code == 200
    assert "WebSocket" in script.text


def test_my_place_page(client: TestClient, clinic: Clinic) -> None:
    join(client, clinic, clinic.cast["patient"])
    web_login(client, clinic.cast["patient"])
    page = client.get("/me/queue")
    assert page.status_code == 200
    assert "Ticket W001" in page.text
    assert 'data-testid="my-position">1<' in page.text


def test_location_chooser_goes_straight_to_the_only_location(client: TestClient, clinic: Clinic) -> None:
    web_login(client, clinic.cast["nurse"])
    response = client.get("/queue", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/queue/{clinic.location.id}"


def _system() -> Any:
    from caresync.core.auth import system_principal

    return system_principal("test")
