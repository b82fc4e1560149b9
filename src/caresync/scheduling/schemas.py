"""Request and response models for the directory, slots, appointments, schedules, time off and waitlist."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from caresync.identity.rules import format_health_id
from caresync.scheduling.models import Appointment, Location, Practitioner, TimeOff, WaitlistEntry
from caresync.scheduling.rules import INSURANCE_PLANS, LANGUAGES, SPECIALTIES, Slot


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2030-01-07T09:00:00Z)")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Mode = Literal["in-person", "video"]


class LocationOut(BaseModel):
    """Where a practitioner works."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    address: str
    city: str
    latitude: float | None
    longitude: float | None
    timezone: str
    organisation_name: str = ""

    @classmethod
    def of(cls, location: Location) -> LocationOut:
        """From a row, with the organisation's name."""
        return cls.model_validate(location).model_copy(
            update={"organisation_name": location.organisation.name}
        )


class PractitionerOut(BaseModel):
    """A directory profile."""

    id: uuid.UUID
    display_name: str
    title: str
    bio: str
    organisation_id: uuid.UUID
    organisation_name: str
    specialties: list[str]
    specialty_names: list[str]
    languages: list[str]
    insurance_plans: list[str]
    modes: list[str]
    accepting_patients: bool
    next_free_slot_at: datetime | None

    @classmethod
    def of(cls, practitioner: Practitioner, next_free: datetime | None = None) -> PractitionerOut:
        """From a row."""
        codes = sorted(s.code for s in practitioner.specialties)
        return cls(
            id=practitioner.id,
            display_name=practitioner.display_name,
            title=practitioner.title,
            bio=practitioner.bio,
            organisation_id=practitioner.organisation_id,
            organisation_name=practitioner.organisation.name,
            specialties=codes,
            specialty_names=[SPECIALTIES.get(c, c) for c in codes],
            languages=sorted(lang.code for lang in practitioner.languages),
            insurance_plans=sorted(i.plan for i in practitioner.insurance_plans),
            modes=practitioner.modes,
            accepting_patients=practitioner.accepting_patients,
            next_free_slot_at=next_free if next_free is not None else practitioner.next_free_slot_at,
        )


class SearchHitOut(BaseModel):
    """A search result."""

    practitioner: PractitionerOut
    location: LocationOut | None
    distance_km: float | None


class SearchOut(BaseModel):
    """A page of search results."""

    items: list[SearchHitOut]
    total: int
    next_cursor: str | None


class SlotOut(BaseModel):
    """A free slot."""

    start: datetime
    end: datetime
    location_id: uuid.UUID | None

    @classmethod
    def of(cls, slot: Slot) -> SlotOut:
        """From the rule's value object."""
        return cls(start=slot.start, end=slot.end, location_id=slot.location_id)


class BookIn(BaseModel):
    """Book the free slot starting at ``start``."""

    model_config = ConfigDict(extra="forbid")

    practitioner_id: uuid.UUID
    start: AwareDatetime
    patient_id: uuid.UUID | None = Field(default=None, description="Staff: the patient; patients: omit")
    mode: Mode = "in-person"
    reason: Reason = ""


class RescheduleIn(BaseModel):
    """Move to the free slot starting at ``start``."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime


class CancelIn(BaseModel):
    """Why the appointment is cancelled."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""


class AppointmentOut(BaseModel):
    """An appointment (FHIR Appointment statuses)."""

    id: uuid.UUID
    status: str
    start: datetime
    end: datetime
    mode: str
    reason: str
    patient_id: uuid.UUID
    patient_name: str
    patient_health_id: str
    practitioner: PractitionerOut
    location: LocationOut | None
    offer_expires_at: datetime | None
    rescheduled_from_id: uuid.UUID | None
    cancel_reason: str

    @classmethod
    def of(cls, appointment: Appointment) -> AppointmentOut:
        """From a row."""
        patient = appointment.patient
        return cls(
            id=appointment.id,
            status=appointment.status,
            start=appointment.start_at,
            end=appointment.end_at,
            mode=appointment.mode,
            reason=appointment.reason,
            patient_id=appointment.patient_id,
            patient_name=f"{patient.given_name} {patient.family_name}",
            patient_health_id=format_health_id(patient.health_id),
            practitioner=PractitionerOut.of(appointment.practitioner),
            location=LocationOut.of(appointment.location) if appointment.location else None,
            offer_expires_at=appointment.offer_expires_at,
            rescheduled_from_id=appointment.rescheduled_from_id,
            cancel_reason=appointment.cancel_reason,
        )


class AppointmentPage(BaseModel):
    """A page of appointments."""

    items: list[AppointmentOut]
    next_cursor: str | None


HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class ScheduleBlockIn(BaseModel):
    """Weekly working hours at a location."""

    model_config = ConfigDict(extra="forbid")

    location_id: uuid.UUID
    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday")]
    start: time
    end: time
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 15
    breaks: list[tuple[HHMM, HHMM]] = Field(default_factory=list, max_length=10)
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _order(self) -> ScheduleBlockIn:
        if self.start >= self.end:
            raise ValueError("the end of the working hours must be after their start")
        for start, end in self.breaks:
            if start >= end:
                raise ValueError(f"break {start}-{end}: the end must be after the start")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("valid_until must not be before valid_from")
        return self


class ScheduleIn(BaseModel):
    """A practitioner's whole weekly schedule (replaces the previous one)."""

    model_config = ConfigDict(extra="forbid")

    blocks: list[ScheduleBlockIn] = Field(max_length=50)


class ScheduleBlockOut(BaseModel):
    """Weekly working hours at a location."""

    id: uuid.UUID
    location_id: uuid.UUID
    weekday: int
    start: time
    end: time
    slot_minutes: int
    breaks: list[tuple[str, str]]
    valid_from: date | None
    valid_until: date | None


class TimeOffIn(BaseModel):
    """Leave, a holiday or a block."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    kind: Literal["leave", "holiday", "block"] = "leave"
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""

    @model_validator(mode="after")
    def _order(self) -> TimeOffIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class TimeOffOut(BaseModel):
    """A period without slots."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    appointments_affected: int = 0

    @classmethod
    def of(cls, row: TimeOff, affected: int = 0) -> TimeOffOut:
        """From a row."""
        return cls.model_validate(row).model_copy(update={"appointments_affected": affected})


class WaitlistIn(BaseModel):
    """Wait for an earlier slot between two dates."""

    model_config = ConfigDict(extra="forbid")

    practitioner_id: uuid.UUID
    earliest: date
    latest: date
    patient_id: uuid.UUID | None = None
    reason: Reason = ""


class WaitlistOut(BaseModel):
    """A waitlist entry."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    practitioner_id: uuid.UUID
    earliest: date
    latest: date
    status: str
    offered_appointment_id: uuid.UUID | None

    @classmethod
    def of(cls, entry: WaitlistEntry) -> WaitlistOut:
        """From a row."""
        return cls.model_validate(entry)


class Vocabularies(BaseModel):
    """The codes search accepts, with their names."""

    specialties: dict[str, str] = SPECIALTIES
    languages: dict[str, str] = LANGUAGES
    insurance_plans: dict[str, str] = INSURANCE_PLANS


class MissedRateOut(BaseModel):
    """No-shows among appointments that were due (fulfilled or missed)."""

    noshow: int
    fulfilled: int
    total: int
    rate: float | None


class MissedOut(BaseModel):
    """The organisation's missed-appointment rate, overall and per practitioner id."""

    days: int
    overall: MissedRateOut
    practitioners: dict[str, MissedRateOut]


class PolicyIn(BaseModel):
    """The organisation's booking policy."""

    model_config = ConfigDict(extra="forbid")

    cancel_notice_hours: Annotated[int, Field(ge=0, le=168)]
    reminder_hours: list[Annotated[int, Field(ge=1, le=336)]] = Field(max_length=3)


class PolicyOut(BaseModel):
    """The booking policy in force."""

    cancel_notice_hours: int
    reminder_hours: list[int]
