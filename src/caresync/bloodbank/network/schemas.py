"""Request and response bodies of the network endpoints. None of them carries patient data: offers and
transfers say what is needed (group, component, units, urgency, needed-by), never for whom."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from caresync.bloodbank.models import BloodUnit, UnitEvent
from caresync.bloodbank.network.offers import OfferView
from caresync.bloodbank.network.service import Site
from caresync.bloodbank.network.transfers import TransferView

BloodGroup = Literal["O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+"]
ComponentName = Literal["whole_blood", "red_cells", "platelets", "plasma", "cryo"]


class StockCellOut(BaseModel):
    """Available units of one group and component."""

    blood_group: str
    component: str
    available: int


class SiteOut(BaseModel):
    """One hospital or blood bank of the network and its available stock."""

    organisation_id: uuid.UUID
    name: str
    kind: str
    city: str
    latitude: float | None
    longitude: float | None
    distance_km: float | None = Field(description="from the caller's organisation; null without coordinates")
    is_own: bool
    total_available: int
    stock: list[StockCellOut]

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        """From a network site."""
        return cls(
            organisation_id=site.organisation_id,
            name=site.name,
            kind=site.kind,
            city=site.city,
            latitude=site.latitude,
            longitude=site.longitude,
            distance_km=site.distance_km,
            is_own=site.is_own,
            total_available=site.total,
            stock=[
                StockCellOut(blood_group=g, component=c, available=n)
                for (g, c), n in sorted(site.stock.items())
            ],
        )


class NetworkStockOut(BaseModel):
    """The network's available stock, nearest organisation first."""

    items: list[SiteOut]


class OfferOut(BaseModel):
    """A request offered to an organisation: what is needed, how urgently, and the offer's state."""

    id: uuid.UUID
    request_id: uuid.UUID | None = Field(description="only for the requesting organisation")
    rank: int
    state: str = Field(description="offered (awaiting an answer), queued, accepted, declined or expired")
    supplier: str
    supplier_organisation_id: uuid.UUID
    requester: str
    distance_km: float | None
    units_available: int = Field(description="the supplier's compatible available units when offered")
    component: str
    blood_group: str | None = Field(description="the patient's group; null while unknown")
    units_needed: int = Field(description="still needed from the network")
    urgency: str
    needed_by: datetime
    offered_at: datetime
    expires_at: datetime | None
    responded_at: datetime | None
    note: str

    @classmethod
    def of(cls, view: OfferView, viewer: uuid.UUID) -> OfferOut:
        """From an offer view, for the caller's organisation."""
        offer, request = view.offer, view.request
        return cls(
            id=offer.id,
            request_id=request.id if request.organisation_id == viewer else None,
            rank=offer.rank,
            state=view.state,
            supplier=view.supplier_name,
            supplier_organisation_id=offer.organisation_id,
            requester=view.requester_name,
            distance_km=offer.distance_km,
            units_available=offer.units_available,
            component=request.component,
            blood_group=request.patient_group,
            units_needed=view.units_needed,
            urgency=request.urgency,
            needed_by=request.needed_by,
            offered_at=offer.created_at,
            expires_at=view.expires_at,
            responded_at=offer.responded_at,
            note=offer.note,
        )


class OfferListOut(BaseModel):
    """Offers, newest first."""

    items: list[OfferOut]
    next_cursor: str | None = None


class AcceptIn(BaseModel):
    """Accept an offer: the units to send, or none to let CareSync choose (best group, first expiry)."""

    unit_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)
    note: str = Field(default="", max_length=300)


class DeclineIn(BaseModel):
    """Decline an offer, saying why (the requester sees the note)."""

    note: str = Field(min_length=1, max_length=300)


class TransferIn(BaseModel):
    """Ask another organisation for stock (you receive) or send it stock (you supply)."""

    from_organisation_id: uuid.UUID
    to_organisation_id: uuid.UUID
    blood_group: BloodGroup
    component: ComponentName
    units: int = Field(ge=1, le=50)
    unit_ids: list[uuid.UUID] | None = Field(default=None, max_length=50, description="supplier only")
    note: str = Field(default="", max_length=250)


class DispatchIn(BaseModel):
    """Hand the units to a courier (a stock request's units may be chosen now)."""

    courier: str = Field(min_length=1, max_length=120)
    unit_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)


class CancelIn(BaseModel):
    """Cancel a transfer before dispatch."""

    reason: str = Field(default="", max_length=200)


class TransferUnitOut(BaseModel):
    """A unit travelling in a transfer."""

    id: uuid.UUID
    din: str
    product_code: str
    blood_group: str
    component: str
    volume_ml: int
    expires_at: datetime
    status: str

    @classmethod
    def of(cls, unit: BloodUnit) -> TransferUnitOut:
        """From a unit."""
        return cls(
            id=unit.id,
            din=unit.din,
            product_code=unit.product_code,
            blood_group=unit.blood_group,
            component=unit.component,
            volume_ml=unit.volume_ml,
            expires_at=unit.expires_at,
            status=unit.status,
        )


class UnitEventOut(BaseModel):
    """One step of a unit's history during the transfer."""

    unit_id: uuid.UUID
    at: datetime
    from_status: str | None
    to_status: str
    organisation_id: uuid.UUID
    note: str

    @classmethod
    def of(cls, event: UnitEvent) -> UnitEventOut:
        """From a unit event."""
        return cls(
            unit_id=event.unit_id,
            at=event.at,
            from_status=event.from_status,
            to_status=event.to_status,
            organisation_id=event.organisation_id,
            note=event.note,
        )


class ContentOut(BaseModel):
    """Units of one group and component in a transfer (or asked for)."""

    blood_group: str
    component: str
    units: int


class TransferOut(BaseModel):
    """A transfer between two organisations."""

    id: uuid.UUID
    direction: Literal["incoming", "outgoing"]
    status: str
    from_organisation_id: uuid.UUID
    from_organisation: str
    to_organisation_id: uuid.UUID
    to_organisation: str
    request_id: uuid.UUID | None = Field(description="the receiver's request it serves (receiver only)")
    offer_id: uuid.UUID | None
    contents: list[ContentOut]
    units: list[TransferUnitOut]
    courier: str
    note: str
    created_at: datetime
    requested_by: str = Field(description="the staff member who asked for or sent the units")
    dispatched_at: datetime | None
    dispatched_by: str
    received_at: datetime | None
    received_by: str
    history: list[UnitEventOut] = Field(default_factory=list, description="only on a single transfer")

    @classmethod
    def of(cls, view: TransferView) -> TransferOut:
        """From a transfer view."""
        t = view.transfer
        return cls(
            id=t.id,
            direction=view.direction,
            status=t.status,
            from_organisation_id=t.from_organisation_id,
            from_organisation=view.from_name,
            to_organisation_id=t.to_organisation_id,
            to_organisation=view.to_name,
            request_id=view.request_id,
            offer_id=t.offer_id,
            contents=[ContentOut(blood_group=g, component=c, units=n) for g, c, n in view.contents],
            units=[TransferUnitOut.of(u) for u in view.units],
            courier=t.courier,
            note=view.note,
            created_at=t.created_at,
            requested_by=view.by(t.requested_by),
            dispatched_at=t.dispatched_at,
            dispatched_by=view.by(t.dispatched_by),
            received_at=t.received_at,
            received_by=view.by(t.received_by),
            history=[UnitEventOut.of(e) for e in view.events],
        )


class TransferListOut(BaseModel):
    """Transfers, newest first."""

    items: list[TransferOut]
    next_cursor: str | None = None
