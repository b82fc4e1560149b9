"""Imaging AI tables: trained model versions and which one serves each task, imaging studies uploaded for
patients, the analyses run on them, and the clinicians' feedback on those analyses.

An :class:`ImagingModel` is immutable once registered (its weights are a content-addressed, encrypted
stored file; its model card a JSON document). :class:`ImagingServing` says which version answers new
analyses of a task: switching it is one row update, so no process restarts and analyses already running
keep the version they started with (each :class:`ImagingAnalysis` names its model).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.db import Base, IdMixin, UTCDateTime, sql_in, utcnow

NULLABLE_JSON = JSON(none_as_null=True)  # None is SQL NULL (the result CHECK relies on it), not JSON null

ARCHITECTURES = ("basic_cnn", "resnet50", "efficientnet")
ANALYSIS_STATUSES = ("queued", "running", "done", "failed")
VERDICTS = ("confirmed", "corrected")


class ImagingModel(IdMixin, Base):
    """One trained version of a task's classifier, with its model card."""

    __tablename__ = "imaging_models"
    __table_args__ = (
        UniqueConstraint("task", "version", name="uq_imaging_models_task_version"),
        CheckConstraint(sql_in("architecture", ARCHITECTURES), name="architecture"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("in_channels IN (1, 3)", name="in_channels"),
        CheckConstraint("input_size BETWEEN 16 AND 1024", name="input_size"),
    )

    task: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    architecture: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list[str]] = mapped_column(JSON)  # output order of the model's head
    multilabel: Mapped[bool] = mapped_column(Boolean, default=False)
    in_channels: Mapped[int] = mapped_column(Integer)
    input_size: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float, default=1.0)  # calibration of the logits
    weights_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))
    demonstration: Mapped[bool] = mapped_column(Boolean, default=False)  # trained on synthetic/demo data
    card: Mapped[dict[str, Any]] = mapped_column(JSON)  # metrics, data fingerprint, intended use, training
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImagingServing(Base):
    """Which model version answers new analyses of a task (admins switch it, without a restart)."""

    __tablename__ = "imaging_serving"

    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imaging_models.id"))
    changed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    model: Mapped[ImagingModel] = relationship()


class ImagingStudy(IdMixin, Base):
    """An uploaded image (DICOM, PNG or JPEG) of a patient, kept encrypted, with what its header told."""

    __tablename__ = "imaging_studies"
    __table_args__ = (
        CheckConstraint("width > 0 AND height > 0", name="size"),
        CheckConstraint("channels IN (1, 3)", name="channels"),
        Index("ix_imaging_studies_patient", "patient_id", "created_at"),
        Index("ix_imaging_studies_organisation", "organisation_id", "created_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(60))
    file_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))
    preview_sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"))  # windowed, 8-bit PNG
    modality: Mapped[str | None] = mapped_column(String(16))  # DICOM (0008,0060), e.g. CR, CT, MR, US
    body_part: Mapped[str | None] = mapped_column(String(64))
    study_uid: Mapped[str | None] = mapped_column(String(64))
    series_uid: Mapped[str | None] = mapped_column(String(64))
    pixel_spacing: Mapped[list[float] | None] = mapped_column(JSON)  # mm: [row, column]
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    analyses: Mapped[list[ImagingAnalysis]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="ImagingAnalysis.submitted_at"
    )


class ImagingAnalysis(IdMixin, Base):
    """One model's analysis of a study: where it stands, then its probabilities, findings and heatmap."""

    __tablename__ = "imaging_analyses"
    __table_args__ = (
        CheckConstraint(sql_in("status", ANALYSIS_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'done') = (probabilities IS NOT NULL AND completed_at IS NOT NULL)", name="result"
        ),
        Index("ix_imaging_analyses_queue", "status", "submitted_at"),
    )

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imaging_studies.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(40))
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imaging_models.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    submitted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(String(300))
    probabilities: Mapped[dict[str, float] | None] = mapped_column(NULLABLE_JSON)  # label -> probability
    findings: Mapped[list[str] | None] = mapped_column(NULLABLE_JSON)  # top labels, most likely first
    heatmap_sha256: Mapped[str | None] = mapped_column(ForeignKey("stored_files.sha256"))  # RGBA PNG
    preprocessing: Mapped[list[str] | None] = mapped_column(NULLABLE_JSON)  # each step applied, in order
    seconds: Mapped[float | None] = mapped_column(Float)  # inference + Grad-CAM time

    study: Mapped[ImagingStudy] = relationship(back_populates="analyses")
    model: Mapped[ImagingModel] = relationship()
    feedback: Mapped[ImagingFeedback | None] = relationship(
        back_populates="analysis", cascade="all, delete-orphan"
    )


class ImagingFeedback(IdMixin, Base):
    """A doctor's verdict on an analysis: the finding confirmed, or corrected to the right label."""

    __tablename__ = "imaging_feedback"
    __table_args__ = (CheckConstraint(sql_in("verdict", VERDICTS), name="verdict"),)

    analysis_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("imaging_analyses.id", ondelete="CASCADE"), unique=True
    )
    verdict: Mapped[str] = mapped_column(String(10))
    labels: Mapped[list[str]] = mapped_column(JSON)  # the labels the doctor holds true (empty: normal)
    note: Mapped[str | None] = mapped_column(String(1000))
    given_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    analysis: Mapped[ImagingAnalysis] = relationship(back_populates="feedback")
