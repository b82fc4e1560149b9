"""Request and response models of record sharing."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, Field

from caresync.records.models import ShareLink
from caresync.records.rules import CATEGORIES
from caresync.records.schemas import VerificationOut
from caresync.records.sharing import service

SHARED_API = "/api/v1/records/shared"


class ShareIn(BaseModel):
    """A patient shares some of their records until a time (or for a number of hours; 7 days if neither)."""

    patient_id: uuid.UUID
    record_ids: list[uuid.UUID] = Field(min_length=1, max_length=service.MAX_RECORDS)
    expires_in_hours: int | None = Field(default=None, ge=1, le=30 * 24)
    expires_at: AwareDatetime | None = Field(default=None, description="between 1 hour and 30 days from now")
    label: str = Field(default="", max_length=120, description="for your own reference, e.g. 'Dr Silva'")


class ShareOut(BaseModel):
    """A share, without its credentials (they are shown only when it is created)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    label: str
    record_ids: list[uuid.UUID]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: str = Field(description="active, expired or revoked")
    use_count: int = Field(description="how many times the share was opened")
    last_used_at: datetime | None

    @classmethod
    def of(cls, share: ShareLink) -> ShareOut:
        """From a row."""
        return cls(
            id=share.id,
            patient_id=share.patient_id,
            label=share.label,
            record_ids=[r.id for r in share.records],
            created_at=share.created_at,
            expires_at=share.expires_at,
            revoked_at=share.revoked_at,
            status=service.share_status(share),
            use_count=share.use_count,
            last_used_at=share.last_used_at,
        )


class SharePage(BaseModel):
    """One page of a patient's shares, newest first."""

    items: list[ShareOut]
    next_cursor: str | None


class ShareCreatedOut(ShareOut):
    """A new share with its link and code: shown only in this response, so pass them on now."""

    token: str = Field(description="the link's secret; GET /api/v1/records/shared/{token} opens the share")
    code: str = Field(description="a short code to read out; redeem it at POST /api/v1/records/shared/redeem")
    url: str = Field(description="the page to send to whoever should see the records")
    code_url: str = Field(description="the page where a code is entered")


class RedeemIn(BaseModel):
    """A share code, as given by the patient (case and dashes do not matter)."""

    code: str = Field(min_length=1, max_length=40)


class SharedRecordOut(BaseModel):
    """One shared record: what it is, whether it is intact and authentic, and where its file is."""

    id: uuid.UUID
    category: str
    category_label: str
    title: str
    recorded_on: date
    media_type: str
    size: int
    sha256: str
    superseded: bool = Field(description="the patient's record has a corrected version (not shared)")
    verification: VerificationOut
    file_url: str


class SharedViewOut(BaseModel):
    """What a share shows. ``access_key`` goes in file addresses in place of the link token: it is the token
    itself for a link, or a key valid for an hour after a code was redeemed."""

    patient_name: str
    label: str
    expires_at: datetime
    records: list[SharedRecordOut]
    access_key: str
    access_key_expires_at: datetime

    @classmethod
    def of(cls, view: service.SharedView) -> SharedViewOut:
        """From the service's view."""
        records = []
        for record in view.records:
            check = view.verifications[record.id]
            records.append(
                SharedRecordOut(
                    id=record.id,
                    category=record.category,
                    category_label=CATEGORIES.get(record.category, record.category),
                    title=record.title,
                    recorded_on=record.recorded_on,
                    media_type=record.media_type,
                    size=record.size,
                    sha256=record.file_sha256,
                    superseded=record.id in view.superseded,
                    verification=VerificationOut(
                        ok=check.ok,
                        file_intact=check.file_intact,
                        manifest_matches=check.manifest_matches,
                        signature_valid=check.signature_valid,
                        problems=check.problems,
                        signer_fingerprint=record.signing_key.fingerprint,
                    ),
                    file_url=f"{SHARED_API}/{view.key}/records/{record.id}/file",
                )
            )
        return cls(
            patient_name=view.patient_name,
            label=view.share.label,
            expires_at=view.share.expires_at,
            records=records,
            access_key=view.key,
            access_key_expires_at=view.key_expires_at,
        )
