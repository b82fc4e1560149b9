"""Pydantic request and response models of the records API."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from caresync.core.signing import SigningKey
from caresync.records.consent import consent_status
from caresync.records.models import HealthRecord, RecordConsent


class RecordOut(BaseModel):
    """A record's metadata (the file itself is at ``/file``)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    category: str
    title: str
    recorded_on: date
    media_type: str
    size: int
    sha256: str
    uploaded_by: uuid.UUID
    uploader_name: str = ""
    supersedes_id: uuid.UUID | None
    superseded: bool = False
    appointment_id: uuid.UUID | None = None
    measurements: dict[str, float] | None = None
    created_at: datetime

    @classmethod
    def of(cls, record: HealthRecord, superseded: bool = False, uploader_name: str = "") -> RecordOut:
        """From a row."""
        return cls(
            id=record.id,
            patient_id=record.patient_id,
            category=record.category,
            title=record.title,
            recorded_on=record.recorded_on,
            media_type=record.media_type,
            size=record.size,
            sha256=record.file_sha256,
            uploaded_by=record.uploaded_by,
            uploader_name=uploader_name,
            supersedes_id=record.supersedes_id,
            superseded=superseded,
            appointment_id=record.appointment_id,
            measurements=record.measurements,
            created_at=record.created_at,
        )


class RecordPage(BaseModel):
    """One page of a patient's timeline, and the categories the caller may read."""

    items: list[RecordOut]
    next_cursor: str | None
    readable_categories: list[str]


class VerificationOut(BaseModel):
    """Whether the record is intact and authentic, and what is wrong if not."""

    ok: bool
    file_intact: bool
    manifest_matches: bool
    signature_valid: bool
    problems: list[str]
    signer_fingerprint: str


class ConsentIn(BaseModel):
    """A patient lets one practitioner or one organisation read some categories of their record."""

    patient_id: uuid.UUID
    categories: list[str] = Field(min_length=1, max_length=20)
    practitioner_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    note: str = Field(default="", max_length=200)


class ConsentOut(BaseModel):
    """A consent and whether it still counts."""

    id: uuid.UUID
    patient_id: uuid.UUID
    practitioner_id: uuid.UUID | None
    organisation_id: uuid.UUID | None
    categories: list[str]
    note: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str

    @classmethod
    def of(cls, consent: RecordConsent) -> ConsentOut:
        """From a row."""
        return cls(
            id=consent.id,
            patient_id=consent.patient_id,
            practitioner_id=consent.grantee_user_id,
            organisation_id=consent.grantee_organisation_id,
            categories=consent.categories,
            note=consent.note,
            created_at=consent.created_at,
            expires_at=consent.expires_at,
            revoked_at=consent.revoked_at,
            status=consent_status(consent),
        )


class PolicyIn(BaseModel):
    """What an active care relationship reads without explicit consent: standard, full or consent-only."""

    care_team: str = Field(max_length=20)


class PolicyOut(BaseModel):
    """The organisation's care-team policy and what it means."""

    care_team: str
    description: str
    categories: list[str]


class SigningKeyIn(BaseModel):
    """An Ed25519 public key in PEM form, whose private half stays on the user's device."""

    public_key_pem: str = Field(min_length=40, max_length=1000)


class SigningKeyOut(BaseModel):
    """A user's active signing key."""

    fingerprint: str
    public_key_pem: str
    server_held: bool
    created_at: datetime

    @classmethod
    def of(cls, key: SigningKey) -> SigningKeyOut:
        """From a row."""
        return cls(
            fingerprint=key.fingerprint,
            public_key_pem=key.public_key_pem,
            server_held=key.private_key_encrypted is not None,
            created_at=key.created_at,
        )
