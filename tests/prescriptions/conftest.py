"""Shared fixtures for every prescriptions test (prescribing, dispensing, adherence, reminders).

``prescription_factory(doctor, patient, **overrides) -> Prescription`` inserts a committed prescription row
directly (no clinical checks, no audit entry, no notification), so a test can set up any state it needs:
past start dates, dispenses already counted, any status. Defaults: an active amoxicillin 500 mg capsule,
one capsule three times a day for 7 days, 21 capsules per dispense, 1 refill, starting today, valid for a
year, prescribed by ``doctor`` in ``doctor``'s organisation. Any column of
:class:`caresync.prescriptions.models.Prescription` can be overridden; ``dose_times`` follows
``frequency`` unless given, and ``valid_until`` follows ``start_date`` unless given.

To exercise the prescribing rules themselves, call ``caresync.prescriptions.service`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from caresync.db import session_factory, transaction
from caresync.identity.models import Patient
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import FREQUENCIES, MAX_VALIDITY
from tests.conftest import Person

PrescriptionFactory = Callable[..., Prescription]

DEFAULTS: dict[str, Any] = {
    "status": "active",
    "medication_code": "308191",  # RxNorm: amoxicillin 500 MG Oral Capsule
    "medication_name": "Amoxicillin",
    "strength": "500 mg",
    "form": "capsule",
    "dose": "1 capsule",
    "route": "oral",
    "frequency": "TID",
    "duration_days": 7,
    "quantity": 21,
    "days_supply": 7,
    "refills": 1,
    "dispense_count": 0,
    "instructions": "Take with water, with or without food.",
}


def make_prescription(doctor: Person, patient: Person | Patient, **overrides: Any) -> Prescription:
    """Insert (and commit) a prescription of ``doctor`` for ``patient``; see the module docstring."""
    patient_id = patient.patient_id if isinstance(patient, Person) else patient.id
    values: dict[str, Any] = {**DEFAULTS, **overrides}
    values.setdefault("start_date", date.today())
    values.setdefault("valid_until", values["start_date"] + MAX_VALIDITY)
    values.setdefault("dose_times", [t.strftime("%H:%M") for t in FREQUENCIES[values["frequency"]][1]])
    values.setdefault("organisation_id", doctor.user.organisation_id)
    with transaction(session_factory()) as s:
        prescription = Prescription(patient_id=patient_id, prescriber_id=doctor.id, **values)
        s.add(prescription)
        s.flush()
        s.refresh(prescription)  # load the joined patient, prescriber and organisation before closing
    return prescription


@pytest.fixture
def prescription_factory() -> PrescriptionFactory:
    """``prescription_factory(doctor, patient, **overrides) -> Prescription`` (see the module docstring)."""
    return make_prescription


# --- helpers for the prescribing tests (plain functions: import them) --------------------------------------

P = "/api/v1/prescriptions"
AMOXICILLIN = "308191"  # Amoxicillin 500 mg capsule in the formulary


def rx_body(patient: Person | Patient, **overrides: Any) -> dict[str, Any]:
    """A valid ``POST /api/v1/prescriptions`` body: amoxicillin 500 mg, one capsule three times a day for a
    week, with one refill."""
    patient_id = patient.patient_id if isinstance(patient, Person) else patient.id
    body: dict[str, Any] = {
        "patient_id": str(patient_id),
        "medication_code": AMOXICILLIN,
        "dose": "1 capsule",
        "frequency": "TID",
        "duration_days": 7,
        "quantity": 21,
        "days_supply": 7,
        "refills": 1,
        "instructions": "Finish the course.",
    }
    body.update(overrides)
    return body


def problem_field(body: dict[str, Any]) -> str | None:
    """The field a 422 problem names (a service rule's ``field``, or the first schema error's)."""
    if "field" in body:
        return str(body["field"])
    errors = body.get("errors") or []
    return str(errors[0]["field"]) if errors else None
