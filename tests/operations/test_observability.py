"""Liveness and readiness probes, Prometheus metrics and structured JSON logs."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from huey import MemoryHuey, RedisHuey

from caresync.config import Settings
from caresync.core import jobs
from caresync.core.jobs import Job
from caresync.operations.observability import api as observability_api
from caresync.operations.observability.logging import (
    JsonFormatter,
    RequestContext,
    configure_logging,
    current_request,
    logging_config,
)
from caresync.operations.observability.metrics import DEFAULT_BUCKETS, Registry
from tests.conftest import API, Cast

PATIENT_ROUTE = f"{API}/patients/{{patient_id}}"
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Samples:
    """The samples of a Prometheus text exposition; every non-comment line must be a valid sample."""
    samples: Samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = SAMPLE.match(line)
        assert found, f"not a valid sample line: {line!r}"
        labels = dict(LABEL.findall(found["labels"] or ""))
        samples.append((found["name"], labels, float(found["value"])))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of the one sample with this name and these labels (0 if absent, as Prometheus reads)."""
    matches = [v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items())]
    assert len(matches) <= 1, (name, labels, matches)
    return matches[0] if matches else 0.0


def scrape(client: TestClient) -> tuple[str, Samples]:
    """``GET /metrics`` without signing in: its text and parsed samples."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text, parse(response.text)


def requests_counted(samples: Samples, route: str, status: str, method: str = "GET") -> float:
    return value(samples, "caresync_http_requests_total", method=method, route=route, status=status)


# --- probes -------------------------------------------------------------------------------------------------


def test_healthz_answers_without_signing_in(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert client.head("/healthz").status_code == 200


def test_readyz_reports_each_check_with_its_duration(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "queue", "storage"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert 0 <= check["duration_ms"] < observability_api.CHECK_TIMEOUT_SECONDS * 1000
        assert "error" not in check


def assert_only_failing(response: httpx.Response, name: str, error: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == [name]
    failed = body["checks"][name]
    assert (failed["status"], failed["error"]) == ("fail", error)
    assert failed["duration_ms"] >= 0
    others = {other: check["status"] for other, check in body["checks"].items() if other != name}
    assert others == dict.fromkeys(others, "ok")
    assert len(others) == 2
    return body


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(
    client: TestClient, settings_env: Any
) -> None:
    # a PostgreSQL server that is not there (nothing listens on port 1): the connection is refused
    settings_env(database_url="postgresql+psycopg://caresync:s3cret-pw@127.0.0.1:1/caresync")
    response = client.get("/readyz")
    assert_only_failing(response, "database", "OperationalError")
    assert "s3cret-pw" not in response.text
    assert "127.0.0.1" not in response.text

    # metrics still answer, saying which source could not be read
    _text, samples = scrape(client)
    assert value(samples, "caresync_metrics_source_up", source="database") == 0
    assert value(samples, "caresync_metrics_source_up", source="queue") == 1


def test_readyz_is_503_naming_storage_when_its_directory_is_missing(
    client: TestClient, settings_env: Any, tmp_path: Path
) -> None:
    settings_env(var_dir=tmp_path / "unmounted")
    assert_only_failing(client.get("/readyz"), "storage", "FileNotFoundError")
    assert not (tmp_path / "unmounted").exists()  # the probe checks; it does not create


def test_readyz_is_503_naming_the_queue_when_redis_is_unreachable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "huey", RedisHuey("caresync-readyz-test", url="redis://127.0.0.1:1/0"))
    assert_only_failing(client.get("/readyz"), "queue", "ConnectionError")


def test_readyz_gives_up_on_a_check_that_hangs(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability_api, "CHECK_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setitem(observability_api.CHECKS, "queue", lambda: time.sleep(1.5))
    started = time.monotonic()
    body = assert_only_failing(client.get("/readyz"), "queue", "no answer within 0.2 s")
    assert time.monotonic() - started < 1.2
    assert 200 <= body["checks"]["queue"]["duration_ms"] < 1200


# --- metrics ------------------------------------------------------------------------------------------------


def test_metrics_count_a_request_under_its_route_template(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    headers = sign_in(cast["doctor"])
    patient_id = str(cast["patient"].patient_id)
    _text, before = scrape(client)
    assert client.get(f"{API}/patients/{patient_id}", headers=headers).status_code == 200
    assert client.get(f"{API}/patients/{patient_id}").status_code == 401
    text, after = scrape(client)
    assert requests_counted(after, PATIENT_ROUTE, "200") == requests_counted(before, PATIENT_ROUTE, "200") + 1
    assert requests_counted(after, PATIENT_ROUTE, "401") == requests_counted(before, PATIENT_ROUTE, "401") + 1
    assert value(after, "caresync_http_requests_total", route=PATIENT_ROUTE, status="200", method="GET") > 0
    assert patient_id not in text


def test_unknown_paths_are_counted_under_one_unmatched_label(client: TestClient) -> None:
    paths = [f"/no-such-page/{uuid.uuid4()}", f"{API}/nothing-here/{uuid.uuid4()}"]
    _text, before = scrape(client)
    for path in paths:
        assert client.get(path).status_code == 404
    text, after = scrape(client)
    assert requests_counted(after, "unmatched", "404") == requests_counted(before, "unmatched", "404") + 2
    for path in paths:
        assert path.rsplit("/", 1)[1] not in text
    routes = {labels["route"] for name, labels, _v in after if name == "caresync_http_requests_total"}
    assert not any("nothing-here" in route or "no-such-page" in route for route in routes)


def test_latency_histograms_are_cumulative_and_agree_with_the_counters(client: TestClient) -> None:
    for _ in range(3):
        client.get("/healthz")
    _text, samples = scrape(client)
    routes = {labels["route"] for name, labels, _v in samples if name.endswith("_duration_seconds_count")}
    assert "/healthz" in routes
    expected_bounds = [*(repr(b) for b in DEFAULT_BUCKETS), "+Inf"]
    for route in routes:
        buckets = [
            (labels["le"], v)
            for name, labels, v in samples
            if name == "caresync_http_request_duration_seconds_bucket" and labels["route"] == route
        ]
        assert [le for le, _v in buckets] == expected_bounds
        counts = [v for _le, v in buckets]
        assert counts == sorted(counts), f"{route}: buckets must be cumulative"
        count = value(samples, "caresync_http_request_duration_seconds_count", route=route)
        assert counts[-1] == count
        requests = sum(
            v
            for name, labels, v in samples
            if name == "caresync_http_requests_total" and labels["route"] == route
        )
        assert requests == count
        assert value(samples, "caresync_http_request_duration_seconds_sum", route=route) > 0
    assert value(samples, "caresync_http_request_duration_seconds_count", route="/healthz") >= 3


@pytest.mark.no_db
def test_registry_places_durations_in_the_right_buckets() -> None:
    registry = Registry()
    for seconds in (0.003, 0.1, 0.2, 20.0):  # 0.1 is a bound: "less than or equal" puts it in le="0.1"
        registry.observe("GET", "/r", 200, seconds)
    registry.observe("BREW", "/r", 418, 0.001)
    samples = parse("\n".join(registry.exposition()))

    def bucket(le: str) -> float:
        return value(samples, "caresync_http_request_duration_seconds_bucket", route="/r", le=le)

    assert [
        bucket("0.005"),
        bucket("0.05"),
        bucket("0.1"),
        bucket("0.25"),
        bucket("10.0"),
        bucket("+Inf"),
    ] == [
        2,
        2,
        3,
        4,
        4,
        5,
    ]
    assert value(samples, "caresync_http_request_duration_seconds_sum", route="/r") == pytest.approx(20.304)
    assert value(samples, "caresync_http_requests_total", method="GET", status="200", status_class="2xx") == 4
    assert value(samples, "caresync_http_requests_total", method="OTHER", status="418") == 1


def test_queue_gauges_reflect_jobs_and_pending_tasks(
    client: TestClient, tx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _text, samples = scrape(client)
    assert value(samples, "caresync_job_queue_depth") == 0
    with tx() as s:
        s.add_all(
            [
                Job(kind="report", status="queued"),
                Job(kind="ocr", status="queued"),
                Job(kind="ocr", status="failed"),
            ]
        )
        s.add(Job(kind="forecast", status="running"))
    queue = MemoryHuey("caresync-metrics-test")  # a real queue with no consumer: what is sent stays pending

    @queue.task()
    def pending_work() -> None:
        return None

    pending_work()
    monkeypatch.setattr(jobs, "huey", queue)
    _text, samples = scrape(client)
    assert value(samples, "caresync_job_queue_depth") == 2
    assert value(samples, "caresync_jobs_running") == 1
    assert value(samples, "caresync_jobs_failed") == 1
    assert value(samples, "caresync_huey_pending_tasks") == 1
    assert value(samples, "caresync_metrics_source_up", source="database") == 1
    assert value(samples, "caresync_process_uptime_seconds") > 0


def test_metrics_carry_no_patient_data(client: TestClient, cast: Cast, sign_in: Any, make: Any) -> None:
    patient = make.patient(given_name="Ermenegilda", family_name="Vonnegutson")
    make.care(cast["doctor"], patient)
    headers = sign_in(cast["doctor"])
    pid = str(patient.id)
    for path in (
        f"{API}/patients?q=Vonnegutson",
        f"{API}/patients?q={patient.health_id}",
        f"{API}/patients/{pid}",
        f"{API}/patients/{pid}/care-team",
    ):
        assert client.get(path, headers=headers).status_code == 200, path
    text, samples = scrape(client)
    for secret in (pid, patient.health_id, "Vonnegutson", "Ermenegilda", "q=", headers["Authorization"][7:]):
        assert secret not in text
    assert requests_counted(samples, f"{API}/patients", "200") >= 2
    assert requests_counted(samples, f"{API}/patients/{{patient_id}}/care-team", "200") >= 1


def test_request_ids_from_the_proxy_are_kept_only_when_sane(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"}).headers["x-request-id"] == "lb-7f3a.42"
    )
    for unsafe in ("a" * 65, "id with spaces", "<script>"):
        answered = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", answered)


# --- structured logs ----------------------------------------------------------------------------------------


@pytest.fixture
def json_access_log() -> Iterator[io.StringIO]:
    """uvicorn's access log, formatted by :class:`JsonFormatter` into a buffer for the test."""
    logger = logging.getLogger("uvicorn.access")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_json_access_log_of_a_real_server_has_the_route_and_no_query(
    app: Any, json_access_log: io.StringIO
) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        patient_id = uuid.uuid4()
        response = httpx.get(
            f"http://127.0.0.1:{port}{API}/patients/{patient_id}?q=Zwartkopf&token=abc123",
            headers={"X-Request-ID": "trace-42"},
        )
        assert response.status_code == 401
    finally:
        server.should_exit = True
        thread.join(10)
    lines = [line for line in json_access_log.getvalue().splitlines() if line]
    entries = [json.loads(line) for line in lines]  # every line is valid JSON
    [entry] = [e for e in entries if e.get("request_id") == "trace-42"]
    assert entry["logger"] == "uvicorn.access"
    assert entry["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert entry["message"] == f"GET {PATIENT_ROUTE} 401"
    assert (entry["method"], entry["route"], entry["status"]) == ("GET", PATIENT_ROUTE, 401)
    raw = "\n".join(lines)
    for leaked in ("Zwartkopf", "abc123", "?q=", str(patient_id)):
        assert leaked not in raw


@pytest.mark.no_db
def test_json_formatter_drops_query_strings_and_exception_messages() -> None:
    try:
        raise ValueError("patient Ermenegilda Vonnegutson, born 1980-05-17")
    except ValueError:
        record = logging.LogRecord(
            "caresync.records",
            logging.ERROR,
            __file__,
            1,
            "fetching %s failed",
            ("/api/v1/patients?q=Vonnegutson&x=1",),
            sys.exc_info(),
        )
    token = current_request.set(RequestContext(request_id="req-1", route=PATIENT_ROUTE))
    try:
        line = JsonFormatter().format(record)
    finally:
        current_request.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "fetching /api/v1/patients failed"
    assert (entry["level"], entry["logger"], entry["request_id"]) == ("ERROR", "caresync.records", "req-1")
    assert entry["exc_type"] == "ValueError"
    assert any(
        "test_json_formatter_drops_query_strings_and_exception_messages" in frame for frame in entry["stack"]
    )
    assert "Vonnegutson" not in line
    assert "1980" not in line


@pytest.mark.no_db
def test_configure_logging_json_makes_every_line_json(tmp_path: Path) -> None:
    script = (
        "import logging\n"
        "from caresync.config import Settings\n"
        "from caresync.operations.observability.logging import configure_logging\n"
        "configure_logging(Settings(log_format='json'))\n"
        "logging.getLogger('caresync.worker').info('claimed %s', '/jobs/next?owner=42&x=1')\n"
        "logging.getLogger('uvicorn.error').warning('shutting down')\n"
    )
    done = subprocess.run(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["logger"], e["level"], e["message"]) for e in entries] == [
        ("caresync.worker", "INFO", "claimed /jobs/next"),
        ("uvicorn.error", "WARNING", "shutting down"),
    ]


@pytest.mark.no_db
def test_text_log_format_keeps_logging_as_it_is() -> None:
    from uvicorn.config import LOGGING_CONFIG

    root = logging.getLogger()
    handlers = list(root.handlers)
    configure_logging(Settings(log_format="text"))
    assert root.handlers == handlers
    assert logging_config(Settings(log_format="text")) == LOGGING_CONFIG
    json_config = logging_config(Settings(log_format="json"))
    assert json_config["formatters"]["json"]["()"].endswith("JsonFormatter")
    assert json_config["loggers"]["uvicorn.access"]["propagate"] is True


@pytest.mark.no_db
def test_a_failing_request_is_counted_and_its_error_line_names_the_request(client: TestClient) -> None:
    from caresync.app import create_app

    route = "/test-only/patients/{patient_id}/boom"
    log = logging.getLogger("caresync.tests.observability")

    def boom(patient_id: str) -> None:
        log.info("working on the request")  # a sync handler: runs in a worker thread
        raise RuntimeError(f"patient {patient_id} is Vonnegutson")

    failing = create_app()  # the real middleware and error handlers, plus one route that fails
    failing.add_api_route(route, boom)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    watched = [log, logging.getLogger("caresync.app")]
    for logger in watched:
        logger.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with TestClient(failing, raise_server_exceptions=False) as failing_client:
            response = failing_client.get(
                "/test-only/patients/4242/boom", headers={"X-Request-ID": "req-500"}
            )
    finally:
        for logger in watched:
            logger.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    assert response.status_code == 500
    _text, samples = scrape(client)  # one registry per process, whichever app instance answered
    assert requests_counted(samples, route, "500") == 1
    entries = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [e["request_id"] for e in entries] == ["req-500", "req-500"]
    assert entries[0]["message"] == "working on the request"
    assert entries[1]["level"] == "ERROR"
    assert entries[1]["exc_type"] == "RuntimeError"
    assert entries[1]["message"] == f"unhandled error on GET {route}"
    assert "Vonnegutson" not in buffer.getvalue()
    assert "4242" not in buffer.getvalue()
