"""Probes and metrics for load balancers, orchestrators and Prometheus.

* ``GET /healthz`` — liveness: the process answers; touches nothing else.
* ``GET /readyz`` — readiness: the database answers a trivial query, the job queue (Huey's SQLite file or
  Redis) is reachable and the file storage directory is writable, each within
  :data:`CHECK_TIMEOUT_SECONDS`; 200 when all pass, 503 naming the ones that failed.
* ``GET /metrics`` — Prometheus text exposition (see :mod:`caresync.operations.observability.metrics`).

They need no sign-in (probes cannot sign in) and say nothing about patients: errors are reported by their
exception type only, the details go to the server log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from caresync.config import get_settings
from caresync.core import jobs
from caresync.operations.observability import metrics

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

CHECK_TIMEOUT_SECONDS = 2.0
# The checks' own threads: a check stuck on an unreachable server (past its timeout) must not hold a
# thread that requests need.
_check_threads = ThreadPoolExecutor(max_workers=6, thread_name_prefix="caresync-readyz")


class CheckOut(BaseModel):
    """How one dependency answered."""

    status: Literal["ok", "fail"]
    duration_ms: float
    error: str | None = None


class Readiness(BaseModel):
    """Whether this process can serve requests, and why not."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckOut]
    failing: list[str]


def check_database() -> None:
    """The database answers ``SELECT 1``."""
    if metrics.read_only_rows("SELECT 1") != [(1,)]:
        raise RuntimeError("unexpected answer to SELECT 1")


def check_queue() -> None:
    """Huey's storage (the SQLite queue file, or Redis) answers."""
    jobs.huey.pending_count()


def check_storage() -> None:
    """The file storage directory exists and a file can be written to it and removed."""
    directory = get_settings().var_dir / "files"
    if not directory.is_dir():
        raise FileNotFoundError("the storage directory is missing")
    fd, name = tempfile.mkstemp(dir=directory, prefix=".readyz-")
    try:
        os.write(fd, b"ready")
    finally:
        os.close(fd)
        os.unlink(name)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "queue": check_queue,
    "storage": check_storage,
}


async def _run_check(name: str, check: Callable[[], None]) -> CheckOut:
    started = time.perf_counter()
    error = None
    try:
        future = asyncio.get_running_loop().run_in_executor(_check_threads, check)
        await asyncio.wait_for(future, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        error = f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        log.warning("readiness: the %s check timed out", name)
    except Exception as exc:
        error = type(exc).__name__
        log.warning("readiness: the %s check failed", name, exc_info=True)
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    return CheckOut(status="fail" if error else "ok", duration_ms=duration_ms, error=error)


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and answering."""
    return {"status": "ok"}


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz() -> JSONResponse:
    """Readiness: database, job queue and storage, checked side by side; 503 if any fails."""
    results = await asyncio.gather(*(_run_check(name, check) for name, check in CHECKS.items()))
    checks = dict(zip(CHECKS, results, strict=True))
    failing = [name for name, result in checks.items() if result.status == "fail"]
    body = Readiness(status="unavailable" if failing else "ok", checks=checks, failing=failing)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503 if failing else 200)


@router.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus metrics of this process (text exposition format 0.0.4)."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
