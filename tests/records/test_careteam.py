"""Care-team coordination: SOAP notes (authorship, amendments, the consent rule for mental-health notes,
read-only consent access), tasks between team members (who may be assigned, due dates, notification,
completion, "my tasks"), secure messaging (participants only, team threads hidden from the patient,
unread counts, live delivery over ``/ws``), the pages, and the permission matrix of every
``/api/v1/care/`` route."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from caresync.core import realtime
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.notify import Notification
from caresync.db import utcnow
from caresync.identity.models import CareRelationship
from caresync.records.careteam import notes, tasks
from caresync.records.models import CareTask, ClinicalNote
from tests.conftest import API, ROLES, Cast, Person, web_login
from tests.core.test_realtime import _receive_json, _wait_subscribed
from tests.identity.test_permission_matrix import api_routes

C = f"{API}/care"
SOAP = {
    "subjective": "Headache for three days, worse in the morning.",
    "objective": "BP 150/95, neuro exam normal.",
    "assessment": "Tension headache; raised blood pressure.",
    "plan": "Ibuprofen as needed; recheck BP in one week.",
}
TOMORROW = (date.today() + timedelta(days=1)).isoformat()


@dataclass
class Team:
    """The cast with signed-in headers, and the patient's id."""

    cast: Cast
    headers: dict[str, dict[str, str]]

    @property
    def patient_id(self) -> uuid.UUID:
        return self.cast["patient"].patient_id

    def __getitem__(self, role: str) -> dict[str, str]:
        return self.headers[role]


@pytest.fixture
def team(cast: Cast, sign_in: Callable[[Person], dict[str, str]]) -> Team:
    return Team(cast, {role: sign_in(cast[role]) for role in ("doctor", "nurse", "patient")})


def write_note(client: TestClient, headers: dict[str, str], patient_id: Any, **fields: Any) -> Any:
    return client.post(f"{C}/patients/{patient_id}/notes", json={**SOAP, **fields}, headers=headers)


def new_task(
    client: TestClient, headers: dict[str, str], patient_id: Any, assignee: Any, **fields: Any
) -> Any:
    body = {"title": "Recheck blood pressure", "assignee_id": str(assignee), "due_on": TOMORROW, **fields}
    return client.post(f"{C}/patients/{patient_id}/tasks", json=body, headers=headers)


def start_thread(client: TestClient, headers: dict[str, str], patient_id: Any, kind: str = "patient") -> Any:
    body = {
        "patient_id": str(patient_id),
        "kind": kind,
        "subject": "Blood pressure",
        "body": "How is it today?",
    }
    return client.post(f"{C}/threads", json=body, headers=headers)


def unread(client: TestClient, headers: dict[str, str]) -> int:
    response = client.get(f"{C}/unread", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["unread"])


def audited(tx: Any, action: str, patient_id: uuid.UUID, outcome: str = "success", **where: Any) -> int:
    with tx() as s:
        query = select(func.count()).where(
            AuditEntry.action == action, AuditEntry.patient_id == patient_id, AuditEntry.outcome == outcome
        )
        for column, value in where.items():
            query = query.where(getattr(AuditEntry, column) == value)
        return int(s.execute(query).scalar_one())


def as_principal(person: Person) -> Principal:
    """The principal a service sees for ``person`` (for the functions the consultation view calls)."""
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
        patient_id=person.patient.id if person.patient else None,
    )


def grant(client: TestClient, team: Team, practitioner: Person, categories: list[str]) -> None:
    body = {
        "patient_id": str(team.patient_id),
        "categories": categories,
        "practitioner_id": str(practitioner.id),
    }
    response = client.post(f"{API}/records/consents", json=body, headers=team["patient"])
    assert response.status_code == 201, response.text


# --- notes ------------------------------------------------------------------------------------------------


def test_a_soap_note_is_saved_with_author_and_time(client: TestClient, team: Team, tx: Any) -> None:
    before = utcnow()
    response = write_note(client, team["doctor"], team.patient_id)
    assert response.status_code == 201, response.text
    note = response.json()
    assert {k: note[k] for k in SOAP} == SOAP
    assert note["author_id"] == str(team.cast["doctor"].id)
    assert note["author_name"] == team.cast["doctor"].full_name
    assert note["category"] == "note"
    with tx() as s:
        row = s.get(ClinicalNote, uuid.UUID(note["id"]))
        assert row is not None
        assert row.author_id == team.cast["doctor"].id
        assert before <= row.created_at <= utcnow()
    assert audited(tx, "note.create", team.patient_id, actor_id=team.cast["doctor"].id) == 1
    # open notes: the patient reads it, and that read is audited too
    mine = client.get(f"{C}/patients/{team.patient_id}/notes", headers=team["patient"])
    assert [n["id"] for n in mine.json()["items"]] == [note["id"]]
    assert client.get(f"{C}/notes/{note['id']}", headers=team["patient"]).json()["plan"] == SOAP["plan"]
    assert audited(tx, "note.list", team.patient_id, actor_id=team.cast["patient"].id) == 1
    assert audited(tx, "note.read", team.patient_id, actor_id=team.cast["patient"].id) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subjective": "", "objective": " ", "assessment": "\n", "plan": ""}, "subjective"),
        ({"category": "lab"}, "category"),
        ({"appointment_id": str(uuid.uuid4())}, "appointment_id"),
        ({"amends_id": str(uuid.uuid4())}, "amends_id"),
    ],
    ids=["empty-soap", "unknown-category", "foreign-appointment", "unknown-amended-note"],
)
def test_invalid_notes_are_refused_with_a_clear_error(
    client: TestClient, team: Team, tx: Any, fields: dict[str, str], field: str
) -> None:
    response = write_note(client, team["doctor"], team.patient_id, **fields)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in problem.get("field", "") or field in str(problem.get("errors", ""))
    with tx() as s:
        assert s.execute(select(func.count()).select_from(ClinicalNote)).scalar_one() == 0


def test_an_amendment_is_a_new_note_and_both_stay_visible(client: TestClient, team: Team) -> None:
    original = write_note(client, team["doctor"], team.patient_id).json()
    amendment = write_note(
        client, team["nurse"], team.patient_id, amends_id=original["id"], plan="Recheck BP in three days."
    )
    assert amendment.status_code == 201, amendment.text
    listed = client.get(f"{C}/patients/{team.patient_id}/notes", headers=team["doctor"]).json()["items"]
    assert [n["id"] for n in listed] == [amendment.json()["id"], original["id"]]  # newest first
    assert listed[0]["amends_id"] == original["id"]
    assert listed[1]["amended_by"] == amendment.json()["id"]
    assert listed[1]["plan"] == SOAP["plan"]  # the original is unchanged
    again = write_note(client, team["doctor"], team.patient_id, amends_id=original["id"])
    assert again.status_code == 409
    assert "newest version" in again.json()["detail"]


def test_mental_health_notes_follow_the_consent_rule(client: TestClient, team: Team, tx: Any) -> None:
    """The patient lets the nurse read mental-health records; the nurse writes and amends such a note. The
    care-team doctor (default policy) sees neither, cannot write one, until break-glass; the patient
    sees both."""
    grant(client, team, team.cast["nurse"], ["mental-health"])
    plain = write_note(client, team["doctor"], team.patient_id).json()
    sensitive = write_note(client, team["nurse"], team.patient_id, category="mental-health")
    assert sensitive.status_code == 201, sensitive.text
    amended = write_note(
        client, team["nurse"], team.patient_id, amends_id=sensitive.json()["id"], plan="Refer."
    )
    assert amended.json()["category"] == "mental-health"  # an amendment keeps the category
    hidden = {sensitive.json()["id"], amended.json()["id"]}

    doctor_sees = client.get(f"{C}/patients/{team.patient_id}/notes", headers=team["doctor"]).json()["items"]
    assert [n["id"] for n in doctor_sees] == [plain["id"]]
    for note_id in hidden:
        response = client.get(f"{C}/notes/{note_id}", headers=team["doctor"])
        assert response.status_code == 404
        assert (
            response.json()["detail"]
            == client.get(f"{C}/notes/{uuid.uuid4()}", headers=team["doctor"]).json()["detail"]
        )
    refused = write_note(client, team["doctor"], team.patient_id, category="mental-health")
    assert refused.status_code == 403
    assert refused.json()["field"] == "category"

    patient_sees = client.get(f"{C}/patients/{team.patient_id}/notes", headers=team["patient"]).json()[
        "items"
    ]
    assert {n["id"] for n in patient_sees} == hidden | {plain["id"]}

    glass = client.post(
        f"{API}/patients/break-glass",
        json={"health_id": team.cast["patient"].patient.health_id, "reason": "Acute crisis in the ward"},
        headers=team["doctor"],
    )
    assert glass.status_code == 200, glass.text
    after = client.get(f"{C}/patients/{team.patient_id}/notes", headers=team["doctor"]).json()["items"]
    assert {n["id"] for n in after} == hidden | {plain["id"]}
    assert audited(tx, "note.list", team.patient_id, actor_id=team.cast["doctor"].id, flagged=True) == 1


def test_a_clinician_with_consent_only_reads_but_never_writes(
    client: TestClient, team: Team, make: Any, sign_in: Any, tx: Any
) -> None:
    outsider = make.staff("doctor", make.org("Second Opinion Clinic", kind="clinic"))
    grant(client, team, outsider, ["note"])
    write_note(client, team["doctor"], team.patient_id)
    headers = sign_in(outsider)
    assert len(client.get(f"{C}/patients/{team.patient_id}/notes", headers=headers).json()["items"]) == 1
    assert write_note(client, headers, team.patient_id).status_code == 404
    assert new_task(client, headers, team.patient_id, outsider.id).status_code == 404
    assert client.get(f"{C}/patients/{team.patient_id}/tasks", headers=headers).status_code == 404
    assert audited(tx, "note.create", team.patient_id, outcome="denied", actor_id=outsider.id) == 1


def test_list_notes_for_the_consultation_view(client: TestClient, team: Team, tx: Any) -> None:
    ids = [
        write_note(client, team["doctor"], team.patient_id, plan=f"Step {i}").json()["id"] for i in range(3)
    ]
    with tx() as s:
        listed = notes.list_notes(s, as_principal(team.cast["doctor"]), team.patient_id, limit=2)
    assert [str(n.id) for n in listed] == ids[::-1][:2]


# --- tasks ------------------------------------------------------------------------------------------------


def test_a_task_for_a_team_member_notifies_them(client: TestClient, team: Team, tx: Any) -> None:
    nurse = team.cast["nurse"]
    response = new_task(client, team["doctor"], team.patient_id, nurse.id, detail="Left arm, seated")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["assignee_name"] == nurse.full_name
    assert task["status"] == "open"
    assert task["overdue"] is False
    with tx() as s:
        told = s.execute(select(Notification).where(Notification.user_id == nurse.id)).scalars().all()
    assert [n.kind for n in told] == ["task"]
    assert team.cast["doctor"].full_name in told[0].title
    assert told[0].link == "/tasks"
    mine = client.get(f"{C}/tasks", headers=team["nurse"]).json()["items"]
    assert [t["id"] for t in mine] == [task["id"]]
    assert client.get(f"{C}/tasks", headers=team["doctor"]).json()["items"] == []
    assert audited(tx, "task.create", team.patient_id) == 1


@pytest.mark.parametrize(
    ("who", "due", "field"),
    [
        ("outsider", TOMORROW, "assignee_id"),
        ("patient", TOMORROW, "assignee_id"),
        ("nurse", (date.today() - timedelta(days=2)).isoformat(), "due_on"),
    ],
    ids=["assignee-outside-the-team", "assignee-the-patient", "due-in-the-past"],
)
def test_invalid_tasks_are_refused(
    client: TestClient, team: Team, make: Any, tx: Any, who: str, due: str, field: str
) -> None:
    assignee = {
        "outsider": lambda: make.staff("doctor").id,  # same hospital, not caring for this patient
        "patient": lambda: team.cast["patient"].id,
        "nurse": lambda: team.cast["nurse"].id,
    }[who]()
    response = new_task(client, team["doctor"], team.patient_id, assignee, due_on=due)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    with tx() as s:
        assert s.execute(select(func.count()).select_from(CareTask)).scalar_one() == 0


def test_completing_a_task_records_who_and_when(
    client: TestClient, team: Team, make: Any, sign_in: Any, tx: Any
) -> None:
    task = new_task(client, team["doctor"], team.patient_id, team.cast["nurse"].id).json()
    colleague = make.staff("nurse")
    make.care(colleague, team.cast["patient"])
    refused = client.post(f"{C}/tasks/{task['id']}/complete", headers=sign_in(colleague))
    assert refused.status_code == 403  # on the team, but neither assignee nor creator
    done = client.post(f"{C}/tasks/{task['id']}/complete", headers=team["nurse"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    with tx() as s:
        row = s.get(CareTask, uuid.UUID(task["id"]))
        assert row is not None
        assert row.completed_at is not None
        assert row.completed_by == team.cast["nurse"].id
        told = s.execute(
            select(func.count()).where(
                Notification.user_id == team.cast["doctor"].id, Notification.kind == "task"
            )
        ).scalar_one()
    assert told == 1  # the creator hears it is done
    assert client.post(f"{C}/tasks/{task['id']}/cancel", headers=team["doctor"]).status_code == 409
    assert audited(tx, "task.complete", team.patient_id) == 1
    assert client.get(f"{C}/tasks", headers=team["nurse"]).json()["items"] == []
    assert [t["id"] for t in client.get(f"{C}/tasks?status=done", headers=team["nurse"]).json()["items"]] == [
        task["id"]
    ]


def test_my_tasks_come_overdue_first_and_only_for_patients_i_still_care_for(
    client: TestClient, team: Team, make: Any, tx: Any
) -> None:
    nurse = team.cast["nurse"]
    later = new_task(client, team["doctor"], team.patient_id, nurse.id, title="Later", due_on=TOMORROW).json()
    with tx() as s:  # a task that fell overdue (the API refuses past due dates)
        overdue = CareTask(
            patient_id=team.patient_id,
            title="Overdue",
            created_by=team.cast["doctor"].id,
            assignee_id=nurse.id,
            due_on=date.today() - timedelta(days=3),
            created_at=utcnow(),
        )
        s.add(overdue)
        s.flush()
        overdue_id = str(overdue.id)
    items = client.get(f"{C}/tasks", headers=team["nurse"]).json()["items"]
    assert [(t["id"], t["overdue"]) for t in items] == [(overdue_id, True), (later["id"], False)]
    with tx() as s:
        s.execute(
            update(CareRelationship)
            .where(CareRelationship.practitioner_id == nurse.id)
            .values(ended_at=utcnow())
        )
    assert client.get(f"{C}/tasks", headers=team["nurse"]).json()["items"] == []


def test_list_tasks_for_the_consultation_view(client: TestClient, team: Team, tx: Any) -> None:
    task = new_task(client, team["doctor"], team.patient_id, team.cast["nurse"].id).json()
    principal = as_principal(team.cast["doctor"])
    with tx() as s:
        listed = tasks.list_tasks(s, principal, patient_id=team.patient_id)
        done = tasks.list_tasks(s, principal, patient_id=team.patient_id, status="done")
    assert [str(t.id) for t in listed] == [task["id"]]
    assert done == []


# --- messaging ----------------------------------------------------------------------------------------------


def test_unread_counts_go_up_and_reset_when_read(client: TestClient, team: Team, tx: Any) -> None:
    thread = start_thread(client, team["patient"], team.patient_id)
    assert thread.status_code == 201, thread.text
    thread_id = thread.json()["id"]
    assert (
        unread(client, team["patient"]),
        unread(client, team["doctor"]),
        unread(client, team["nurse"]),
    ) == (0, 1, 1)
    listed = client.get(f"{C}/threads", headers=team["doctor"]).json()
    assert [(t["id"], t["unread"]) for t in listed["items"]] == [(thread_id, 1)]
    assert listed["unread_total"] == 1

    opened = client.get(f"{C}/threads/{thread_id}", headers=team["doctor"])
    assert opened.status_code == 200
    assert [m["body"] for m in opened.json()["messages"]] == ["How is it today?"]
    assert unread(client, team["doctor"]) == 0
    assert unread(client, team["nurse"]) == 1  # reading is per person

    for text in ("Please measure it twice.", "And write it down."):
        reply = client.post(f"{C}/threads/{thread_id}/messages", json={"body": text}, headers=team["doctor"])
        assert reply.status_code == 201, reply.text
    assert unread(client, team["patient"]) == 2
    assert unread(client, team["nurse"]) == 3
    assert unread(client, team["doctor"]) == 0  # one's own messages are never unread
    page = client.get(f"{C}/threads/{thread_id}", params={"limit": 2}, headers=team["patient"]).json()
    assert [m["body"] for m in page["messages"]] == ["And write it down.", "Please measure it twice."]
    older = client.get(
        f"{C}/threads/{thread_id}", params={"cursor": page["next_cursor"]}, headers=team["patient"]
    )
    assert [m["body"] for m in older.json()["messages"]] == ["How is it today?"]
    assert unread(client, team["patient"]) == 0
    assert audited(tx, "message.send", team.patient_id) == 2
    assert audited(tx, "message.read", team.patient_id, actor_id=team.cast["patient"].id) == 2


def test_team_threads_do_not_exist_for_the_patient(client: TestClient, team: Team) -> None:
    thread = start_thread(client, team["doctor"], team.patient_id, kind="team")
    assert thread.status_code == 201, thread.text
    thread_id = thread.json()["id"]
    missing = client.get(f"{C}/threads/{uuid.uuid4()}", headers=team["patient"])
    for response in (
        client.get(f"{C}/threads/{thread_id}", headers=team["patient"]),
        client.post(f"{C}/threads/{thread_id}/messages", json={"body": "Hello?"}, headers=team["patient"]),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == missing.json()["detail"]
    assert client.get(f"{C}/threads", headers=team["patient"]).json()["items"] == []
    assert unread(client, team["patient"]) == 0
    assert unread(client, team["nurse"]) == 1
    refused = start_thread(client, team["patient"], team.patient_id, kind="team")
    assert refused.status_code == 422


def test_only_participants_read_or_post(
    client: TestClient, team: Team, make: Any, sign_in: Any, tx: Any
) -> None:
    thread_id = start_thread(client, team["patient"], team.patient_id).json()["id"]
    outsider = make.staff("doctor")  # same hospital, not on the care team
    other_patient = make.patient_user()
    for person in (outsider, other_patient, team.cast["admin"]):
        headers = sign_in(person)
        assert client.get(f"{C}/threads/{thread_id}", headers=headers).status_code == 404
        posted = client.post(f"{C}/threads/{thread_id}/messages", json={"body": "Hi"}, headers=headers)
        assert posted.status_code == 404
    assert audited(tx, "message.read", team.patient_id, outcome="denied", actor_id=outsider.id) == 1
    # participants follow the care team: a nurse who leaves it loses the conversation
    with tx() as s:
        s.execute(
            update(CareRelationship)
            .where(CareRelationship.practitioner_id == team.cast["nurse"].id)
            .values(ended_at=utcnow())
        )
    assert client.get(f"{C}/threads/{thread_id}", headers=team["nurse"]).status_code == 404
    assert client.get(f"{C}/threads", headers=team["nurse"]).json()["items"] == []


def test_a_patient_without_a_care_team_is_told_why(client: TestClient, make: Any, sign_in: Any) -> None:
    loner = make.patient_user()
    response = start_thread(client, sign_in(loner), loner.patient_id)
    assert response.status_code == 422
    assert "no care team yet" in response.json()["detail"]


@pytest.mark.parametrize(("length", "status"), [(0, 422), (1, 201), (5000, 201), (5001, 422)])
def test_message_length_limits(client: TestClient, team: Team, length: int, status: int) -> None:
    thread_id = start_thread(client, team["patient"], team.patient_id).json()["id"]
    response = client.post(
        f"{C}/threads/{thread_id}/messages", json={"body": "x" * length}, headers=team["doctor"]
    )
    assert response.status_code == status, response.text


def test_control_characters_never_reach_the_database(client: TestClient, team: Team) -> None:
    """A NUL cannot be stored in PostgreSQL (it would be a 500): control characters are dropped, line
    breaks kept."""
    note = write_note(
        client, team["doctor"], team.patient_id, subjective="Dizzy\x00 at night\r\nsince Monday"
    )
    assert note.status_code == 201, note.text
    assert note.json()["subjective"] == "Dizzy at night\nsince Monday"
    thread_id = start_thread(client, team["patient"], team.patient_id).json()["id"]
    posted = client.post(
        f"{C}/threads/{thread_id}/messages", json={"body": "ok\x00\x07"}, headers=team["doctor"]
    )
    assert posted.json()["body"] == "ok"
    only_nul = client.post(f"{C}/threads/{thread_id}/messages", json={"body": "\x00"}, headers=team["doctor"])
    assert only_nul.status_code == 422
    task = new_task(client, team["doctor"], team.patient_id, team.cast["nurse"].id, title="Call\x00  back")
    assert task.json()["title"] == "Call back"


def test_a_post_reaches_the_other_participants_live(client: TestClient, team: Team) -> None:
    patient = team.cast["patient"]
    thread_id = start_thread(client, team["patient"], team.patient_id).json()["id"]
    team_thread = start_thread(client, team["doctor"], team.patient_id, kind="team").json()["id"]
    with client.websocket_connect("/ws", headers=dict(team["patient"])) as ws:
        _wait_subscribed(patient.id)
        secret = "Your potassium is 6.1, please come in"
        assert (
            client.post(
                f"{C}/threads/{team_thread}/messages", json={"body": "team only"}, headers=team["nurse"]
            ).status_code
            == 201
        )
        assert (
            client.post(
                f"{C}/threads/{thread_id}/messages", json={"body": secret}, headers=team["doctor"]
            ).status_code
            == 201
        )
        event = _receive_json(ws)  # the first event is this one: the team-thread post never reached them
    assert event == {"type": "message", "thread_id": thread_id, "patient_id": str(team.patient_id)}
    assert realtime.hub.connected(patient.id) == 0


def test_the_sender_gets_no_event_of_their_own(client: TestClient, team: Team) -> None:
    doctor = team.cast["doctor"]
    thread_id = start_thread(client, team["patient"], team.patient_id).json()["id"]
    team_thread = start_thread(client, team["nurse"], team.patient_id, kind="team").json()["id"]
    with client.websocket_connect("/ws", headers=dict(team["doctor"])) as ws:
        _wait_subscribed(doctor.id)
        mine = client.post(
            f"{C}/threads/{team_thread}/messages", json={"body": "mine"}, headers=team["doctor"]
        )
        assert mine.status_code == 201
        client.post(f"{C}/threads/{thread_id}/messages", json={"body": "theirs"}, headers=team["patient"])
        event = _receive_json(ws)  # the first event is the patient's post, not the doctor's own
    assert event["thread_id"] == thread_id
    assert (
        unread(client, team["doctor"]) == 2
    )  # the patient's two messages; replying marked the team thread read


# --- pages ------------------------------------------------------------------------------------------------


def test_the_care_page_writes_notes_amends_them_and_assigns_tasks(
    client: TestClient, team: Team, tx: Any
) -> None:
    client.follow_redirects = False
    csrf = web_login(client, team.cast["doctor"])
    url = f"/patients/{team.patient_id}/care"
    page = client.get(url)
    assert page.status_code == 200
    assert team.cast["nurse"].full_name in page.text  # the care team
    assert 'data-testid="note-form"' in page.text
    assert "No notes yet" in page.text

    empty = client.post(f"{url}/notes", data={"csrf_token": csrf, "subjective": " "})
    assert empty.status_code == 422
    assert "Write at least one of subjective" in empty.text
    saved = client.post(f"{url}/notes", data={"csrf_token": csrf, "category": "note", **SOAP})
    assert saved.status_code == 303, saved.text
    shown = client.get(saved.headers["location"].split("#")[0])
    assert "Note saved." in shown.text
    assert SOAP["assessment"] in shown.text
    assert team.cast["doctor"].full_name in shown.text
    with tx() as s:
        note_id = s.execute(select(ClinicalNote.id)).scalar_one()
    form = client.get(url, params={"amend": str(note_id)})
    assert f'name="amends_id" value="{note_id}"' in form.text
    assert SOAP["plan"] in form.text  # pre-filled
    amended = client.post(
        f"{url}/notes",
        data={"csrf_token": csrf, "amends_id": str(note_id), **SOAP, "plan": "Recheck in 3 days."},
    )
    assert amended.status_code == 303
    timeline = client.get(url)
    assert 'data-testid="amended"' in timeline.text
    assert timeline.text.count('data-testid="note"') == 2

    bad = client.post(
        f"{url}/tasks",
        data={
            "csrf_token": csrf,
            "title": "Call back",
            "assignee_id": str(team.cast["nurse"].id),
            "due_on": "2001-01-01",
        },
    )
    assert bad.status_code == 422
    assert "The due date is in the past." in bad.text
    assigned = client.post(
        f"{url}/tasks",
        data={
            "csrf_token": csrf,
            "title": "Call back",
            "assignee_id": str(team.cast["nurse"].id),
            "due_on": TOMORROW,
        },
    )
    assert assigned.status_code == 303, assigned.text
    assert "Call back" in client.get(url).text


def test_the_patient_reads_their_care_page_without_forms(client: TestClient, team: Team) -> None:
    write_note(client, team["doctor"], team.patient_id)
    new_task(client, team["doctor"], team.patient_id, team.cast["nurse"].id, title="Internal reminder")
    client.follow_redirects = False
    web_login(client, team.cast["patient"])
    page = client.get("/me/care")
    assert page.status_code == 200
    assert 'href="/me/care" aria-current="page"' in page.text  # in the patient's navigation
    assert client.get(f"/patients/{team.patient_id}/care").text.count('data-testid="note"') == 1
    assert SOAP["subjective"] in page.text
    assert team.cast["doctor"].full_name in page.text
    assert 'data-testid="note-form"' not in page.text
    assert "Internal reminder" not in page.text
    assert client.get(f"/patients/{team.cast.other_patient.id}/care").status_code == 404


def test_my_tasks_page_highlights_overdue_and_closes_tasks(client: TestClient, team: Team, tx: Any) -> None:
    nurse = team.cast["nurse"]
    with tx() as s:
        task = CareTask(
            patient_id=team.patient_id,
            title="Overdue dressing change",
            created_by=team.cast["doctor"].id,
            assignee_id=nurse.id,
            due_on=date.today() - timedelta(days=1),
            created_at=utcnow(),
        )
        s.add(task)
        s.flush()
        task_id = task.id
    client.follow_redirects = False
    csrf = web_login(client, nurse)
    page = client.get("/tasks")
    assert "Overdue dressing change" in page.text
    assert 'data-overdue="1"' in page.text
    assert "data-confirm=" in page.text
    closed = client.post(f"/tasks/{task_id}/complete", data={"csrf_token": csrf, "next": "//evil.example"})
    assert closed.status_code == 303
    assert closed.headers["location"] == "/tasks?closed=done"  # never an open redirect
    assert "Nothing to do" in client.get("/tasks").text
    assert "Overdue dressing change" in client.get("/tasks?status=done").text


def test_messaging_pages_with_live_fragments(client: TestClient, team: Team, make: Any) -> None:
    client.follow_redirects = False
    web_login(client, team.cast["patient"])
    page = client.get("/messages")
    assert 'data-testid="new-thread-form"' in page.text
    assert "No conversations yet" in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    empty = client.post("/messages", data={"csrf_token": csrf, "subject": "Rash", "body": " "})
    assert empty.status_code == 422
    assert "Write a message." in empty.text
    started = client.post("/messages", data={"csrf_token": csrf, "subject": "Rash", "body": "It itches."})
    assert started.status_code == 303, started.text
    thread_url = started.headers["location"]

    doctor_client = TestClient(client.app)
    doctor_client.follow_redirects = False
    doctor_csrf = web_login(doctor_client, team.cast["doctor"])
    listing = doctor_client.get("/messages")
    assert 'data-testid="thread-unread"' in listing.text
    assert 'id="messages-badge">1<' in listing.text
    fragment = doctor_client.get("/messages", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    assert "Rash" in fragment.text
    conversation = doctor_client.get(thread_url)
    assert "It itches." in conversation.text
    assert 'id="messages-badge" hidden>' in conversation.text  # opening it marked it read
    reply = doctor_client.post(
        thread_url,
        data={"csrf_token": doctor_csrf, "body": "Send a photo, please."},
        headers={"HX-Request": "true"},
    )
    assert reply.status_code == 200
    assert "<html" not in reply.text
    assert "Send a photo, please." in reply.text
    too_long = doctor_client.post(
        thread_url, data={"csrf_token": doctor_csrf, "body": "x" * 5001}, headers={"HX-Request": "true"}
    )
    assert "under 5000 characters" in too_long.text

    live = client.get(thread_url, headers={"HX-Request": "true"})  # what messages.js fetches on an event
    assert live.status_code == 200
    assert 'id="messages-list"' in live.text
    assert "Send a photo, please." in live.text
    assert "<html" not in live.text

    loner = make.patient_user()
    lonely = TestClient(client.app)
    web_login(lonely, loner)
    assert 'data-testid="no-team"' in lonely.get("/messages").text


# --- permissions ------------------------------------------------------------------------------------------

ANON = "anonymous"
CARERS = ("doctor", "nurse", "patient")
CLINICIANS = ("doctor", "nurse")


def _row(ok: tuple[str, ...], status: int, patient: int | None = None, others: int = 404) -> dict[str, int]:
    row = {**dict.fromkeys(ROLES, others), **dict.fromkeys(ok, status), ANON: 401}
    if patient is not None:
        row["patient"] = patient
    return row


CARE_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/v1/care/patients/{patient_id}/team"): _row(CARERS, 200),
    ("GET", "/api/v1/care/patients/{patient_id}/notes"): _row(CARERS, 200),
    ("POST", "/api/v1/care/patients/{patient_id}/notes"): _row(CLINICIANS, 201, patient=403),
    ("GET", "/api/v1/care/notes/{note_id}"): _row(CARERS, 200),
    ("GET", "/api/v1/care/patients/{patient_id}/tasks"): _row(CLINICIANS, 200, patient=403),
    ("POST", "/api/v1/care/patients/{patient_id}/tasks"): _row(CLINICIANS, 201, patient=403),
    ("GET", "/api/v1/care/tasks"): _row(CLINICIANS, 200, others=403),
    ("POST", "/api/v1/care/tasks/{task_id}/complete"): _row(CLINICIANS, 200, patient=403),
    ("POST", "/api/v1/care/tasks/{task_id}/cancel"): _row(CLINICIANS, 200, patient=403),
    ("GET", "/api/v1/care/threads"): _row(CARERS, 200, others=403),
    ("POST", "/api/v1/care/threads"): _row(CARERS, 201, others=403),
    ("GET", "/api/v1/care/threads/{thread_id}"): _row(CARERS, 200),
    ("POST", "/api/v1/care/threads/{thread_id}/messages"): _row(CARERS, 201),
    ("GET", "/api/v1/care/unread"): _row(CARERS, 200, others=403),
}


def test_the_matrix_names_every_care_route(app: Any) -> None:
    assert api_routes(app, prefix="/api/v1/care/", excluding=()) == set(CARE_ROUTES)


@dataclass
class Chart:
    """A patient with a note, a thread and a way to make fresh tasks, for the matrix."""

    patient_id: uuid.UUID
    note_id: str
    thread_id: str
    new_task: Callable[[], str]


def _chart(client: TestClient, patient_id: uuid.UUID, doctor: dict[str, str], nurse: Person) -> Chart:
    note_id = write_note(client, doctor, patient_id).json()["id"]
    thread_id = start_thread(client, doctor, patient_id).json()["id"]
    return Chart(
        patient_id, note_id, thread_id, lambda: new_task(client, doctor, patient_id, nurse.id).json()["id"]
    )


def _call(client: TestClient, method: str, path: str, chart: Chart, headers: dict[str, str]) -> Any:
    url = path.format(
        patient_id=chart.patient_id,
        note_id=chart.note_id,
        thread_id=chart.thread_id,
        task_id=chart.new_task() if "{task_id}" in path else "",
    )
    if method == "GET":
        return client.get(url, headers=headers)
    bodies: dict[str, Any] = {
        "/api/v1/care/patients/{patient_id}/notes": SOAP,
        "/api/v1/care/patients/{patient_id}/tasks": {"title": "Check", "assignee_id": "", "due_on": TOMORROW},
        "/api/v1/care/threads": {"patient_id": str(chart.patient_id), "subject": "Hello", "body": "Hi there"},
        "/api/v1/care/threads/{thread_id}/messages": {"body": "Hi"},
    }
    body = bodies.get(path)
    if path.endswith("/tasks"):
        body = {**bodies[path], "assignee_id": headers.get("x-self", str(uuid.uuid4()))}
    return client.post(url, json=body, headers={k: v for k, v in headers.items() if k != "x-self"})


def test_care_permission_matrix(client: TestClient, cast: Cast, make: Any, sign_in: Any) -> None:
    """Every route x role on the cast's patient (cared for by the cast's doctor and nurse), and on a
    stranger cared for in another hospital: there, every role gets 404 (401 anonymous; 403 where the role
    has no such feature at all), and the stranger's name never leaks."""
    tokens = {role: sign_in(cast[role]) for role in ROLES}
    # task assignees: clinicians assign to themselves (allowed), others name someone (refused before that)
    for role in ROLES:
        tokens[role] = {**tokens[role], "x-self": str(cast[role].id)}
    tokens[ANON] = {}
    own = _chart(client, cast["patient"].patient_id, tokens["doctor"], cast["nurse"])
    far = make.org("Faraway Hospital")
    stranger = make.patient_user(family_name="Vanderstrangeling")
    far_doctor, far_nurse = make.staff("doctor", far), make.staff("nurse", far)
    make.care(far_doctor, stranger)
    make.care(far_nurse, stranger)
    other = _chart(client, stranger.patient_id, sign_in(far_doctor), far_nurse)
    problems = []
    for (method, path), expected in CARE_ROUTES.items():
        for role in (*ROLES, ANON):
            for target, chart in (("own", own), ("other", other)):
                response = _call(client, method, path, chart, tokens[role])
                wanted = expected[role]
                if target == "other" and role != ANON and path not in FEATURE_ROUTES:
                    wanted = 404
                if target == "other" and path in FEATURE_ROUTES and wanted < 400:
                    wanted = {"POST": 404}.get(method, wanted)  # starting a thread about a stranger
                if response.status_code != wanted:
                    problems.append(
                        f"{method} {path} as {role} ({target}): {response.status_code} != {wanted}"
                    )
                if target == "other" and "Vanderstrangeling" in response.text:
                    problems.append(f"{method} {path} as {role}: leaks the stranger's name")
    assert not problems, "\n".join(problems)


# routes that are about the caller, not a patient in the path (the "other" chart changes only their body)
FEATURE_ROUTES = frozenset({"/api/v1/care/tasks", "/api/v1/care/threads", "/api/v1/care/unread"})
