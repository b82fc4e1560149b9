"""Record tables. A record is never edited: a correction is a new row that supersedes it (at most one
successor per record, enforced by a unique constraint), and both stay visible. Consents, share links,
clinical notes, care-team tasks and message threads live here too."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.core.signing import SigningKey
from caresync.db import Base, IdMixin, UTCDateTime, sql_in, utcnow
from caresync.records.rules import (
    CARE_TEAM_POLICIES,
    CATEGORIES,
    DEFAULT_CARE_TEAM_POLICY,
    NOTE_CATEGORIES,
    TASK_STATUSES,
    THREAD_KINDS,
)


class HealthRecord(IdMixin, Base):
    """One entry of a patient's record: a stored file with its signed manifest."""

    __tablename__ = "health_records"
    __table_args__ = (
        CheckConstraint(sql_in("category", CATEGORIES), name="category"),
        Index("ix_health_records_timeline", "patient_id", "recorded_on", "id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(200))
    recorded_on: Mapped[date] = mapped_column(Date, index=True)
    file_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))
    media_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[str] = mapped_column(Text)  # the exact signed bytes (canonical JSON)
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 signature of ``manifest``
    signing_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("signing_keys.id"))
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("health_records.id"), unique=True)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL"), index=True
    )
    measurements: Mapped[dict[str, float] | None] = mapped_column(JSON)  # vital signs, also in the manifest
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    signing_key: Mapped[SigningKey] = relationship(lazy="joined")


class RecordConsent(IdMixin, Base):
    """A patient's permission for one practitioner, or everyone of one organisation, to read some
    categories of their record, until it expires or the patient revokes it."""

    __tablename__ = "record_consents"
    __table_args__ = (
        CheckConstraint("(grantee_user_id IS NULL) <> (grantee_organisation_id IS NULL)", name="one_grantee"),
        CheckConstraint("expires_at IS NULL OR expires_at > created_at", name="expiry_after_grant"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    grantee_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    grantee_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id"), index=True
    )
    categories: Mapped[list[str]] = mapped_column(JSON)  # sorted category codes, never empty
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecordPolicy(Base):
    """An organisation's rule for what an active care relationship reads without explicit consent (no row:
    the default policy)."""

    __tablename__ = "record_policies"
    __table_args__ = (CheckConstraint(sql_in("care_team", CARE_TEAM_POLICIES), name="care_team"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    care_team: Mapped[str] = mapped_column(String(20), default=DEFAULT_CARE_TEAM_POLICY)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ShareLink(IdMixin, Base):
    """A time-limited link (and short code) that shows a chosen set of records to whoever holds it. Only
    digests of the token and code are stored."""

    __tablename__ = "record_shares"
    __table_args__ = (CheckConstraint("expires_at > created_at", name="expiry_after_creation"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    records: Mapped[list[HealthRecord]] = relationship(secondary="record_share_items", lazy="selectin")


class ShareItem(Base):
    """One record of a share."""

    __tablename__ = "record_share_items"

    share_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("record_shares.id", ondelete="CASCADE"), primary_key=True
    )
    record_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("health_records.id", ondelete="CASCADE"), primary_key=True
    )


class ClinicalNote(IdMixin, Base):
    """A SOAP note by a member of the care team. Never edited: an amendment is a new note that names the
    one it amends (at most one each)."""

    __tablename__ = "clinical_notes"
    __table_args__ = (
        CheckConstraint(sql_in("category", NOTE_CATEGORIES), name="category"),
        Index("ix_clinical_notes_patient_time", "patient_id", "created_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    category: Mapped[str] = mapped_column(String(20), default="note")
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    subjective: Mapped[str] = mapped_column(Text, default="")
    objective: Mapped[str] = mapped_column(Text, default="")
    assessment: Mapped[str] = mapped_column(Text, default="")
    plan: Mapped[str] = mapped_column(Text, default="")
    amends_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clinical_notes.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CareTask(IdMixin, Base):
    """Work one member of the care team asks of another, about a patient, with a due date."""

    __tablename__ = "care_tasks"
    __table_args__ = (
        CheckConstraint(sql_in("status", TASK_STATUSES), name="status"),
        CheckConstraint("(status = 'open') = (completed_at IS NULL)", name="completion_matches_status"),
        Index("ix_care_tasks_assignee_status", "assignee_id", "status", "due_on"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class MessageThread(IdMixin, Base):
    """A conversation about one patient: with the patient and their care team, or within the team only.
    Who takes part follows the care team as it changes."""

    __tablename__ = "message_threads"
    __table_args__ = (CheckConstraint(sql_in("kind", THREAD_KINDS), name="kind"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(IdMixin, Base):
    """One message of a thread."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("length(body) > 0", name="body_not_empty"),
        Index("ix_messages_thread_time", "thread_id", "created_at"),
    )

    thread_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message_threads.id", ondelete="CASCADE"))
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThreadRead(Base):
    """How far a user has read a thread (for unread counts)."""

    __tablename__ = "message_reads"

    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message_threads.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
