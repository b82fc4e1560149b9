"""Utterances: the units a note is built from. Most are single sentences; a doctor's question followed by
the patient's short or yes/no answer becomes one question-and-answer utterance ("Any sweating or nausea?
No."), so the answer keeps its meaning and the symptoms asked about get the answer's polarity."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from caresync.documents import clinical_terms
from caresync.documents.summaries import medications, vitals
from caresync.documents.summaries.transcript import Sentence

_NO = re.compile(r"^(?:no|nope|not|never|none|nothing|nah)\b", re.IGNORECASE)
_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|a (?:bit|little)|a little bit|sometimes|quite a lot|definitely)\b"
    r"|^(?:i do|i have|i am|i did|it is|it does)[.!]?$",
    re.IGNORECASE,
)
# "This is your diabetes review, isn't it?": a tag question confirms, it does not ask about the patient.
_TAG_QUESTION = re.compile(
    r",\s*(?:isn't|is|aren't|are|don't|doesn't|didn't|wasn't|haven't|hasn't)\s+(?:it|you|she|he|they|that)\?$"
    r"|\bis that right\?$",
    re.IGNORECASE,
)
_COURTESY = frozenset(
    {
        "yes", "yeah", "yep", "no", "ok", "okay", "right", "thats", "that's", "alright", "all", "great",
        "good", "fine", "thanks", "thank", "you", "very", "much", "so", "really", "helpful", "doctor",
        "sure", "lovely", "perfect", "morning", "afternoon", "evening", "hello", "hi", "bye", "goodbye",
        "cheers", "welcome", "youre", "you're", "take", "care", "would", "be", "see",
    }
)  # fmt: skip
SHORT_ANSWER = 8  # words: a longer answer stands on its own


@dataclass(frozen=True)
class Utterance:
    """A unit of the note: a sentence, or a doctor's question with the patient's answer."""

    text: str  # normalised text (for a question and answer: both, question first)
    speaker: str  # the speaker of the sentence, or "patient" for a question and answer
    segments: tuple[int, ...]
    start: float
    end: float
    question: str = ""  # for a question and answer: the question part of ``text``
    unanswered_question: bool = False

    @property
    def answer(self) -> str:
        """The answer part of a question-and-answer utterance (its whole text otherwise)."""
        return self.text[len(self.question) :].strip()

    @cached_property
    def mentions(self) -> list[clinical_terms.Mention]:
        """The clinical terms mentioned (computed once; the lexicon matcher is the costly step)."""
        return clinical_terms.find_mentions(self.text)

    @cached_property
    def drugs(self) -> list[medications.DrugMention]:
        """The formulary drugs mentioned, with dose and frequency."""
        return medications.find(self.text)

    @cached_property
    def readings(self) -> list[vitals.Reading]:
        """The measurements said."""
        return vitals.readings(self.text)

    @property
    def polarity(self) -> str | None:
        """For a question and answer: "no" or "yes" when the answer starts with one, else None."""
        if not self.question:
            return None
        if _NO.match(self.answer):
            return "no"
        return "yes" if _YES.match(self.answer) else None


def is_courtesy(text: str) -> bool:
    """Whether a sentence is only courtesy ("Thanks, doctor.", "Okay, thank you so much.")."""
    words = re.findall(r"[\w']+", text.lower())
    return all(word in _COURTESY for word in words)


def utterances(sentences: Sequence[Sentence]) -> list[Utterance]:
    """Pair each doctor question that ends a turn with the patient's first sentence after it when that
    answer is short or starts with yes/no (with unknown roles: any question and the sentence after it);
    every other sentence is an utterance of its own."""
    result: list[Utterance] = []
    skip = False
    for position, sentence in enumerate(sentences):
        if skip:
            skip = False
            continue
        answer = sentences[position + 1] if position + 1 < len(sentences) else None
        if sentence.is_question and answer is not None and _answers(sentence, answer):
            result.append(
                Utterance(
                    text=f"{sentence.clean} {answer.clean}",
                    speaker="patient",
                    segments=tuple(sorted({*sentence.segments, *answer.segments})),
                    start=sentence.start,
                    end=answer.end,
                    question=sentence.clean,
                )
            )
            skip = True
            continue
        result.append(
            Utterance(
                text=sentence.clean,
                speaker=sentence.speaker,
                segments=sentence.segments,
                start=sentence.start,
                end=sentence.end,
                unanswered_question=sentence.is_question,
            )
        )
    return result


def _answers(question: Sentence, answer: Sentence) -> bool:
    roles_differ = question.speaker != answer.speaker or question.speaker == "unknown"
    if not roles_differ or answer.speaker == "doctor" or answer.is_question:
        return False
    if _TAG_QUESTION.search(question.clean) and is_courtesy(answer.clean):
        return False
    short = len(answer.clean.split()) <= SHORT_ANSWER
    return short or bool(_NO.match(answer.clean) or _YES.match(answer.clean))
