"""Credential tables and the codes they use.

A clinician's licence is a row of ``practitioner_credentials``; the database guarantees that a user has at
most one pending and at most one approved credential at a time (two partial unique indexes: a renewal
waits for review while the licence it renews stays approved), that a licence expires after it was issued,
and that a rejection or suspension carries its reason. ``credential_reminders`` records each expiry
reminder once (primary key credential + kind), so that re-runs and concurrent workers never send one
twice."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from caresync.db import Base, IdMixin, UTCDateTime, sql_in, utcnow

# The credential each clinical role must hold.
KIND_BY_ROLE: dict[str, str] = {
    "doctor": "medical_licence",
    "nurse": "nursing_registration",
    "pharmacist": "pharmacy_licence",
}
KINDS = tuple(KIND_BY_ROLE.values())
KIND_LABELS: dict[str, str] = {
    "medical_licence": "Medical licence",
    "nursing_registration": "Nursing registration",
    "pharmacy_licence": "Pharmacy licence",
}

PENDING, APPROVED, REJECTED, SUSPENDED, EXPIRED, SUPERSEDED = (
    "pending",
    "approved",
    "rejected",
    "suspended",
    "expired",
    "superseded",  # replaced by a newer submission (a resubmission, or an approved renewal)
)
STATUSES = (PENDING, APPROVED, REJECTED, SUSPENDED, EXPIRED, SUPERSEDED)
REASONED_STATUSES = (REJECTED, SUSPENDED)

REGISTRATION_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9/-]{2,39}")
DOCUMENT_TYPES = ("application/pdf", "image/png", "image/jpeg")
REMINDER_DAYS = (30, 7)  # reminders this many days before a licence expires
EXPIRED_KIND = "expired"


def reminder_kind(days: int) -> str:
    """The ``CredentialReminder.kind`` of the reminder ``days`` before expiry, e.g. ``"30d"``."""
    return f"{days}d"


class PractitionerCredential(IdMixin, Base):
    """A licence or registration a clinician submitted, and what their organisation's admin decided."""

    __tablename__ = "practitioner_credentials"
    __table_args__ = (
        CheckConstraint(sql_in("kind", KINDS), name="kind"),
        CheckConstraint(sql_in("status", STATUSES), name="status"),
        CheckConstraint("length(registration_number) BETWEEN 3 AND 40", name="registration_number_length"),
        CheckConstraint("length(issuing_body) > 0", name="issuing_body_given"),
        CheckConstraint("expires_on > issued_on", name="expires_after_issue"),
        CheckConstraint(
            f"NOT ({sql_in('status', REASONED_STATUSES)}) OR length(review_reason) > 0",
            name="reason_for_rejection_or_suspension",
        ),
        Index(
            "uq_practitioner_credentials_pending",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "uq_practitioner_credentials_approved",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'approved'"),
            postgresql_where=text("status = 'approved'"),
        ),
        Index("ix_practitioner_credentials_queue", "status", "submitted_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    registration_number: Mapped[str] = mapped_column(String(40))
    issuing_body: Mapped[str] = mapped_column(String(200))
    file_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))
    media_type: Mapped[str] = mapped_column(String(60))
    filename: Mapped[str] = mapped_column(String(200))
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_reason: Mapped[str] = mapped_column(Text, default="")


class CredentialReminder(Base):
    """An expiry reminder (``30d``, ``7d``) or expiry notice (``expired``) that was sent."""

    __tablename__ = "credential_reminders"

    credential_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioner_credentials.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
