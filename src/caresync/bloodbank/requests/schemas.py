"""Request and response bodies of the blood request endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from caresync.bloodbank.models import BloodRequest, BloodUnit, UnitEvent
from caresync.bloodbank.requests.service import Order, RequestView

ComponentName = Literal["whole_blood", "red_cells", "platelets", "plasma", "cryo"]
GroupName = Literal["O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+"]
UrgencyName = Literal["routine", "urgent", "emergency"]
StatusName = Literal["open", "allocated", "issued", "completed", "cancelled"]
StatusFilter = Literal["open", "allocated", "issued", "completed", "cancelled", "queue"]
MAX_UNITS = 50


class RequestIn(BaseModel):
    """A clinician's order of blood for a patient."""

    patient_id: uuid.UUID
    component: ComponentName
    units: int = Field(ge=1, le=MAX_UNITS)
    urgency: UrgencyName
    needed_by: AwareDatetime = Field(description="when the blood must be ready (with its time zone)")
    indication: str = Field(default="", max_length=300, description="why the patient needs it")
    patient_group: GroupName | None = Field(
        default=None, description="only when the patient's record has no group yet; null = unknown"
    )

    def order(self) -> Order:
        """As the service's order."""
        return Order(
            patient_id=self.patient_id,
            component=self.component,
            units=self.units,
            urgency=self.urgency,
            needed_by=self.needed_by,
            indication=self.indication,
            patient_group=self.patient_group,
        )


class CancelIn(BaseModel):
    """Why a request is cancelled."""

    reason: str = Field(min_length=1, max_length=300)


class AllocateIn(BaseModel):
    """The units chosen for a request."""

    unit_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_UNITS)


class CrossmatchIn(BaseModel):
    """A held unit's crossmatch result."""

    unit_id: uuid.UUID
    compatible: bool
    note: str = Field(default="", max_length=200)


class IssueIn(BaseModel):
    """The units to issue (all those waiting when omitted)."""

    unit_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_UNITS)


class ReturnIn(BaseModel):
    """An issued unit coming back to the blood bank."""

    unit_id: uuid.UUID
    kept_cold: bool = Field(description="the unit stayed at its storage temperature while out")
    reason: str = Field(default="", max_length=200)


class TransfusionIn(BaseModel):
    """The unit the clinician confirms was transfused."""

    unit_id: uuid.UUID


class PatientOut(BaseModel):
    """Who the blood is for."""

    id: uuid.UUID
    name: str
    health_id: str


class RequestOut(BaseModel):
    """A blood request."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    patient: PatientOut
    requested_by: uuid.UUID
    component: ComponentName
    patient_group: GroupName | None
    units_requested: int
    urgency: UrgencyName
    needed_by: datetime
    indication: str
    status: StatusName
    status_reason: str
    emergency_release: bool
    created_at: datetime

    @classmethod
    def of(cls, request: BloodRequest) -> RequestOut:
        """From a request row."""
        patient = request.patient
        return cls(
            id=request.id,
            organisation_id=request.organisation_id,
            patient=PatientOut(
                id=patient.id, name=f"{patient.given_name} {patient.family_name}", health_id=patient.health_id
            ),
            requested_by=request.requested_by,
            component=request.component,
            patient_group=request.patient_group,
            units_requested=request.units_requested,
            urgency=request.urgency,
            needed_by=request.needed_by,
            indication=request.indication,
            status=request.status,
            status_reason=request.status_reason,
            emergency_release=request.emergency_release,
            created_at=request.created_at,
        )


class RequestSummaryOut(RequestOut):
    """A request in a list, with how many units it holds."""

    units_held: int


class RequestPage(BaseModel):
    """One page of requests."""

    items: list[RequestSummaryOut]
    next_cursor: str | None


class UnitOut(BaseModel):
    """A unit held for (or offered to) a request."""

    id: uuid.UUID
    din: str
    product_code: str
    component: ComponentName
    blood_group: GroupName
    volume_ml: int
    expires_at: datetime
    status: str
    storage_location: str
    issued_at: datetime | None

    @classmethod
    def of(cls, unit: BloodUnit) -> UnitOut:
        """From a unit row."""
        return cls(
            id=unit.id,
            din=unit.din,
            product_code=unit.product_code,
            component=unit.component,
            blood_group=unit.blood_group,
            volume_ml=unit.volume_ml,
            expires_at=unit.expires_at,
            status=unit.status,
            storage_location=unit.storage_location,
            issued_at=unit.issued_at,
        )


class EventOut(BaseModel):
    """One step a unit took for the request."""

    unit_id: uuid.UUID
    din: str
    at: datetime
    from_status: str | None
    to_status: str
    actor_id: uuid.UUID | None
    note: str

    @classmethod
    def of(cls, event: UnitEvent, din: str) -> EventOut:
        """From a unit event and the unit's donation number."""
        return cls(
            unit_id=event.unit_id,
            din=din,
            at=event.at,
            from_status=event.from_status,
            to_status=event.to_status,
            actor_id=event.actor_id,
            note=event.note,
        )


class RequestDetailOut(RequestOut):
    """A request with the units it holds, what it still needs and its history."""

    shortfall: int
    units: list[UnitOut]
    history: list[EventOut]

    @classmethod
    def of_view(cls, view: RequestView) -> RequestDetailOut:
        """From the service's view of a request."""
        return cls(
            **RequestOut.of(view.request).model_dump(),
            shortfall=view.shortfall,
            units=[UnitOut.of(u) for u in view.units],
            history=[EventOut.of(e, view.dins.get(e.unit_id, "")) for e in view.history],
        )


class UnitsOut(BaseModel):
    """Units a step chose or changed."""

    items: list[UnitOut]

    @classmethod
    def of(cls, rows: list[BloodUnit]) -> UnitsOut:
        """From unit rows."""
        return cls(items=[UnitOut.of(u) for u in rows])
