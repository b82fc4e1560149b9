"""Encounters (visits) and their diagnoses: the clinical activity every analysis reads.

An encounter belongs to a patient and an organisation, happened in a department at a time, may come from an
appointment (at most one encounter per appointment), carries optional vital signs and ends with an outcome;
its diagnoses are ICD-10 codes of :data:`caresync.analytics.rules.CONDITIONS`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.analytics.rules import CONDITIONS, Department, Outcome
from caresync.db import Base, IdMixin, UTCDateTime, sql_in

SOURCES = ("app", "synthetic")


class Encounter(IdMixin, Base):
    """A visit: who, where, when, the vital signs taken and how it ended."""

    __tablename__ = "encounters"
    __table_args__ = (
        CheckConstraint(sql_in("department", [d.value for d in Department]), name="department"),
        CheckConstraint(sql_in("outcome", [o.value for o in Outcome]), name="outcome"),
        CheckConstraint(sql_in("source", SOURCES), name="source"),
        CheckConstraint("systolic_mmhg IS NULL OR systolic_mmhg BETWEEN 40 AND 300", name="systolic"),
        CheckConstraint("heart_rate_bpm IS NULL OR heart_rate_bpm BETWEEN 20 AND 250", name="heart_rate"),
        CheckConstraint("temperature_c IS NULL OR temperature_c BETWEEN 25 AND 45", name="temperature"),
        CheckConstraint("spo2_pct IS NULL OR spo2_pct BETWEEN 50 AND 100", name="spo2"),
        Index("ix_encounters_org_started", "organisation_id", "started_at"),
        Index("ix_encounters_patient_started", "patient_id", "started_at"),
        Index("ix_encounters_org_created", "organisation_id", "created_at"),  # the data version (cache) ...
        Index("ix_encounters_created", "created_at"),  # ... of one organisation, and of all
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"), unique=True)
    department: Mapped[str] = mapped_column(String(30))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    systolic_mmhg: Mapped[int | None] = mapped_column(Integer)
    heart_rate_bpm: Mapped[int | None] = mapped_column(Integer)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    spo2_pct: Mapped[int | None] = mapped_column(Integer)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(10), default="app")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    diagnoses: Mapped[list[EncounterDiagnosis]] = relationship(
        back_populates="encounter", cascade="all, delete-orphan", lazy="selectin"
    )


class EncounterDiagnosis(Base):
    """One diagnosed condition of an encounter (ICD-10), ``principal`` for the main one."""

    __tablename__ = "encounter_diagnoses"
    __table_args__ = (
        CheckConstraint(sql_in("code", [c.code for c in CONDITIONS]), name="code"),
        Index("ix_encounter_diagnoses_code", "code"),
    )

    encounter_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    principal: Mapped[bool] = mapped_column(Boolean, default=False)

    encounter: Mapped[Encounter] = relationship(back_populates="diagnoses")
