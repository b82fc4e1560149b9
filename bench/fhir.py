"""FHIR API benchmark: Patient read and Appointment search under 50 concurrent clients, and
``Patient/$everything`` for a patient with 5,000 records, over real HTTP.

Run as its own process: ``python bench/fhir.py [--clients 50] [--duration 30] [--think-ms 1000]
[--records 5000] [--everything 20]``.

It builds a fresh SQLite deployment (``caresync migrate`` + ``caresync demo --patients 60``: demo doctors and
nurses with care lists, and appointments around today), adds a patient cared for by the demo doctor with
``--records`` health records through the records service (as ``bench/records.py`` does: stored encrypted,
signed and audited like any upload), starts ``caresync serve`` and measures:

1. **load**: ``--clients`` simulated FHIR apps (spread over demo doctors, nurses and the demo patient, each
   with its user's bearer token) repeat: ``GET /fhir/R4/Patient/{id}`` of a patient they may see, then
   ``GET /fhir/R4/Appointment?patient={id}`` (the first page, 20), pausing ``--think-ms`` (0.5-1.5x) between
   requests like a person using an app (``--think-ms 0`` is a closed loop measuring saturation, see
   ``bench/api_load.py``). One unmeasured warm-up round per account first. p50/p95/p99 per interaction.
   Target: p95 < 50 ms for each.
2. **everything**: ``GET /fhir/R4/Patient/{id}/$everything`` for the 5,000-record patient, as the demo
   doctor, ``--everything`` times one after another (after two unmeasured ones); p50/p95/max and the number
   of entries in the Bundle. Target: p95 < 1 s.

Prints one JSON object on stdout; progress on stderr. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api_load import ACCOUNTS, PATIENT_ACCOUNT, REQUEST_TIMEOUT_S, Server, Stats, login, percentile
from records import seed as seed_records

TARGET = {"patient_read_p95_ms": 50, "appointment_search_p95_ms": 50, "everything_p95_ms": 1000}
DOCTOR = "doctor@riverside.demo.caresync.dev"
FHIR = "/fhir/R4"
FHIR_JSON = "application/fhir+json"


def log(message: str) -> None:
    """Progress to stderr (stdout carries only the JSON result)."""
    print(f"[fhir] {message}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict[str, Any]:
    """Count and percentiles of latencies in ms."""
    ordered = sorted(values)
    return {
        "requests": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 1) if ordered else None,
        "p95_ms": round(percentile(ordered, 95), 1) if ordered else None,
        "p99_ms": round(percentile(ordered, 99), 1) if ordered else None,
        "max_ms": round(ordered[-1], 1) if ordered else None,
    }


async def visible_patients(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    """The ids of (up to 50 of) the patients this token may see, through a FHIR Patient search."""
    response = await client.get(f"{FHIR}/Patient", params={"_count": 50}, headers=headers)
    if response.status_code != 200:
        log(f"Patient search: HTTP {response.status_code} {response.text[:200]}")
        return []
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


async def app_loop(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    patient_ids: list[str],
    stats: Stats,
    deadline: float,
    think_s: float,
    rng: random.Random,
    rounds: int | None = None,
) -> None:
    """One simulated FHIR app until the deadline (or for ``rounds`` rounds): read a patient, then search
    that patient's appointments; repeat."""

    async def get(endpoint: str, path: str, params: dict[str, Any] | None = None) -> None:
        if time.perf_counter() >= deadline:
            return
        t0 = time.perf_counter()
        try:
            response = await client.get(path, headers=headers, params=params)
            ok_type = response.headers.get("content-type", "").startswith(FHIR_JSON)
            status = response.status_code if ok_type else 599
            stats.record(endpoint, (time.perf_counter() - t0) * 1000, status)
        except httpx.HTTPError as exc:
            stats.record(endpoint, (time.perf_counter() - t0) * 1000, None, type(exc).__name__)
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

    if think_s:  # apps do not all start at the same instant
        await asyncio.sleep(rng.uniform(0, think_s))
    done = 0
    while time.perf_counter() < deadline and (rounds is None or done < rounds):
        done += 1
        patient_id = rng.choice(patient_ids)
        await get("patient_read", f"{FHIR}/Patient/{patient_id}")
        await get("appointment_search", f"{FHIR}/Appointment", {"patient": patient_id})


async def run_load(
    base_url: str, clients: int, duration_s: float, think_ms: float
) -> tuple[Stats, float, dict[str, int]]:
    """Sign the accounts in, find their patients, run the apps; returns stats, elapsed s, patients/account."""
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        log(f"signing in {len(ACCOUNTS)} accounts")
        headers = {email: {"Authorization": f"Bearer {await login(client, email)}"} for email in ACCOUNTS}
        patients = {email: await visible_patients(client, headers[email]) for email in ACCOUNTS}
        # e.g. the demo's doctor with a lapsed licence may not open patients: their apps would only see 403s
        usable = [email for email in ACCOUNTS if patients[email]]
        for email in sorted(set(ACCOUNTS) - set(usable)):
            log(f"{email} sees no patients through FHIR; its apps are left out")
        if not usable:
            raise RuntimeError("no account sees any patient through FHIR")
        accounts = [usable[i % len(usable)] for i in range(clients)]
        for email in usable:
            await app_loop(client, headers[email], patients[email], Stats(), time.perf_counter() + 60, 0.0,
                           random.Random(0), rounds=2)  # fmt: skip
        log(f"running {clients} FHIR apps for {duration_s:g}s (think {think_ms:g} ms)")
        stats = Stats()
        start = time.perf_counter()
        deadline = start + duration_s
        apps = [
            app_loop(
                client, headers[email], patients[email], stats, deadline, think_ms / 1000, random.Random(i)
            )
            for i, email in enumerate(accounts)
        ]
        await asyncio.wait_for(asyncio.gather(*apps), timeout=duration_s + REQUEST_TIMEOUT_S + 30)
        return stats, time.perf_counter() - start, {e: len(patients[e]) for e in usable}


def everything(
    base_url: str, patient_id: str, n: int, log_tail: Callable[[], str] | None = None
) -> dict[str, Any]:
    """Latency of ``n`` sequential ``$everything`` requests (after 2 unmeasured ones) as the demo doctor."""

    async def token() -> str:
        async with httpx.AsyncClient(base_url=base_url) as c:
            return await login(c, DOCTOR)

    headers = {"Authorization": f"Bearer {asyncio.run(token())}"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    entries: dict[str, int] = {}
    size = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        for i in range(n + 2):
            t0 = time.perf_counter()
            try:
                response = client.get(f"{FHIR}/Patient/{patient_id}/$everything")
            except httpx.HTTPError as exc:  # e.g. the server dropped the connection after an error
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
                log(f"$everything: HTTP {response.status_code} {response.text[:300]}")
                if log_tail is not None:
                    log(f"server log:\n{log_tail()}")
                continue
            if i >= 2:
                latencies.append(elapsed)
            if i == 0:
                size = len(response.content)
                entries = {}
                for entry in response.json().get("entry", []):
                    kind = entry["resource"]["resourceType"]
                    entries[kind] = entries.get(kind, 0) + 1
    return {
        "path": "GET /fhir/R4/Patient/{id}/$everything, sequential",
        **summary(latencies),
        "entries": sum(entries.values()),
        "entries_by_type": entries,
        "bytes": size,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent FHIR apps (default 50)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--think-ms", type=float, default=1000.0,
                        help="mean pause between requests (default 1000); 0 = closed loop")  # fmt: skip
    parser.add_argument("--records", type=int, default=5000, help="records of the $everything patient")
    parser.add_argument("--everything", type=int, default=20, help="$everything requests (default 20)")
    parser.add_argument("--port", type=int, default=8769, help="server port on 127.0.0.1 (default 8769)")
    parser.add_argument("--workers", type=int, default=1, help="`caresync serve --workers` (default 1)")
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--patients", type=int, default=60, help="demo patients to load (default 60)")
    args = parser.parse_args()
    if args.clients < 1 or not 0 < args.duration <= 3600 or args.think_ms < 0 or args.everything < 1:
        parser.error("need --clients >= 1, 0 < --duration <= 3600, --think-ms >= 0 and --everything >= 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(args.port, workers=args.workers, patients=args.patients)
    os.environ["CARESYNC_VAR_DIR"] = str(server.var_dir)  # caresync.demo (TOTP secrets) reads settings
    if args.database_url:  # an empty database the benchmark may fill (e.g. from scripts/pg-test.sh url)
        server.env["CARESYNC_DATABASE_URL"] = os.environ["CARESYNC_DATABASE_URL"] = args.database_url
    try:
        kind = "PostgreSQL" if args.database_url else "SQLite"
        log(f"preparing a fresh deployment ({kind}) in {server.root}")
        server.setup()
        t0 = time.perf_counter()
        patient_id = seed_records(server.var_dir, args.records)
        seed_s = time.perf_counter() - t0
        log(f"seeded {args.records} records in {seed_s:.1f}s; starting the server")
        server.start()
        metadata = httpx.get(f"{server.base_url}{FHIR}/metadata", timeout=30).json()
        offered = sorted(r["type"] for r in metadata["rest"][0]["resource"])
        log(f"resource types offered: {', '.join(offered)}")
        with contextlib.suppress(ImportError):
            import uvloop  # the client's own overhead steals CPU from the server: keep it small

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        stats, elapsed, seen = asyncio.run(
            run_load(server.base_url, args.clients, args.duration, args.think_ms)
        )
        log(f"load done: {stats.requests} requests in {elapsed:.1f}s")
        whole = everything(server.base_url, patient_id, args.everything, server.log_tail)
        log(f"$everything: {whole}")
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}\nserver log:\n{server.log_tail()}")
        return 1
    finally:
        server.stop()
        server.cleanup()

    endpoints = {name: summary(values) for name, values in stats.by_endpoint.items()}
    read = endpoints.get("patient_read", summary([]))
    search = endpoints.get("appointment_search", summary([]))
    errors = sum(stats.errors.values())
    result = {
        "benchmark": "fhir",
        "clients": args.clients,
        "think_ms": args.think_ms,
        "duration_s": round(elapsed, 2),
        "requests": stats.requests,
        "rps": round(stats.requests / elapsed, 1) if elapsed else 0.0,
        "errors": errors,
        "error_kinds": dict(stats.errors),
        "patient_read": read,
        "appointment_search": search,
        "patients_seen_per_account": seen,
        "everything": {"records": args.records, "seed_s": round(seed_s, 1), **whole},
        "resource_types": offered,
        "target": TARGET,
        "met": bool(read["requests"] and search["requests"])
        and read["p95_ms"] < TARGET["patient_read_p95_ms"]
        and search["p95_ms"] < TARGET["appointment_search_p95_ms"]
        and errors == 0
        and whole["p95_ms"] is not None
        and whole["p95_ms"] < TARGET["everything_p95_ms"]
        and whole["entries"] > args.records
        and not whole["errors"],
        "cores": os.cpu_count(),
        "database": "postgresql" if args.database_url else "sqlite",
        "server_workers": args.workers,
        "patients": args.patients,
        "account_of_patient_app": PATIENT_ACCOUNT,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
