"""Request and response bodies of the QR code and dispensing endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from caresync.identity.models import Patient
from caresync.prescriptions.dispensing.service import DispenseRow, IssuedCode, Verification
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import fills_allowed


class CodeOut(BaseModel):
    """A prescription's signed code, to show as a QR code or type in."""

    prescription_id: uuid.UUID
    code: str = Field(description="CSRX1.<payload>.<signature>: what the QR code carries")
    issued_at: datetime
    valid_until: date
    fills_used: int
    fills_allowed: int
    refills_left: int

    @classmethod
    def of(cls, issued: IssuedCode) -> CodeOut:
        """From an issued code."""
        rx = issued.prescription
        return cls(
            prescription_id=rx.id,
            code=issued.code,
            issued_at=issued.issued_at,
            valid_until=rx.valid_until,
            fills_used=rx.dispense_count,
            fills_allowed=fills_allowed(rx.refills),
            refills_left=issued.refills_left,
        )


class VerifyIn(BaseModel):
    """A code typed in or read from a scanner."""

    code: str = Field(min_length=1, max_length=4000)


class DispenseIn(BaseModel):
    """Dispense the next fill of the prescription a code names."""

    code: str = Field(min_length=1, max_length=4000)
    quantity: int = Field(ge=1, le=100_000, description="units handed over: 1 to the prescribed quantity")
    lot: str = Field(min_length=1, max_length=40, description="the pack's lot number")
    days_supply: int | None = Field(default=None, ge=1, le=365, description="default: the prescription's")


class PatientOut(BaseModel):
    """Who the medicine is for, as the pharmacist checks it."""

    id: uuid.UUID
    name: str
    health_id: str
    birth_date: date

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        """From a patient profile."""
        return cls(
            id=patient.id,
            name=f"{patient.given_name} {patient.family_name}",
            health_id=patient.health_id,
            birth_date=patient.birth_date,
        )


class DrugOut(BaseModel):
    """The medicine."""

    code: str
    name: str
    strength: str
    form: str

    @classmethod
    def of(cls, rx: Prescription) -> DrugOut:
        """The prescription's medicine."""
        return cls(code=rx.medication_code, name=rx.medication_name, strength=rx.strength, form=rx.form)


class VerificationOut(BaseModel):
    """A valid code: what to hand over, to whom."""

    ok: bool = True
    code: str = Field(description="the code, to send back when dispensing")
    prescription_id: uuid.UUID
    patient: PatientOut
    drug: DrugOut
    dose: str
    route: str
    frequency: str
    instructions: str
    quantity: int
    days_supply: int
    fill_number: int = Field(description="the fill a dispense now would be (1 = first fill)")
    fills_allowed: int
    refills_left: int
    valid_until: date
    prescriber_name: str

    @classmethod
    def of(cls, checked: Verification) -> VerificationOut:
        """From a passed verification."""
        rx = checked.prescription
        return cls(
            code=checked.code,
            prescription_id=rx.id,
            patient=PatientOut.of(checked.patient),
            drug=DrugOut.of(rx),
            dose=rx.dose,
            route=rx.route,
            frequency=rx.frequency,
            instructions=rx.instructions,
            quantity=rx.quantity,
            days_supply=rx.days_supply,
            fill_number=checked.fill_number,
            fills_allowed=checked.fills_allowed,
            refills_left=checked.refills_left,
            valid_until=rx.valid_until,
            prescriber_name=rx.prescriber.full_name,
        )


class DispenseOut(BaseModel):
    """A recorded dispense."""

    id: uuid.UUID
    prescription_id: uuid.UUID
    patient: PatientOut
    drug: DrugOut
    fill_number: int
    fills_allowed: int
    refills_left: int = Field(description="refills left after this dispense")
    prescription_status: str
    quantity: int
    days_supply: int
    lot: str
    pharmacy_id: uuid.UUID
    pharmacy_name: str
    pharmacist_id: uuid.UUID
    dispensed_on: date
    dispensed_at: datetime

    @classmethod
    def of(cls, row: DispenseRow) -> DispenseOut:
        """From a dispense and its prescription."""
        d, rx = row.dispense, row.prescription
        return cls(
            id=d.id,
            prescription_id=rx.id,
            patient=PatientOut.of(row.patient),
            drug=DrugOut.of(rx),
            fill_number=d.fill_number,
            fills_allowed=fills_allowed(rx.refills),
            refills_left=row.refills_left,
            prescription_status=rx.status,
            quantity=d.quantity,
            days_supply=d.days_supply,
            lot=d.lot,
            pharmacy_id=d.pharmacy_id,
            pharmacy_name=d.pharmacy.name,
            pharmacist_id=d.pharmacist_id,
            dispensed_on=d.dispensed_on,
            dispensed_at=d.dispensed_at,
        )


class DispensePage(BaseModel):
    """One page of the pharmacy's dispenses, newest first."""

    items: list[DispenseOut]
    next_cursor: str | None
