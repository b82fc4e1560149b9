"""Key facts of a consultation, each with the segments it came from: symptoms with negation (from
``clinical_terms``), medications from the formulary with dose and frequency, vitals with values and units,
and follow-up actions (review, tests, referrals, safety-netting) with their time phrase. A symptom or drug
only asked about takes the polarity of the patient's bare yes/no answer.

Symptoms and vitals are read from Subjective and Objective sentences only (a Plan sentence such as "if you
get a fever, come back" mentions a fever nobody has); follow-ups from Plan sentences; medications from
every sentence.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from caresync.documents import clinical_terms
from caresync.documents.summaries import medications
from caresync.documents.summaries.dialogue import Utterance
from caresync.documents.summaries.soap import Section


@dataclass(frozen=True)
class SymptomFact:
    """A symptom said in the consultation; negated when every mention of it denies it."""

    concept: str  # canonical name from clinical_terms, e.g. "shortness of breath"
    code: str | None  # ICD-10
    negated: bool
    said: tuple[str, ...]  # the words used
    segments: tuple[int, ...]


@dataclass(frozen=True)
class MedicationFact:
    """A formulary drug mentioned, with the dose and frequency said (if any)."""

    name: str
    code: str | None
    dose: str | None
    frequency: str | None  # prescriptions.rules.FREQUENCIES code
    frequency_label: str | None
    negated: bool  # "I'm not taking ibuprofen"
    in_plan: bool  # said in a Plan sentence (prescribed or advised) rather than reported
    segments: tuple[int, ...]


@dataclass(frozen=True)
class VitalFact:
    """A measurement said aloud."""

    kind: str
    value: str
    unit: str
    segments: tuple[int, ...]


@dataclass(frozen=True)
class FollowUp:
    """A follow-up action from the plan."""

    kind: str  # "review" | "test" | "referral" | "safety-net"
    text: str  # the plan sentence
    when: str | None  # "in two weeks", "next week", "today"
    segments: tuple[int, ...]


@dataclass(frozen=True)
class KeyFacts:
    """Every key fact of a consultation."""

    symptoms: tuple[SymptomFact, ...]
    medications: tuple[MedicationFact, ...]
    vitals: tuple[VitalFact, ...]
    follow_ups: tuple[FollowUp, ...]


Placed = Sequence[tuple[Utterance, Section | None]]
_REPORTED = (Section.SUBJECTIVE, Section.OBJECTIVE)


def extract(placed: Placed) -> KeyFacts:
    """The key facts of utterances already placed in their note sections."""
    return KeyFacts(
        symptoms=symptoms(unit for unit, section in placed if section in _REPORTED),
        medications=_medications(placed),
        vitals=_vitals(unit for unit, section in placed if section in _REPORTED),
        follow_ups=tuple(
            fact for unit, section in placed if section is Section.PLAN for fact in follow_ups(unit)
        ),
    )


def symptoms(units: Iterable[Utterance]) -> tuple[SymptomFact, ...]:
    """Symptom facts, one per concept in order of first mention."""
    found: dict[str, list[tuple[clinical_terms.Mention, bool, tuple[int, ...]]]] = {}
    for unit in units:
        for mention, negated in _symptom_mentions(unit):
            found.setdefault(mention.concept, []).append((mention, negated, unit.segments))
    return tuple(
        SymptomFact(
            concept=concept,
            code=mentions[0][0].code,
            negated=all(negated for _, negated, _ in mentions),
            said=tuple(dict.fromkeys(mention.text for mention, _, _ in mentions)),
            segments=_union(segments for _, _, segments in mentions),
        )
        for concept, mentions in found.items()
    )


def _symptom_mentions(unit: Utterance) -> list[tuple[clinical_terms.Mention, bool]]:
    """(mention, negated) for the symptoms of an utterance; a symptom only asked about and left undecided
    by the answer is left out."""
    mentions = [m for m in unit.mentions if m.kind == clinical_terms.SYMPTOM]
    answered = any(m.start >= len(unit.question) for m in mentions)
    result = []
    for mention in mentions:
        if mention.start >= len(unit.question):
            result.append((mention, mention.negated))
        elif (denied := _denied_by_answer(unit, answered)) is not None:
            result.append((mention, denied))
    return result


def _denied_by_answer(unit: Utterance, answer_names_its_own: bool) -> bool | None:
    """For something named in the question of a question and answer: denied (True) or affirmed (False) by
    a bare yes/no answer ("No.", "No, my feet are fine."); None when the answer names things of its own
    kind ("No back pain, but ...": what else was asked stays undecided) or is neither yes nor no."""
    if answer_names_its_own or unit.polarity is None:
        return None
    return unit.polarity == "no"


def _medications(placed: Placed) -> tuple[MedicationFact, ...]:
    """One fact per drug and (dose, frequency) said; a bare mention of a drug ("keep taking the
    ibuprofen") joins the first fact of that drug with a dose or frequency."""
    groups: dict[tuple[str, str | None, str | None], list[tuple[medications.DrugMention, Utterance, bool]]]
    groups = {}
    for unit, section in placed:
        answered = any(drug.start >= len(unit.question) for drug in unit.drugs)
        for drug in unit.drugs:
            if unit.question and drug.start < len(unit.question):
                denied = _denied_by_answer(unit, answered)
                drug = drug if denied is None else dataclasses.replace(drug, negated=denied)
            groups.setdefault((drug.name, drug.dose, drug.frequency), []).append(
                (drug, unit, section is Section.PLAN)
            )
    for key in [key for key in groups if key[1] is None and key[2] is None]:
        detailed = next((other for other in groups if other[0] == key[0] and other != key), None)
        if detailed is not None:
            groups[detailed].extend(groups.pop(key))
    facts = []
    for said in groups.values():
        first = next((drug for drug, _, _ in said if drug.dose or drug.frequency), said[0][0])
        facts.append(
            MedicationFact(
                name=first.name,
                code=first.code,
                dose=first.dose,
                frequency=first.frequency,
                frequency_label=first.frequency_label,
                negated=all(drug.negated for drug, _, _ in said),
                in_plan=any(in_plan for _, _, in_plan in said),
                segments=_union(unit.segments for _, unit, _ in said),
            )
        )
    return tuple(sorted(facts, key=lambda fact: fact.segments[0]))


def _vitals(units: Iterable[Utterance]) -> tuple[VitalFact, ...]:
    found: dict[tuple[str, str], VitalFact] = {}
    for unit in units:
        for reading in unit.readings:
            key = (reading.kind, reading.value)
            earlier = found.get(key)
            segments = _union([earlier.segments, unit.segments]) if earlier else unit.segments
            found[key] = VitalFact(reading.kind, reading.value, reading.unit, segments)
    return tuple(found.values())


_TIME = re.compile(
    r"\b(?:in|within|after)\s+(?:a|an|one|two|three|four|five|six|seven|eight|ten|twelve|couple of|\d+)"
    r"(?:\s+(?:to|or)\s+\w+)?\s+(?:hours?|days?|weeks?|months?|years?)\b"
    r"|\bnext (?:week|month|year)\b|\btoday\b|\btomorrow\b|\bthis week\b",
    re.IGNORECASE,
)
_REFERRAL = re.compile(r"\brefer(?:ral|red|ring)?\b|\bsee (?:a|the) (?:specialist|dietitian|physio\w*)", re.I)
_TEST = re.compile(
    r"\b(?:ecg|x-ray|xray|ct scan|mri|ultrasound|scan|blood tests?|urine (?:sample|culture|test)|culture|"
    r"swab|hba1c|kidney function|cholesterol check)\b",
    re.IGNORECASE,
)
_SAFETY_ACTION = re.compile(
    r"\b(?:call|ring|phone|come back|go to|seek|bring (?:her|him|them) back|let (?:me|us) know)\b", re.I
)
_EMERGENCY = re.compile(r"\b(?:999|911|112|ambulance|emergency)\b|\ba&e", re.IGNORECASE)
_CLAUSE = re.compile(r",\s*(?:so|and|but)\b|;|\bbut\b")
_REVIEW = re.compile(r"\b(?:come back|see you|review|follow[- ]?up|bring (?:her|him|them) back)\b", re.I)


def follow_ups(unit: Utterance) -> list[FollowUp]:
    """The follow-up actions of a Plan sentence: review (with a time, or an explicit review/follow-up),
    tests ordered (not "you don't need an X-ray"), referrals, and safety-netting ("if ..., call 999"; a
    conditional return with a time, "come back in two weeks if it's not better", is a review)."""
    text = unit.text
    when_match = _TIME.search(text)
    when = when_match.group(0) if when_match else None
    kinds = []
    review = _REVIEW.search(text)
    if review and (when or re.search(r"review|follow", review.group(0), re.I)):
        kinds.append("review")
    if any(_ordered(text, match) for match in _TEST.finditer(text)):
        kinds.append("test")
    if _REFERRAL.search(text):
        kinds.append("referral")
    emergency = _EMERGENCY.search(text)
    if re.search(r"\bif\b", text, re.I) and (
        emergency or ("review" not in kinds and _SAFETY_ACTION.search(text))
    ):
        kinds.append("safety-net")
    return [FollowUp(kind, text, when, unit.segments) for kind in kinds]


def _ordered(text: str, test: re.Match[str]) -> bool:
    """Whether a test is ordered, not ruled out ("you don't need an X-ray"): negation is read within the
    test's clause, so "to rule out a heart problem, so I'll do an ECG" still orders the ECG."""
    begin = max((m.end() for m in _CLAUSE.finditer(text, 0, test.start())), default=0)
    end = next((m.start() for m in _CLAUSE.finditer(text, test.end())), len(text))
    clause = text[begin:end]
    return not clinical_terms.is_negated(clause, test.start() - begin, test.end() - begin)


def _union(groups: Iterable[Iterable[int]]) -> tuple[int, ...]:
    return tuple(sorted({index for group in groups for index in group}))
