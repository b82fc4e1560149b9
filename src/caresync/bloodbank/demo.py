"""Blood bank demo data that tells a consistent story, loaded by ``caresync demo``.

Three blood banks hold stock: the two hospitals and the National Blood Centre. ~300 donors live around
Lisbon and Porto with up to two years of donations that every rule allows (each donation is checked with
:func:`caresync.bloodbank.rules.donor_eligibility` against the donor's earlier ones), a few deferrals
(one permanent) and some unavailable donors. The demo donor (O-) is eligible today and has an appointment
at the Blood Centre. Every unit's expiry is its collection plus :func:`rules.shelf_life`; every status it
ever had is a history event, in order, following :data:`rules.UNIT_TRANSITIONS`. Twelve months of use,
outdates and discards give the reports and days of supply their figures. Riverside is short of O- red
cells (so the low-stock alert and a donor call-out make sense), units expire within two days, recent
donations wait in quarantine, and Riverside has open requests from the demo doctor and a completed one.

Rows are inserted directly (bulk inserts: a few seconds), bypassing the services and their audit."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from caresync.bloodbank import rules
from caresync.bloodbank.donors.din import facility_number
from caresync.bloodbank.models import (
    BloodBankPolicy,
    BloodRequest,
    BloodUnit,
    Donation,
    DonationAppointment,
    Donor,
    DonorDeferral,
    UnitEvent,
)
from caresync.bloodbank.rules import Component, UnitStatus
from caresync.db import Base
from caresync.identity.models import CareRelationship, Organisation, Patient, User

DONORS = 300
TODAYS_DONORS = 6  # donors who may give at the Blood Centre this morning
HISTORY_DAYS = 365  # of unit use at the hospitals
DONATION_YEARS = 2
# Approximate ABO/Rh distribution in Portugal (IPST); the donors and the demand follow it.
GROUP_WEIGHTS = {"O-": 6, "O+": 36, "A-": 7, "A+": 40, "B-": 1, "B+": 7, "AB-": 1, "AB+": 2}
CITIES = {"Lisbon": (38.7223, -9.1393), "Porto": (41.1579, -8.6291)}
# Red cells used a day at the bigger hospital (the other uses 60 % of it).
RED_CELL_USE = {"O+": 1.1, "A+": 0.9, "O-": 0.4, "A-": 0.2, "B+": 0.25, "B-": 0.04, "AB+": 0.08, "AB-": 0.02}
PLATELET_USE, PLASMA_USE = 0.4, 0.4
# Available red cells on the shelf now at the bigger hospital: O- deliberately short.
RED_CELL_STOCK = {"O+": 14, "A+": 12, "O-": 1, "A-": 4, "B+": 5, "B-": 2, "AB+": 3, "AB-": 1}
# How old a unit usually is when it is used (days since collection).
USUAL_AGE_DAYS = {
    Component.RED_CELLS: (4.0, 30.0),
    Component.PLATELETS: (2.0, 4.0),
    Component.PLASMA: (15.0, 250.0),
}
SUPPLIER_FIN = "W1900"  # units bought from the national supplier (hospitals collect few donations)
DISCARD_REASONS = ("broken bag", "failed visual inspection", "temperature excursion", "label error")
DEFERRAL_REASONS = (
    ("temporary", "Travel to a malaria-risk area", 90),
    ("temporary", "Tattoo in the last four months", 120),
    ("temporary", "Low haemoglobin at screening", 90),
    ("temporary", "Dental surgery", 7),
)
PERMANENT_DEFERRAL = "Confirmed reactive test for hepatitis C"
DONATION_TYPE_WEIGHTS = {"whole_blood": 80, "platelets": 10, "plasma": 10}
FIRST_NAMES = {
    "F": ("Ana", "Maria", "Sofia", "Beatriz", "Ines", "Marta", "Joana", "Rita", "Carla", "Lucia", "Amara"),
    "M": ("Joao", "Pedro", "Miguel", "Tiago", "Rui", "Andre", "Bruno", "Nuno", "Paulo", "Kwame", "Omar"),
}
FAMILY_NAMES = (
    "Silva",
    "Santos",
    "Ferreira",
    "Pereira",
    "Oliveira",
    "Costa",
    "Rodrigues",
    "Martins",
    "Sousa",
    "Fernandes",
    "Goncalves",
    "Gomes",
    "Lopes",
    "Marques",
    "Alves",
    "Almeida",
)


@dataclass(frozen=True)
class BloodDemo:
    """What was loaded."""

    policies: int
    donors: int
    donations: int
    deferrals: int
    appointments: int
    units: int
    unit_events: int
    requests: int


@dataclass
class _Rows:
    """Rows gathered for bulk inserts, and the DIN sequences used so far per facility and year."""

    rng: random.Random
    now: datetime
    donors: list[dict[str, Any]] = field(default_factory=list)
    donations: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)

    def new_id(self) -> uuid.UUID:
        """A random id drawn from the demo's generator (deterministic)."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def din(self, fin: str, when: datetime) -> str:
        """The next ISBT 128 donation identification number of facility ``fin`` for ``when``'s year."""
        prefix = f"{fin}{when.year % 100:02d}"
        self.sequences[prefix] = self.sequences.get(prefix, 0) + 1
        return f"{prefix}{self.sequences[prefix]:06d}"

    def unit(
        self,
        holder: Organisation,
        group: str,
        spec: rules.UnitSpec,
        collected_at: datetime,
        *,
        din: str,
        donation_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """A unit of ``spec`` (expiry from its shelf life), not yet with any history."""
        row = {
            "id": self.new_id(),
            "organisation_id": holder.id,
            "donation_id": donation_id,
            "din": din,
            "product_code": spec.product_code,
            "component": spec.component,
            "details": dict(spec.details),
            "blood_group": group,
            "volume_ml": spec.volume_ml,
            "collected_at": collected_at,
            "expires_at": collected_at + rules.shelf_life(spec.component, **spec.details),
            "storage_location": _storage(spec.component),
            "status": None,
            "request_id": None,
            "issued_at": None,
            "transfused_at": None,
            "created_at": collected_at,
            "updated_at": collected_at,
        }
        self.units.append(row)
        return row

    def step(
        self,
        unit: dict[str, Any],
        at: datetime,
        target: UnitStatus,
        actor: User | None,
        *,
        note: str = "",
        request_id: uuid.UUID | None = None,
    ) -> None:
        """Move ``unit`` to ``target`` at ``at`` (a legal transition, later than its last step)."""
        current = unit["status"]
        assert current is None or rules.can_transition(current, target), (current, target)
        assert unit["updated_at"] <= at <= self.now, (at, unit["updated_at"])
        held = target in (
            UnitStatus.RESERVED,
            UnitStatus.CROSSMATCHED,
            UnitStatus.ISSUED,
            UnitStatus.TRANSFUSED,
        )
        unit["request_id"] = (request_id or unit["request_id"]) if held else None
        if target is UnitStatus.ISSUED:
            unit["issued_at"] = at
        if target is UnitStatus.TRANSFUSED:
            unit["transfused_at"] = at
        unit["status"], unit["updated_at"] = target.value, at
        self.events.append(
            {
                "id": self.new_id(),
                "unit_id": unit["id"],
                "at": at,
                "from_status": current,
                "to_status": target.value,
                "actor_id": actor.id if actor else None,
                "organisation_id": unit["organisation_id"],
                "request_id": unit["request_id"],
                "transfer_id": None,
                "note": note,
            }
        )


def load(
    session: Session,
    rng: random.Random,
    now: datetime,
    *,
    organisations: Sequence[Organisation],
    donor_user: User,
    staff: Sequence[User],
) -> BloodDemo:
    """Load the blood bank demo into ``session`` (flushed, not committed). ``organisations`` are the demo's
    (the hospitals and the blood centre hold stock), ``donor_user`` the demo donor's account, ``staff``
    the demo's staff users (blood bank staff act on units; the first doctor of the first hospital orders
    blood). Deterministic for a given ``rng`` and ``now``."""
    hospitals = [o for o in organisations if o.kind == "hospital"]
    centre = next(o for o in organisations if o.kind == "blood_bank")
    banks = [*hospitals, centre]
    home, porto = hospitals[0], hospitals[1]
    workers = {
        o.id: [u for u in staff if u.role == "bloodbank_staff" and u.organisation_id == o.id] for o in banks
    }
    doctor = next(u for u in staff if u.role == "doctor" and u.organisation_id == home.id)
    rows = _Rows(rng=rng, now=now)
    policies = _policies(session, banks, home)
    donors = _donors(rows, donor_user, {"Lisbon": centre, "Porto": porto})
    histories = _donation_histories(rows, donors, workers)
    deferrals = _deferrals(rows, donors, histories)
    groups = {d["id"]: d["blood_group"] for d in donors}
    for donation in rows.donations:
        if donation["outcome"] == "completed":
            holder = next(o for o in banks if o.id == donation["organisation_id"])
            _donation_units(rows, holder, donation, groups[donation["donor_id"]], workers[holder.id])
    for hospital, scale in ((home, 1.0), (porto, 0.6)):
        _hospital_history(rows, hospital, scale, workers[hospital.id])
        _hospital_shelf(rows, hospital, scale, workers[hospital.id])
    # Core inserts (executemany): the ORM's bulk path costs seconds for tens of thousands of rows
    session.execute(insert(_table(Donor)), rows.donors)
    session.execute(insert(_table(Donation)), rows.donations)
    session.flush()
    session.add_all(deferrals)
    appointments = _appointments(session, rows, donors, histories, deferrals, centre)
    requests = _requests(session, rows, home, doctor, workers[home.id])
    session.execute(insert(_table(BloodUnit)), rows.units)
    session.execute(insert(_table(UnitEvent)), rows.events)
    session.flush()
    return BloodDemo(
        policies=policies,
        donors=len(rows.donors),
        donations=len(rows.donations),
        deferrals=len(deferrals),
        appointments=appointments,
        units=len(rows.units),
        unit_events=len(rows.events),
        requests=requests,
    )


def _policies(session: Session, banks: list[Organisation], home: Organisation) -> int:
    """US donor rules everywhere; the bigger hospital keeps five days of O- red cells."""
    for bank in banks:
        session.add(
            BloodBankPolicy(
                organisation_id=bank.id,
                rule_profile="US",
                low_stock_days=3.0,
                critical_stock_days=1.0,
                stock_thresholds={"O-:red_cells": 5.0} if bank is home else {},
                baseline_daily_use={f"{g}:red_cells": use for g, use in RED_CELL_USE.items()}
                if bank is home
                else {},
                expiry_warning_days=3,
            )
        )
    return len(banks)


def _donors(rows: _Rows, donor_user: User, registered_at: dict[str, Organisation]) -> list[dict[str, Any]]:
    rng = rows.rng
    donors = rows.donors
    for index in range(DONORS):
        city = "Lisbon" if index < DONORS * 0.6 else "Porto"
        sex = rng.choice(("F", "M"))
        lat, lon = CITIES[city]
        donors.append(
            {
                "id": rows.new_id(),
                "user_id": None,
                "organisation_id": registered_at[city].id,
                "donor_number": f"D{rng.randrange(10**9):09d}",
                "given_name": rng.choice(FIRST_NAMES[sex]),
                "family_name": rng.choice(FAMILY_NAMES),
                "birth_date": date(rng.randint(1962, 2005), rng.randint(1, 12), rng.randint(1, 28)),
                "sex": sex,
                "blood_group": rng.choices(list(GROUP_WEIGHTS), weights=list(GROUP_WEIGHTS.values()))[0],
                "weight_kg": round(rng.uniform(55, 98), 1),
                "phone": f"+351 9{rng.randint(10_000_000, 99_999_999)}",
                "email": "",
                "city": city,
                "latitude": round(lat + rng.uniform(-0.15, 0.15), 5),
                "longitude": round(lon + rng.uniform(-0.15, 0.15), 5),
                "parental_consent": False,
                "available": rng.random() > 0.05,
                "unavailable_until": None,
                "created_at": rows.now - timedelta(days=DONATION_YEARS * 365 + 30),
                "updated_at": rows.now,
            }
        )
        if donors[-1]["available"] and rng.random() < 0.04:
            donors[-1]["unavailable_until"] = rows.now.date() + timedelta(days=rng.randint(5, 40))
    # the demo donor: O-, in Lisbon, registered at the Blood Centre
    donors[0].update(
        user_id=donor_user.id,
        given_name="Daniel",
        family_name="Donor",
        email=donor_user.email,
        sex="M",
        blood_group="O-",
        birth_date=date(1988, 4, 12),
        weight_kg=78.0,
        city="Lisbon",
        latitude=38.7361,
        longitude=-9.1480,
        available=True,
        unavailable_until=None,
    )
    return donors


def _donation_histories(
    rows: _Rows, donors: list[dict[str, Any]], workers: dict[uuid.UUID, list[User]]
) -> dict[uuid.UUID, list[tuple[date, str]]]:
    """Each donor's completed donations ``(day, type)``: every one allowed by the rules on its day given
    the earlier ones; a few screening deferrals (low haemoglobin) between them; a few Lisbon donors gave
    whole blood this morning (their units are still in testing)."""
    rng, today = rows.rng, rows.now.date()
    histories: dict[uuid.UUID, list[tuple[date, str]]] = {}
    for index, donor in enumerate(donors):
        wanted = 4 if index == 0 else rng.randint(0, 8)
        day = today - timedelta(days=DONATION_YEARS * 365 - rng.randint(0, 200))
        done: list[tuple[date, str]] = []
        while len(done) < wanted:
            kind = (
                "whole_blood"
                if index == 0
                else rng.choices(list(DONATION_TYPE_WEIGHTS), weights=list(DONATION_TYPE_WEIGHTS.values()))[0]
            )
            facts = {**donor, "hemoglobin_g_dl": 14.0, "donations": done}
            verdict = rules.donor_eligibility(facts, kind, day)
            if not verdict.eligible:
                assert verdict.next_eligible_date is not None, verdict.reasons
                day = verdict.next_eligible_date
                continue
            if day >= today - timedelta(days=1 if index else 70):
                break
            at = datetime.combine(day, time(rng.randint(8, 17), rng.choice((0, 15, 30, 45))), tzinfo=UTC)
            if index and rng.random() < 0.06:
                _donation(rows, donor, workers, at, kind, "deferred")
            else:
                _donation(rows, donor, workers, at, kind, "completed")
                done.append((day, kind))
            day += timedelta(days=rng.randint(10, 160))
        histories[donor["id"]] = done
    for hours, donor in enumerate(donors[DONORS // 2 : DONORS // 2 + TODAYS_DONORS], start=2):  # in Lisbon
        facts = {**donor, "hemoglobin_g_dl": 14.0, "donations": histories[donor["id"]]}
        if rules.donor_eligibility(facts, "whole_blood", today).eligible:
            _donation(rows, donor, workers, rows.now - timedelta(hours=hours), "whole_blood", "completed")
            histories[donor["id"]].append((today, "whole_blood"))
    return histories


def _donation(
    rows: _Rows,
    donor: dict[str, Any],
    workers: dict[uuid.UUID, list[User]],
    at: datetime,
    kind: str,
    outcome: str,
) -> None:
    rng = rows.rng
    completed = outcome == "completed"
    rows.donations.append(
        {
            "id": rows.new_id(),
            "donor_id": donor["id"],
            "organisation_id": donor["organisation_id"],
            "appointment_id": None,
            "donation_type": kind,
            "outcome": outcome,
            "din": rows.din(facility_number(donor["organisation_id"]), at) if completed else None,
            "collected_at": at,
            "volume_ml": {"whole_blood": 470, "platelets": 250, "plasma": 600}[kind] if completed else None,
            "weight_kg": donor["weight_kg"],
            "hemoglobin_g_dl": round(rng.uniform(13.2, 16.5), 1) if completed else 11.8,
            "temperature_c": round(rng.uniform(36.2, 37.1), 1),
            "systolic_mmhg": rng.randint(105, 145),
            "diastolic_mmhg": rng.randint(65, 90),
            "pulse_bpm": rng.randint(58, 92),
            "notes": "" if completed else "Haemoglobin below the minimum: come back in three months.",
            "recorded_by": rng.choice(workers[donor["organisation_id"]]).id,
        }
    )


def _deferrals(
    rows: _Rows, donors: list[dict[str, Any]], histories: dict[uuid.UUID, list[tuple[date, str]]]
) -> list[DonorDeferral]:
    """Temporary deferrals (some over, some running) and one permanent one, each after the donor's last
    donation so that no donation falls inside a deferral."""
    rng, today = rows.rng, rows.now.date()
    deferrals = []
    for index, donor in enumerate(donors[1:13], start=1):
        last = max((d for d, _ in histories[donor["id"]]), default=today - timedelta(days=400))
        if index == 1:
            deferrals.append(
                DonorDeferral(
                    id=rows.new_id(), donor_id=donor["id"], kind="permanent", reason=PERMANENT_DEFERRAL,
                    starts_on=min(last + timedelta(days=3), today), ends_on=None,
                )
            )  # fmt: skip
            continue
        kind, reason, days = rng.choice(DEFERRAL_REASONS)
        starts = last + timedelta(days=rng.randint(1, max(2, (today - last).days)))
        starts = min(starts, today)
        deferrals.append(
            DonorDeferral(
                id=rows.new_id(), donor_id=donor["id"], kind=kind, reason=reason,
                starts_on=starts, ends_on=starts + timedelta(days=days),
            )
        )  # fmt: skip
    return deferrals


def _donation_units(
    rows: _Rows, holder: Organisation, donation: dict[str, Any], group: str, workers: list[User]
) -> None:
    """The units a completed donation made: tested (quarantine) then released, and since then kept,
    issued (to a ward, or to hospitals from the Blood Centre) or expired and disposed of."""
    rng, now = rows.rng, rows.now
    collected = donation["collected_at"]
    for spec in rules.unit_yield(donation["donation_type"]):
        unit = rows.unit(holder, group, spec, collected, din=donation["din"], donation_id=donation["id"])
        worker = rng.choice(workers)
        rows.step(unit, collected + timedelta(hours=1), UnitStatus.QUARANTINED, worker, note="collected")
        released = collected + timedelta(hours=rng.randint(20, 40))
        if released > now:
            continue  # still in testing
        rows.step(unit, released, UnitStatus.AVAILABLE, worker, note="tests negative")
        expires = unit["expires_at"]
        in_date = expires > now
        if in_date and (rng.random() < 0.7 or released > now - timedelta(hours=4)):
            continue  # on the shelf
        if not in_date and rng.random() < 0.12:
            _expire(rows, unit, worker)
            continue
        issued = _between(rng, released + timedelta(hours=2), min(expires, now) - timedelta(hours=1))
        if holder.kind == "blood_bank":
            rows.step(unit, issued, UnitStatus.ISSUED, worker, note="supplied to a hospital blood bank")
        else:
            _transfuse(rows, unit, issued, worker)


def _hospital_history(rows: _Rows, hospital: Organisation, scale: float, workers: list[User]) -> None:
    """A year of units bought from the supplier and used: crossmatched, issued and transfused; some
    crossmatched and released unused, some expired, a few discarded."""
    rng, now = rows.rng, rows.now
    start = now - timedelta(days=HISTORY_DAYS)
    demand: list[tuple[Component, str | None, float]] = [
        (Component.RED_CELLS, g, use * scale) for g, use in RED_CELL_USE.items()
    ]
    demand += [
        (Component.PLATELETS, None, PLATELET_USE * scale),
        (Component.PLASMA, None, PLASMA_USE * scale),
    ]
    for day in range(HISTORY_DAYS):
        for component, group, rate in demand:
            for _ in range(int(rate) + (rng.random() < rate - int(rate))):
                used = start + timedelta(days=day, hours=rng.uniform(1, 22))
                unit = _bought(rows, hospital, component, group, used, workers)
                if component is Component.RED_CELLS and rng.random() < 0.25:
                    _crossmatch_and_release(rows, unit, used, workers)
                _transfuse(rows, unit, used, rng.choice(workers))
    for month in range(12):
        for component, count in ((Component.RED_CELLS, 3), (Component.PLATELETS, 2), (Component.PLASMA, 1)):
            for _ in range(round(count * scale)):
                expires = now - timedelta(days=30 * month + rng.uniform(1, 29))
                life = rules.shelf_life(component.value, **_spec(component).details)
                unit = _bought(rows, hospital, component, None, expires, workers, born=expires - life)
                _expire(rows, unit, rng.choice(workers))
        for _ in range(round(2 * scale)):
            used = now - timedelta(days=30 * month + rng.uniform(1, 29))
            unit = _bought(
                rows, hospital, rng.choice((Component.RED_CELLS, Component.PLATELETS)), None, used, workers
            )
            rows.step(unit, used, UnitStatus.DISCARDED, rng.choice(workers), note=rng.choice(DISCARD_REASONS))


def _hospital_shelf(rows: _Rows, hospital: Organisation, scale: float, workers: list[User]) -> None:
    """Stock now: red cells per :data:`RED_CELL_STOCK` (O- short), units expiring within two days,
    platelets and plasma, and two units just received awaiting release."""
    rng, now = rows.rng, rows.now
    for group, count in RED_CELL_STOCK.items():
        for _ in range(max(1, round(count * scale)) if group != "O-" else count):
            _bought(rows, hospital, Component.RED_CELLS, group, now, workers, age_days=rng.uniform(3, 38))
    for group, age in (("O+", 41.3), ("O+", 41.6), ("A+", 41.8)):  # red cells keep 42 days
        _bought(rows, hospital, Component.RED_CELLS, group, now, workers, age_days=age)
    for age in (1.5, 2.5, 3.2, 4.1, 4.4):  # platelets keep 5 days
        _bought(rows, hospital, Component.PLATELETS, None, now, workers, age_days=age)
    for _ in range(round(24 * scale)):
        _bought(rows, hospital, Component.PLASMA, None, now, workers, age_days=rng.uniform(20, 300))
    for group in ("O+", "A-"):
        spec = _spec(Component.RED_CELLS)
        collected = now - timedelta(days=4)
        unit = rows.unit(hospital, group, spec, collected, din=rows.din(SUPPLIER_FIN, collected))
        rows.step(
            unit, now - timedelta(hours=2), UnitStatus.QUARANTINED, rng.choice(workers), note="received"
        )


def _bought(
    rows: _Rows,
    hospital: Organisation,
    component: Component,
    group: str | None,
    until: datetime,
    workers: list[User],
    *,
    age_days: float | None = None,
    born: datetime | None = None,
) -> dict[str, Any]:
    """A supplier's unit received and released at ``hospital``, collected ``age_days`` before ``until``
    (or at ``born``; by default a plausible age for the component), available until ``until``."""
    rng = rows.rng
    group = group or rng.choices(list(GROUP_WEIGHTS), weights=list(GROUP_WEIGHTS.values()))[0]
    if born is None:
        if age_days is None:
            age_days = rng.uniform(*USUAL_AGE_DAYS[component])
        born = until - timedelta(days=age_days)
    spec = _spec(component)
    unit = rows.unit(hospital, group, spec, born, din=rows.din(SUPPLIER_FIN, born))
    received = born + timedelta(hours=rng.uniform(18, 30))
    worker = rng.choice(workers)
    rows.step(unit, received, UnitStatus.QUARANTINED, worker, note="received from the supplier")
    rows.step(unit, received + timedelta(minutes=20), UnitStatus.AVAILABLE, worker, note="checked in")
    return unit


def _crossmatch_and_release(rows: _Rows, unit: dict[str, Any], before: datetime, workers: list[User]) -> None:
    """A crossmatch for a patient who then did not need the unit (it goes back on the shelf)."""
    start = _between(rows.rng, unit["updated_at"] + timedelta(hours=1), before - timedelta(hours=12))
    worker = rows.rng.choice(workers)
    rows.step(unit, start, UnitStatus.RESERVED, worker)
    rows.step(unit, start + timedelta(minutes=45), UnitStatus.CROSSMATCHED, worker)
    rows.step(unit, start + timedelta(hours=8), UnitStatus.AVAILABLE, worker, note="not needed: released")


def _transfuse(
    rows: _Rows, unit: dict[str, Any], issued: datetime, actor: User, *, request_id: uuid.UUID | None = None
) -> None:
    """Reserve, crossmatch (red cells and whole blood), issue at ``issued``, transfuse an hour later."""
    steps = [UnitStatus.RESERVED]
    if unit["component"] in (Component.RED_CELLS, Component.WHOLE_BLOOD):
        steps.append(UnitStatus.CROSSMATCHED)
    for offset, target in zip((90, 45), steps, strict=False):
        rows.step(unit, issued - timedelta(minutes=offset), target, actor, request_id=request_id)
    rows.step(unit, issued, UnitStatus.ISSUED, actor)
    rows.step(
        unit,
        min(issued + timedelta(hours=1), rows.now),
        UnitStatus.TRANSFUSED,
        actor,
        note="transfusion confirmed",
    )


def _expire(rows: _Rows, unit: dict[str, Any], actor: User) -> None:
    """Expired on its expiry date (the nightly job) and disposed of a few hours later."""
    expires = unit["expires_at"]
    rows.step(unit, expires, UnitStatus.EXPIRED, None, note="past its expiry")
    rows.step(
        unit,
        min(expires + timedelta(hours=6), rows.now),
        UnitStatus.DISCARDED,
        actor,
        note="disposal of an expired unit",
    )


def _appointments(
    session: Session,
    rows: _Rows,
    donors: list[dict[str, Any]],
    histories: dict[uuid.UUID, list[tuple[date, str]]],
    deferrals: list[DonorDeferral],
    centre: Organisation,
) -> int:
    """The demo donor's next appointment at the Blood Centre in three days, and a few other donors'."""
    deferred = {d.donor_id for d in deferrals}
    today = rows.now.date()
    booked = 0
    candidates = [d for d in donors[1:] if d["organisation_id"] == centre.id and d["id"] not in deferred]
    for donor in (donors[0], *candidates):
        if booked == 8:
            break
        day = today + timedelta(days=3 + booked // 4)
        facts = {**donor, "hemoglobin_g_dl": 14.0, "donations": histories[donor["id"]]}
        away = donor["unavailable_until"] is not None and donor["unavailable_until"] >= day
        if not donor["available"] or away or not rules.donor_eligibility(facts, "whole_blood", day).eligible:
            continue
        session.add(
            DonationAppointment(
                id=rows.new_id(),
                donor_id=donor["id"],
                organisation_id=centre.id,
                starts_at=datetime.combine(day, time(10, 0), tzinfo=UTC),
                chair=booked % 4 + 1,
                donation_type="whole_blood",
                status="booked",
            )
        )
        booked += 1
    return booked


def _requests(session: Session, rows: _Rows, home: Organisation, doctor: User, workers: list[User]) -> int:
    """At the bigger hospital, for the demo doctor's patients (of known blood group): a routine and an
    urgent open request, and a completed one whose units were transfused yesterday."""
    patients = session.scalars(
        select(Patient)
        .join(CareRelationship, CareRelationship.patient_id == Patient.id)
        .where(
            CareRelationship.practitioner_id == doctor.id,
            CareRelationship.organisation_id == home.id,
            Patient.blood_group.is_not(None),
        )
        .order_by(Patient.health_id)
        .limit(3)
    ).all()
    now = rows.now
    plans = (
        ("routine", 2, timedelta(days=1), "Elective hip replacement", "open"),
        ("urgent", 2, timedelta(hours=3), "Gastrointestinal bleed, haemoglobin 6.8 g/dL", "open"),
        ("routine", 2, timedelta(days=-1), "Symptomatic anaemia before chemotherapy", "completed"),
    )
    for patient, (urgency, units, needed_in, indication, status) in zip(patients, plans, strict=False):
        request = BloodRequest(
            id=rows.new_id(),
            organisation_id=home.id,
            patient_id=patient.id,
            requested_by=doctor.id,
            component="red_cells",
            patient_group=patient.blood_group,
            units_requested=units,
            urgency=urgency,
            needed_by=now + needed_in,
            indication=indication,
            status=status,
        )
        session.add(request)
        if status == "completed":
            issued = now + needed_in
            group = rules.compatible_donor_groups("red_cells", patient.blood_group or "O-")[0]
            for _ in range(units):
                unit = _bought(rows, home, Component.RED_CELLS, group, issued - timedelta(hours=3), workers)
                _transfuse(rows, unit, issued, workers[0], request_id=request.id)
    session.flush()
    return len(patients)


def _table(model: type[Base]) -> Table:
    return Base.metadata.tables[model.__tablename__]


@cache
def _spec(component: Component) -> rules.UnitSpec:
    """What the supplier delivers: red cells in AS-1 and fresh frozen plasma from whole blood, apheresis
    platelets."""
    source = "platelets" if component is Component.PLATELETS else "whole_blood"
    return next(s for s in rules.unit_yield(source) if s.component == component.value)


def _storage(component: str) -> str:
    return {
        "red_cells": "Red cell fridge 1",
        "platelets": "Platelet agitator",
        "plasma": "Plasma freezer",
    }.get(component, "Fridge 2")


def _between(rng: random.Random, earliest: datetime, latest: datetime) -> datetime:
    """A random instant between two (the earliest when the window is empty)."""
    if latest <= earliest:
        return earliest
    return earliest + (latest - earliest) * rng.random()
