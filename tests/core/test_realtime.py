"""Per-user live events: the in-process hub and the ``/ws`` WebSocket end to end."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from caresync.core import realtime
from caresync.core.realtime import QUEUE_SIZE, Hub
from tests.conftest import API, bearer, run_coroutine


def test_hub_delivers_to_a_subscribed_queue_from_another_thread() -> None:
    hub = Hub()
    alice, bob = uuid.uuid4(), uuid.uuid4()

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        first, second, bobs = hub.subscribe(alice), hub.subscribe(alice), hub.subscribe(bob)
        assert hub.connected(alice) == 2
        senders = [threading.Thread(target=hub.deliver, args=(alice, {"n": n})) for n in range(3)]
        for sender in senders:
            sender.start()
        got = [await asyncio.wait_for(first.get(), 5) for _ in range(3)]
        also = [await asyncio.wait_for(second.get(), 5) for _ in range(3)]
        for sender in senders:
            sender.join()
        await asyncio.sleep(0)
        hub.unsubscribe(alice, first)
        hub.unsubscribe(alice, second)
        return got, also, bobs.empty()

    got, also, bob_untouched = run_coroutine(scenario())
    assert sorted(e["n"] for e in got) == [0, 1, 2]
    assert sorted(e["n"] for e in also) == [0, 1, 2]
    assert bob_untouched
    assert hub.connected(alice) == 0


def test_a_stalled_client_loses_its_oldest_events_not_the_newest() -> None:
    hub = Hub()
    user = uuid.uuid4()

    async def scenario() -> list[int]:
        queue = hub.subscribe(user)
        sender = threading.Thread(target=lambda: [hub.deliver(user, {"n": n}) for n in range(QUEUE_SIZE + 5)])
        sender.start()
        sender.join()
        for _ in range(50):  # let the loop run the scheduled puts
            await asyncio.sleep(0)
            if queue.qsize() == QUEUE_SIZE:
                break
        return [queue.get_nowait()["n"] for _ in range(queue.qsize())]

    assert run_coroutine(scenario()) == list(range(5, QUEUE_SIZE + 5))


def test_deliver_without_sockets_or_loop_is_a_no_op() -> None:
    hub = Hub()
    hub.deliver(uuid.uuid4(), {"type": "nobody listens"})  # must not raise
    assert hub.connected(uuid.uuid4()) == 0


# --- the WebSocket ----------------------------------------------------------------------------------------


def _receive_json(ws: Any, timeout: float = 15) -> dict[str, Any]:
    """``ws.receive_json()`` with a time limit, so a missing event fails instead of hanging."""

    async def receive() -> Any:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    message = ws.portal.call(receive)
    ws._raise_on_close(message)
    return json.loads(message["text"])


def _wait_subscribed(user_id: uuid.UUID, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while realtime.hub.connected(user_id) < 1:
        assert time.monotonic() < deadline, "the socket never subscribed"
        time.sleep(0.02)


def test_websocket_receives_a_notification_end_to_end(client: TestClient, make: Any, sign_in: Any) -> None:
    patient = make.patient_user()
    doctor = make.staff("doctor")
    patient_headers, doctor_headers = sign_in(patient), sign_in(doctor)
    with client.websocket_connect("/ws", headers=patient_headers) as ws:
        _wait_subscribed(patient.id)
        response = client.post(
            f"{API}/patients/break-glass",
            headers=doctor_headers,
            json={
                "health_id": patient.patient.health_id,
                "reason": "Collapsed at the pharmacy counter",
            },
        )
        assert response.status_code == 200, response.text
        event = _receive_json(ws)
    assert event["type"] == "notification"
    assert event["title"] == "Emergency access to your record"
    assert event["link"] == "/me/access"
    listed = client.get(f"{API}/notifications", headers=patient_headers).json()["items"]
    assert event["id"] == listed[0]["id"]
    assert realtime.hub.connected(patient.id) == 0  # unsubscribed on close


def test_websocket_streams_job_progress_to_its_owner(client: TestClient, make: Any, sign_in: Any) -> None:
    admin = make.staff("admin")
    headers = sign_in(admin)
    with client.websocket_connect("/ws", headers=headers) as ws:
        _wait_subscribed(admin.id)
        job = client.post(f"{API}/admin/audit/verify", headers=headers)
        assert job.status_code == 202
        events = [_receive_json(ws)]
        while events[-1]["status"] != "succeeded":
            events.append(_receive_json(ws))
    assert {e["type"] for e in events} == {"job"}
    assert {e["id"] for e in events} == {job.json()["id"]}
    assert events[0]["status"] == "running"
    assert events[-1]["result"]["ok"] is True
    assert events[-1]["progress"] == 100


@pytest.mark.parametrize("how", ["nothing", "bad token", "cookie garbage"])
def test_websocket_refuses_unauthenticated(client: TestClient, how: str) -> None:
    kwargs: dict[str, Any] = {}
    if how == "bad token":
        kwargs["headers"] = bearer("not-a-token")
    elif how == "cookie garbage":
        client.cookies.set("caresync_session", "garbage")
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect("/ws", **kwargs):
        pass
    assert caught.value.code == 4401


def test_websocket_refuses_a_session_still_waiting_for_mfa(client: TestClient, make: Any) -> None:
    nurse = make.staff("nurse")
    token = client.post(f"{API}/auth/login", json={"email": nurse.email, "password": nurse.password}).json()
    assert token["stage"] == "mfa"
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        client.websocket_connect("/ws", headers=bearer(token["access_token"])),
    ):
        pass
    assert caught.value.code == 4401
