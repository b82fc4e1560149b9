"""Request and response bodies of the alert and donor call-out endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from caresync.bloodbank.alerts.callouts import ContactRow, MyCall, Progress
from caresync.bloodbank.alerts.service import ScanResult
from caresync.bloodbank.models import BloodAlert, CalloutContact
from caresync.bloodbank.rules import DONATION_TYPES
from caresync.identity.schemas import BloodGroup

DonationTypeName = Literal["whole_blood", "double_red_cells", "platelets", "plasma"]
assert set(get_args(DonationTypeName)) == set(DONATION_TYPES)


class AlertOut(BaseModel):
    """An alert: what it is about, how serious, and its figures."""

    id: uuid.UUID
    kind: str = Field(description="low_stock | expiring | unmet_request")
    subject: str = Field(description='"O-:red_cells", "expiring:O-:red_cells" or a request id')
    severity: str = Field(description="warning | critical")
    message: str
    figures: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, alert: BloodAlert) -> AlertOut:
        """From an alert row."""
        return cls(
            id=alert.id,
            kind=alert.kind,
            subject=alert.subject,
            severity=alert.severity,
            message=alert.message,
            figures=dict(alert.figures or {}),
            created_at=alert.created_at,
            resolved_at=alert.resolved_at,
        )


class AlertPage(BaseModel):
    """A page of alerts, newest first."""

    items: list[AlertOut]
    next_cursor: str | None


class ScanOut(BaseModel):
    """What a scan changed."""

    raised: list[AlertOut]
    resolved: list[AlertOut]
    still_open: int

    @classmethod
    def of(cls, result: ScanResult) -> ScanOut:
        """From a scan's result."""
        return cls(
            raised=[AlertOut.of(a) for a in result.raised],
            resolved=[AlertOut.of(a) for a in result.resolved],
            still_open=result.still_open + len(result.raised),
        )


class CalloutIn(BaseModel):
    """Call donors. Say what is needed with one of: ``alert_id`` (a low-stock or unmet-request alert),
    ``request_id``, ``blood_groups`` (the donor groups to call), or ``needed_group`` (the recipients'
    group: the donor groups whose red cells suit it are called)."""

    donors_needed: int = Field(ge=1, le=500)
    needed_group: BloodGroup | None = None
    blood_groups: list[BloodGroup] | None = Field(default=None, max_length=8)
    alert_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None
    donation_type: DonationTypeName | None = Field(default=None, description="default: from what is needed")
    reason: str = Field(default="", max_length=300, description="shown to donors: never a patient's name")


class CalloutOut(BaseModel):
    """A call-out and how far it got."""

    id: uuid.UUID
    status: str
    blood_groups: list[str]
    donation_type: str
    donors_needed: int
    reason: str
    alert_id: uuid.UUID | None
    request_id: uuid.UUID | None
    waves_sent: int
    contacted: int
    accepted: int
    declined: int
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, progress: Progress) -> CalloutOut:
        """From a call-out with its counts."""
        c = progress.callout
        return cls(
            id=c.id,
            status=c.status,
            blood_groups=list(c.blood_groups),
            donation_type=c.donation_type,
            donors_needed=c.donors_needed,
            reason=c.reason,
            alert_id=c.alert_id,
            request_id=c.request_id,
            waves_sent=c.waves_sent,
            contacted=progress.contacted,
            accepted=progress.accepted,
            declined=progress.declined,
            created_at=c.created_at,
            closed_at=c.closed_at,
        )


class CalloutPage(BaseModel):
    """A page of call-outs, newest first."""

    items: list[CalloutOut]
    next_cursor: str | None


class ContactOut(BaseModel):
    """A contacted donor and their reply."""

    donor_id: uuid.UUID
    donor_number: str
    donor_name: str
    blood_group: str | None
    wave: int
    distance_km: float | None
    notified_at: datetime
    response: str
    responded_at: datetime | None
    appointment_id: uuid.UUID | None
    appointment_at: datetime | None

    @classmethod
    def of(cls, row: ContactRow) -> ContactOut:
        """From a contact row."""
        c = row.contact
        return cls(
            donor_id=c.donor_id,
            donor_number=row.donor_number,
            donor_name=row.donor_name,
            blood_group=row.blood_group,
            wave=c.wave,
            distance_km=round(c.distance_km, 1) if c.distance_km is not None else None,
            notified_at=c.notified_at,
            response=c.response,
            responded_at=c.responded_at,
            appointment_id=c.appointment_id,
            appointment_at=row.appointment_at,
        )


class CalloutDetailOut(CalloutOut):
    """A call-out with every contacted donor."""

    contacts: list[ContactOut]


class WaveOut(BaseModel):
    """The outcome of sending a wave."""

    contacted: int = Field(description="donors contacted by this wave (0: no suitable donor left)")
    callout: CalloutOut


class MyCallOut(BaseModel):
    """A call sent to me (the donor)."""

    callout_id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    blood_groups: list[str]
    donation_type: str
    reason: str
    notified_at: datetime
    response: str
    appointment_id: uuid.UUID | None
    appointment_at: datetime | None

    @classmethod
    def of(cls, call: MyCall) -> MyCallOut:
        """From a call to the donor."""
        return cls(
            callout_id=call.callout.id,
            organisation_id=call.organisation.id,
            organisation_name=call.organisation.name,
            blood_groups=list(call.callout.blood_groups),
            donation_type=call.callout.donation_type,
            reason=call.callout.reason,
            notified_at=call.contact.notified_at,
            response=call.contact.response,
            appointment_id=call.contact.appointment_id,
            appointment_at=call.appointment_at,
        )


class ReplyIn(BaseModel):
    """Accept (with the time I can come: a free donation slot) or decline."""

    accept: bool
    starts_at: datetime | None = Field(default=None, description="required to accept; with its time zone")


class ReplyOut(BaseModel):
    """My reply as recorded."""

    callout_id: uuid.UUID
    response: str
    responded_at: datetime | None
    appointment_id: uuid.UUID | None

    @classmethod
    def of(cls, contact: CalloutContact) -> ReplyOut:
        """From the contact row."""
        return cls(
            callout_id=contact.callout_id,
            response=contact.response,
            responded_at=contact.responded_at,
            appointment_id=contact.appointment_id,
        )
