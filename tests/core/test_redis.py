"""The Redis deployment paths, against a real ``redis-server`` started for the session: the job queue
(RedisHuey) consumed by a separate ``caresync worker`` process, and WebSocket events fanned out from that
process to the web process through Redis pub/sub.

Skipped when ``redis-server`` is not installed, unless ``CARESYNC_REQUIRE_REDIS=1`` (CI sets it), in which
case a missing server fails the suite instead of silently testing less.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from huey import RedisHuey
from huey.storage import RedisStorage

from caresync.core import jobs
from caresync.core.auth import system_principal
from caresync.db import session_factory
from tests.conftest import API
from tests.core.test_realtime import _receive_json, _wait_subscribed

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private, non-persistent ``redis-server`` on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CARESYNC_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (make system-deps installs it)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="caresync-redis-")
    server = subprocess.Popen(  # noqa: S603 (Debian's redis-server, fixed arguments)
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_queue(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Jobs submitted by this process go to a fresh Redis queue (not run in-process)."""
    redis.Redis.from_url(redis_url).flushdb()
    monkeypatch.setattr(jobs.huey, "_immediate", False)
    monkeypatch.setattr(jobs.huey, "storage", RedisStorage(name="caresync", url=redis_url))
    return redis_url


def test_make_huey_uses_redis_when_configured(settings_env: Any, redis_url: str) -> None:
    queue = jobs.make_huey(settings_env(redis_url=redis_url, jobs_immediate="0"))
    assert isinstance(queue, RedisHuey)

    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    queue.flush()
    result = add(2, 3)
    assert queue.pending_count() == 1  # stored in Redis, waiting for a consumer
    queue.execute(queue.dequeue())
    assert result.get() == 5
    assert queue.pending_count() == 0


def test_a_worker_process_runs_a_redis_job_and_its_progress_reaches_the_socket(
    settings_env: Any, redis_queue: str, make: Any, sign_in: Any
) -> None:
    from caresync.app import create_app

    settings_env(redis_url=redis_queue)  # this web app publishes and relays through Redis
    admin = make.staff("admin")
    headers = sign_in(admin)
    env = {**os.environ, "CARESYNC_REDIS_URL": redis_queue, "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("CARESYNC_JOBS_IMMEDIATE")
    worker = subprocess.Popen(  # noqa: S603 (our own venv's caresync command)
        [str(VENV_BIN / "caresync"), "worker", "--threads", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    events: list[dict[str, Any]] = []
    try:
        with TestClient(create_app()) as client, client.websocket_connect("/ws", headers=headers) as ws:
            _wait_subscribed(admin.id)
            job = client.post(f"{API}/admin/audit/verify", headers=headers)
            assert job.status_code == 202, job.text
            with contextlib.suppress(TimeoutError):
                events.append(_receive_json(ws, timeout=120))  # the worker process may be slow to start
                while events[-1]["status"] not in ("succeeded", "failed"):
                    events.append(_receive_json(ws, timeout=60))
    finally:
        worker.terminate()
        worker_log = worker.communicate(timeout=30)[1].decode(errors="replace")[-3000:]
    assert events, f"no job event arrived; the worker said:\n{worker_log}"
    assert {e["id"] for e in events} == {job.json()["id"]}, worker_log
    assert events[-1]["status"] == "succeeded", worker_log
    assert events[-1]["result"]["ok"] is True
    with session_factory()() as session:
        stored = jobs.get_job(session, system_principal(), uuid.UUID(job.json()["id"]))
        assert stored.status == "succeeded"
        assert stored.started_at is not None
