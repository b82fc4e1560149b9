"""Donors' request and response models."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from caresync.bloodbank.donors import din as din_codes
from caresync.bloodbank.rules import BLOOD_GROUPS
from caresync.core.text import clean_line, clean_text

BloodGroup = Literal["O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+"]
DonationTypeName = Literal["whole_blood", "double_red_cells", "platelets", "plasma"]
assert set(BloodGroup.__args__) == set(BLOOD_GROUPS)  # type: ignore[attr-defined]
NAME = Field(min_length=1, max_length=100)
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def checked_email(value: str) -> str:
    """An email address, lower case (empty allowed); ValueError when it is not one."""
    if value and not re.match(EMAIL_PATTERN, value):
        raise ValueError("Enter an email address like name@example.org.")
    return value.lower()


class _Strict(BaseModel):
    """Unknown fields refused; text cleaned of control characters (PostgreSQL cannot store a NUL), one line
    except the notes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            key: (clean_text(value) if key == "notes" else clean_line(value))
            if isinstance(value, str)
            else value
            for key, value in data.items()
        }


class ContactIn(_Strict):
    """How to reach a donor and where they live (for call-outs, nearest first)."""

    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)
    city: str = Field(default="", max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return checked_email(value)

    @model_validator(mode="after")
    def _both_coordinates(self) -> ContactIn:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("Give both latitude and longitude, or neither.")
        return self


class SelfDonorIn(ContactIn):
    """A donor completing their own profile (their blood group is typed at their first donation)."""

    given_name: str = NAME
    family_name: str = NAME
    birth_date: date
    sex: Literal["F", "M"]
    weight_kg: float | None = Field(default=None, ge=20, le=400)
    height_cm: float | None = Field(default=None, ge=50, le=250)  # for double red cells
    parental_consent: bool = False

    @field_validator("birth_date")
    @classmethod
    def _born(cls, value: date) -> date:
        if value >= date.today() or value.year < 1900:
            raise ValueError("Enter a birth date in the past.")
        return value


class DonorIn(SelfDonorIn):
    """A donor registered by blood bank staff (the group when already typed)."""

    blood_group: BloodGroup | None = None


class DonorUpdate(_Strict):
    """Changes to a donor (only the fields sent). Donors change their contact, weight, height and
    availability; staff also the name and the typed blood group."""

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    blood_group: BloodGroup | None = None
    weight_kg: float | None = Field(default=None, ge=20, le=400)
    height_cm: float | None = Field(default=None, ge=50, le=250)  # for double red cells
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    city: str | None = Field(default=None, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    parental_consent: bool | None = None
    available: bool | None = None
    unavailable_until: date | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return checked_email(value) if value else value


class EligibilityOut(BaseModel):
    """Whether a donor may give a type of donation on a day, why not, and from when."""

    donation_type: str
    eligible: bool
    reasons: list[str]
    next_eligible_date: date | None


class DonorOut(BaseModel):
    """A donor's profile."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    donor_number: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    blood_group: str | None
    weight_kg: float | None
    height_cm: float | None
    phone: str
    email: str
    city: str
    latitude: float | None
    longitude: float | None
    parental_consent: bool
    available: bool
    unavailable_until: date | None
    organisation_id: uuid.UUID | None
    has_account: bool = False

    @model_validator(mode="before")
    @classmethod
    def _account(cls, value: object) -> object:
        if hasattr(value, "user_id"):
            return {
                **{k: getattr(value, k) for k in cls.model_fields if hasattr(value, k)},
                "has_account": value.user_id is not None,
            }
        return value


class DonorRow(DonorOut):
    """A donor in a list, with whether they may give whole blood today and are available."""

    eligible_now: bool
    available_now: bool


class DonorPage(BaseModel):
    """One page of donors."""

    items: list[DonorRow]
    next_cursor: str | None


class DeferralIn(_Strict):
    """Defer a donor: temporarily (until ``ends_on``, exclusive) or permanently, with the reason."""

    kind: Literal["temporary", "permanent"]
    reason: str = Field(min_length=3, max_length=300)
    ends_on: date | None = None

    @model_validator(mode="after")
    def _end_matches_kind(self) -> DeferralIn:
        if self.kind == "temporary" and self.ends_on is None:
            raise ValueError("A temporary deferral needs the date it ends.")
        if self.kind == "permanent" and self.ends_on is not None:
            raise ValueError("A permanent deferral has no end date.")
        return self


class DeferralOut(BaseModel):
    """A deferral."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    reason: str
    starts_on: date
    ends_on: date | None
    created_at: datetime
    lifted_at: datetime | None


class DonationOut(BaseModel):
    """A donation (or a deferral at screening)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    donor_id: uuid.UUID
    organisation_id: uuid.UUID
    appointment_id: uuid.UUID | None
    donation_type: str
    outcome: str
    din: str | None
    din_label: str | None = None
    collected_at: datetime
    volume_ml: int | None
    weight_kg: float | None
    hemoglobin_g_dl: float | None
    temperature_c: float | None
    systolic_mmhg: int | None
    diastolic_mmhg: int | None
    pulse_bpm: int | None
    notes: str

    @model_validator(mode="after")
    def _label(self) -> DonationOut:
        if self.din and len(self.din) == din_codes.DIN_LENGTH:
            self.din_label = din_codes.label(self.din)
        return self


class AppointmentOut(BaseModel):
    """A donation appointment."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    donor_id: uuid.UUID
    organisation_id: uuid.UUID
    starts_at: datetime
    chair: int
    donation_type: str
    status: str
    callout_id: uuid.UUID | None
    reminder_sent_at: datetime | None


class DonorDetailOut(BaseModel):
    """A donor with their eligibility per donation type, deferrals, donations and appointments."""

    donor: DonorOut
    available_now: bool
    eligibility: list[EligibilityOut]
    deferrals: list[DeferralOut]
    donations: list[DonationOut]
    appointments: list[AppointmentOut]


class AppointmentIn(_Strict):
    """Book a donation: donors for themselves (``donor_id`` omitted), staff for a donor."""

    donor_id: uuid.UUID | None = None
    organisation_id: uuid.UUID
    starts_at: datetime
    donation_type: DonationTypeName = "whole_blood"

    @field_validator("starts_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("Give the time with its UTC offset, e.g. 2026-12-07T09:30:00Z.")
        return value


class SlotsOut(BaseModel):
    """The free donation times of a blood bank on a day."""

    organisation_id: uuid.UUID
    date: date
    donation_type: str
    chairs: int
    slots: list[datetime]


class SiteOut(BaseModel):
    """A place to give blood."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    city: str
    address: str
    latitude: float | None
    longitude: float | None


class ScreeningIn(_Strict):
    """The pre-donation screening measurements."""

    weight_kg: float = Field(ge=20, le=400)
    hemoglobin_g_dl: float = Field(ge=3, le=25)
    temperature_c: float = Field(ge=30, le=45)
    systolic_mmhg: int = Field(ge=50, le=300)
    diastolic_mmhg: int = Field(ge=20, le=200)
    pulse_bpm: int = Field(ge=20, le=250)


class DonationIn(ScreeningIn):
    """Record a donation visit: the screening and, when it passes, the collection."""

    donor_id: uuid.UUID
    appointment_id: uuid.UUID | None = None
    donation_type: DonationTypeName | None = None  # the appointment's type when omitted
    volume_ml: int | None = Field(default=None, gt=0, le=1000)
    blood_group: BloodGroup | None = None  # typed at collection, when the donor's group is not yet known
    storage_location: str = Field(default="", max_length=60)
    notes: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _pressure(self) -> DonationIn:
        if self.diastolic_mmhg >= self.systolic_mmhg:
            raise ValueError("The diastolic pressure must be below the systolic pressure.")
        return self


class UnitOut(BaseModel):
    """A unit made from a donation."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    din: str
    product_code: str
    component: str
    blood_group: str
    volume_ml: int
    status: str
    collected_at: datetime
    expires_at: datetime


class RecordedDonationOut(BaseModel):
    """What recording a donation did: the donation, the units made, or the deferral."""

    donation: DonationOut
    units: list[UnitOut]
    deferral: DeferralOut | None
    reasons: list[str]
