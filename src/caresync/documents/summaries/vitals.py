"""Measurements said aloud ("your blood pressure is 150 over 95", "sats 97 percent", "HbA1c came back at
64"): the vital, its value as said (digits) and its unit."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from caresync.documents.summaries.numbers import digitise

_GAP = r"[^.?!\d]{0,30}?"  # words between the name and the number; never across a sentence end or a number
_NUM = r"(\d{1,3}(?:\.\d+)?)"
_NOT_A_DURATION = r"(?!\d|\.\d|\s*(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|times|o'clock)\b)"


@dataclass(frozen=True)
class Reading:
    """One measurement found in a sentence."""

    kind: str  # "blood pressure", "pulse", "temperature", ...
    value: str  # "150/95", "37.6"
    unit: str


@dataclass(frozen=True)
class _Vital:
    kind: str
    pattern: re.Pattern[str]
    unit: Callable[[float], str]  # the unit for a value (some are told apart by their size)


def _vital(kind: str, names: str, value: str, unit: str | Callable[[float], str]) -> _Vital:
    pattern = re.compile(rf"\b(?:{names})\b{_GAP}{value}{_NOT_A_DURATION}", re.IGNORECASE)
    return _Vital(kind, pattern, unit if callable(unit) else lambda _value: unit)


VITALS: tuple[_Vital, ...] = (
    _vital("blood pressure", r"blood pressure|bp", r"(\d{2,3})\s*(?:over|/)\s*(\d{2,3})", "mmHg"),
    _vital("pulse", r"pulse|heart rate|pulse rate", _NUM, "beats/min"),
    _vital(
        "temperature",
        r"temperature|temp",
        _NUM,
        lambda value: "°C" if value < 50 else "°F",
    ),
    _vital(
        "oxygen saturation",
        r"oxygen saturations?|oxygen sats?|sats|saturations?|spo2|oxygen levels?",
        _NUM,
        "%",
    ),
    _vital("respiratory rate", r"respiratory rate|breathing rate|resp rate", _NUM, "breaths/min"),
    _vital("peak flow", r"peak flow", _NUM, "L/min"),
    _vital("weight", r"weight|weigh|weighs", _NUM, "kg"),
    _vital("bmi", r"bmi|body mass index", _NUM, "kg/m²"),
    _vital(
        "hba1c",
        r"hba1c|a1c|haemoglobin a1c|hemoglobin a1c",
        _NUM,
        lambda value: "%" if value < 20 else "mmol/mol",
    ),
    _vital("blood glucose", r"blood sugar|blood glucose|glucose|sugar level|sugars", _NUM, "mmol/L"),
)


_ANY_NAME = re.compile("|".join(vital.pattern.pattern.split(_GAP)[0] for vital in VITALS), re.IGNORECASE)


def readings(text: str) -> list[Reading]:
    """Every measurement said in ``text``, in the order of the vitals table (numbers said in words count)."""
    if not _ANY_NAME.search(text):
        return []
    digits = digitise(text)
    found: list[Reading] = []
    for vital in VITALS:
        for match in vital.pattern.finditer(digits):
            value = "/".join(group for group in match.groups() if group)
            found.append(Reading(vital.kind, value, vital.unit(float(match.group(1)))))
    return found
