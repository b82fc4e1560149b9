"""API load benchmark: many signed-in clients using the patient API at once, over real HTTP.

Run as its own process: ``python bench/api_load.py [--clients 100] [--duration 30] [--think-ms 0]``.

It builds a fresh SQLite deployment in a temp directory (``caresync migrate`` and ``caresync demo
--patients 600`` with ``CARESYNC_VAR_DIR`` pointing there), starts ``caresync serve --port 8765`` as a
subprocess, signs in each demo account once (staff with their demo TOTP code), and then runs ``--clients``
simulated users in one asyncio event loop. Each user repeats what a dashboard does: list patients
(``GET /api/v1/patients?limit=20``), open up to three of them (``GET /api/v1/patients/{id}``), then
``GET /api/v1/auth/me`` and ``GET /api/v1/notifications``. By default (``--think-ms 1000``) each user pauses
0.5-1.5 s between requests, like a person clicking through a chart: 100 such users offer about 90 requests/s.
``--think-ms 0`` is a closed loop as fast as the server answers: it measures saturation throughput, and its
latency is only clients / throughput (Little's law), so it cannot meet a 50 ms target with 100 clients
unless the server does 2,000 requests/s. One unmeasured warm-up round per account comes first. Latency is
measured per request (send to full body read) and reported as one JSON object on stdout; progress goes to
stderr. The server is always stopped and the temp directory removed at the end. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
PASSWORD = "CareSync-demo-2026"
STAFF_DOMAIN = "riverside.demo.caresync.dev"
# Clients are spread over these accounts (client i signs in as ACCOUNTS[i % len(ACCOUNTS)]).
ACCOUNTS = (
    f"doctor@{STAFF_DOMAIN}",
    f"nurse@{STAFF_DOMAIN}",
    f"doctor1@{STAFF_DOMAIN}",
    f"nurse1@{STAFF_DOMAIN}",
    f"doctor2@{STAFF_DOMAIN}",
    f"nurse2@{STAFF_DOMAIN}",
    f"doctor3@{STAFF_DOMAIN}",
    "patient@demo.caresync.dev",
)
PATIENT_ACCOUNT = "patient@demo.caresync.dev"  # patients have no MFA in the demo data
TARGET = {"p95_ms": 50, "errors": 0}
DETAILS_PER_LIST = 3
SETUP_TIMEOUT_S = 900  # migrate + demo data on a slow machine
READY_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 30.0
LOGIN_TIMEOUT_S = 120.0


def log(message: str) -> None:
    """Progress to stderr (stdout carries only the JSON result)."""
    print(f"[api_load] {message}", file=sys.stderr, flush=True)


@dataclass
class Stats:
    """Per-request latencies and error counts, shared by all clients (one event loop: no locking)."""

    latencies_ms: list[float] = field(default_factory=list)
    by_endpoint: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    def record(self, endpoint: str, latency_ms: float, status: int | None, kind: str = "") -> None:
        self.requests += 1
        if status is not None:
            self.latencies_ms.append(latency_ms)
            self.by_endpoint.setdefault(endpoint, []).append(latency_ms)
        if status is None or status >= 400:
            self.errors[kind or str(status)] += 1


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def patient_in_care(
    session: Any, doctor: Any, *, given_name: str, family_name: str, sex: str, birth_date: Any
) -> Any:
    """A new patient in ``doctor``'s care (so the bench's doctor may read and write their record)."""
    from caresync.db import utcnow
    from caresync.identity.models import CareRelationship
    from caresync.identity.patients import new_patient

    patient = new_patient(given_name=given_name, family_name=family_name, sex=sex, birth_date=birth_date)
    session.add(patient)
    session.flush()
    session.add(
        CareRelationship(
            patient_id=patient.id,
            practitioner_id=doctor.id,
            organisation_id=doctor.organisation_id,
            reason="bench",
            created_at=utcnow(),
        )
    )
    session.flush()
    return patient


# --- the server under test ---------------------------------------------------------------------------------


class Server:
    """A throwaway CareSync deployment: temp var dir, SQLite, demo data, one ``caresync serve`` process."""

    def __init__(self, port: int, workers: int, patients: int) -> None:
        self.port = port
        self.workers = workers
        self.patients = patients
        self.root = Path(tempfile.mkdtemp(prefix="caresync-bench-"))
        self.var_dir = self.root / "var"
        self.log_path = self.root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CARESYNC_")}
        self.env["CARESYNC_VAR_DIR"] = str(self.var_dir)  # SQLite under it, no Redis
        # every simulated user comes from 127.0.0.1: the per-address limits would measure themselves
        self.env["CARESYNC_RATE_LIMIT_ENABLED"] = "0"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "caresync.cli", *args]

    def _run(self, *args: str) -> None:
        with self.log_path.open("ab") as out:
            # cwd is the temp dir so that no .env file of the checkout is read.
            result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
                self._cli(*args), cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                timeout=SETUP_TIMEOUT_S, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"`caresync {' '.join(args)}` failed (exit {result.returncode}):\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def setup(self) -> None:
        t0 = time.perf_counter()
        self._run("migrate")
        log(f"migrated in {time.perf_counter() - t0:.1f}s; loading demo data ({self.patients} patients)")
        t0 = time.perf_counter()
        self._run("demo", "--patients", str(self.patients))
        log(f"demo data loaded in {time.perf_counter() - t0:.1f}s")

    def start(self) -> None:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, self.port)) == 0:
                raise RuntimeError(f"port {self.port} on {HOST} is already in use; pick another with --port")
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                self._cli("serve", "--host", HOST, "--port", str(self.port), "--workers", str(self.workers)),
                cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/api/v1/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S}s:\n{self.log_tail()}")
                time.sleep(0.5)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # The server leads its own process group: signal it and any --workers children together.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- the simulated users -----------------------------------------------------------------------------------


def current_code(email: str) -> str:
    """The demo account's TOTP code for now."""
    import pyotp

    from caresync.demo import demo_totp_secret

    return pyotp.TOTP(demo_totp_secret(email)).now()


async def login(client: httpx.AsyncClient, email: str) -> str:
    """Sign in once and return the bearer token. A code is accepted once per 30 s window per account
    (anti-replay), so on a refusal wait for the next window and try again."""
    response: httpx.Response | None = None
    for attempt in range(3):
        body: dict[str, str] = {"email": email, "password": PASSWORD}
        if email != PATIENT_ACCOUNT:
            body["otp"] = current_code(email)
        # Sign-in is slow on purpose (argon2) and serialised on SQLite: give it more time than a read.
        response = await client.post("/api/v1/auth/login", json=body, timeout=LOGIN_TIMEOUT_S)
        if response.status_code == 200 and response.json().get("stage") == "full":
            return str(response.json()["access_token"])
        if attempt < 2:
            await asyncio.sleep(30 - time.time() % 30 + 1)
    assert response is not None
    raise RuntimeError(f"sign-in failed for {email}: HTTP {response.status_code} {response.text[:300]}")


async def user_loop(
    client: httpx.AsyncClient,
    token: str,
    stats: Stats,
    deadline: float,
    think_s: float,
    rng: random.Random,
    rounds: int | None = None,
) -> None:
    """One simulated user until the deadline (or for ``rounds`` rounds): list, open a few, me,
    notifications; repeat."""
    headers = {"Authorization": f"Bearer {token}"}

    async def get(endpoint: str, path: str, params: dict[str, Any] | None = None) -> httpx.Response | None:
        if time.perf_counter() >= deadline:
            return None
        t0 = time.perf_counter()
        response: httpx.Response | None = None
        try:
            response = await client.get(path, headers=headers, params=params)
            stats.record(endpoint, (time.perf_counter() - t0) * 1000, response.status_code)
        except httpx.HTTPError as exc:
            stats.record(endpoint, (time.perf_counter() - t0) * 1000, None, type(exc).__name__)
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
        return response

    if think_s:  # people do not all click at the same instant
        await asyncio.sleep(rng.uniform(0, think_s))
    done = 0
    while time.perf_counter() < deadline and (rounds is None or done < rounds):
        done += 1
        page = await get("patient_list", "/api/v1/patients", {"limit": 20})
        ids = [item["id"] for item in page.json()["items"]] if page is not None and page.is_success else []
        for patient_id in rng.sample(ids, min(DETAILS_PER_LIST, len(ids))):
            await get("patient_detail", f"/api/v1/patients/{patient_id}")
        await get("me", "/api/v1/auth/me")
        await get("notifications", "/api/v1/notifications")


async def run_load(base_url: str, clients: int, duration_s: float, think_ms: float) -> tuple[Stats, float]:
    """Sign the accounts in, run the users for ``duration_s``; return the stats and the elapsed seconds."""
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        accounts = [ACCOUNTS[i % len(ACCOUNTS)] for i in range(clients)]
        distinct = sorted(set(accounts), key=ACCOUNTS.index)
        log(f"signing in {len(distinct)} accounts")
        tokens = {email: await login(client, email) for email in distinct}  # one at a time, before the load
        # Warm-up, not measured: one round per account, so first-request costs (lazy imports, caches) of a
        # freshly started server do not count as steady-state latency.
        for email in distinct:
            await user_loop(client, tokens[email], Stats(), time.perf_counter() + 60, 0.0, random.Random(0),
                            rounds=1)  # fmt: skip
        log(f"running {clients} clients for {duration_s:g}s (think {think_ms:g} ms)")
        stats = Stats()
        start = time.perf_counter()
        deadline = start + duration_s
        users = [
            user_loop(client, tokens[email], stats, deadline, think_ms / 1000, random.Random(i))
            for i, email in enumerate(accounts)
        ]
        # In-flight requests may finish after the deadline; never wait past the request timeout.
        await asyncio.wait_for(asyncio.gather(*users), timeout=duration_s + REQUEST_TIMEOUT_S + 30)
        return stats, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent simulated users (default 100)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--think-ms", type=float, default=1000.0,
                        help="mean pause between requests (default 1000); 0 = closed loop")  # fmt: skip
    parser.add_argument("--port", type=int, default=8765, help="server port on 127.0.0.1 (default 8765)")
    parser.add_argument("--workers", type=int, default=1, help="`caresync serve --workers` (default 1)")
    parser.add_argument("--patients", type=int, default=600, help="demo patients to load (default 600)")
    args = parser.parse_args()
    if args.clients < 1 or not 0 < args.duration <= 3600 or args.think_ms < 0:
        parser.error("need --clients >= 1, 0 < --duration <= 3600 and --think-ms >= 0")

    # A SIGTERM (e.g. from a CI timeout) still runs the `finally` below and stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(args.port, args.workers, args.patients)
    # The TOTP secrets come from caresync.demo; importing it must not touch the checkout's var/.
    os.environ["CARESYNC_VAR_DIR"] = str(server.var_dir)
    try:
        log(f"preparing a fresh SQLite deployment in {server.root}")
        server.setup()
        t0 = time.perf_counter()
        server.start()
        log(f"server up on {server.base_url} in {time.perf_counter() - t0:.1f}s")
        with contextlib.suppress(ImportError):
            import uvloop  # the client's own overhead steals CPU from the server: keep it small

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        stats, elapsed = asyncio.run(run_load(server.base_url, args.clients, args.duration, args.think_ms))
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    finally:
        server.stop()
        server.cleanup()

    latencies = sorted(stats.latencies_ms)
    errors = sum(stats.errors.values())
    p95 = percentile(latencies, 95)
    result = {
        "benchmark": "api_load",
        "clients": args.clients,
        "duration_s": round(elapsed, 2),
        "requests": stats.requests,
        "errors": errors,
        "rps": round(stats.requests / elapsed, 1) if elapsed else 0.0,
        # null when no request got an answer at all (every one failed)
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p95_ms": round(p95, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "target": TARGET,
        "met": bool(latencies) and p95 <= TARGET["p95_ms"] and errors <= TARGET["errors"],
        "cores": os.cpu_count(),
        "database": "sqlite",
        "think_ms": args.think_ms,
        "server_workers": args.workers,
        "patients": args.patients,
        "error_kinds": dict(stats.errors),
        "endpoints": {
            name: {
                "requests": len(values),
                "p50_ms": round(percentile(values, 50), 1),
                "p95_ms": round(percentile(values, 95), 1),
            }
            for name, values in ((n, sorted(v)) for n, v in stats.by_endpoint.items())
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
