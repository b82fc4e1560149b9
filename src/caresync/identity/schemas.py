"""Request and response models for identity and patient endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from caresync.core import localtime
from caresync.identity.rules import BLOOD_GROUPS, SEXES, Role, format_health_id

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40, pattern=r"^[0-9+()\-. ]*$")]
Sex = Literal["female", "male", "other", "unknown"]
BloodGroup = Literal["O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+"]
Password = Annotated[str, Field(min_length=1, max_length=256)]
assert set(SEXES) == set(get_args(Sex))
assert set(BLOOD_GROUPS) == set(get_args(BloodGroup))


def _check_timezone(value: str | None) -> str | None:
    if value is not None and value not in localtime.known_zones():
        raise ValueError("not a known time zone: use an IANA name such as Europe/Lisbon")
    return value


def _check_birth_date(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= date.today():
        raise ValueError("birth date must be between 1900-01-01 and today")
    return value


class PatientFields(BaseModel):
    """Profile fields a patient or clinician may set (all optional on update)."""

    model_config = ConfigDict(extra="forbid")

    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    phone: Phone | None = None
    email: EmailStr | Literal[""] | None = None
    address_line: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    city: Short | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = None
    country: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([A-Z]{2})?$")] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    insurance_provider: Short | None = None
    insurance_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None = None
    emergency_contact_name: Short | None = None
    emergency_contact_phone: Phone | None = None
    emergency_contact_relation: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None
    ) = None
    allergies: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    blood_group: BloodGroup | None = None
    timezone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None

    _birth = field_validator("birth_date")(classmethod(lambda cls, v: _check_birth_date(v)))
    _timezone = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))

    def changes(self) -> dict[str, Any]:
        """Only the fields the caller actually sent."""
        return self.model_dump(exclude_unset=True)


class PatientCreate(PatientFields):
    """A new patient: names, birth date and sex are required."""

    given_name: Name
    family_name: Name
    birth_date: date
    sex: Sex


class PatientOut(BaseModel):
    """A patient's profile."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    health_id: str
    health_id_display: str = ""
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    phone: str
    email: str
    address_line: str
    city: str
    postal_code: str
    country: str
    latitude: float | None
    longitude: float | None
    insurance_provider: str
    insurance_number: str
    emergency_contact_name: str
    emergency_contact_phone: str
    emergency_contact_relation: str
    allergies: str
    blood_group: str | None
    timezone: str
    has_account: bool = False
    updated_at: datetime

    @model_validator(mode="after")
    def _display(self) -> PatientOut:
        self.health_id_display = format_health_id(self.health_id)
        return self


def patient_out(patient: Any) -> PatientOut:
    """Serialise a ``Patient`` row."""
    out = PatientOut.model_validate(patient)
    out.has_account = patient.user_id is not None
    return out


class PatientPage(BaseModel):
    """A page of patients."""

    items: list[PatientOut]
    next_cursor: str | None


class RegisterIn(BaseModel):
    """Self-registration. Patients also give the core of their profile."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["patient", "donor"] = "patient"
    email: EmailStr
    password: Password
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
    birth_date: date | None = None
    sex: Sex | None = None
    phone: Phone = ""

    _birth = field_validator("birth_date")(classmethod(lambda cls, v: _check_birth_date(v)))

    @model_validator(mode="after")
    def _patient_needs_profile(self) -> RegisterIn:
        if self.role == "patient" and (self.birth_date is None or self.sex is None):
            raise ValueError("patients must give their birth date and sex")
        return self


class LoginIn(BaseModel):
    """Credentials; ``otp`` is a TOTP or recovery code for accounts with MFA."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Password
    otp: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = None


class TokenOut(BaseModel):
    """A bearer token (shown once) and what it may do yet."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_at: datetime
    stage: Literal["full", "mfa", "enrol"]


class OtpIn(BaseModel):
    """A TOTP or recovery code."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=20)]


class MfaEnrolOut(BaseModel):
    """What an authenticator app needs."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodesOut(BaseModel):
    """Single-use recovery codes: shown once."""

    recovery_codes: list[str]


class PasswordIn(BaseModel):
    """Confirm with the password."""

    model_config = ConfigDict(extra="forbid")

    password: Password


class PasswordChangeIn(BaseModel):
    """Change a known password."""

    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class ResetRequestIn(BaseModel):
    """Ask for a reset link."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]


class ResetIn(BaseModel):
    """Set a new password with a reset token."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]
    new_password: Password


class UserOut(BaseModel):
    """A user account (never the password hash or MFA secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: str
    organisation_id: uuid.UUID | None
    is_active: bool
    mfa_enabled: bool
    last_login_at: datetime | None
    created_at: datetime


class MeOut(UserOut):
    """The signed-in user and their patient profile id, if any."""

    patient_id: uuid.UUID | None = None
    session_stage: str = "full"


class UserPage(BaseModel):
    """A page of users."""

    items: list[UserOut]
    next_cursor: str | None


class StaffCreateIn(BaseModel):
    """An admin creates a staff account."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
    role: Literal["admin", "doctor", "nurse", "bloodbank_staff", "pharmacist"]
    password: Password


class StaffUpdateIn(BaseModel):
    """Change a staff account."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "doctor", "nurse", "bloodbank_staff", "pharmacist"] | None = None
    is_active: bool | None = None
    reset_mfa: bool = False


class SessionOut(BaseModel):
    """A live sign-in."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    stage: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    client_ip: str
    user_agent: str
    scope: str | None = None  # an app token's SMART scopes
    label: str = ""
    current: bool = False


class OrganisationOut(BaseModel):
    """Public information about an organisation."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    address: str
    city: str
    country: str
    latitude: float | None
    longitude: float | None
    phone: str


class BreakGlassIn(BaseModel):
    """Emergency access: the patient's Health ID and why."""

    model_config = ConfigDict(extra="forbid")

    health_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=500)]


class CareTeamIn(BaseModel):
    """Add a colleague to a patient's care team."""

    model_config = ConfigDict(extra="forbid")

    practitioner_id: uuid.UUID
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class PractitionerOut(BaseModel):
    """A clinician on a care team."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    full_name: str
    role: str


class AuditEntryOut(BaseModel):
    """One audit entry as shown to patients and admins."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor_name: str
    actor_role: str
    action: str
    outcome: str
    patient_id: uuid.UUID | None
    resource_type: str
    resource_id: str
    client_ip: str
    flagged: bool


class AuditPage(BaseModel):
    """A page of audit entries."""

    items: list[AuditEntryOut]
    next_cursor: str | None


STAFF_ROLE_VALUES = [r.value for r in Role if r not in (Role.PATIENT, Role.DONOR)]
