"""Request and response models of the clinic queue endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from caresync.scheduling.queue import service

Complaint = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
Room = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Level = Annotated[int, Field(ge=1, le=5, description="1 = most urgent … 5 = least urgent")]
Minutes = Annotated[int, Field(ge=0, le=service.MAX_WAIT_LIMIT)]


class WalkInIn(BaseModel):
    """A walk-in joining the queue."""

    model_config = ConfigDict(extra="forbid")

    health_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    complaint: Complaint = ""


class TriageIn(BaseModel):
    """A triage decision."""

    model_config = ConfigDict(extra="forbid")

    level: Level


class CallIn(BaseModel):
    """Call the next patient to a room."""

    model_config = ConfigDict(extra="forbid")

    room: Room


class SettingsIn(BaseModel):
    """An organisation's triage policy: the scale and, optionally, its own maximum waits per level
    (``{"1": 0, "2": 10, …}``; omit or ``null`` for the scale's defaults)."""

    model_config = ConfigDict(extra="forbid")

    scale: Literal["manchester", "esi"]
    max_wait_minutes: dict[Level, Minutes] | None = None

    @field_validator("max_wait_minutes")
    @classmethod
    def _complete(cls, value: dict[int, int] | None) -> dict[int, int] | None:
        if value is not None and set(value) != {1, 2, 3, 4, 5}:
            raise ValueError("give a maximum wait for each level 1 to 5")
        return value


class SettingsOut(BaseModel):
    """The triage policy in force."""

    scale: str
    max_wait_minutes: dict[int, int]
    customised: bool
    labels: dict[int, str]

    @classmethod
    def of(cls, policy: service.TriagePolicy) -> SettingsOut:
        """From the service's policy."""
        return cls(
            scale=policy.scale.value,
            max_wait_minutes=policy.max_wait,
            customised=policy.customised,
            labels={level: policy.label(level) for level in policy.max_wait},
        )


class EntryOut(BaseModel):
    """A queue entry."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    location_id: uuid.UUID
    patient_id: uuid.UUID
    appointment_id: uuid.UUID | None
    ticket: str
    complaint: str
    arrived_at: datetime
    status: str
    triage_level: int | None
    triage_scale: str
    triaged_at: datetime | None
    escalated_at: datetime | None
    called_at: datetime | None
    room: str
    consultation_started_at: datetime | None
    finished_at: datetime | None


class QueueItemOut(EntryOut):
    """A queue entry as the console shows it: who, where in the order, and how long."""

    patient_name: str
    position: int | None
    effective_level: int
    overdue: bool
    waited_minutes: int
    estimated_wait_minutes: int | None
    triage_label: str

    @classmethod
    def of(cls, item: service.QueueItem) -> QueueItemOut:
        """From the service's view of one entry."""
        return cls(
            **EntryOut.model_validate(item.entry).model_dump(),
            patient_name=item.patient_name,
            position=item.position,
            effective_level=item.effective_level,
            overdue=item.overdue,
            waited_minutes=item.waited_minutes,
            estimated_wait_minutes=item.estimated_wait_minutes,
            triage_label=item.triage_label,
        )


class QueueOut(BaseModel):
    """A location's open queue: waiting patients in call order, then those called or being seen."""

    location_id: uuid.UUID
    location_name: str
    scale: str
    consultation_minutes: float
    clinicians: int
    waiting: list[QueueItemOut]
    in_progress: list[QueueItemOut]

    @classmethod
    def of(cls, view: service.QueueView) -> QueueOut:
        """From the service's view."""
        return cls(
            location_id=view.location.id,
            location_name=view.location.name,
            scale=view.policy.scale.value,
            consultation_minutes=view.consultation_minutes,
            clinicians=view.clinicians,
            waiting=[QueueItemOut.of(i) for i in view.waiting],
            in_progress=[QueueItemOut.of(i) for i in view.in_progress],
        )


class BoardTicketOut(BaseModel):
    """A ticket on the waiting-room board."""

    ticket: str
    position: int
    estimated_wait_minutes: int
    overdue: bool


class BoardCallOut(BaseModel):
    """A recent call on the board."""

    ticket: str
    room: str
    called_at: datetime


class BoardOut(BaseModel):
    """The waiting-room board: tickets only, never patient data."""

    location_id: uuid.UUID
    location_name: str
    tickets: list[BoardTicketOut]
    calls: list[BoardCallOut]

    @classmethod
    def of(cls, view: service.BoardView) -> BoardOut:
        """From the service's board."""
        return cls(
            location_id=view.location.id,
            location_name=view.location.name,
            tickets=[BoardTicketOut(**vars(t)) for t in view.tickets],
            calls=[BoardCallOut(**vars(c)) for c in view.calls],
        )


class OwnPlaceOut(BaseModel):
    """A patient's own place in a queue."""

    entry_id: uuid.UUID
    location_id: uuid.UUID
    location_name: str
    ticket: str
    status: str
    position: int | None
    ahead: int
    estimated_wait_minutes: int | None
    room: str

    @classmethod
    def of(cls, place: service.OwnPlace) -> OwnPlaceOut:
        """From the service's view."""
        entry = place.entry
        return cls(
            entry_id=entry.id,
            location_id=entry.location_id,
            location_name=place.location_name,
            ticket=entry.ticket,
            status=entry.status,
            position=place.position,
            ahead=place.ahead,
            estimated_wait_minutes=place.estimated_wait_minutes,
            room=entry.room,
        )


class LocationOut(BaseModel):
    """A location with a clinic queue."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    city: str
