"""Pure identity rules: roles, the Health ID check digit, password policy. No I/O."""

from __future__ import annotations

import re
import secrets
from enum import StrEnum


class Role(StrEnum):
    """What a user is allowed to do is decided first by their role."""

    ADMIN = "admin"
    DOCTOR = "doctor"
    NURSE = "nurse"
    PATIENT = "patient"
    DONOR = "donor"
    BLOODBANK_STAFF = "bloodbank_staff"
    PHARMACIST = "pharmacist"


STAFF_ROLES = frozenset({Role.ADMIN, Role.DOCTOR, Role.NURSE, Role.BLOODBANK_STAFF, Role.PHARMACIST})
CLINICIAN_ROLES = frozenset({Role.DOCTOR, Role.NURSE})
SELF_REGISTER_ROLES = frozenset({Role.PATIENT, Role.DONOR})


class OrganisationKind(StrEnum):
    """Kinds of organisation a staff member can belong to."""

    HOSPITAL = "hospital"
    CLINIC = "clinic"
    BLOOD_BANK = "blood_bank"
    PHARMACY = "pharmacy"


# Which staff roles each kind of organisation may employ.
ORG_STAFF_ROLES: dict[OrganisationKind, frozenset[Role]] = {
    OrganisationKind.HOSPITAL: frozenset(
        {Role.ADMIN, Role.DOCTOR, Role.NURSE, Role.BLOODBANK_STAFF, Role.PHARMACIST}
    ),
    OrganisationKind.CLINIC: frozenset({Role.ADMIN, Role.DOCTOR, Role.NURSE, Role.PHARMACIST}),
    OrganisationKind.BLOOD_BANK: frozenset({Role.ADMIN, Role.BLOODBANK_STAFF, Role.DOCTOR, Role.NURSE}),
    OrganisationKind.PHARMACY: frozenset({Role.ADMIN, Role.PHARMACIST}),
}

SEXES = ("female", "male", "other", "unknown")  # FHIR AdministrativeGender
BLOOD_GROUPS = ("O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+")


def requires_mfa(role: Role) -> bool:
    """Staff roles must use a second factor; patients and donors may opt in."""
    return role in STAFF_ROLES


# --- Health ID -------------------------------------------------------------------------------------------
# 11 random digits and a Verhoeff check digit, shown as 4-4-4. Verhoeff catches every single-digit error
# and every swap of adjacent digits (Luhn misses 09 <-> 90).

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VERHOEFF_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)
HEALTH_ID_DIGITS = 12


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff check digit to append to ``digits``."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[(i + 1) % 8][int(ch)]]
    return str(_VERHOEFF_INV[c])


def verhoeff_valid(digits: str) -> bool:
    """Whether ``digits`` ends in a correct Verhoeff check digit."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(ch)]]
    return c == 0


def new_health_id() -> str:
    """A fresh random Health ID (canonical 12-digit form). Uniqueness is the database's job."""
    body = str(secrets.randbelow(9 * 10**10) + 10**10)  # 11 digits, no leading zero
    return body + verhoeff_check_digit(body)


def normalise_health_id(text: str) -> str | None:
    """Canonical form of a typed Health ID (spaces and dashes ignored), or ``None`` if it is invalid."""
    digits = re.sub(r"[\s-]", "", text or "")
    # isascii: str.isdigit() also accepts e.g. full-width or Arabic-Indic digits, which are not canonical
    well_formed = len(digits) == HEALTH_ID_DIGITS and digits.isascii() and digits.isdigit()
    if not well_formed or not verhoeff_valid(digits):
        return None
    return digits


def format_health_id(health_id: str) -> str:
    """Display form: ``1234-5678-9012``."""
    return "-".join(health_id[i : i + 4] for i in range(0, len(health_id), 4))


# --- Passwords --------------------------------------------------------------------------------------------

_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "1234567890",
        "123456789",
        "12345678",
        "qwertyuiop",
        "iloveyou",
        "letmein123",
        "welcome123",
        "admin12345",
        "caresync123",
        "changeme123",
        "passw0rd123",
        "qwerty1234",
        "abc1234567",
        "football12",
        "monkey12345",
    }
)


def password_problem(password: str, *, min_length: int, email: str = "") -> str | None:
    """Why ``password`` is not acceptable, or ``None`` if it is (NIST SP 800-63B style: length, no
    common or account-derived passwords, no composition rules)."""
    if len(password) < min_length:
        return f"Use at least {min_length} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    if password.lower() in _COMMON_PASSWORDS:
        return "This password is too common; choose another."
    local = email.split("@")[0].lower()
    if local and len(local) >= 4 and local in password.lower():
        return "The password must not contain your email name."
    return None
