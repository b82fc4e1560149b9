"""Demo prescriptions that agree with the demo records: every long-term medicine in a patient's record
becomes an active e-prescription from the demo doctor, with months of monthly dispenses at a pharmacy (most
patients collect on time, some late enough to be flagged below 80 % of days covered); short courses become
completed prescriptions. Patients with a portal account also get three months of taken/skipped dose marks, and
the demo patient a pending renewal request.

Prescriptions go through ``prescriptions.service.prescribe`` (the checks and the audit run), then are
back-dated to when they were really started: the service only issues prescriptions starting today."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core import localtime
from caresync.core.auth import Principal
from caresync.identity.models import Patient, User
from caresync.prescriptions import formulary, requests, service
from caresync.prescriptions.adherence.schedule import prescription_doses
from caresync.prescriptions.formulary import Drug
from caresync.prescriptions.models import Dispense, DoseLog, Prescription
from caresync.prescriptions.rules import MAX_VALIDITY, Status, fills_allowed
from caresync.records.models import HealthRecord

PRESCRIBED_PATIENTS = 40  # the demo doctor cares for the first 40 demo patients
LONG_TERM_CLASSES = frozenset(
    {
        "calcium channel blocker",
        "ACE inhibitor",
        "angiotensin receptor blocker",
        "beta blocker",
        "statin",
        "anticoagulant",
        "biguanide",
        "SGLT2 inhibitor",
        "long-acting muscarinic antagonist",
        "short-acting beta agonist",
        "proton pump inhibitor",
        "iron supplement",
        "SSRI",
        "antihistamine",
    }
)
DEMO_PATIENT_MEDICINES = (("Cetirizine", 2, 95), ("Salbutamol", 5, 20))  # name, refills, days since start
# Frequency and dose per drug name where once a day, one unit, is not how it is taken.
HOW_TAKEN: dict[str, tuple[str, str]] = {
    "Metformin": ("BID", "1 tablet"),
    "Apixaban": ("BID", "1 tablet"),
    "Atorvastatin": ("QHS", "1 tablet"),
    "Salbutamol": ("PRN", "2 puffs"),
    "Paracetamol": ("Q8H", "1 tablet"),
}
SUPPLY_DAYS = 30
LATE_COLLECTORS = 0.25  # share of long-term prescriptions collected late (below 80 % PDC)
DOSE_LOG_DAYS = 90


@dataclass(frozen=True)
class PrescriptionsDemo:
    """What the demo prescribed and dispensed."""

    prescriptions: int
    dispenses: int
    dose_marks: int


def load(
    session: Session,
    rng: random.Random,
    patients: list[Patient],
    now: datetime,
    *,
    doctor: User,
    pharmacists: list[User],
) -> PrescriptionsDemo:
    """Prescribe the medicines in the first patients' records (after the records demo), dispense them,
    and add dose marks for portal patients."""
    prescriber = Principal(
        user_id=doctor.id,
        role=doctor.role,
        full_name=doctor.full_name,
        organisation_id=doctor.organisation_id,
    )
    today = now.date()
    counts = [0, 0, 0]
    for index, patient in enumerate(patients[:PRESCRIBED_PATIENTS]):
        planned = [
            (drug, _start(rng, drug, recorded_on, today), 11, rng.random() < LATE_COLLECTORS)
            for drug, recorded_on in _recorded_medicines(session, patient.id)
        ]
        if index == 0:
            planned += [
                (drug, today - timedelta(days=days_ago), refills, False)
                for drug, refills, days_ago in _demo_patient_medicines()
            ]
        for drug, started, refills, late in planned:
            if started is None:
                continue
            prescription = _prescribe(session, prescriber, patient, drug, started, refills)
            counts[0] += 1
            counts[1] += _dispense(session, rng, prescription, pharmacists, today, late=late)
            if patient.user_id is not None:
                counts[2] += _mark_doses(session, rng, prescription, patient, now)
    _renewal_request(session, patients[0])
    return PrescriptionsDemo(*counts)


def _recorded_medicines(session: Session, patient_id: uuid.UUID) -> list[tuple[Drug, date]]:
    """The formulary drugs the patient's medication records name, each with its latest record date."""
    latest: dict[str, tuple[Drug, date]] = {}
    rows = session.execute(
        select(HealthRecord.title, HealthRecord.recorded_on)
        .where(HealthRecord.patient_id == patient_id, HealthRecord.category == "medication")
        .order_by(HealthRecord.recorded_on)
    )
    for title, recorded_on in rows:
        drug = _drug_named(title)
        if drug is not None:
            latest[drug.code] = (drug, recorded_on)
    return sorted(latest.values(), key=lambda pair: pair[1])


def _drug_named(title: str) -> Drug | None:
    """The formulary drug a record title starts with ("Amlodipine 5 mg tablets (started)")."""
    first_word = title.split(" ", 1)[0].lower()
    return next((d for d in formulary.search(first_word) if d.name.lower().split(" ")[0] == first_word), None)


def _demo_patient_medicines() -> list[tuple[Drug, int, int]]:
    """The demo patient's own medicines whatever their record holds: one whose fills are used up (so a
    renewal is pending) and an inhaler with refills left (drug, refills, days since it started)."""
    return [
        (drug, refills, days_ago)
        for name, refills, days_ago in DEMO_PATIENT_MEDICINES
        if (drug := _drug_named(name))
    ]


def _long_term(drug: Drug) -> bool:
    return drug.therapeutic_class in LONG_TERM_CLASSES


def _start(rng: random.Random, drug: Drug, recorded_on: date, today: date) -> date | None:
    """When the prescription of a recorded medicine started: long-term ones some months ago (they are
    renewed yearly), a short course on its record date (``None`` when that is over two years ago)."""
    if _long_term(drug):
        return today - timedelta(days=rng.randint(40, 330))
    return recorded_on if recorded_on >= today - timedelta(days=730) else None


def _prescribe(
    session: Session, prescriber: Principal, patient: Patient, drug: Drug, started: date, refills: int
) -> Prescription:
    long_term = _long_term(drug)
    frequency, dose = HOW_TAKEN.get(drug.name, ("QD", f"1 {drug.dose_unit}"))
    per_day = 1 if frequency == "PRN" else len(service.dose_times(frequency))
    duration = 365 if long_term else 7
    draft = service.Draft(
        patient_id=patient.id,
        medication_code=drug.code,
        dose=dose,
        frequency=frequency,
        duration_days=duration,
        quantity=per_day * (SUPPLY_DAYS if long_term else duration),
        days_supply=SUPPLY_DAYS if long_term else duration,
        refills=refills if long_term else 0,
        instructions="Take with water." if drug.route == "oral" else "",
        acknowledge_warnings=True,
        override_reason="Continued from the patient's record at medication reconciliation",
    )
    prescription = service.prescribe(session, prescriber, draft).prescription
    prescription.start_date = started
    prescription.valid_until = started + MAX_VALIDITY
    prescription.created_at = datetime.combine(started, time(9), tzinfo=UTC)
    if not long_term:
        prescription.status = Status.COMPLETED.value
    return prescription


def _dispense(
    session: Session,
    rng: random.Random,
    prescription: Prescription,
    pharmacists: list[User],
    today: date,
    *,
    late: bool,
) -> int:
    """Monthly dispenses from the start until today; late collectors come back 8 to 25 days late."""
    day = prescription.start_date + timedelta(days=rng.randint(0, 2))
    fills = 0
    while day <= today and fills < fills_allowed(prescription.refills):
        pharmacist = rng.choice(pharmacists)
        assert pharmacist.organisation_id is not None
        fills += 1
        session.add(
            Dispense(
                prescription_id=prescription.id,
                patient_id=prescription.patient_id,
                fill_number=fills,
                pharmacist_id=pharmacist.id,
                pharmacy_id=pharmacist.organisation_id,
                quantity=prescription.quantity,
                days_supply=prescription.days_supply,
                lot=f"L{rng.randint(10000, 99999)}",
                dispensed_on=day,
                dispensed_at=datetime.combine(day, time(10), tzinfo=UTC),
            )
        )
        day += timedelta(days=prescription.days_supply + (rng.randint(8, 25) if late else rng.randint(-3, 2)))
    prescription.dispense_count = fills
    return fills


def _mark_doses(
    session: Session, rng: random.Random, prescription: Prescription, patient: Patient, now: datetime
) -> int:
    """The last three months of a portal patient's doses: mostly taken, a few skipped, a few not marked."""
    zone = localtime.zone(patient.timezone)
    today = now.astimezone(zone).date()
    marks = 0
    for back in range(DOSE_LOG_DAYS, 0, -1):
        for instant in prescription_doses(prescription, today - timedelta(days=back), zone):
            roll = rng.random()
            if roll < 0.05:
                continue
            session.add(
                DoseLog(
                    prescription_id=prescription.id,
                    patient_id=patient.id,
                    scheduled_at=instant,
                    status="taken" if roll < 0.92 else "skipped",
                    logged_at=instant + timedelta(minutes=rng.randint(0, 90)),
                )
            )
            marks += 1
    return marks


def _renewal_request(session: Session, patient: Patient) -> None:
    """The demo patient asks for the renewal of a prescription whose fills are used up, if one is."""
    if patient.user_id is None:
        return
    session.flush()
    used_up = session.scalars(
        select(Prescription)
        .where(
            Prescription.patient_id == patient.id,
            Prescription.status == Status.ACTIVE.value,
            Prescription.dispense_count == Prescription.refills + 1,
        )
        .limit(1)
    ).first()
    if used_up is not None:
        name = f"{patient.given_name} {patient.family_name}"
        own = Principal(user_id=patient.user_id, role="patient", full_name=name, patient_id=patient.id)
        requests.create_request(session, own, used_up.id, "renewal", "I have a few days of tablets left.")
