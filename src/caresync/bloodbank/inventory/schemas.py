"""Request and response models of the inventory API: units, their history, and the stock dashboard."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from caresync.bloodbank.donors import din as din_rules
from caresync.bloodbank.inventory import service
from caresync.bloodbank.models import BloodUnit

BloodGroup = Literal["O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+"]
ComponentName = Literal["whole_blood", "red_cells", "platelets", "plasma", "cryo"]
UnitStatusName = Literal[
    "on_shelf",
    "quarantined",
    "available",
    "reserved",
    "crossmatched",
    "issued",
    "transfused",
    "expired",
    "discarded",
]
DetailValue = str | bool | int | float


class UnitIn(BaseModel):
    """A unit received from outside, as on its label. The expiry is computed from the component's shelf
    life, never typed."""

    din: str = Field(max_length=20, description='ISBT 128 donation number, e.g. "W1234 26 123456"')
    product_code: str = Field(max_length=8, description='ISBT 128 product code, e.g. "E0336"')
    component: ComponentName
    details: dict[str, DetailValue] = Field(
        default_factory=dict,
        max_length=10,
        description='what decides the shelf life, e.g. {"additive": "AS-1"}',
    )
    blood_group: BloodGroup
    volume_ml: int = Field(ge=1, le=1000)
    collected_at: AwareDatetime
    storage_location: str = Field(default="", max_length=service.MAX_LOCATION)

    def incoming(self) -> service.IncomingUnit:
        """The service's view of this body."""
        return service.IncomingUnit(
            din=self.din,
            product_code=self.product_code,
            component=self.component,
            blood_group=self.blood_group,
            volume_ml=self.volume_ml,
            collected_at=self.collected_at,
            details=dict(self.details),
            storage_location=self.storage_location,
        )


class DiscardIn(BaseModel):
    """Why the unit is discarded (kept in its history)."""

    reason: str = Field(min_length=1, max_length=service.MAX_REASON)


class LocationIn(BaseModel):
    """Where the unit is stored now (fridge, freezer, shelf)."""

    storage_location: str = Field(max_length=service.MAX_LOCATION)


class UnitOut(BaseModel):
    """A blood unit."""

    id: uuid.UUID
    din: str
    din_printed: str
    product_code: str
    component: str
    details: dict[str, object]
    blood_group: str
    volume_ml: int
    collected_at: datetime
    expires_at: datetime
    storage_location: str
    status: str
    donation_id: uuid.UUID | None
    request_id: uuid.UUID | None
    issued_at: datetime | None
    transfused_at: datetime | None

    @classmethod
    def of(cls, unit: BloodUnit) -> UnitOut:
        """The response for a unit row."""
        return cls(
            id=unit.id,
            din=unit.din,
            din_printed=din_rules.grouped(unit.din),
            product_code=unit.product_code,
            component=unit.component,
            details=dict(unit.details or {}),
            blood_group=unit.blood_group,
            volume_ml=unit.volume_ml,
            collected_at=unit.collected_at,
            expires_at=unit.expires_at,
            storage_location=unit.storage_location,
            status=unit.status,
            donation_id=unit.donation_id,
            request_id=unit.request_id,
            issued_at=unit.issued_at,
            transfused_at=unit.transfused_at,
        )


class UnitPage(BaseModel):
    """One page of units and the cursor of the next (null on the last page)."""

    items: list[UnitOut]
    next_cursor: str | None


class UnitEventOut(BaseModel):
    """One step of a unit's history."""

    at: datetime
    from_status: str | None
    to_status: str
    actor_name: str
    organisation_id: uuid.UUID
    organisation_name: str
    request_id: uuid.UUID | None
    transfer_id: uuid.UUID | None
    note: str

    @classmethod
    def of(cls, step: service.HistoryStep) -> UnitEventOut:
        """The response for a history step."""
        event = step.event
        return cls(
            at=event.at,
            from_status=event.from_status,
            to_status=event.to_status,
            actor_name=step.actor_name,
            organisation_id=event.organisation_id,
            organisation_name=step.organisation_name,
            request_id=event.request_id,
            transfer_id=event.transfer_id,
            note=event.note,
        )


class UnitDetailOut(UnitOut):
    """A unit with its storage temperature range and its full history, oldest first."""

    storage_min_c: float
    storage_max_c: float
    history: list[UnitEventOut]

    @classmethod
    def of_detail(cls, detail: service.UnitDetail) -> UnitDetailOut:
        """The response for a unit and its history."""
        low, high = detail.storage_range
        return cls(
            **UnitOut.of(detail.unit).model_dump(),
            storage_min_c=low,
            storage_max_c=high,
            history=[UnitEventOut.of(step) for step in detail.history],
        )


class StockCellOut(BaseModel):
    """One group x component of the stock."""

    blood_group: str
    component: str
    available: int
    reserved: int
    quarantined: int
    expiring_soon: int
    daily_use: float | None
    days_of_supply: float | None
    level: Literal["ok", "low", "critical"]
    low_stock_days: float


class StockOut(BaseModel):
    """The stock dashboard: every group x component of the blood bank, zeros included."""

    organisation_id: uuid.UUID
    at: datetime
    cells: list[StockCellOut]

    @classmethod
    def of(cls, organisation_id: uuid.UUID, at: datetime, cells: list[service.StockCell]) -> StockOut:
        """The response for the dashboard's cells."""
        return cls(
            organisation_id=organisation_id,
            at=at,
            cells=[
                StockCellOut(
                    blood_group=c.blood_group,
                    component=c.component,
                    available=c.available,
                    reserved=c.reserved,
                    quarantined=c.quarantined,
                    expiring_soon=c.expiring_soon,
                    daily_use=c.daily_use,
                    days_of_supply=c.days_of_supply,
                    level=c.level,
                    low_stock_days=c.low_stock_days,
                )
                for c in cells
            ],
        )
