"""Request metrics and the Prometheus text exposition (format 0.0.4) served at ``/metrics``.

:class:`RequestMetrics` counts every HTTP request by method, route template and status, and times it in a
histogram per route template. Labels use the route's template (``/api/v1/patients/{patient_id}``), never the
raw path, so no id or token reaches the metrics; a path no route matches is counted as ``unmatched``, which
keeps the number of series bounded whatever clients ask for.

Request counters live in the memory of each web process: with several processes each exposes its own, so
scrape every process as its own target (one port per process) and add them up in Prometheus
(``sum by (route) (rate(caresync_http_requests_total[5m]))``). The job gauges are read from the database
and the queue at scrape time, so they are the same whichever process answers.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caresync.config import get_settings
from caresync.core import jobs
from caresync.db import engine_for
from caresync.operations.observability.logging import RequestContext, current_request

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
STARTED_AT = time.time()


@dataclass
class _Latency:
    """One route's histogram: counts per bucket (not cumulative; the last is +Inf), sum and count."""

    buckets: list[int]
    total_seconds: float = 0.0
    count: int = 0


@dataclass
class Registry:
    """Request counters and latency histograms of this process; safe to use from several threads."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _requests: dict[tuple[str, str, int], int] = field(default_factory=dict, init=False, repr=False)
    _latency: dict[str, _Latency] = field(default_factory=dict, init=False, repr=False)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and record how long it took."""
        method = method if method in METHODS else "OTHER"
        slot = next((i for i, bound in enumerate(self.buckets) if seconds <= bound), len(self.buckets))
        with self._lock:
            key = (method, route, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            latency = self._latency.get(route)
            if latency is None:
                latency = self._latency[route] = _Latency(buckets=[0] * (len(self.buckets) + 1))
            latency.buckets[slot] += 1
            latency.total_seconds += seconds
            latency.count += 1

    def exposition(self) -> list[str]:
        """The request counter and latency histogram families, as exposition lines."""
        with self._lock:
            requests = sorted(self._requests.items())
            latencies = sorted(
                (route, list(s.buckets), s.total_seconds, s.count) for route, s in self._latency.items()
            )
        lines = _family(
            "caresync_http_requests_total",
            "counter",
            "HTTP requests by method, route template and status.",
            (
                ("", {"method": m, "route": r, "status": str(s), "status_class": f"{s // 100}xx"}, n)
                for (m, r, s), n in requests
            ),
        )
        bounds = (*self.buckets, float("inf"))
        samples: list[tuple[str, dict[str, str], float]] = []
        for route, counts, total, count in latencies:
            cumulative = 0
            for bound, in_bucket in zip(bounds, counts, strict=True):
                cumulative += in_bucket
                samples.append(("_bucket", {"route": route, "le": _number(bound)}, cumulative))
            samples += [("_sum", {"route": route}, total), ("_count", {"route": route}, count)]
        lines += _family(
            "caresync_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests, by route template.",
            samples,
        )
        return lines


REGISTRY = Registry()


class RequestMetrics:
    """ASGI middleware: counts and times each HTTP request under its route template, and gives it a
    request id (a sane incoming ``X-Request-ID`` from the proxy, else a new one) that log lines carry and
    the response returns."""

    def __init__(self, app: ASGIApp, registry: Registry | None = None) -> None:
        self.app = app
        self.registry = registry or REGISTRY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id=_request_id(scope), path=scope["path"])
        root_path = scope.get("root_path", "")
        token = current_request.set(context)
        status = 500  # if the app fails before answering, the server error handler answers 500
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                context.route = route_template(scope, root_path)  # before the server logs the request
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = context.request_id
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if context.route is None:  # no response started: the app failed
                context.route = route_template(scope, root_path)
            self.registry.observe(scope["method"], context.route, status, time.perf_counter() - started)
        # Only now: after a failure the context stays set (it ends with the request's task), so the line the
        # server error handler outside this middleware logs still names the request.
        current_request.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that served this request (``/api/v1/patients/{patient_id}``; a mounted
    app's ``/static/{path}``), or ``unmatched`` when no route took it: unknown paths, and requests answered
    before routing (e.g. refused by the rate limiter). ``root_path`` is the scope's before routing."""
    template = getattr(scope.get("route"), "path_format", None)
    if template:
        return str(template)
    mounted_at = str(scope.get("root_path", ""))
    if mounted_at.startswith(root_path) and len(mounted_at) > len(root_path):
        return mounted_at[len(root_path) :] + "/{path}"
    return UNMATCHED


# --- scrape-time gauges ---------------------------------------------------------------------------------


def read_only_rows(statement: str) -> list[tuple[Any, ...]]:
    """Run a parameterless read-only statement on a pooled connection of the configured database.

    The driver connection is used directly so that no SQLAlchemy transaction begins: on SQLite every
    transaction takes the single write lock (``BEGIN IMMEDIATE``), which a probe or a scrape must not wait
    for."""
    connection = engine_for(get_settings().resolved_database_url).raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(statement)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()
            connection.rollback()
    finally:
        connection.close()


JOB_COUNTS_SQL = "SELECT status, COUNT(*) FROM jobs GROUP BY status"  # the jobs.Job table


def _job_gauges() -> list[str]:
    counts = {str(status): int(n) for status, n in read_only_rows(JOB_COUNTS_SQL)}
    lines = _family(
        "caresync_job_queue_depth", "gauge", "Jobs waiting for a worker.", [("", {}, counts.get("queued", 0))]
    )
    lines += _family(
        "caresync_jobs_running", "gauge", "Jobs being worked on.", [("", {}, counts.get("running", 0))]
    )
    lines += _family(
        "caresync_jobs_failed", "gauge", "Jobs that ended in failure.", [("", {}, counts.get("failed", 0))]
    )
    return lines


def _queue_gauges() -> list[str]:
    pending = jobs.huey.pending_count()
    return _family(
        "caresync_huey_pending_tasks",
        "gauge",
        "Tasks waiting in the Huey queue (jobs and periodic tasks).",
        [("", {}, pending)],
    )


def render(registry: Registry | None = None) -> str:
    """The whole ``/metrics`` page: request metrics of this process, job and queue gauges read now, and
    the process's uptime. A source that cannot be read is left out and reported by
    ``caresync_metrics_source_up``."""
    lines = (registry or REGISTRY).exposition()
    up: list[tuple[str, dict[str, str], float]] = []
    for source, collect in (("database", _job_gauges), ("queue", _queue_gauges)):
        try:
            lines += collect()
        except Exception:
            log.warning("metrics: could not read the %s", source, exc_info=True)
            up.append(("", {"source": source}, 0))
        else:
            up.append(("", {"source": source}, 1))
    lines += _family(
        "caresync_metrics_source_up", "gauge", "Whether the last scrape could read each source.", up
    )
    lines += _family(
        "caresync_process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch.",
        [("", {}, STARTED_AT)],
    )
    lines += _family(
        "caresync_process_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
        [("", {}, time.time() - STARTED_AT)],
    )
    return "\n".join(lines) + "\n"


# --- exposition format ----------------------------------------------------------------------------------


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[str, dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for suffix, labels, value in samples:
        lines.append(f"{name}{suffix}{_labels(labels)} {_number(value)}")
    return lines


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))
