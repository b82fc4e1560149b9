"""The Health ID: 11 digits and a Verhoeff check digit, typed with or without spaces and dashes."""

from __future__ import annotations

import random

import pytest

from caresync.identity.rules import (
    HEALTH_ID_DIGITS,
    format_health_id,
    new_health_id,
    normalise_health_id,
    verhoeff_check_digit,
    verhoeff_valid,
)

pytestmark = pytest.mark.no_db

# Published Verhoeff examples (the check digit appended to the number).
KNOWN_CHECK_DIGITS = [("236", "3"), ("12345", "1"), ("142857", "0"), ("123456789012", "0")]

rng = random.Random(20261123)
# Fixed (seeded) samples: parameter ids must be the same in every pytest-xdist worker.
SAMPLE_IDS = [(b := str(rng.randrange(10**10, 10**11))) + verhoeff_check_digit(b) for _ in range(5)] + [
    body + verhoeff_check_digit(body) for body in ("10000000000", "99999999998", "12345678909", "90909090909")
]


@pytest.mark.parametrize(("digits", "check"), KNOWN_CHECK_DIGITS)
def test_known_check_digits(digits: str, check: str) -> None:
    assert verhoeff_check_digit(digits) == check
    assert verhoeff_valid(digits + check)
    assert all(not verhoeff_valid(digits + str(d)) for d in range(10) if str(d) != check)


def test_new_health_ids_are_valid_twelve_digits_without_leading_zero() -> None:
    ids = {new_health_id() for _ in range(300)}
    assert len(ids) == 300
    for health_id in ids:
        assert len(health_id) == HEALTH_ID_DIGITS
        assert health_id.isdigit()
        assert health_id[0] != "0"
        assert normalise_health_id(health_id) == health_id


@pytest.mark.parametrize("health_id", SAMPLE_IDS)
def test_every_single_digit_substitution_is_rejected(health_id: str) -> None:
    assert normalise_health_id(health_id) == health_id
    wrong = [
        health_id[:i] + d + health_id[i + 1 :]
        for i in range(len(health_id))
        for d in "0123456789"
        if d != health_id[i]
    ]
    assert len(wrong) == 12 * 9
    assert [w for w in wrong if normalise_health_id(w) is not None] == []


@pytest.mark.parametrize("health_id", SAMPLE_IDS)
def test_every_adjacent_transposition_is_rejected(health_id: str) -> None:
    swapped = [
        health_id[:i] + health_id[i + 1] + health_id[i] + health_id[i + 2 :]
        for i in range(len(health_id) - 1)
        if health_id[i] != health_id[i + 1]
    ]
    assert swapped
    assert [s for s in swapped if normalise_health_id(s) is not None] == []


def test_the_luhn_blind_spot_09_90_is_caught() -> None:
    body = "10900000000"
    valid = body + verhoeff_check_digit(body)
    swapped = valid[:1] + "90" + valid[3:]
    assert normalise_health_id(valid) == valid
    assert normalise_health_id(swapped) is None


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("{id}", "{id}"),
        ("{a}-{b}-{c}", "{id}"),
        ("{a} {b} {c}", "{id}"),
        ("  {a} - {b} - {c}  ", "{id}"),
        ("{a}\t{b}\n{c}", "{id}"),
        ("{a}{b}", None),  # too short
        ("{id}0", None),  # too long
        ("{a}-{b}-{c}x", None),
        ("{a}.{b}.{c}", None),  # dots are not separators
        ("", None),
        ("------------", None),
        ("{fullwidth}", None),  # str.isdigit() is true for these, but they are not canonical digits
        ("{arabic}", None),
    ],
)
def test_normalise_accepts_spaces_and_dashes_only(typed: str, canonical: str | None) -> None:
    health_id = SAMPLE_IDS[0]
    parts = {
        "id": health_id,
        "a": health_id[:4],
        "b": health_id[4:8],
        "c": health_id[8:],
        "fullwidth": "".join(chr(0xFF10 + int(c)) for c in health_id),
        "arabic": "".join(chr(0x0660 + int(c)) for c in health_id),
    }
    expected = canonical.format(**parts) if canonical else None
    assert normalise_health_id(typed.format(**parts)) == expected


def test_format_for_display() -> None:
    assert format_health_id("123456789012") == "1234-5678-9012"
    for health_id in SAMPLE_IDS:
        shown = format_health_id(health_id)
        assert len(shown) == 14
        assert shown.count("-") == 2
        assert normalise_health_id(shown) == health_id
