"""Pydantic request and response models of the credentials API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from caresync.identity.credentials.models import PractitionerCredential
from caresync.identity.models import User


class CredentialOut(BaseModel):
    """A submitted licence and the decision on it (the document itself is at ``/document``)."""

    id: uuid.UUID
    user_id: uuid.UUID
    holder_name: str
    holder_role: str
    kind: str
    registration_number: str
    issuing_body: str
    issued_on: date
    expires_on: date
    status: str
    media_type: str
    filename: str
    sha256: str
    submitted_at: datetime
    reviewed_by: uuid.UUID | None
    reviewed_at: datetime | None
    review_reason: str

    @classmethod
    def of(cls, credential: PractitionerCredential, holder: User) -> CredentialOut:
        """From a row and its holder."""
        return cls(
            id=credential.id,
            user_id=credential.user_id,
            holder_name=holder.full_name,
            holder_role=holder.role,
            kind=credential.kind,
            registration_number=credential.registration_number,
            issuing_body=credential.issuing_body,
            issued_on=credential.issued_on,
            expires_on=credential.expires_on,
            status=credential.status,
            media_type=credential.media_type,
            filename=credential.filename,
            sha256=credential.file_sha256,
            submitted_at=credential.submitted_at,
            reviewed_by=credential.reviewed_by,
            reviewed_at=credential.reviewed_at,
            review_reason=credential.review_reason,
        )


class MyCredentialsOut(BaseModel):
    """The caller's verification: whether they hold a valid approved licence today, and their submissions
    (newest first)."""

    verified: bool
    credentials: list[CredentialOut]


class CredentialPage(BaseModel):
    """One page of the administrator's queue."""

    items: list[CredentialOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    """An administrator's decision on a pending credential."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=1000, description="required when rejecting")


class SuspendIn(BaseModel):
    """Why an approved credential is suspended."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)
