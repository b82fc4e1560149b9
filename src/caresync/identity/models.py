"""Identity tables, with the constraints that protect the rules (unique emails and Health IDs, valid
roles, staff belong to an organisation, one active care relationship per clinician and patient)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.db import Base, IdMixin, TimestampMixin, UTCDateTime, sql_in
from caresync.identity.rules import BLOOD_GROUPS, SEXES, STAFF_ROLES, OrganisationKind, Role


class Organisation(IdMixin, TimestampMixin, Base):
    """A hospital, clinic, blood bank or pharmacy."""

    __tablename__ = "organisations"
    __table_args__ = (CheckConstraint(sql_in("kind", [k.value for k in OrganisationKind]), name="kind"),)

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    phone: Mapped[str] = mapped_column(String(40), default="")


class User(IdMixin, TimestampMixin, Base):
    """Someone who can sign in. Staff belong to an organisation; patients and donors do not."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(sql_in("role", [r.value for r in Role]), name="role"),
        CheckConstraint(
            f"NOT ({sql_in('role', [r.value for r in STAFF_ROLES])}) OR organisation_id IS NOT NULL",
            name="staff_have_organisation",
        ),
        CheckConstraint("failed_logins >= 0", name="failed_logins_non_negative"),
    )

    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), index=True)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    mfa_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_last_counter: Mapped[int | None] = mapped_column(Integer)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation | None] = relationship(lazy="joined")


class AuthSession(IdMixin, Base):
    """A revocable sign-in: a browser cookie or an API bearer token. Only the token's digest is stored.

    ``stage`` is ``full`` once every factor passed, ``mfa`` while a password-verified session waits for the
    TOTP code, and ``enrol`` for staff who must first enrol MFA (they may do nothing else)."""

    __tablename__ = "auth_sessions"
    __table_args__ = (
        CheckConstraint("kind IN ('web', 'api')", name="kind"),
        CheckConstraint("stage IN ('full', 'mfa', 'enrol')", name="stage"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    stage: Mapped[str] = mapped_column(String(10), default="full")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # SMART-on-FHIR style scopes of an app token (e.g. ``patient/*.read``); NULL for the user's own
    # sessions and tokens, which act with the user's full permissions. A scoped token works only on the
    # FHIR API (``caresync.fhir``), which enforces its scopes.
    scope: Mapped[str | None] = mapped_column(String(1000))
    label: Mapped[str] = mapped_column(String(120), default="")

    user: Mapped[User] = relationship(lazy="joined")


class RecoveryCode(IdMixin, Base):
    """A single-use MFA recovery code (stored as a digest)."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasswordReset(IdMixin, Base):
    """A short-lived, single-use password reset token (stored as a digest)."""

    __tablename__ = "password_resets"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Patient(IdMixin, TimestampMixin, Base):
    """A patient's demographic profile. ``user_id`` is set when the patient has a portal account."""

    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint(sql_in("sex", SEXES), name="sex"),
        CheckConstraint(f"blood_group IS NULL OR {sql_in('blood_group', BLOOD_GROUPS)}", name="blood_group"),
        CheckConstraint("latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="latitude"),
        CheckConstraint("longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="longitude"),
        Index("ix_patients_name", "family_name", "given_name"),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), unique=True)
    health_id: Mapped[str] = mapped_column(String(12), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    address_line: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    insurance_provider: Mapped[str] = mapped_column(String(120), default="")
    insurance_number: Mapped[str] = mapped_column(String(60), default="")
    emergency_contact_name: Mapped[str] = mapped_column(String(200), default="")
    emergency_contact_phone: Mapped[str] = mapped_column(String(40), default="")
    emergency_contact_relation: Mapped[str] = mapped_column(String(60), default="")
    allergies: Mapped[str] = mapped_column(Text, default="")
    blood_group: Mapped[str | None] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")  # IANA name

    account: Mapped[User | None] = relationship(foreign_keys=[user_id])


class CareRelationship(IdMixin, Base):
    """A clinician caring for a patient on behalf of an organisation: what grants them access."""

    __tablename__ = "care_relationships"
    __table_args__ = (UniqueConstraint("patient_id", "practitioner_id", name="uq_care_patient_practitioner"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BreakGlassGrant(IdMixin, Base):
    """Emergency access by a clinician without a care relationship: time-limited, reasoned, audited."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (CheckConstraint("length(reason) >= 10", name="reason_length"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
