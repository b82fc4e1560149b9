"""Pydantic request and response models of the encounters API (``/api/v1/encounters``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from caresync.analytics.encounters import service
from caresync.analytics.models import Encounter
from caresync.analytics.rules import CONDITION_BY_CODE


class EncounterIn(BaseModel):
    """A visit to record: ICD-10 ``codes`` (the principal diagnosis first), department, outcome, when it
    started (with its time zone, not in the future) and optional vital signs and appointment."""

    patient_id: uuid.UUID
    codes: list[str] = Field(examples=[["J11", "I10"]], description="1-10 ICD-10 codes, principal first")
    department: str = Field(max_length=30, examples=["general-practice"])
    outcome: str = Field(max_length=20, examples=["discharged"])
    started_at: datetime
    appointment_id: uuid.UUID | None = None
    systolic_mmhg: float | None = Field(default=None, description="40-300 mmHg")
    heart_rate_bpm: float | None = Field(default=None, description="20-250 per minute")
    temperature_c: float | None = Field(default=None, description="25-45 °C")
    spo2_pct: float | None = Field(default=None, description="50-100 %")

    def draft(self) -> service.Draft:
        """As the service's draft."""
        return service.Draft(
            patient_id=self.patient_id,
            codes=self.codes,
            department=self.department,
            outcome=self.outcome,
            started_at=self.started_at,
            appointment_id=self.appointment_id,
            vitals={name: getattr(self, name) for name in service.VITAL_RANGES},
        )


class DiagnosisOut(BaseModel):
    """One diagnosis of a visit."""

    code: str
    name: str
    principal: bool


class EncounterOut(BaseModel):
    """A recorded visit."""

    id: uuid.UUID
    patient_id: uuid.UUID
    organisation_id: uuid.UUID
    appointment_id: uuid.UUID | None
    department: str
    outcome: str
    started_at: datetime
    diagnoses: list[DiagnosisOut]
    systolic_mmhg: int | None
    heart_rate_bpm: int | None
    temperature_c: float | None
    spo2_pct: int | None
    source: str
    recorded_by: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, encounter: Encounter) -> EncounterOut:
        """From the table row (principal diagnosis first)."""
        diagnoses = sorted(encounter.diagnoses, key=lambda d: (not d.principal, d.code))
        return cls(
            id=encounter.id,
            patient_id=encounter.patient_id,
            organisation_id=encounter.organisation_id,
            appointment_id=encounter.appointment_id,
            department=encounter.department,
            outcome=encounter.outcome,
            started_at=encounter.started_at,
            diagnoses=[
                DiagnosisOut(code=d.code, name=CONDITION_BY_CODE[d.code].name, principal=d.principal)
                for d in diagnoses
            ],
            systolic_mmhg=encounter.systolic_mmhg,
            heart_rate_bpm=encounter.heart_rate_bpm,
            temperature_c=encounter.temperature_c,
            spo2_pct=encounter.spo2_pct,
            source=encounter.source,
            recorded_by=encounter.recorded_by,
            created_at=encounter.created_at,
        )


class EncounterPage(BaseModel):
    """One page of a patient's visits, newest first."""

    items: list[EncounterOut]
    next_cursor: str | None
