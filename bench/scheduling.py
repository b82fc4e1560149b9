"""Scheduling benchmark: directory search over 2,000 practitioners, and booking under 100 concurrent patients.

Run as its own process: ``python bench/scheduling.py [--practitioners 2000] [--patients 100]
[--duration 20]``.

It builds a fresh SQLite deployment (``caresync migrate`` + ``caresync demo --patients 200``), then adds
``--practitioners`` doctors with directory profiles (random specialties, languages, insurance plans, one of
40 locations around Lisbon), weekly hours valid for the next six months, about a third of the next two
weeks' slots booked, and ``--patients`` patient accounts. It starts ``caresync serve`` and measures, over
HTTP:

1. **search**: 10 signed-in users run mixed directory searches (specialty, insurance, language, free text,
   "free before", sorted by distance from their address), pausing 0.5-1.5 s between searches like people
   reading results, for ``--duration`` seconds; p50/p95 latency. Target: p95 < 50 ms.
2. **booking**: ``--patients`` concurrent patients each repeatedly pick one of 20 popular practitioners,
   read a day of free slots and book one (on a 409 they try again) for ``--duration`` seconds; bookings/s,
   conflicts, and a check in the database that no slot holds two appointments. Target: 0 double bookings.

Prints one JSON object on stdout; progress on stderr. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api_load import PASSWORD, Server, log, percentile

TARGET = {"search_p95_ms": 50, "double_bookings": 0}
SEARCH_USERS = 10
POPULAR = 20  # practitioners the booking patients compete for
LOCATIONS = 40


def populate(var_dir: Path, practitioners: int, patients: int, seed: int = 3) -> list[str]:
    """Add the practitioners, schedules, bookings and patient accounts; returns the patients' emails."""
    os.environ["CARESYNC_VAR_DIR"] = str(var_dir)
    from datetime import time as clock

    from sqlalchemy import select

    from caresync.core import crypto
    from caresync.db import session_factory, transaction, utcnow
    from caresync.identity.models import Organisation, User
    from caresync.identity.patients import new_patient
    from caresync.scheduling.availability import free_slots, next_free_slot
    from caresync.scheduling.directory import search_text_for
    from caresync.scheduling.models import (
        Appointment,
        Location,
        Practitioner,
        PractitionerInsurance,
        PractitionerLanguage,
        PractitionerSpecialty,
        Schedule,
    )
    from caresync.scheduling.rules import INSURANCE_PLANS, LANGUAGES, SPECIALTIES

    rng = random.Random(seed)
    now = utcnow()
    today = now.date()
    password_hash = crypto.hash_password(PASSWORD)
    emails: list[str] = []
    with transaction(session_factory()) as s:
        org = s.execute(select(Organisation).where(Organisation.kind == "hospital")).scalars().first()
        assert org is not None, "run `caresync demo` first"
        locations = [
            Location(
                organisation_id=org.id,
                name=f"Clinic {i}",
                city="Lisbon",
                timezone="Europe/Lisbon",
                latitude=38.72 + rng.uniform(-0.3, 0.3),
                longitude=-9.14 + rng.uniform(-0.3, 0.3),
            )
            for i in range(LOCATIONS)
        ]
        s.add_all(locations)
        s.flush()
        made: list[Practitioner] = []
        for i in range(practitioners):
            user = User(
                email=f"bench.doctor{i}@bench.caresync.dev",
                full_name=f"Bench Doctor {i}",
                role="doctor",
                organisation_id=org.id,
                password_hash=password_hash,
                password_changed_at=now,
            )
            s.add(user)
            s.flush()
            specialties = rng.sample(sorted(SPECIALTIES), k=rng.randint(1, 2))
            p = Practitioner(
                user_id=user.id,
                organisation_id=org.id,
                display_name=user.full_name,
                title="Dr",
                video=rng.random() < 0.4,
                search_text=search_text_for(user.full_name, "Dr", specialties, ""),
                specialties=[PractitionerSpecialty(code=c) for c in specialties],
                languages=[PractitionerLanguage(code=c) for c in {"pt", *rng.sample(sorted(LANGUAGES), k=2)}],
                insurance_plans=[
                    PractitionerInsurance(plan=c) for c in rng.sample(sorted(INSURANCE_PLANS), k=3)
                ],
            )
            s.add(p)
            s.flush()
            location = rng.choice(locations)
            for day in rng.sample(range(5), k=rng.randint(2, 5)):
                s.add(
                    Schedule(
                        practitioner_id=p.id,
                        location_id=location.id,
                        weekday=day,
                        start_time=clock(9),
                        end_time=clock(17),
                        slot_minutes=rng.choice((15, 20, 30)),
                        breaks='[["12:00", "13:00"]]',
                        valid_from=today,
                        valid_until=today + timedelta(days=183),
                    )
                )
            made.append(p)
        s.flush()
        log(f"added {practitioners} practitioners; booking about a third of their next two weeks")
        booked = 0
        for i, p in enumerate(made[POPULAR:]):  # the popular ones stay free for the booking race
            # each practitioner's existing bookings belong to one patient of theirs: nobody is double-booked
            regular = new_patient(
                given_name="Regular",
                family_name=f"Patient{i}",
                sex="male",
                birth_date=datetime(1970, 1, 1).date(),
            )
            s.add(regular)
            s.flush()
            for slot in free_slots(s, p.id, today, today + timedelta(days=13), now):
                if rng.random() < 0.33:
                    s.add(
                        Appointment(
                            patient_id=regular.id,
                            practitioner_id=p.id,
                            location_id=slot.location_id,
                            start_at=slot.start,
                            end_at=slot.end,
                        )
                    )
                    booked += 1
            if booked % 5000 < 60:
                s.flush()
        s.flush()
        for p in made:
            slot = next_free_slot(s, p.id, now)
            p.next_free_slot_at = slot.start if slot else None
        for i in range(patients):
            patient = new_patient(
                given_name="Bench",
                family_name=f"Patient{i}",
                sex="female",
                birth_date=datetime(1980, 1, 1).date(),
                latitude=38.72,
                longitude=-9.14,
            )
            s.add(patient)
            user = User(
                email=f"bench.patient{i}@bench.caresync.dev",
                full_name=f"Bench Patient{i}",
                role="patient",
                password_hash=password_hash,
                password_changed_at=now,
            )
            s.add(user)
            s.flush()
            patient.user_id = user.id
            emails.append(user.email)
        log(f"{booked} appointments booked; {patients} patient accounts")
    return emails


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=120
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def search_load(base_url: str, emails: list[str], duration: float) -> dict[str, Any]:
    from caresync.scheduling.rules import INSURANCE_PLANS, LANGUAGES, SPECIALTIES

    rng = random.Random(1)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    totals: list[int] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        headers = [await sign_in(client, e) for e in emails[:SEARCH_USERS]]
        deadline = time.perf_counter() + duration

        async def user(h: dict[str, str]) -> None:
            while time.perf_counter() < deadline:
                params: dict[str, str] = {"limit": "20"}
                for key, values in (
                    ("specialty", SPECIALTIES),
                    ("insurance", INSURANCE_PLANS),
                    ("language", LANGUAGES),
                ):
                    if rng.random() < 0.5:
                        params[key] = rng.choice(sorted(values))
                if rng.random() < 0.2:
                    params["q"] = rng.choice(("bench", "doctor 1", "cardio", "derm"))
                if rng.random() < 0.3:
                    params["free_before"] = (
                        datetime.now(UTC).date() + timedelta(days=rng.randint(1, 10))
                    ).isoformat()
                params["sort"] = rng.choice(("relevance", "distance", "next_free"))
                t0 = time.perf_counter()
                try:
                    r = await client.get("/api/v1/scheduling/practitioners", params=params, headers=h)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        errors[str(r.status_code)] += 1
                    else:
                        totals.append(r.json()["total"])
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                await asyncio.sleep(rng.uniform(0.5, 1.5))

        await asyncio.gather(*(user(h) for h in headers))
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "mean_matches": round(sum(totals) / len(totals), 1) if totals else 0,
        "errors": dict(errors),
    }


async def booking_load(base_url: str, emails: list[str], duration: float) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=len(emails) + 5)
    ) as client:
        headers = [await sign_in(client, e) for e in emails]
        first = await client.get(
            "/api/v1/scheduling/practitioners",
            params={"sort": "name", "q": "bench", "limit": str(POPULAR)},
            headers=headers[0],
        )
        popular = [hit["practitioner"]["id"] for hit in first.json()["items"]]
        deadline = time.perf_counter() + duration
        start = time.perf_counter()

        async def patient(i: int, h: dict[str, str]) -> None:
            rng = random.Random(i)
            while time.perf_counter() < deadline:
                practitioner = rng.choice(popular)
                day = (datetime.now(UTC).date() + timedelta(days=rng.randint(1, 20))).isoformat()
                slots = await client.get(
                    f"/api/v1/scheduling/practitioners/{practitioner}/slots",
                    params={"start": day, "end": day},
                    headers=h,
                )
                if slots.status_code != 200 or not slots.json():
                    outcomes["no_slot"] += 1
                    continue
                choice = rng.choice(slots.json()[:4])  # everyone wants the morning: contention on purpose
                r = await client.post(
                    "/api/v1/scheduling/appointments",
                    json={"practitioner_id": practitioner, "start": choice["start"]},
                    headers=h,
                )
                outcomes[{201: "booked", 409: "conflict"}.get(r.status_code, f"http_{r.status_code}")] += 1

        await asyncio.gather(*(patient(i, h) for i, h in enumerate(headers)))
        elapsed = time.perf_counter() - start
    return {
        "elapsed_s": round(elapsed, 1),
        "bookings": outcomes["booked"],
        "bookings_per_s": round(outcomes["booked"] / elapsed, 1),
        "outcomes": dict(outcomes),
    }


def double_bookings(var_dir: Path) -> int:
    """Slots holding more than one appointment (must be 0)."""
    os.environ["CARESYNC_VAR_DIR"] = str(var_dir)
    from sqlalchemy import func, select

    from caresync.db import session_factory
    from caresync.scheduling.models import Appointment
    from caresync.scheduling.rules import HOLDS_SLOT

    with session_factory()() as s:
        holding = Appointment.status.in_([x.value for x in HOLDS_SLOT])
        groups = (
            select(Appointment.practitioner_id, Appointment.start_at)
            .where(holding)
            .group_by(Appointment.practitioner_id, Appointment.start_at)
            .having(func.count() > 1)
        )
        return len(s.execute(groups).all())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practitioners", type=int, default=2000)
    parser.add_argument("--patients", type=int, default=100, help="concurrent booking patients (default 100)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase (default 20)")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(args.port, workers=1, patients=200)
    try:
        server.setup()
        t0 = time.perf_counter()
        emails = populate(server.var_dir, args.practitioners, args.patients)
        log(f"populated in {time.perf_counter() - t0:.1f}s; starting the server")
        server.start()
        search = asyncio.run(search_load(server.base_url, emails, args.duration))
        log(f"search: {search}")
        booking = asyncio.run(booking_load(server.base_url, emails, args.duration))
        log(f"booking: {booking}")
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    finally:
        server.stop()
    doubles = double_bookings(server.var_dir)
    server.cleanup()
    result = {
        "benchmark": "scheduling",
        "practitioners": args.practitioners,
        "search": search,
        "booking": {**booking, "concurrent_patients": args.patients, "double_bookings": doubles},
        "target": TARGET,
        "met": search["p95_ms"] < TARGET["search_p95_ms"] and doubles == 0,
        "cores": os.cpu_count(),
        "database": "sqlite",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
