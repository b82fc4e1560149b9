"""Document AI tables: scanned documents with their OCR pages, and recorded consultations with their
transcript segments and draft notes.

A scan keeps its original file (``original_sha256``) and, once OCR is done, files the searchable PDF into the
patient's record as a signed :class:`~caresync.records.models.HealthRecord` (``record_id``), so consent,
corrections and FHIR apply to it like to any upload. A consultation's note enters the record the same way,
only when the clinician approves it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.db import Base, IdMixin, UTCDateTime, sql_in, utcnow
from caresync.records.rules import CATEGORIES

SCAN_STATUSES = ("queued", "processing", "done", "failed")
CONSULTATION_STATUSES = ("queued", "transcribing", "ready", "failed")
NOTE_STATUSES = ("draft", "approved")
SPEAKER_ROLES = ("doctor", "patient", "other")


class DocumentScan(IdMixin, Base):
    """A scanned document uploaded for a patient, and where its OCR stands."""

    __tablename__ = "document_scans"
    __table_args__ = (
        CheckConstraint(sql_in("status", SCAN_STATUSES), name="status"),
        CheckConstraint(sql_in("category", CATEGORIES), name="category"),
        CheckConstraint("pages_done <= page_count", name="pages_done"),
        Index("ix_document_scans_inbox", "organisation_id", "created_at"),
        Index("ix_document_scans_patient", "patient_id", "created_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(60))
    original_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    ocr_skipped: Mapped[bool] = mapped_column(Boolean, default=False)  # already searchable: text taken over
    error: Mapped[str | None] = mapped_column(String(300))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("health_records.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    pages: Mapped[list[ScanPage]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", order_by="ScanPage.number"
    )


class ScanPage(Base):
    """One page's recognised text and how sure the OCR was (0-1); low-confidence pages await review."""

    __tablename__ = "document_scan_pages"
    __table_args__ = (
        CheckConstraint("number >= 1", name="number"),
        CheckConstraint("confidence IS NULL OR confidence BETWEEN 0 AND 1", name="confidence"),
    )

    scan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("document_scans.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float | None] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    scan: Mapped[DocumentScan] = relationship(back_populates="pages")


class Consultation(IdMixin, Base):
    """A recorded doctor-patient conversation and where its transcription stands."""

    __tablename__ = "consultations"
    __table_args__ = (
        CheckConstraint(sql_in("status", CONSULTATION_STATUSES), name="status"),
        Index("ix_consultations_patient", "patient_id", "created_at"),
        Index("ix_consultations_clinician", "clinician_id", "created_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    clinician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    audio_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))
    media_type: Mapped[str] = mapped_column(String(60))
    duration_s: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    speakers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # speaker label -> role
    # speaker label -> the name the clinician gave them ("speaker 2" -> "Mrs Jones (daughter)"); a speaker
    # without one is called by their label
    speaker_names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(String(300))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    segments: Mapped[list[TranscriptSegment]] = relationship(
        back_populates="consultation", cascade="all, delete-orphan", order_by="TranscriptSegment.index"
    )
    note: Mapped[ConsultationNote | None] = relationship(
        back_populates="consultation", cascade="all, delete-orphan"
    )


class TranscriptSegment(Base):
    """One stretch of speech: when, who (a speaker label the clinician can map to a role) and what."""

    __tablename__ = "consultation_segments"
    __table_args__ = (CheckConstraint("end_s >= start_s AND start_s >= 0", name="times"),)

    consultation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    speaker: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)

    consultation: Mapped[Consultation] = relationship(back_populates="segments")


class ConsultationNote(IdMixin, Base):
    """The draft SOAP note of a consultation (each sentence with the segments it came from), as the
    clinician edits it; once approved it is filed into the record (``record_id``) and no longer changes."""

    __tablename__ = "consultation_notes"
    __table_args__ = (
        CheckConstraint(sql_in("status", NOTE_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'approved') = (approved_at IS NOT NULL AND record_id IS NOT NULL)", name="approval"
        ),
    )

    consultation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), unique=True
    )
    draft: Mapped[dict[str, object]] = mapped_column(JSON)  # sections -> sentences with segment indexes
    text: Mapped[str] = mapped_column(Text)  # the clinician's edited note
    status: Mapped[str] = mapped_column(String(10), default="draft")
    approved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("health_records.id"), unique=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    consultation: Mapped[Consultation] = relationship(back_populates="note")
