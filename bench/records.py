"""Health-records benchmark: a 5,000-record timeline, and signed uploads of a 2 MB PDF, over HTTP.

Run as its own process: ``python bench/records.py [--records 5000] [--requests 200] [--uploads 40]``.

It builds a fresh SQLite deployment (``caresync migrate`` + ``caresync demo --patients 60``), adds a patient
cared for by the demo doctor and gives them ``--records`` records through the records service (ten years
of labs, vital signs, diagnoses, medications and more, each stored encrypted, signed and audited like any
upload). It starts ``caresync serve``, signs the demo doctor in, and measures, one request at a time:

1. **timeline**: ``GET /api/v1/records?patient_id=...`` (the first page, 50 newest records) and a filtered
   page (``category=lab`` within a two-year range), ``--requests`` of each after a warm-up; p50/p95.
   Target: p95 < 80 ms.
2. **upload**: ``POST /api/v1/records`` (multipart) of a 2 MB PDF lab report, ``--uploads`` times with
   different content each time (so every upload is hashed, encrypted, written and signed anew); p50/p95.
   Target: p95 < 150 ms.

Prints one JSON object on stdout; progress on stderr. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api_load import Server, log, login, patient_in_care, percentile

TARGET = {"timeline_p95_ms": 80, "upload_p95_ms": 150}
DOCTOR = "doctor@riverside.demo.caresync.dev"
PDF_BYTES = 2 * 1024 * 1024
# category: share of the records (a long chronic history is mostly vital signs and labs)
MIX = {"vitals": 40, "lab": 25, "medication": 8, "note": 7, "diagnosis": 5, "immunisation": 5,
       "procedure": 4, "document": 3, "discharge": 2, "allergy": 1}  # fmt: skip


def seed(var_dir: Path, count: int) -> str:
    """Add a patient of the demo doctor with ``count`` records; returns the patient's id."""
    os.environ["CARESYNC_VAR_DIR"] = str(var_dir)
    from sqlalchemy import select

    from caresync.core.auth import Principal
    from caresync.db import session_factory, transaction
    from caresync.identity.models import User
    from caresync.records import service

    rng = random.Random(5)
    today = date.today()
    with transaction(session_factory()) as s:
        doctor = s.execute(select(User).where(User.email == DOCTOR)).scalar_one()
        assert doctor.organisation_id is not None
        patient = patient_in_care(
            s, doctor, given_name="Timeline", family_name="Bench", sex="female", birth_date=date(1950, 5, 17)
        )
        patient_id = patient.id
        actor = Principal(doctor.id, doctor.role, doctor.full_name, doctor.organisation_id)
    categories = list(MIX)
    weights = list(MIX.values())
    done = 0
    while done < count:
        with transaction(session_factory()) as s:  # commits in batches, as a busy ward would
            for i in range(done, min(count, done + 500)):
                category = rng.choices(categories, weights)[0]
                day = today - timedelta(days=rng.randint(0, 3650))
                measurements = (
                    {"systolic": rng.randint(110, 160), "diastolic": rng.randint(60, 95)}
                    if category == "vitals"
                    else None
                )
                body = f"Bench record {i}: {category} on {day.isoformat()}, value {rng.random():.6f}\n"
                service.upload(
                    s,
                    actor,
                    service.Upload(
                        patient_id, category, f"Bench {category} {i}", day, "bench", None, None, measurements
                    ),
                    body.encode(),
                )
        done = min(count, done + 500)
        log(f"{done} records")
    return str(patient_id)


def pdf_template() -> bytes:
    """A valid PDF lab report of just over 2 MB (many pages of results) with a fixed-width run marker in
    its title."""
    from caresync.records.demo_documents import text_pdf

    def report(rows: int) -> bytes:
        row = ("Haemoglobin A1c", "6.9", "%", "4.0 - 5.6", "H")
        return text_pdf("Lab report run 000000", ["# Glycaemic control", *[row] * rows], subtitle="Bench lab")

    probe = 1000
    return report(math.ceil(probe * PDF_BYTES / len(report(probe))) + 20)


def measure(client: httpx.Client, path: str, params: dict[str, Any], n: int) -> dict[str, Any]:
    """Latency of ``n`` sequential GETs (after 10 unmeasured ones)."""
    latencies: list[float] = []
    errors = 0
    items = 0
    for i in range(n + 10):
        t0 = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            errors += 1
        elif i >= 10:
            latencies.append(elapsed)
            items = len(response.json()["items"])
    latencies.sort()
    return {
        "requests": len(latencies),
        "items_per_page": items,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "errors": errors,
    }


def uploads(client: httpx.Client, patient_id: str, n: int) -> dict[str, Any]:
    """Latency of ``n`` sequential 2 MB PDF uploads, each with different content."""
    template = pdf_template()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for i in range(n + 2):  # the first two are a warm-up
        data = template.replace(b"run 000000", b"run %06d" % i)
        t0 = time.perf_counter()
        response = client.post(
            "/api/v1/records",
            data={"patient_id": patient_id, "category": "lab", "title": f"Lab report {i}",
                  "recorded_on": date.today().isoformat()},
            files={"file": ("report.pdf", data, "application/pdf")},
        )  # fmt: skip
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 201:
            errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
        elif i >= 2:
            latencies.append(elapsed)
    latencies.sort()
    return {
        "path": "HTTP POST /api/v1/records (multipart), sequential",
        "file_bytes": len(template),
        "uploads": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000, help="records on the patient (default 5000)")
    parser.add_argument("--requests", type=int, default=200, help="timeline requests per kind (default 200)")
    parser.add_argument("--uploads", type=int, default=40, help="2 MB uploads (default 40)")
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(args.port, workers=1, patients=60)
    os.environ["CARESYNC_VAR_DIR"] = str(server.var_dir)  # caresync.demo (TOTP secrets) reads settings
    try:
        server.setup()
        t0 = time.perf_counter()
        patient_id = seed(server.var_dir, args.records)
        seed_s = time.perf_counter() - t0
        log(f"seeded {args.records} records in {seed_s:.1f}s; starting the server")
        server.start()
        import asyncio

        async def token() -> str:
            async with httpx.AsyncClient(base_url=server.base_url) as c:
                return await login(c, DOCTOR)

        headers = {"Authorization": f"Bearer {asyncio.run(token())}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            first = measure(client, "/api/v1/records", {"patient_id": patient_id}, args.requests)
            log(f"first page: {first}")
            since = date.today() - timedelta(days=5 * 365)
            window = {"date_from": since.isoformat(), "date_to": (since + timedelta(days=730)).isoformat()}
            filtered = measure(
                client,
                "/api/v1/records",
                {"patient_id": patient_id, "category": "lab", **window},
                args.requests,
            )
            log(f"filtered page: {filtered}")
            upload = uploads(client, patient_id, args.uploads)
            log(f"uploads: {upload}")
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    finally:
        server.stop()
        server.cleanup()
    timeline_p95 = max(first["p95_ms"], filtered["p95_ms"])
    result = {
        "benchmark": "records",
        "records": args.records,
        "seed_s": round(seed_s, 1),
        "timeline": {"first_page": first, "filtered_page": filtered},
        "upload_2mb_pdf": upload,
        "target": TARGET,
        "met": timeline_p95 < TARGET["timeline_p95_ms"]
        and upload["p95_ms"] < TARGET["upload_p95_ms"]
        and not (first["errors"] or filtered["errors"] or upload["errors"]),
        "cores": os.cpu_count(),
        "database": "sqlite",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
