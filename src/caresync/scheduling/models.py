"""Scheduling tables, with the constraints that protect the rules: one appointment holding a practitioner's
time per start instant (a partial unique index: the database refuses a double booking whatever the code
does), one per patient per instant, valid statuses, sane working hours, one open queue entry per patient
and clinic, and idempotent reminders."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.db import Base, IdMixin, TimestampMixin, UTCDateTime, sql_in
from caresync.identity.models import Organisation, Patient, User
from caresync.scheduling.rules import (
    HOLDS_SLOT,
    OPEN_QUEUE_STATUSES,
    AppointmentStatus,
    ConsultationMode,
    QueueStatus,
    TriageScale,
)


class Location(IdMixin, TimestampMixin, Base):
    """A place where an organisation sees patients (a clinic, a hospital department)."""

    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint("latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="latitude"),
        CheckConstraint("longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="longitude"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")

    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Practitioner(IdMixin, TimestampMixin, Base):
    """A clinician's directory profile. ``next_free_slot_at`` is kept up to date by bookings, cancellations
    and schedule changes (and a periodic refresh), so search can filter and show it without computing
    slots for every practitioner."""

    __tablename__ = "practitioners"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(100), default="")
    bio: Mapped[str] = mapped_column(Text, default="")
    in_person: Mapped[bool] = mapped_column(Boolean, default=True)
    video: Mapped[bool] = mapped_column(Boolean, default=False)
    accepting_patients: Mapped[bool] = mapped_column(Boolean, default=True)
    search_text: Mapped[str] = mapped_column(Text, default="")  # lower-case name, title, specialties
    next_free_slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    user: Mapped[User] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")
    specialties: Mapped[list[PractitionerSpecialty]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    languages: Mapped[list[PractitionerLanguage]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    insurance_plans: Mapped[list[PractitionerInsurance]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def modes(self) -> list[str]:
        """The consultation modes offered."""
        offered = ((ConsultationMode.IN_PERSON, self.in_person), (ConsultationMode.VIDEO, self.video))
        return [mode.value for mode, on in offered if on]


class PractitionerSpecialty(Base):
    """A specialty (code from ``rules.SPECIALTIES``)."""

    __tablename__ = "practitioner_specialties"

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class PractitionerLanguage(Base):
    """A language spoken (ISO 639-1 code)."""

    __tablename__ = "practitioner_languages"

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(8), primary_key=True, index=True)


class PractitionerInsurance(Base):
    """An insurance plan accepted (code from ``rules.INSURANCE_PLANS``)."""

    __tablename__ = "practitioner_insurance"

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True
    )
    plan: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Schedule(IdMixin, Base):
    """Weekly working hours: on ``weekday`` from ``start_time`` to ``end_time`` (the location's local time)
    in slots of ``slot_minutes``, minus ``breaks`` (JSON list of ``["12:00", "13:00"]`` pairs), between the
    optional validity dates."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_time < end_time", name="hours_order"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="slot_minutes"),
        CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_from <= valid_until", name="validity"
        ),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=15)
    breaks: Mapped[str] = mapped_column(Text, default="[]")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)

    location: Mapped[Location] = relationship(lazy="joined")


class TimeOff(IdMixin, Base):
    """Leave, a holiday or an ad-hoc block: no slots are offered in ``[starts_at, ends_at)``."""

    __tablename__ = "time_off"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="order"),
        CheckConstraint("kind IN ('leave', 'holiday', 'block')", name="kind"),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10), default="leave")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


_HOLDS = sql_in("status", sorted(s.value for s in HOLDS_SLOT))


class Appointment(IdMixin, TimestampMixin, Base):
    """A patient's appointment with a practitioner (FHIR Appointment)."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(sql_in("status", [s.value for s in AppointmentStatus]), name="status"),
        CheckConstraint(sql_in("mode", [m.value for m in ConsultationMode]), name="mode"),
        CheckConstraint("start_at < end_at", name="order"),
        # No double booking, whatever the code does: one slot-holding appointment per practitioner and
        # start, and a patient cannot be in two places at once.
        Index(
            "uq_appointments_practitioner_slot",
            "practitioner_id",
            "start_at",
            unique=True,
            sqlite_where=text(_HOLDS),
            postgresql_where=text(_HOLDS),
        ),
        Index(
            "uq_appointments_patient_slot",
            "patient_id",
            "start_at",
            unique=True,
            sqlite_where=text(_HOLDS),
            postgresql_where=text(_HOLDS),
        ),
        Index("ix_appointments_practitioner_start", "practitioner_id", "start_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practitioners.id"))
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=AppointmentStatus.BOOKED.value)
    mode: Mapped[str] = mapped_column(String(10), default=ConsultationMode.IN_PERSON.value)
    reason: Mapped[str] = mapped_column(String(500), default="")
    booked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # for a proposed (waitlist) offer
    rescheduled_from_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(String(300), default="")

    patient: Mapped[Patient] = relationship(lazy="joined")
    practitioner: Mapped[Practitioner] = relationship(lazy="joined")
    location: Mapped[Location | None] = relationship(lazy="joined")


class WaitlistEntry(IdMixin, Base):
    """A patient waiting for an earlier slot with a practitioner, between two dates. When a slot in the
    window frees up, the first waiting patient is offered it (a ``proposed`` appointment held for them)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'offered', 'booked', 'cancelled')", name="status"),
        CheckConstraint("earliest <= latest", name="window"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practitioners.id"), index=True)
    earliest: Mapped[date] = mapped_column(Date)
    latest: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))

    practitioner: Mapped[Practitioner] = relationship(lazy="joined")


class ReminderSent(Base):
    """A reminder (``24h``, ``2h``, ``followup`` …) already sent for an appointment: sending is idempotent."""

    __tablename__ = "appointment_reminders"

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarFeed(IdMixin, Base):
    """A private iCalendar feed URL of a user (patient or practitioner); only the token's digest is
    stored, and revoking it makes the URL stop working."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClinicSettings(Base):
    """An organisation's scheduling policy: triage scale and its maximum waits, cancellation notice,
    reminder offsets."""

    __tablename__ = "clinic_settings"
    __table_args__ = (CheckConstraint(sql_in("triage_scale", [s.value for s in TriageScale]), name="scale"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    triage_scale: Mapped[str] = mapped_column(String(12), default=TriageScale.MANCHESTER.value)
    max_wait_minutes: Mapped[str] = mapped_column(Text, default="")  # JSON {"1": 0, …}; empty = the scale's
    cancel_notice_hours: Mapped[int] = mapped_column(Integer, default=24)
    reminder_hours: Mapped[str] = mapped_column(String(100), default="24,2")


_OPEN_QUEUE = sql_in("status", sorted(s.value for s in OPEN_QUEUE_STATUSES))


class QueueEntry(IdMixin, Base):
    """A patient in a clinic's queue: a walk-in or a checked-in appointment."""

    __tablename__ = "queue_entries"
    __table_args__ = (
        CheckConstraint(sql_in("status", [s.value for s in QueueStatus]), name="status"),
        CheckConstraint("triage_level IS NULL OR triage_level BETWEEN 1 AND 5", name="triage_level"),
        Index(
            "uq_queue_entries_open_patient",
            "location_id",
            "patient_id",
            unique=True,
            sqlite_where=text(_OPEN_QUEUE),
            postgresql_where=text(_OPEN_QUEUE),
        ),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    ticket: Mapped[str] = mapped_column(String(10))  # shown on the waiting-room board instead of a name
    complaint: Mapped[str] = mapped_column(String(300), default="")
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default=QueueStatus.WAITING.value)
    triage_level: Mapped[int | None] = mapped_column(Integer)
    triage_scale: Mapped[str] = mapped_column(String(12), default=TriageScale.MANCHESTER.value)
    triaged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    room: Mapped[str] = mapped_column(String(40), default="")
    consultation_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship(lazy="joined")
