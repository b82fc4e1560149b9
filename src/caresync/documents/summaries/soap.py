"""The draft SOAP note: every utterance of the consultation is put in Subjective, Objective, Assessment or
Plan (or left out) by rule and lexicon cues plus the speaker's role, near-duplicates are removed, and each
sentence keeps the segments it came from.

How an utterance is placed:

* the patient's sentences (and a doctor's question with the patient's answer) are Subjective, unless they
  are only courtesy ("Thanks, doctor.");
* the doctor's sentences score Objective (measurements, examination findings), Assessment (impressions:
  "I think this is", "most likely", "looks like", a diagnosis) and Plan (prescriptions, tests, referrals,
  follow-up, advice, safety-netting); the highest score wins, a tie goes to Plan, then Assessment, then
  Objective, and a sentence with no cue (greetings, "let me examine you") or an unanswered question is left
  out;
* a sentence of an unknown speaker is scored the same way, with Subjective cues (first person, a symptom)
  competing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from caresync.documents import clinical_terms
from caresync.documents.summaries.dialogue import Utterance, is_courtesy


class Section(StrEnum):
    """The four sections of a SOAP note, in note order."""

    SUBJECTIVE = "subjective"
    OBJECTIVE = "objective"
    ASSESSMENT = "assessment"
    PLAN = "plan"


@dataclass(frozen=True)
class NoteSentence:
    """A sentence of the draft note, taken from the transcript, with the segments it came from."""

    section: Section
    text: str
    segments: tuple[int, ...]
    start: float  # seconds: the audio span to play
    end: float


@dataclass(frozen=True)
class SoapNote:
    """A draft SOAP note: the sentences of each section in the order they were said."""

    subjective: tuple[NoteSentence, ...]
    objective: tuple[NoteSentence, ...]
    assessment: tuple[NoteSentence, ...]
    plan: tuple[NoteSentence, ...]

    def section(self, section: Section) -> tuple[NoteSentence, ...]:
        """The sentences of one section."""
        return {
            Section.SUBJECTIVE: self.subjective,
            Section.OBJECTIVE: self.objective,
            Section.ASSESSMENT: self.assessment,
            Section.PLAN: self.plan,
        }[section]

    @property
    def sentences(self) -> tuple[NoteSentence, ...]:
        """Every sentence of the note, section by section."""
        return self.subjective + self.objective + self.assessment + self.plan


@dataclass(frozen=True)
class _Cues:
    """Weighted cue patterns of a section; each cue counts once however often it matches."""

    cues: tuple[tuple[re.Pattern[str], int], ...]

    def score(self, text: str) -> int:
        return sum(weight for pattern, weight in self.cues if pattern.search(text))


def _cues(*pairs: tuple[str, int]) -> _Cues:
    return _Cues(tuple((re.compile(rf"\b(?:{pattern})", re.IGNORECASE), weight) for pattern, weight in pairs))


_BODY = (
    r"chest|heart|lungs?|abdomen|tummy|stomach|throat|ears?|eardrums?|nose|eyes?|skin|feet|foot|legs?|arms?|"
    r"back|neck|joints?|knees?|ankles?|wound|rash|reflexes|pulses|glands|tonsils|spine|muscles|urine"
)
OBJECTIVE_CUES = _cues(
    (r"on examination|examining you|i can (?:hear|see|feel)|there (?:is|are|'s) (?:a|an|some|no)\b", 2),
    (rf"(?:your|her|his|their|the) (?:\w+ )?(?:{_BODY}) (?:is|are|looks?|sounds?|feels?|seems?)\b", 2),
    (r"sounds? clear|(?:is|are) clear|tender|tenderness|wheeze|crackles|bulging|swollen|inflamed|reflexes|"
     r"straight leg raise|murmur|dip shows|shows|came back|results? (?:is|are|show)|normal|healthy", 2),
)  # fmt: skip
ASSESSMENT_CUES = _cues(
    (r"most likely|i suspect|in keeping with|consistent with|diagnos\w*", 3),
    (r"i think (?:this|it|that|she|he|you|the)", 2),
    (r"likely|probably|looks like|sounds like|seems like", 2),
    (r"(?:poorly|well|badly|not) controlled|control (?:has|is)|suggest|rule out", 2),
    (r"this is (?:a|an)\b|i don't think", 1),
)
PLAN_CUES = _cues(
    (r"refer|referral|call (?:an ambulance|999|911|112|us)|a&e|999|911|emergency", 3),
    (r"prescribe|start you on|give you|course of|add\b|increase|reduce|stop taking", 2),
    (r"ecg|x-ray|xray|scan|ultrasound|mri|blood tests?|culture|urine sample|swab|repeat", 2),
    (r"come back|see you|(?<!last )(?<!previous )review|follow[- ]?up|bring (?:her|him|them) back|"
     r"let me know|book", 2),
    (r"try to|avoid|make sure|keep (?:taking|using|giving|moving)|stay active|plenty of|"
     r"you can (?:take|give|use)|you should|it's important|drink (?:plenty|more|lots|water|fluids)", 2),
    (r"in (?:a|an|one|two|three|four|five|six|\d+)(?: to \w+)? (?:hours?|days?|weeks?|months?)|next week", 2),
    (r"i'll|i will|i'm going to|we'll|we will|we're going to|let's|i'd like|i want you", 1),
)  # fmt: skip
SUBJECTIVE_CUES = _cues(
    (r"(?:i|i'm|i've|i'd|my)\b", 2),  # the speaker about themself
    (r"i take|i'm taking|i've been taking|i use|i'm using|i've been using|i'm on|i gave (?:her|him)", 3),
    (r"since|for the (?:last|past)|\w+ ago|last night|yesterday|this morning|last (?:week|month)", 1),
)
_TIE_ORDER = (Section.PLAN, Section.ASSESSMENT, Section.OBJECTIVE, Section.SUBJECTIVE)


def scores(utterance: Utterance) -> dict[Section, int]:
    """The cue score of each section for an utterance. Subjective is scored (and the lexicon consulted for
    symptoms) only when the speaker is unknown: a doctor's sentence is never Subjective."""
    text = utterance.text
    found = {
        Section.OBJECTIVE: OBJECTIVE_CUES.score(text) + 4 * bool(utterance.readings),
        Section.ASSESSMENT: ASSESSMENT_CUES.score(text),
        Section.PLAN: PLAN_CUES.score(text) + 2 * any(not drug.negated for drug in utterance.drugs),
    }
    if utterance.speaker != "doctor":
        symptom = any(m.kind == clinical_terms.SYMPTOM and not m.negated for m in utterance.mentions)
        found[Section.SUBJECTIVE] = SUBJECTIVE_CUES.score(text) + 2 * symptom
    return found


def classify(utterance: Utterance) -> Section | None:
    """The section an utterance belongs in, or None when it belongs in none."""
    if utterance.unanswered_question or is_courtesy(utterance.text):
        return None
    if utterance.speaker == "patient":
        return Section.SUBJECTIVE
    found = scores(utterance)
    best = max(found.values())
    if best == 0:
        return None
    return next(section for section in _TIE_ORDER if found.get(section) == best)


def place(units: Sequence[Utterance]) -> list[tuple[Utterance, Section | None]]:
    """Each utterance with the section it belongs in (None: left out of the note)."""
    return [(unit, classify(unit)) for unit in units]


def note_from(placed: Sequence[tuple[Utterance, Section | None]]) -> SoapNote:
    """The note from placed utterances, without the near-duplicates of a sentence already in its section."""
    kept: dict[Section, list[tuple[NoteSentence, frozenset[str]]]] = {section: [] for section in Section}
    for unit, section in placed:
        if section is None:
            continue
        words = _words(unit.text)
        if not any(_near_duplicate(words, earlier) for _, earlier in kept[section]):
            kept[section].append(
                (NoteSentence(section, unit.text, unit.segments, unit.start, unit.end), words)
            )
    return SoapNote(*(tuple(sentence for sentence, _ in kept[section]) for section in Section))


DUPLICATE_JACCARD = 0.8


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[\w']+", text.lower()))


def _near_duplicate(first: frozenset[str], second: frozenset[str]) -> bool:
    """Whether two sentences say the same words (Jaccard similarity of their word sets >= 0.8)."""
    return bool(first and second) and len(first & second) / len(first | second) >= DUPLICATE_JACCARD
