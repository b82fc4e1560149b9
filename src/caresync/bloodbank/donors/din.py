"""ISBT 128 donation identification numbers (DINs).

A DIN is 13 characters: the collecting facility's identification number (FIN: a letter and four digits),
the two-digit year of collection and a six-digit sequence number within that facility and year, e.g.
``W1234 26 000042``. Labels print it with an eye-readable check character computed with ISO 7064
MOD 37-2 (Joint UK Blood Transfusion Services, Red Book, Annex 2 "ISBT 128 check character calculation";
ICCBBA, ISBT 128 Standard Technical Specification, section 2.4.1). CareSync stores the 13 characters (the
check character is derived, never stored) and accepts typed numbers with or without it.

Real FINs are assigned by ICCBBA. CareSync derives one deterministically from the organisation's id, so
every organisation labels its own donations without any set-up; the first character is a letter other than
``O`` (never confused with zero), as in assigned FINs.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.bloodbank.models import Donation
from caresync.core.errors import ValidationFailed

# ISO 7064 character values (Red Book Annex 2, Table A2.1): 0-9 -> 0-9, A-Z -> 10-35, "*" -> 36.
ISO7064_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
FIN_LETTERS = "ABCDEFGHIJKLMNPQRSTUVWXYZ"  # no "O"
SEQUENCE_DIGITS = 6
DIN_LENGTH = 13
_DIN = re.compile(r"^[A-NP-Z][0-9]{4}[0-9]{2}[0-9]{6}$")


def check_value(din: str) -> int:
    """The ISO 7064 MOD 37-2 checksum (0-36) of a DIN's 13 characters."""
    total = 0
    for position, character in enumerate(reversed(din.upper()), start=1):
        value = ISO7064_CHARACTERS.find(character)
        if value < 0:
            raise ValidationFailed(
                f"'{character}' cannot appear in a donation number.", extra={"field": "din"}
            )
        total += value * 2**position
    return (38 - total % 37) % 37


def check_character(din: str) -> str:
    """The eye-readable check character printed beside the DIN."""
    return ISO7064_CHARACTERS[check_value(din)]


def grouped(din: str) -> str:
    """The DIN in its printed groups, facility, year and sequence: ``W1234 26 000042``."""
    return f"{din[:5]} {din[5:7]} {din[7:]}" if len(din) == DIN_LENGTH else din


def label(din: str) -> str:
    """The DIN as printed on a label, with its check character: ``W1234 26 000042 K``."""
    return f"{grouped(din)} {check_character(din)}"


def parse(text: str) -> str:
    """A typed or scanned DIN (spaces allowed, with or without its check character) as its 13 characters;
    422 when it is malformed or its check character is wrong (a typing mistake)."""
    compact = re.sub(r"\s+", "", text).upper()
    if len(compact) == DIN_LENGTH + 1:
        compact, given = compact[:DIN_LENGTH], compact[DIN_LENGTH]
        if _DIN.match(compact) and given != check_character(compact):
            raise ValidationFailed(
                "The check character does not match the donation number: check it for a typing mistake.",
                extra={"field": "din"},
            )
    if not _DIN.match(compact):
        raise ValidationFailed(
            "A donation number is a letter, 4 digits, a 2-digit year and a 6-digit sequence number.",
            extra={"field": "din"},
        )
    return compact


def facility_number(organisation_id: uuid.UUID) -> str:
    """The organisation's facility identification number: a letter and four digits, always the same."""
    digest = int.from_bytes(hashlib.sha256(organisation_id.bytes).digest()[:8], "big")
    return f"{FIN_LETTERS[digest % len(FIN_LETTERS)]}{digest // len(FIN_LETTERS) % 10_000:04d}"


def next_din(session: Session, organisation_id: uuid.UUID, year: int) -> str:
    """The next unused DIN of the organisation for ``year``. Two transactions may compute the same one: the
    unique index on ``donations.din`` then refuses the second, which retries (see the donors service)."""
    prefix = f"{facility_number(organisation_id)}{year % 100:02d}"
    last = session.execute(
        select(func.max(Donation.din)).where(Donation.din.like(f"{prefix}%"), func.length(Donation.din) == 13)
    ).scalar()
    sequence = int(last[len(prefix) :]) + 1 if last else 1
    if sequence >= 10**SEQUENCE_DIGITS:
        raise ValidationFailed("This facility has used every donation number of the year.")
    return f"{prefix}{sequence:0{SEQUENCE_DIGITS}d}"
