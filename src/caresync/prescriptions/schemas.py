"""Pydantic request and response models of the prescriptions API (``/api/v1/prescriptions``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from caresync.prescriptions import requests, service
from caresync.prescriptions.formulary import Drug
from caresync.prescriptions.models import Prescription, PrescriptionRequest
from caresync.prescriptions.rules import FREQUENCIES, MAX_REFILLS


class DrugOut(BaseModel):
    """A formulary drug."""

    code: str
    name: str
    strength: str
    form: str
    label: str
    route: str
    dose_unit: str
    therapeutic_class: str
    allergy_classes: list[str]

    @classmethod
    def of(cls, drug: Drug) -> DrugOut:
        """From a formulary entry."""
        return cls(
            code=drug.code,
            name=drug.name,
            strength=drug.strength,
            form=drug.form,
            label=drug.label,
            route=drug.route,
            dose_unit=drug.dose_unit,
            therapeutic_class=drug.therapeutic_class,
            allergy_classes=sorted(drug.allergy_classes),
        )


class PrescriptionIn(BaseModel):
    """A prescription to issue (``active``) or save (``draft``). With warnings, set
    ``acknowledge_warnings`` and give ``override_reason`` to prescribe anyway."""

    patient_id: uuid.UUID
    medication_code: str = Field(min_length=1, max_length=20, description="a formulary code")
    dose: str = Field(min_length=1, max_length=service.MAX_DOSE, examples=["1 capsule"])
    route: str | None = Field(default=None, max_length=20, description="defaults to the drug's usual route")
    frequency: str = Field(max_length=10, description=f"one of {', '.join(FREQUENCIES)}")
    duration_days: int = Field(ge=1, le=service.MAX_DURATION_DAYS)
    quantity: int = Field(ge=1, le=service.MAX_QUANTITY, description="units per dispense")
    days_supply: int = Field(ge=1, le=service.MAX_DURATION_DAYS, description="days one dispense lasts")
    refills: int = Field(default=0, ge=0, le=MAX_REFILLS)
    instructions: str = Field(default="", max_length=service.MAX_INSTRUCTIONS)
    start_date: date | None = None
    valid_until: date | None = None
    status: Literal["draft", "active"] = "active"
    reminders_enabled: bool = True
    acknowledge_warnings: bool = False
    override_reason: str = Field(default="", max_length=service.MAX_REASON)

    def draft(self) -> service.Draft:
        """As the service's draft."""
        return service.Draft(**self.model_dump())


class WarningOut(BaseModel):
    """A finding of the allergy or duplicate-therapy check."""

    code: str
    message: str
    prescription_id: uuid.UUID | None = None

    @classmethod
    def of(cls, warning: service.Warning) -> WarningOut:
        """From a service warning."""
        return cls(code=warning.code, message=warning.message, prescription_id=warning.prescription_id)


class PrescriptionOut(BaseModel):
    """A prescription, with what the patient needs next: ``first-fill`` (take it to a pharmacy),
    ``refill`` (ask the pharmacy), ``renewal`` (ask the prescriber for a new one) or ``none``."""

    id: uuid.UUID
    patient_id: uuid.UUID
    prescriber_id: uuid.UUID
    prescriber_name: str
    organisation_id: uuid.UUID
    status: str
    status_reason: str
    medication_code: str
    medication_name: str
    strength: str
    form: str
    dose: str
    route: str
    frequency: str
    frequency_label: str
    dose_times: list[str]
    duration_days: int
    quantity: int
    days_supply: int
    refills: int
    dispense_count: int
    fills_left: int
    refills_left: int
    next_step: str
    instructions: str
    start_date: date
    valid_until: date
    reminders_enabled: bool
    renewal_of_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Prescription) -> PrescriptionOut:
        """From a prescription row."""
        progress = service.progress(p)
        return cls(
            id=p.id,
            patient_id=p.patient_id,
            prescriber_id=p.prescriber_id,
            prescriber_name=p.prescriber.full_name,
            organisation_id=p.organisation_id,
            status=p.status,
            status_reason=p.status_reason,
            medication_code=p.medication_code,
            medication_name=p.medication_name,
            strength=p.strength,
            form=p.form,
            dose=p.dose,
            route=p.route,
            frequency=p.frequency,
            frequency_label=FREQUENCIES[p.frequency][0],
            dose_times=list(p.dose_times),
            duration_days=p.duration_days,
            quantity=p.quantity,
            days_supply=p.days_supply,
            refills=p.refills,
            dispense_count=p.dispense_count,
            fills_left=progress.fills_left,
            refills_left=progress.refills_left,
            next_step=progress.next_step,
            instructions=p.instructions,
            start_date=p.start_date,
            valid_until=p.valid_until,
            reminders_enabled=p.reminders_enabled,
            renewal_of_id=p.renewal_of_id,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class PrescribedOut(PrescriptionOut):
    """A new prescription and the warnings its prescriber overrode."""

    warnings_overridden: list[WarningOut]

    @classmethod
    def of_prescribed(cls, prescribed: service.Prescribed) -> PrescribedOut:
        """From the service's result."""
        return cls(
            **PrescriptionOut.of(prescribed.prescription).model_dump(),
            warnings_overridden=[WarningOut.of(w) for w in prescribed.warnings],
        )


class PrescriptionPage(BaseModel):
    """One page of prescriptions, newest first."""

    items: list[PrescriptionOut]
    next_cursor: str | None


class StatusIn(BaseModel):
    """A status change: ``active``, ``on-hold``, ``stopped`` or ``cancelled`` (the last three with a
    reason). Activating a draft with warnings needs ``acknowledge_warnings`` and the reason."""

    status: str = Field(max_length=20)
    reason: str = Field(default="", max_length=service.MAX_REASON)
    acknowledge_warnings: bool = False


class RequestIn(BaseModel):
    """A patient's request for a refill or a renewal."""

    kind: Literal["refill", "renewal"]
    note: str = Field(default="", max_length=requests.MAX_NOTE)


class DecisionIn(BaseModel):
    """A doctor's decision on a request (declining needs a note for the patient)."""

    decision: Literal["approve", "decline"]
    note: str = Field(default="", max_length=requests.MAX_NOTE)


class RequestOut(BaseModel):
    """A refill or renewal request and its decision."""

    id: uuid.UUID
    prescription_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    medication: str
    kind: str
    status: str
    note: str
    requested_at: datetime
    decided_at: datetime | None
    decision_note: str
    renewal_id: uuid.UUID | None

    @classmethod
    def of(cls, request: PrescriptionRequest) -> RequestOut:
        """From a request row."""
        p = request.prescription
        return cls(
            id=request.id,
            prescription_id=request.prescription_id,
            patient_id=request.patient_id,
            patient_name=f"{p.patient.given_name} {p.patient.family_name}",
            medication=f"{p.medication_name} {p.strength} {p.form}",
            kind=request.kind,
            status=request.status,
            note=request.note,
            requested_at=request.requested_at,
            decided_at=request.decided_at,
            decision_note=request.decision_note,
            renewal_id=request.renewal_id,
        )


class RequestPage(BaseModel):
    """One page of requests."""

    items: list[RequestOut]
    next_cursor: str | None


class DecisionOut(BaseModel):
    """The decided request; for an approved renewal, the new prescription and the warnings noted on it."""

    request: RequestOut
    renewal: PrescriptionOut | None = None
    warnings: list[WarningOut] = Field(default_factory=list)
