"""Blood bank tables, with the constraints that protect the rules: valid groups, components and statuses;
one unit per donation number and product; a unit held for at most one request; one booked donor chair per
time; one open alert per subject; a donor called at most once per call-out."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.bloodbank.rules import (
    ALERT_KINDS,
    APPOINTMENT_STATUSES,
    BLOOD_GROUPS,
    CALLOUT_RESPONSES,
    CALLOUT_STATUSES,
    COMPONENTS,
    DEFERRAL_KINDS,
    DONATION_OUTCOMES,
    DONATION_TYPES,
    DONOR_SEXES,
    OFFER_STATUSES,
    REQUEST_STATUSES,
    RULE_PROFILES,
    TRANSFER_STATUSES,
    UNIT_STATUSES,
    URGENCIES,
)
from caresync.db import Base, IdMixin, TimestampMixin, UTCDateTime, sql_in, utcnow
from caresync.identity.models import Organisation, Patient, User


class BloodBankPolicy(TimestampMixin, Base):
    """An organisation's blood bank settings: which country's donor rules apply, stock thresholds in days
    of supply, how early to warn of expiry, and how donor call-outs and donation chairs work."""

    __tablename__ = "blood_bank_policies"
    __table_args__ = (
        CheckConstraint(sql_in("rule_profile", RULE_PROFILES), name="rule_profile"),
        CheckConstraint("low_stock_days > 0 AND critical_stock_days > 0", name="stock_days_positive"),
        CheckConstraint("critical_stock_days <= low_stock_days", name="critical_below_low"),
        CheckConstraint("expiry_warning_days BETWEEN 1 AND 30", name="expiry_warning_range"),
        CheckConstraint("callout_wave_size BETWEEN 1 AND 500", name="callout_wave_size_range"),
        CheckConstraint("callout_cooldown_days BETWEEN 1 AND 90", name="callout_cooldown_range"),
        CheckConstraint("donation_chairs BETWEEN 1 AND 50", name="donation_chairs_range"),
        CheckConstraint("return_window_minutes BETWEEN 0 AND 240", name="return_window_range"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    rule_profile: Mapped[str] = mapped_column(String(8), default="US")
    low_stock_days: Mapped[float] = mapped_column(Float, default=3.0)
    critical_stock_days: Mapped[float] = mapped_column(Float, default=1.0)
    # Per group/component overrides of the low-stock threshold, e.g. {"O-:red_cells": 5}.
    stock_thresholds: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    # Baseline daily use per "group:component" when there is not yet enough issue history.
    baseline_daily_use: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    expiry_warning_days: Mapped[int] = mapped_column(Integer, default=3)
    callout_wave_size: Mapped[int] = mapped_column(Integer, default=20)
    callout_cooldown_days: Mapped[int] = mapped_column(Integer, default=7)
    donation_chairs: Mapped[int] = mapped_column(Integer, default=4)
    return_window_minutes: Mapped[int] = mapped_column(Integer, default=30)


class Donor(IdMixin, TimestampMixin, Base):
    """A blood donor. Registered by themselves (with an account) or by blood bank staff (without one)."""

    __tablename__ = "donors"
    __table_args__ = (
        CheckConstraint(sql_in("sex", DONOR_SEXES), name="sex"),
        CheckConstraint(f"blood_group IS NULL OR {sql_in('blood_group', BLOOD_GROUPS)}", name="blood_group"),
        CheckConstraint("weight_kg IS NULL OR weight_kg BETWEEN 20 AND 400", name="weight_range"),
        CheckConstraint("height_cm IS NULL OR height_cm BETWEEN 50 AND 250", name="height_range"),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), unique=True)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    donor_number: Mapped[str] = mapped_column(String(16), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    blood_group: Mapped[str | None] = mapped_column(String(3), index=True)  # None until typed
    weight_kg: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)  # for the double red cell minimums
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    parental_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    available: Mapped[bool] = mapped_column(Boolean, default=True)  # willing to be called now
    unavailable_until: Mapped[date | None] = mapped_column(Date)
    last_called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # for the call-out cool-down

    account: Mapped[User | None] = relationship(foreign_keys=[user_id])
    organisation: Mapped[Organisation | None] = relationship(foreign_keys=[organisation_id])


class DonorDeferral(IdMixin, Base):
    """A period (or, when permanent, no end) during which a donor may not give blood, with its reason."""

    __tablename__ = "donor_deferrals"
    __table_args__ = (
        CheckConstraint(sql_in("kind", DEFERRAL_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'permanent' AND ends_on IS NULL) OR (kind = 'temporary' AND ends_on > starts_on)",
            name="end_matches_kind",
        ),
        CheckConstraint("length(reason) > 0", name="reason_given"),
    )

    donor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(300))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class DonationAppointment(IdMixin, TimestampMixin, Base):
    """A donor's booked time at a blood bank. A chair holds one booked donor at a time (partial unique
    index), and a donor holds at most one booked appointment."""

    __tablename__ = "donation_appointments"
    __table_args__ = (
        CheckConstraint(sql_in("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint(sql_in("donation_type", DONATION_TYPES), name="donation_type"),
        CheckConstraint("chair >= 1", name="chair_positive"),
        Index(
            "uq_donation_appointments_chair_booked",
            "organisation_id",
            "starts_at",
            "chair",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
        Index(
            "uq_donation_appointments_donor_booked",
            "donor_id",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    donor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    chair: Mapped[int] = mapped_column(Integer, default=1)
    donation_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="booked")
    callout_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("donor_callouts.id"))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    booked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    donor: Mapped[Donor] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Donation(IdMixin, Base):
    """One visit to give blood: the screening measurements and, when completed, the donation number that
    labels the units made from it. A deferral at screening is a donation with outcome ``deferred``."""

    __tablename__ = "donations"
    __table_args__ = (
        CheckConstraint(sql_in("donation_type", DONATION_TYPES), name="donation_type"),
        CheckConstraint(sql_in("outcome", DONATION_OUTCOMES), name="outcome"),
        CheckConstraint("outcome != 'completed' OR din IS NOT NULL", name="completed_has_din"),
        CheckConstraint("volume_ml IS NULL OR volume_ml > 0", name="volume_positive"),
        Index("ix_donations_donor_collected", "donor_id", "collected_at"),
    )

    donor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("donation_appointments.id"), unique=True
    )
    donation_type: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(12))
    din: Mapped[str | None] = mapped_column(String(16), unique=True)  # ISBT 128 donation identification no.
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    volume_ml: Mapped[int | None] = mapped_column(Integer)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    hemoglobin_g_dl: Mapped[float | None] = mapped_column(Float)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    systolic_mmhg: Mapped[int | None] = mapped_column(Integer)
    diastolic_mmhg: Mapped[int | None] = mapped_column(Integer)
    pulse_bpm: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    donor: Mapped[Donor] = relationship(lazy="joined")


class BloodUnit(IdMixin, TimestampMixin, Base):
    """One bag: a component made from a donation, labelled with the donation number (DIN) and its product
    code. Its status changes only through :mod:`caresync.bloodbank.units` (a compare-and-set UPDATE and a
    history event), so two requests can never hold the same unit."""

    __tablename__ = "blood_units"
    __table_args__ = (
        UniqueConstraint("din", "product_code", name="din_product"),
        CheckConstraint(sql_in("component", COMPONENTS), name="component"),
        CheckConstraint(sql_in("blood_group", BLOOD_GROUPS), name="blood_group"),
        CheckConstraint(sql_in("status", UNIT_STATUSES), name="status"),
        CheckConstraint("volume_ml > 0", name="volume_positive"),
        CheckConstraint("expires_at > collected_at", name="expires_after_collection"),
        CheckConstraint(
            "request_id IS NULL OR status IN ('reserved', 'crossmatched', 'issued', 'transfused')",
            name="request_only_when_held",
        ),
        Index("ix_blood_units_stock", "organisation_id", "status", "component", "blood_group", "expires_at"),
        # The network's availability: every organisation's available units, grouped, in one index scan.
        Index(
            "ix_blood_units_available", "status", "organisation_id", "blood_group", "component", "expires_at"
        ),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))  # who holds it now
    donation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("donations.id"), index=True)
    din: Mapped[str] = mapped_column(String(16))
    product_code: Mapped[str] = mapped_column(String(8))  # ISBT 128 style, e.g. "E0336"
    component: Mapped[str] = mapped_column(String(12))
    # Details that decide the shelf life, e.g. {"additive": "AS-1"}, {"irradiated": true}.
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    blood_group: Mapped[str] = mapped_column(String(3))
    volume_ml: Mapped[int] = mapped_column(Integer)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    storage_location: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[str] = mapped_column(String(12), default="quarantined")
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_requests.id"), index=True)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transfused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UnitEvent(IdMixin, Base):
    """One step in a unit's history: who moved it from which status to which, and why."""

    __tablename__ = "blood_unit_events"
    __table_args__ = (
        Index("ix_blood_unit_events_unit_at", "unit_id", "at"),
        Index("ix_blood_unit_events_org_at", "organisation_id", "at"),  # weekly usage of one blood bank
    )

    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blood_units.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(12))  # None when the unit was created
    to_status: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_requests.id"))
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_transfers.id"))
    note: Mapped[str] = mapped_column(String(300), default="")


class BloodRequest(IdMixin, TimestampMixin, Base):
    """A hospital's order of blood for a patient. ``patient_group`` is None when the patient's group is
    not yet known (emergency release of group O)."""

    __tablename__ = "blood_requests"
    __table_args__ = (
        CheckConstraint(sql_in("component", COMPONENTS), name="component"),
        CheckConstraint(
            f"patient_group IS NULL OR {sql_in('patient_group', BLOOD_GROUPS)}", name="patient_group"
        ),
        CheckConstraint(sql_in("urgency", URGENCIES), name="urgency"),
        CheckConstraint(sql_in("status", REQUEST_STATUSES), name="status"),
        CheckConstraint("units_requested BETWEEN 1 AND 50", name="units_range"),
        CheckConstraint("status != 'cancelled' OR length(status_reason) > 0", name="cancel_reason"),
        Index("ix_blood_requests_org_status", "organisation_id", "status", "needed_by"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    component: Mapped[str] = mapped_column(String(12))
    patient_group: Mapped[str | None] = mapped_column(String(3))
    units_requested: Mapped[int] = mapped_column(Integer)
    urgency: Mapped[str] = mapped_column(String(10))
    needed_by: Mapped[datetime] = mapped_column(UTCDateTime)
    indication: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(10), default="open")
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    emergency_release: Mapped[bool] = mapped_column(Boolean, default=False)  # uncrossmatched O units

    patient: Mapped[Patient] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class RequestOffer(IdMixin, Base):
    """A request the local stock cannot meet, offered to another hospital of the network (in order of
    distance and stock: ``rank`` 1 first)."""

    __tablename__ = "blood_request_offers"
    __table_args__ = (
        UniqueConstraint("request_id", "organisation_id", name="request_organisation"),
        CheckConstraint(sql_in("status", OFFER_STATUSES), name="status"),
        CheckConstraint("rank >= 1", name="rank_positive"),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blood_requests.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    distance_km: Mapped[float | None] = mapped_column(Float)
    units_available: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(300), default="")


class BloodTransfer(IdMixin, TimestampMixin, Base):
    """Units sent from one organisation to another, tracked from request to dispatch to receipt."""

    __tablename__ = "blood_transfers"
    __table_args__ = (
        CheckConstraint(sql_in("status", TRANSFER_STATUSES), name="status"),
        CheckConstraint("from_organisation_id != to_organisation_id", name="between_two_organisations"),
        CheckConstraint(
            f"blood_group IS NULL OR {sql_in('blood_group', BLOOD_GROUPS)}", name="wanted_blood_group"
        ),
        CheckConstraint(f"component IS NULL OR {sql_in('component', COMPONENTS)}", name="wanted_component"),
        CheckConstraint("units_wanted IS NULL OR units_wanted BETWEEN 1 AND 100", name="units_wanted_range"),
    )

    from_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    to_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_requests.id"))
    offer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_request_offers.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="requested")
    # What a stock request asks for (None when units were chosen and sent, or for an accepted offer).
    blood_group: Mapped[str | None] = mapped_column(String(3))
    component: Mapped[str | None] = mapped_column(String(12))
    units_wanted: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    courier: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(String(300), default="")


class TransferUnit(Base):
    """Which units travel in a transfer."""

    __tablename__ = "blood_transfer_units"

    transfer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("blood_transfers.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blood_units.id"), primary_key=True)


class BloodAlert(IdMixin, Base):
    """A condition staff must act on: low stock of a group/component, units about to expire, an urgent
    request not met. ``subject`` identifies what it is about (e.g. "O-:red_cells"); one open alert per
    organisation, kind and subject."""

    __tablename__ = "blood_alerts"
    __table_args__ = (
        CheckConstraint(sql_in("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(sql_in("severity", ("warning", "critical")), name="severity"),
        Index(
            "uq_blood_alerts_open",
            "organisation_id",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(String(300))
    figures: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DonorCallout(IdMixin, Base):
    """An appeal to donors of compatible groups for an urgent need, sent in waves (nearest first)."""

    __tablename__ = "donor_callouts"
    __table_args__ = (
        CheckConstraint(sql_in("status", CALLOUT_STATUSES), name="status"),
        CheckConstraint(sql_in("donation_type", DONATION_TYPES), name="donation_type"),
        CheckConstraint("donors_needed BETWEEN 1 AND 500", name="donors_needed_range"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    blood_groups: Mapped[list[str]] = mapped_column(JSON)  # the donor groups called
    donation_type: Mapped[str] = mapped_column(String(20))
    donors_needed: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_requests.id"))
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("blood_alerts.id"))
    status: Mapped[str] = mapped_column(String(8), default="active")
    waves_sent: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CalloutContact(IdMixin, Base):
    """A donor alerted by a call-out (once per call-out), and their reply."""

    __tablename__ = "donor_callout_contacts"
    __table_args__ = (
        UniqueConstraint("callout_id", "donor_id", name="callout_donor"),
        CheckConstraint(sql_in("response", CALLOUT_RESPONSES), name="response"),
        CheckConstraint("wave >= 1", name="wave_positive"),
    )

    callout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("donor_callouts.id", ondelete="CASCADE"))
    donor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    distance_km: Mapped[float | None] = mapped_column(Float)
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response: Mapped[str] = mapped_column(String(10), default="pending")
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("donation_appointments.id"))
