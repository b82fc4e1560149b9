"""Dose schedule, reminder and adherence endpoints under ``/api/v1/prescriptions`` (fixed paths, registered
before the prescriptions router's ``/{prescription_id}``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from caresync.prescriptions.adherence import reminders, schedule, service
from caresync.prescriptions.adherence.schemas import (
    AdherenceOut,
    DayScheduleOut,
    DoseMarkIn,
    DoseOut,
    FlagPageOut,
    RemindersIn,
    RemindersOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/prescriptions", tags=["adherence"])
Days = Annotated[int, Query(ge=1, le=service.MAX_DAYS, description="Length of the period in days.")]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
PatientId = Annotated[
    uuid.UUID | None, Query(description="The patient (patients: omit it, or give their own id).")
]


def _patient(principal: Principal, patient_id: uuid.UUID | None) -> uuid.UUID:
    """The patient asked about: a patient's own by default; clinicians must name one."""
    if patient_id is not None:
        return patient_id
    if principal.patient_id is not None:
        return principal.patient_id
    raise ValidationFailed("Name the patient (patient_id).", extra={"field": "patient_id"})


@router.get("/doses", response_model=DayScheduleOut)
def day_doses(
    principal: CurrentUser, db: Db, day: date | None = None, patient_id: PatientId = None
) -> DayScheduleOut:
    """The patient's doses on one local day (default: today where the patient lives), with their marks."""
    out = DayScheduleOut.of(schedule.day_schedule(db, principal, _patient(principal, patient_id), day))
    db.commit()  # the read is audited
    return out


@router.put("/doses", response_model=DoseOut)
def mark_dose(body: DoseMarkIn, principal: CurrentUser, db: Db) -> DoseOut:
    """The patient marks one of their scheduled doses taken or skipped (the latest mark wins)."""
    dose = schedule.mark_dose(db, principal, body.prescription_id, body.scheduled_at, body.status)
    out = DoseOut.of(dose)
    db.commit()
    return out


@router.get("/adherence", response_model=AdherenceOut)
def adherence(
    principal: CurrentUser, db: Db, patient_id: PatientId = None, days: Days = service.DEFAULT_DAYS
) -> AdherenceOut:
    """Adherence per active medication: Proportion of Days Covered from dispenses, and the dose-log rate."""
    report = service.patient_adherence(db, principal, _patient(principal, patient_id), days)
    out = AdherenceOut.of(report)
    db.commit()
    return out


@router.get("/adherence/flags", response_model=FlagPageOut)
def adherence_flags(principal: CurrentUser, db: Db, limit: Limit = 50, cursor: Cursor = None) -> FlagPageOut:
    """Doctors and nurses: their patients' active prescriptions below the adherence threshold."""
    out = FlagPageOut.of(service.low_adherence(db, principal, limit=limit, cursor=cursor))
    db.commit()
    return out


@router.put("/{prescription_id}/reminders", response_model=RemindersOut)
def set_reminders(
    prescription_id: uuid.UUID, body: RemindersIn, principal: CurrentUser, db: Db
) -> RemindersOut:
    """The patient turns dose reminders for one prescription on or off."""
    prescription = reminders.set_reminders(db, principal, prescription_id, body.enabled)
    out = RemindersOut(prescription_id=prescription.id, reminders_enabled=prescription.reminders_enabled)
    db.commit()
    return out
