"""In-app notifications over the API, and email to the outbox."""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.auth import system_principal
from caresync.core.jobs import Job
from caresync.core.notify import Notification, notify, queue_email, send_email, unread_count
from tests.conftest import API


def _notes(tx: Any, user_id: uuid.UUID, titles: list[str]) -> list[str]:
    ids = []
    for title in titles:  # one transaction each: distinct creation times
        with tx() as s:
            ids.append(str(notify(s, user_id, "test", title, body=f"About {title}", link="/somewhere").id))
    return ids


def test_list_unread_and_mark_read(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    me, someone = make.patient_user(), make.donor()
    mine = _notes(tx, me.id, ["first", "second", "third"])
    theirs = _notes(tx, someone.id, ["not yours"])
    headers = sign_in(me)

    listed = client.get(f"{API}/notifications", headers=headers)
    assert listed.status_code == 200
    data = listed.json()
    assert data["unread"] == 3
    assert [n["title"] for n in data["items"]] == ["third", "second", "first"]  # newest first
    assert data["items"][0]["body"] == "About third"
    assert data["items"][0]["read_at"] is None
    assert "not yours" not in listed.text

    assert client.post(f"{API}/notifications/{mine[1]}/read", headers=headers).status_code == 204
    after = client.get(f"{API}/notifications", headers=headers).json()
    assert after["unread"] == 2
    assert [n["read_at"] is not None for n in after["items"]] == [False, True, False]
    unread = client.get(f"{API}/notifications", params={"unread_only": "true"}, headers=headers).json()
    assert [n["title"] for n in unread["items"]] == ["third", "first"]

    assert client.post(f"{API}/notifications/{mine[1]}/read", headers=headers).status_code == 404  # again
    assert client.post(f"{API}/notifications/{theirs[0]}/read", headers=headers).status_code == 404
    assert client.post(f"{API}/notifications/{uuid.uuid4()}/read", headers=headers).status_code == 404
    assert client.post(f"{API}/notifications/not-a-uuid/read", headers=headers).status_code == 422
    with tx() as s:
        assert unread_count(s, someone.id) == 1  # someone else's stays unread

    assert client.post(f"{API}/notifications/read-all", headers=headers).status_code == 204
    assert client.get(f"{API}/notifications", headers=headers).json()["unread"] == 0
    with tx() as s:
        assert unread_count(s, someone.id) == 1


def test_notifications_need_a_signed_in_user(client: TestClient) -> None:
    assert client.get(f"{API}/notifications").status_code == 401
    assert client.post(f"{API}/notifications/read-all").status_code == 401


def test_list_is_capped_at_fifty(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    me = make.donor()
    with tx() as s:
        for i in range(55):
            notify(s, me.id, "bulk", f"note {i}")
    data = client.get(f"{API}/notifications", headers=sign_in(me)).json()
    assert len(data["items"]) == 50
    assert data["unread"] == 55


def _read_outbox(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def test_send_email_without_smtp_lands_in_the_outbox(outbox: Path) -> None:
    message_id = send_email("ana@example.org", "Your appointment", "See you on Monday at 10:00.")
    messages = _read_outbox(outbox)
    assert len(messages) == 1
    message = messages[0]
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == "Your appointment"
    assert message["From"] == "CareSync <no-reply@caresync.local>"
    assert message["Message-ID"] == message_id
    assert message_id.endswith("@caresync.local>")
    assert message.get_content().strip() == "See you on Monday at 10:00."


def test_queued_email_is_sent_by_a_job_after_commit(outbox: Path, tx: Any, make: Any) -> None:
    owner = make.donor()
    from caresync.core.auth import Principal

    principal = Principal(user_id=owner.id, role="donor", full_name=owner.full_name)
    session_cm = tx()
    session = session_cm.__enter__()
    queue_email(session, principal, "kwame@example.org", "Thank you for donating", "Your unit helped.")
    assert list(outbox.glob("*.eml")) == []  # nothing leaves before the transaction commits
    session_cm.__exit__(None, None, None)
    messages = _read_outbox(outbox)
    assert [m["To"] for m in messages] == ["kwame@example.org"]
    with tx() as s:
        job = s.execute(select(Job)).scalar_one()
    assert (job.kind, job.status, job.progress, job.owner_id) == ("notify.email", "succeeded", 100, owner.id)
    assert json.loads(job.result)["message_id"] == messages[0]["Message-ID"]


def test_rolled_back_transaction_sends_no_email(outbox: Path, tx: Any) -> None:
    class Abort(Exception):
        pass

    try:
        with tx() as s:
            queue_email(s, system_principal(), "nobody@example.org", "Never sent", "This must not arrive.")
            raise Abort
    except Abort:
        pass
    assert list(outbox.glob("*.eml")) == []
    with tx() as s:
        assert s.execute(select(Job)).first() is None
        assert s.execute(select(Notification)).first() is None
