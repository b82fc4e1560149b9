"""Medications said in a sentence, matched against the platform formulary (``prescriptions.formulary``),
with the dose and frequency said after the name ("atorvastatin 20 mg once a day at night")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from caresync.documents.clinical_terms import is_negated
from caresync.documents.summaries.numbers import digitise
from caresync.prescriptions.formulary import DRUGS, Drug
from caresync.prescriptions.rules import FREQUENCIES

# Other names a drug is said by (US/UK names, a household brand): spoken name -> formulary name.
ALIASES: dict[str, str] = {
    "albuterol": "Salbutamol",
    "acetaminophen": "Paracetamol",
    "calpol": "Paracetamol",
    "cephalexin": "Cefalexin",
    "co-amoxiclav": "Amoxicillin/clavulanate",
    "co-trimoxazole": "Sulfamethoxazole/trimethoprim",
    "ferrous sulphate": "Ferrous sulfate",
    "metoprolol": "Metoprolol tartrate",
    "penicillin v": "Phenoxymethylpenicillin",
    "symbicort": "Budesonide/formoterol",
    "ventolin": "Salbutamol",
}
_UNIT_WORDS = {
    "mg": "mg", "milligram": "mg", "milligrams": "mg", "mcg": "mcg", "microgram": "mcg", "micrograms": "mcg",
    "g": "g", "gram": "g", "grams": "g", "ml": "mL", "millilitre": "mL", "millilitres": "mL",
    "milliliter": "mL", "milliliters": "mL", "unit": "units", "units": "units", "puff": "puffs",
    "puffs": "puffs", "tablet": "tablets", "tablets": "tablets", "capsule": "capsules",
    "capsules": "capsules", "drop": "drops", "drops": "drops", "sachet": "sachets", "sachets": "sachets",
}  # fmt: skip
_DOSE = re.compile(rf"\b(\d+(?:\.\d+)?)\s*({'|'.join(sorted(_UNIT_WORDS, key=len, reverse=True))})\b", re.I)
# First match wins: "once a day at night" is at bedtime, "as needed" overrides any count.
_FREQUENCY_PHRASES: tuple[tuple[str, str], ...] = (
    ("PRN", r"as needed|as required|when needed|when required|if needed|when you need (?:it|them)"),
    ("QHS", r"at night|at bedtime|before bed"),
    ("QAM", r"in the morning|every morning"),
    ("QID", r"(?:four|4) times (?:a|per) day|(?:four|4) times daily|qds"),
    ("TID", r"(?:three|3) times (?:a|per) day|(?:three|3) times daily|tds"),
    ("BID", r"twice (?:a|per) day|twice daily|(?:two|2) times (?:a|per) day|bd"),
    ("Q8H", r"every (?:eight|8) hours"),
    ("Q12H", r"every (?:twelve|12) hours"),
    ("QD", r"once (?:a|per) day|once daily|every day|daily"),
)


@dataclass(frozen=True)
class DrugMention:
    """A formulary drug said in a sentence."""

    name: str  # formulary name, e.g. "Budesonide/formoterol"
    code: str | None  # formulary code when the drug (and strength) is unambiguous
    dose: str | None  # "20 mg", "2 puffs"
    frequency: str | None  # a code of prescriptions.rules.FREQUENCIES
    negated: bool  # "I'm not taking ibuprofen"
    start: int
    end: int

    @property
    def frequency_label(self) -> str | None:
        """The frequency as shown ("Twice a day")."""
        return FREQUENCIES[self.frequency][0] if self.frequency else None


_JOIN = r"[\s/-]+(?:and\s+)?"  # "budesonide/formoterol", "budesonide formoterol", "budesonide and formoterol"


@cache
def _names() -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern for every spoken name (longest first), and the formulary name for each name's key."""
    spoken = {drug.name.lower(): drug.name for drug in DRUGS} | ALIASES
    parts = [
        _JOIN.join(re.escape(word) for word in re.split(r"[\s/]+", said))
        for said in sorted(spoken, key=len, reverse=True)
    ]
    pattern = re.compile(rf"\b(?:{'|'.join(parts)})\b", re.IGNORECASE)
    return pattern, {_key(said): name for said, name in spoken.items()}


def _key(said: str) -> str:
    return " ".join(re.split(_JOIN, said.lower()))


def find(text: str) -> list[DrugMention]:
    """Every formulary drug said in ``text`` with the dose and frequency said between it and the next drug
    (or the end of the sentence)."""
    pattern, by_key = _names()
    matches = list(pattern.finditer(text))
    found = []
    for position, match in enumerate(matches):
        name = by_key[_key(match.group(0))]
        stop = matches[position + 1].start() if position + 1 < len(matches) else len(text)
        window = text[match.end() : stop]
        dose = _dose(digitise(window))
        found.append(
            DrugMention(
                name=name,
                code=_code(name, dose),
                dose=dose,
                frequency=_frequency(window),
                negated=is_negated(text, match.start(), match.end()),
                start=match.start(),
                end=match.end(),
            )
        )
    return found


def _dose(window: str) -> str | None:
    match = _DOSE.search(window)
    if not match:
        return None
    return f"{match.group(1)} {_UNIT_WORDS[match.group(2).lower()]}"


def _frequency(window: str) -> str | None:
    for code, phrases in _FREQUENCY_PHRASES:
        if re.search(rf"\b(?:{phrases})\b", window, re.IGNORECASE):
            return code
    return None


def _code(name: str, dose: str | None) -> str | None:
    """The formulary code: the only product of this name, or the one whose strength was said."""
    products: list[Drug] = [drug for drug in DRUGS if drug.name == name]
    if len(products) == 1:
        return products[0].code
    said = [drug for drug in products if dose and drug.strength.replace(" ", "") == dose.replace(" ", "")]
    return said[0].code if said else None
