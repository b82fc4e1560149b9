"""ISBT 128 donation identification numbers: the ISO 7064 MOD 37-2 check character against the published
worked example, detection of typing mistakes, the facility number and the sequence per facility and year."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from caresync.bloodbank.donors import din
from caresync.bloodbank.models import Donation
from caresync.core.errors import ValidationFailed
from caresync.db import session_factory, transaction
from tests.bloodbank.conftest import make_donor


@pytest.mark.parametrize(
    ("number", "checksum", "character"),
    [
        # JPAC Red Book, Annex 2, Table A2.2: donation number G123 498 654 321 -> checksum 17, "H".
        pytest.param("G123498654321", 17, "H", id="red-book-annex-2"),
        # Hand-checked with the Annex 2 steps: a sum that is a multiple of 37 gives 38 mod 37 = 1.
        pytest.param("0000000000000", 1, "1", id="all-zeros"),
    ],
)
def test_check_character_matches_published_examples(number: str, checksum: int, character: str) -> None:
    assert din.check_value(number) == checksum
    assert din.check_character(number) == character


def test_every_single_character_typing_mistake_is_detected() -> None:
    number = "W123426000042"
    right = din.check_character(number)
    for position in range(len(number)):
        for replacement in din.ISO7064_CHARACTERS[:36]:
            if replacement == number[position]:
                continue
            typo = number[:position] + replacement + number[position + 1 :]
            assert din.check_character(typo) != right, typo


def test_adjacent_transpositions_are_detected() -> None:
    number = "W123426004271"
    for position in range(len(number) - 1):
        swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        if swapped != number:
            assert din.check_character(swapped) != din.check_character(number), swapped


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("G123 49 8654321", "G123498654321", id="spaces"),
        pytest.param("g12349865432 1 h", "G123498654321", id="lower-case-with-check"),
    ],
)
def test_parse_accepts_spaces_and_the_check_character(typed: str, expected: str) -> None:
    assert din.parse(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("G123498654321K", id="wrong-check-character"),
        pytest.param("O123498654321", id="letter-O-is-not-a-facility"),
        pytest.param("G12349865432", id="too-short"),
        pytest.param("1123498654321", id="facility-starts-with-a-digit"),
    ],
)
def test_parse_refuses_mistakes(typed: str) -> None:
    with pytest.raises(ValidationFailed):
        din.parse(typed)


def test_label_prints_groups_and_the_check_character() -> None:
    assert din.label("G123498654321") == "G1234 98 654321 H"


def test_facility_number_is_stable_and_well_formed() -> None:
    org = uuid.UUID("8b0f6a4e-3a7b-4a8e-9f57-2d1c1d6f0b11")
    first = din.facility_number(org)
    assert first == din.facility_number(org)
    assert first[0] in din.FIN_LETTERS
    assert first[1:].isdigit()
    assert len(first) == 5
    assert len({din.facility_number(uuid.uuid4()) for _ in range(200)}) > 150  # spread over organisations


def test_next_din_counts_per_facility_and_year(make: Any) -> None:
    org = make.org(kind="blood_bank")
    donor = make_donor()
    with transaction(session_factory()) as s:
        first = din.next_din(s, org.id, 2026)
        assert first == f"{din.facility_number(org.id)}26000001"
        s.add(
            Donation(
                donor_id=donor.id,
                organisation_id=org.id,
                donation_type="whole_blood",
                outcome="completed",
                din=first,
                collected_at=datetime(2026, 3, 1, tzinfo=UTC),
            )
        )
        s.flush()
        assert din.next_din(s, org.id, 2026) == f"{din.facility_number(org.id)}26000002"
        assert din.next_din(s, org.id, 2027) == f"{din.facility_number(org.id)}27000001"
        assert din.parse(din.label(first)) == first
