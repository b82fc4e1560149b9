"""Prescription tables, with the constraints that protect the rules: valid statuses, routes and
frequencies; never more dispenses than the prescription allows (a CHECK on the counter and a unique fill
number per prescription, so two pharmacists racing cannot both win); one pending request per
prescription; one log and one reminder per scheduled dose."""

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
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.db import Base, IdMixin, TimestampMixin, UTCDateTime, sql_in, utcnow
from caresync.identity.models import Organisation, Patient, User
from caresync.prescriptions.rules import (
    FREQUENCIES,
    MAX_REFILLS,
    REQUEST_KINDS,
    REQUEST_STATUSES,
    ROUTES,
    STATUSES,
)


class Prescription(IdMixin, TimestampMixin, Base):
    """A medication request: what to take, how, for how long, and how many dispenses it allows.

    ``dispense_count`` is the number of dispenses so far; it only grows through a conditional UPDATE
    (``dispense_count < refills + 1``), and the CHECK makes the database refuse one too many."""

    __tablename__ = "prescriptions"
    __table_args__ = (
        CheckConstraint(sql_in("status", STATUSES), name="status"),
        CheckConstraint(sql_in("route", ROUTES), name="route"),
        CheckConstraint(sql_in("frequency", FREQUENCIES), name="frequency"),
        CheckConstraint(f"refills BETWEEN 0 AND {MAX_REFILLS}", name="refills_range"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("days_supply > 0", name="days_supply_positive"),
        CheckConstraint("duration_days > 0", name="duration_positive"),
        CheckConstraint("dispense_count BETWEEN 0 AND refills + 1", name="dispense_count_range"),
        CheckConstraint("valid_until >= start_date", name="valid_after_start"),
        Index("ix_prescriptions_patient_status", "patient_id", "status"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    prescriber_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    medication_code: Mapped[str] = mapped_column(String(20), index=True)  # formulary (RxNorm-style) code
    medication_name: Mapped[str] = mapped_column(String(120))  # e.g. "Amoxicillin"
    strength: Mapped[str] = mapped_column(String(60))  # e.g. "500 mg"
    form: Mapped[str] = mapped_column(String(60))  # e.g. "capsule"
    dose: Mapped[str] = mapped_column(String(60))  # e.g. "1 capsule"
    route: Mapped[str] = mapped_column(String(20))
    frequency: Mapped[str] = mapped_column(String(10))
    dose_times: Mapped[list[str]] = mapped_column(JSON)  # local "HH:MM" times of the daily schedule
    duration_days: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)  # units per dispense
    days_supply: Mapped[int] = mapped_column(Integer)  # days one dispense lasts
    refills: Mapped[int] = mapped_column(Integer)
    dispense_count: Mapped[int] = mapped_column(Integer, default=0)
    instructions: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    reminders_enabled: Mapped[bool] = mapped_column(default=True)
    renewal_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("prescriptions.id"), unique=True)

    patient: Mapped[Patient] = relationship(lazy="joined")
    prescriber: Mapped[User] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Dispense(IdMixin, Base):
    """One dispense of a prescription by a pharmacist: fill 1 is the first fill, later ones are refills."""

    __tablename__ = "dispenses"
    __table_args__ = (
        UniqueConstraint("prescription_id", "fill_number", name="uq_dispenses_fill"),
        CheckConstraint("fill_number >= 1", name="fill_number_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("days_supply > 0", name="days_supply_positive"),
    )

    prescription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    fill_number: Mapped[int] = mapped_column(Integer)
    pharmacist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    days_supply: Mapped[int] = mapped_column(Integer)
    lot: Mapped[str] = mapped_column(String(40))
    dispensed_on: Mapped[date] = mapped_column(Date)  # the pharmacy's local day, for adherence
    dispensed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    pharmacy: Mapped[Organisation] = relationship(lazy="joined")


class PrescriptionRequest(IdMixin, Base):
    """A patient's request for a refill or a renewal, and the prescriber's decision."""

    __tablename__ = "prescription_requests"
    __table_args__ = (
        CheckConstraint(sql_in("kind", REQUEST_KINDS), name="kind"),
        CheckConstraint(sql_in("status", REQUEST_STATUSES), name="status"),
        # one pending request per prescription, enforced by the database
        Index(
            "uq_prescription_requests_pending",
            "prescription_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    prescription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    note: Mapped[str] = mapped_column(String(500), default="")
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(String(500), default="")
    renewal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("prescriptions.id"))  # approved renewal

    prescription: Mapped[Prescription] = relationship(foreign_keys=[prescription_id], lazy="joined")


class DoseLog(IdMixin, Base):
    """The patient's mark on one scheduled dose: taken or skipped (the latest mark wins)."""

    __tablename__ = "dose_logs"
    __table_args__ = (
        UniqueConstraint("prescription_id", "scheduled_at", name="uq_dose_logs_dose"),
        CheckConstraint("status IN ('taken', 'skipped')", name="status"),
    )

    prescription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the dose's moment, in UTC
    status: Mapped[str] = mapped_column(String(10))
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DoseReminder(Base):
    """A sent dose reminder. Inserted before sending (``ON CONFLICT DO NOTHING``), so each dose is reminded
    at most once even with several workers."""

    __tablename__ = "dose_reminders"

    prescription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), primary_key=True
    )
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
