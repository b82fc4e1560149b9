"""Request and response models of the dose schedule, reminders and adherence endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from caresync.prescriptions.adherence.schedule import DaySchedule, Dose
from caresync.prescriptions.adherence.service import AdherenceReport, Flag, FlagPage, MedicationAdherence


class DoseOut(BaseModel):
    """One scheduled dose and the patient's mark on it."""

    prescription_id: uuid.UUID
    scheduled_at: datetime = Field(description="The dose's instant in UTC.")
    local_time: str = Field(description="The dose's local wall time in the patient's time zone, HH:MM.")
    local_datetime: datetime = Field(description="The same instant with the patient's UTC offset.")
    medication: str
    dose: str
    route: str
    reminders_enabled: bool
    mark: Literal["taken", "skipped"] | None

    @classmethod
    def of(cls, dose: Dose) -> DoseOut:
        """From the service's dose."""
        return cls(
            prescription_id=dose.prescription_id,
            scheduled_at=dose.scheduled_at,
            local_time=f"{dose.local:%H:%M}",
            local_datetime=dose.local,
            medication=dose.medication,
            dose=dose.dose,
            route=dose.route,
            reminders_enabled=dose.reminders_enabled,
            mark=dose.mark,
        )


class DayScheduleOut(BaseModel):
    """A patient's doses on one local day."""

    patient_id: uuid.UUID
    day: date
    timezone: str
    doses: list[DoseOut]

    @classmethod
    def of(cls, schedule: DaySchedule) -> DayScheduleOut:
        """From the service's schedule."""
        return cls(
            patient_id=schedule.patient_id,
            day=schedule.day,
            timezone=schedule.timezone,
            doses=[DoseOut.of(d) for d in schedule.doses],
        )


class DoseMarkIn(BaseModel):
    """The patient marks one scheduled dose."""

    model_config = ConfigDict(extra="forbid")

    prescription_id: uuid.UUID
    scheduled_at: datetime = Field(description="The dose's instant, with its time zone (as listed).")
    status: Literal["taken", "skipped"]


class RemindersIn(BaseModel):
    """Turn a prescription's dose reminders on or off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class RemindersOut(BaseModel):
    """A prescription's reminder setting."""

    prescription_id: uuid.UUID
    reminders_enabled: bool


class WeekOut(BaseModel):
    """Coverage over one week (``None`` outside the course)."""

    first: date
    last: date
    pdc: float | None


class MedicationAdherenceOut(BaseModel):
    """Adherence to one active prescription."""

    prescription_id: uuid.UUID
    medication: str
    period_start: date
    period_end: date
    pdc: float | None = Field(description="Proportion of Days Covered, 0 to 1, from dispenses.")
    below_threshold: bool
    dispenses: int
    doses_scheduled: int
    doses_taken: int
    doses_skipped: int
    dose_rate: float | None = Field(description="Doses marked taken among those scheduled so far.")
    weeks: list[WeekOut]

    @classmethod
    def of(cls, item: MedicationAdherence) -> MedicationAdherenceOut:
        """From the service's measure."""
        return cls(
            prescription_id=item.prescription.id,
            medication=item.medication,
            period_start=item.period_start,
            period_end=item.period_end,
            pdc=item.pdc,
            below_threshold=item.below_threshold,
            dispenses=item.dispenses,
            doses_scheduled=item.doses_scheduled,
            doses_taken=item.doses_taken,
            doses_skipped=item.doses_skipped,
            dose_rate=item.dose_rate,
            weeks=[WeekOut(first=w.first, last=w.last, pdc=w.pdc) for w in item.weeks],
        )


class AdherenceOut(BaseModel):
    """A patient's adherence per active medication."""

    patient_id: uuid.UUID
    today: date
    days: int
    threshold: float
    medications: list[MedicationAdherenceOut]

    @classmethod
    def of(cls, report: AdherenceReport) -> AdherenceOut:
        """From the service's report."""
        return cls(
            patient_id=report.patient.id,
            today=report.today,
            days=report.days,
            threshold=report.threshold,
            medications=[MedicationAdherenceOut.of(m) for m in report.medications],
        )


class FlagOut(BaseModel):
    """An active prescription below the adherence threshold."""

    patient_id: uuid.UUID
    patient_name: str
    prescription_id: uuid.UUID
    medication: str
    start_date: date
    pdc: float
    period_start: date
    period_end: date
    last_dispensed_on: date | None

    @classmethod
    def of(cls, flag: Flag) -> FlagOut:
        """From the service's flag."""
        return cls(
            patient_id=flag.patient.id,
            patient_name=f"{flag.patient.given_name} {flag.patient.family_name}",
            prescription_id=flag.prescription.id,
            medication=flag.medication,
            start_date=flag.prescription.start_date,
            pdc=flag.pdc,
            period_start=flag.period_start,
            period_end=flag.period_end,
            last_dispensed_on=flag.last_dispensed_on,
        )


class FlagPageOut(BaseModel):
    """One page of low-adherence flags."""

    items: list[FlagOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: FlagPage) -> FlagPageOut:
        """From the service's page."""
        return cls(items=[FlagOut.of(f) for f in page.items], next_cursor=page.next_cursor)
