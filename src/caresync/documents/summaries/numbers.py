"""Spoken numbers to digits ("one hundred and fifty" -> "150", "thirty-eight point five" -> "38.5"), so the
measurement and dose patterns only have to read digits."""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_WORD = "|".join([*_UNITS, *_TENS, "hundred", "thousand"])
# A run of number words joined by spaces, hyphens or "and" (after hundred/thousand), then maybe "point" and
# decimal digits.
_RUN = re.compile(
    rf"\b(?:{_WORD})(?:(?:\s+|-|(?<=hundred)\s+and\s+|(?<=thousand)\s+and\s+)(?:{_WORD}))*(?:\s+point(?:\s+(?:{'|'.join(_UNITS)}|\d))+)?\b",
    re.IGNORECASE,
)


def digitise(text: str) -> str:
    """``text`` with every run of English number words replaced by its digits."""
    return _RUN.sub(lambda match: _value(match.group(0)), text)


def _value(words: str) -> str:
    whole, _, decimals = words.lower().partition(" point ")
    total = current = 0
    for word in re.split(r"\s+|-", whole):
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
    number = str(total + current)
    if decimals:
        digits = "".join(str(_UNITS[d]) if d in _UNITS else d for d in decimals.split())
        number = f"{number}.{digits}"
    return number
