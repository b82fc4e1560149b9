"""Record tables. A record is never edited: a correction is a new row that supersedes it (at most one
successor per record, enforced by a unique constraint), and both stay visible."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.core.signing import SigningKey
from caresync.db import Base, IdMixin, UTCDateTime, sql_in, utcnow
from caresync.records.rules import CATEGORIES


class HealthRecord(IdMixin, Base):
    """One entry of a patient's record: a stored file with its signed manifest."""

    __tablename__ = "health_records"
    __table_args__ = (CheckConstraint(sql_in("category", CATEGORIES), name="category"),)

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
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("health_records.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    signing_key: Mapped[SigningKey] = relationship(lazy="joined")
