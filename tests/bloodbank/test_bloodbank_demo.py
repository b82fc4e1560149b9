"""The blood bank demo on a fresh database: the rules hold (every unit's expiry is collection plus its
shelf life, every unit's history is a legal chain ending in its status, no donor gave blood inside the
interval or during a deferral), and the story promised holds (O- red cells short at Riverside, units
expiring within two days, units in quarantine, a year of history the reports can use, the demo donor
eligible with an appointment at the Blood Centre, open and completed requests); it loads fast and the
same seed gives the same data."""

from __future__ import annotations

import itertools
import random
import time as clock
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.bloodbank import demo, rules
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
from caresync.bloodbank.reports import service as reports
from caresync.core.auth import Principal
from caresync.db import session_factory, utcnow
from caresync.identity.models import CareRelationship, Organisation, User
from tests.conftest import Factory, Person

SEED = 11


@dataclass
class World:
    """The organisations and people the demo builds on (as the main demo makes them)."""

    riverside: Organisation
    st_clare: Organisation
    centre: Organisation
    organisations: list[Organisation]
    staff: list[Person]
    doctor: Person
    donor: Person


@pytest.fixture
def world(make: Factory) -> World:
    riverside = make.org("Riverside General Hospital", latitude=38.7369, longitude=-9.1427)
    st_clare = make.org("St. Clare University Hospital", latitude=41.1496, longitude=-8.6109)
    clinic = make.org("Harbour Family Clinic", kind="clinic")
    centre = make.org("National Blood Centre Lisbon", kind="blood_bank", latitude=38.75, longitude=-9.16)
    staff = [make.staff("bloodbank_staff", o, mfa=False) for o in (riverside, st_clare, centre, centre)]
    doctor = make.staff("doctor", riverside, mfa=False)
    for group in ("A+", "O+", "B-", None):
        make.care(doctor, make.patient(blood_group=group))
    return World(
        riverside=riverside,
        st_clare=st_clare,
        centre=centre,
        organisations=[riverside, st_clare, clinic, centre],
        staff=[*staff, doctor],
        doctor=doctor,
        donor=make.donor(),
    )


def run(session: Session, world: World, seed: int = SEED, now: Any = None) -> demo.BloodDemo:
    """The demo loaded into ``session`` (not committed) for ``world``."""
    organisations = [session.get_one(Organisation, o.id) for o in world.organisations]
    staff = [session.get_one(User, p.id) for p in world.staff]
    return demo.load(
        session,
        random.Random(seed),
        now or utcnow(),
        organisations=organisations,
        donor_user=session.get_one(User, world.donor.id),
        staff=staff,
    )


@pytest.fixture
def loaded(world: World) -> Any:
    """A session holding the loaded demo (rolled back at the end), the load's counts and seconds."""
    session = session_factory()()
    started = clock.process_time()
    counts = run(session, world)
    seconds = clock.process_time() - started
    yield session, counts, seconds
    session.rollback()
    session.close()


def test_it_loads_quickly_and_counts_what_it_made(loaded: Any) -> None:
    session, counts, seconds = loaded
    assert seconds < 5, f"the blood bank demo took {seconds:.1f} s of CPU"  # CPU: the machine may be busy
    assert counts.policies == session.scalar(select(func.count()).select_from(BloodBankPolicy)) == 3
    assert counts.donors == session.scalar(select(func.count()).select_from(Donor)) == demo.DONORS
    assert counts.donations == session.scalar(select(func.count()).select_from(Donation)) > 600
    assert counts.units == session.scalar(select(func.count()).select_from(BloodUnit)) > 2000
    assert counts.unit_events == session.scalar(select(func.count()).select_from(UnitEvent))
    assert counts.deferrals == session.scalar(select(func.count()).select_from(DonorDeferral)) >= 5
    assert counts.appointments == session.scalar(select(func.count()).select_from(DonationAppointment)) >= 2
    assert counts.requests == session.scalar(select(func.count()).select_from(BloodRequest)) == 3


def test_every_expiry_is_collection_plus_shelf_life(loaded: Any) -> None:
    session = loaded[0]
    units = session.scalars(select(BloodUnit)).all()
    wrong = [
        u.din for u in units if u.expires_at != u.collected_at + rules.shelf_life(u.component, **u.details)
    ]
    assert not wrong, wrong[:5]
    assert {u.component for u in units} == {"red_cells", "platelets", "plasma"}


def test_every_unit_history_is_a_legal_chain_ending_in_its_status(loaded: Any) -> None:
    session = loaded[0]
    events: dict[Any, list[UnitEvent]] = defaultdict(list)
    for event in session.scalars(select(UnitEvent).order_by(UnitEvent.unit_id, UnitEvent.at)):
        events[event.unit_id].append(event)
    now = utcnow()
    for unit in session.scalars(select(BloodUnit)):
        steps = events[unit.id]
        assert steps[0].from_status is None, unit.din
        for before, after in itertools.pairwise(steps):
            assert after.from_status == before.to_status, unit.din
            assert rules.can_transition(before.to_status, after.to_status), (unit.din, after.to_status)
        assert steps[-1].to_status == unit.status, unit.din
        assert all(unit.collected_at <= e.at <= now for e in steps), unit.din
        assert all(e.organisation_id == unit.organisation_id for e in steps), unit.din
        if unit.status == "expired" or any(e.to_status == "expired" for e in steps):
            assert next(e.at for e in steps if e.to_status == "expired") >= unit.expires_at, unit.din
        if unit.status in ("available", "reserved", "crossmatched"):
            assert unit.expires_at > now, unit.din
        if unit.status == "transfused":
            assert unit.issued_at is not None
            assert unit.transfused_at is not None
            assert unit.issued_at <= unit.transfused_at <= now


def test_no_donor_gave_blood_inside_an_interval_or_a_deferral(loaded: Any) -> None:
    session = loaded[0]
    donations: dict[Any, list[Donation]] = defaultdict(list)
    for donation in session.scalars(select(Donation).where(Donation.outcome == "completed")):
        donations[donation.donor_id].append(donation)
    donors = {d.id: d for d in session.scalars(select(Donor))}
    for donor_id, given in donations.items():
        donor = donors[donor_id]
        facts = {"birth_date": donor.birth_date, "sex": donor.sex, "weight_kg": donor.weight_kg}
        given.sort(key=lambda d: d.collected_at)
        for index, donation in enumerate(given):
            earlier = [(d.collected_at.date(), d.donation_type) for d in given[:index]]
            verdict = rules.donor_eligibility(
                {**facts, "donations": earlier}, donation.donation_type, donation.collected_at.date()
            )
            assert verdict.eligible, (donor.donor_number, donation.collected_at, verdict.reasons)
    for deferral in session.scalars(select(DonorDeferral)):
        inside = [
            d
            for d in donations[deferral.donor_id]
            if d.collected_at.date() >= deferral.starts_on
            and (deferral.ends_on is None or d.collected_at.date() < deferral.ends_on)
        ]
        assert not inside, deferral.reason
    kinds = [d.kind for d in session.scalars(select(DonorDeferral))]
    assert kinds.count("permanent") == 1
    assert kinds.count("temporary") >= 4
    assert session.scalar(select(func.count()).where(Donor.available.is_(False))) > 0
    assert session.scalar(select(func.count()).where(Donation.outcome == "deferred")) > 0


def _available(session: Session, org: Organisation, group: str, component: str = "red_cells") -> int:
    query = select(func.count()).where(
        BloodUnit.organisation_id == org.id,
        BloodUnit.blood_group == group,
        BloodUnit.component == component,
        BloodUnit.status == "available",
        BloodUnit.expires_at > utcnow(),
    )
    return int(session.scalar(query) or 0)


def test_riverside_is_short_of_o_negative_and_has_units_near_expiry(loaded: Any, world: World) -> None:
    session = loaded[0]
    policy = session.get_one(BloodBankPolicy, world.riverside.id)
    o_negative = _available(session, world.riverside, "O-")
    daily_use = policy.baseline_daily_use["O-:red_cells"]
    assert o_negative / daily_use < policy.low_stock_days  # days of supply below the low-stock threshold
    assert o_negative / daily_use < policy.stock_thresholds["O-:red_cells"]
    assert _available(session, world.riverside, "O+") >= 10
    assert _available(session, world.riverside, "A+") >= 10
    now = utcnow()
    for bank in (world.riverside, world.st_clare):
        expiring = select(func.count()).where(
            BloodUnit.organisation_id == bank.id,
            BloodUnit.status == "available",
            BloodUnit.expires_at > now,
            BloodUnit.expires_at <= now + timedelta(days=2),
        )
        assert session.scalar(expiring) >= 3, bank.name
    for bank in (world.riverside, world.centre):
        quarantined = select(func.count()).where(
            BloodUnit.organisation_id == bank.id, BloodUnit.status == "quarantined"
        )
        assert session.scalar(quarantined) >= 1, bank.name


def test_a_year_of_history_gives_the_reports_their_figures(loaded: Any, world: World) -> None:
    session = loaded[0]
    staff = Principal(
        user_id=world.staff[0].id, role="bloodbank_staff", full_name="BB", organisation_id=world.riverside.id
    )
    today = utcnow().date()
    report = reports.organisation_report(session, staff, today - timedelta(days=364), today)
    assert all(m.issued > 0 for m in report.utilisation_by_month[1:-1])  # every whole month has use
    outdate = report.outdates[-1]
    assert outdate.rate is not None
    assert 0.02 < outdate.rate < 0.15
    assert report.crossmatch.ratio is not None
    assert 1.0 < report.crossmatch.ratio < 2.0
    assert {w.reason for w in report.wastage} >= {"expired"}
    assert len({w.reason for w in report.wastage}) >= 3
    assert report.donations.visits == 0  # Riverside buys its units: donors give at the blood banks
    centre_staff = Principal(
        user_id=world.staff[2].id, role="bloodbank_staff", full_name="BB", organisation_id=world.centre.id
    )
    centre = reports.organisation_report(session, centre_staff, today - timedelta(days=364), today)
    assert centre.donations.completed > 200
    assert centre.donations.deferral_rate is not None
    assert 0 < centre.donations.deferral_rate < 0.15
    session.rollback()


def test_the_demo_donor_is_o_negative_eligible_and_booked(loaded: Any, world: World) -> None:
    session = loaded[0]
    donor = session.scalars(select(Donor).where(Donor.user_id == world.donor.id)).one()
    assert (donor.blood_group, donor.available, donor.organisation_id) == ("O-", True, world.centre.id)
    history = session.scalars(
        select(Donation).where(Donation.donor_id == donor.id, Donation.outcome == "completed")
    ).all()
    assert len(history) >= 3
    facts = {
        "birth_date": donor.birth_date,
        "sex": donor.sex,
        "weight_kg": donor.weight_kg,
        "donations": [(d.collected_at.date(), d.donation_type) for d in history],
    }
    assert rules.donor_eligibility(facts, "whole_blood", utcnow().date()).eligible
    units = session.scalar(select(func.count()).where(BloodUnit.donation_id.in_([d.id for d in history])))
    assert units == 2 * len(history)  # whole blood: red cells and plasma each time
    appointment = session.scalars(
        select(DonationAppointment).where(DonationAppointment.donor_id == donor.id)
    ).one()
    assert (appointment.organisation_id, appointment.status) == (world.centre.id, "booked")
    assert appointment.starts_at > utcnow()
    assert not session.scalars(select(DonorDeferral).where(DonorDeferral.donor_id == donor.id)).all()


def test_riverside_has_open_requests_from_the_demo_doctor_and_a_completed_one(
    loaded: Any, world: World
) -> None:
    session = loaded[0]
    requests = session.scalars(select(BloodRequest).order_by(BloodRequest.needed_by)).all()
    assert {r.organisation_id for r in requests} == {world.riverside.id}
    assert {r.requested_by for r in requests} == {world.doctor.id}
    cared = set(
        session.scalars(
            select(CareRelationship.patient_id).where(CareRelationship.practitioner_id == world.doctor.id)
        )
    )
    assert {r.patient_id for r in requests} <= cared
    assert all(r.patient_group == r.patient.blood_group for r in requests)
    assert sorted((r.status, r.urgency) for r in requests) == [
        ("completed", "routine"),
        ("open", "routine"),
        ("open", "urgent"),
    ]
    done = next(r for r in requests if r.status == "completed")
    units = session.scalars(select(BloodUnit).where(BloodUnit.request_id == done.id)).all()
    assert len(units) == done.units_requested
    assert all(u.status == "transfused" for u in units)
    assert done.patient_group is not None
    assert all(rules.is_compatible("red_cells", u.blood_group, done.patient_group) for u in units)


def test_the_same_seed_gives_the_same_data(world: World) -> None:
    now = utcnow()
    fingerprints = []
    for _ in range(2):
        session = session_factory()()
        try:
            run(session, world, now=now)
            fingerprints.append(
                (
                    session.execute(
                        select(BloodUnit.din, BloodUnit.product_code, BloodUnit.status).order_by(BloodUnit.id)
                    ).all(),
                    session.execute(select(Donor.donor_number, Donor.blood_group).order_by(Donor.id)).all(),
                )
            )
        finally:
            session.rollback()
            session.close()
    assert fingerprints[0] == fingerprints[1]
