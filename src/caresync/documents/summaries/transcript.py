"""The summariser's input: a transcript as ordered segments, and its split into sentences that remember the
segments they came from (a sentence may span segments when the recogniser cut a sentence in two)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from caresync.core.errors import ValidationFailed

SPEAKERS = ("doctor", "patient", "unknown")


@dataclass(frozen=True)
class Segment:
    """One stretch of the recording: its position, its time span in seconds, who spoke and what was said."""

    index: int
    start: float
    end: float
    speaker: str  # "doctor" | "patient" | "unknown"
    text: str


@dataclass(frozen=True)
class Sentence:
    """A sentence of one speaker's turn, as spoken (``text``) and with fillers removed (``clean``)."""

    text: str
    clean: str
    speaker: str
    segments: tuple[int, ...]  # indexes of the segments it came from
    start: float
    end: float

    @property
    def is_question(self) -> bool:
        """Whether the sentence is a question (ends with a question mark)."""
        return self.text.rstrip().endswith("?")


def validate(segments: Sequence[Segment]) -> None:
    """Refuse a transcript the summariser cannot use: no speech at all, unknown speaker roles, time spans
    that end before they start, repeated or unordered segment indexes."""
    if not any(segment.text.strip() for segment in segments):
        raise ValidationFailed("The transcript has no speech to summarise.")
    previous: int | None = None
    for segment in segments:
        if segment.speaker not in SPEAKERS:
            raise ValidationFailed(
                f"Segment {segment.index} has an unknown speaker role {segment.speaker!r}; "
                f"expected one of {', '.join(SPEAKERS)}."
            )
        if not (math.isfinite(segment.start) and math.isfinite(segment.end)) or segment.end < segment.start:
            raise ValidationFailed(f"Segment {segment.index} ends before it starts.")
        if previous is not None and segment.index <= previous:
            raise ValidationFailed("Transcript segments must be in order, each with its own index.")
        previous = segment.index


# Disfluencies, removed anywhere; "you know" and "I mean" only when set off by commas ("do you know your
# blood group?" keeps them). "like" and "sort of" are kept: they often carry meaning. Upper-case "ER" is
# never a filler.
_FILLER = re.compile(
    r"(?:,\s*)?\b(?:[uU]+[mM]+|[uU]+[hH]+[mM]*|[eE]+[rR]+[mM]+|[aA]+[hH]+|[hH]+[mM]+|[mM]+[hH]*[mM]+)\b(?:\s*,)?"
)
_PHRASE_FILLER = re.compile(r"(?:^|,)\s*(?:you know|i mean)\s*(?:,|(?=[.?!]?$))", re.IGNORECASE)
# "I I think" -> "I think" (not "had had" or "that that", which can be meant)
_REPEAT = re.compile(r"\b(?!had\b|that\b)(\w+)(?:\s+\1\b)+", re.IGNORECASE)
_LEADING = re.compile(r"^(?:(?:so|okay|ok|well|right|alright|and)\b[,\s]*)+", re.IGNORECASE)
# A sentence ends at . ? or ! followed by a space (and not inside a number such as 37.6).
_BOUNDARY = re.compile(r"(?<=[.?!])\s+")


def normalise(text: str) -> str:
    """The sentence with fillers ("um", "you know"), stuttered repeats and leading discourse markers ("So,
    okay,") removed; only ever removes words, so the result stays grounded in what was said."""
    cleaned = _PHRASE_FILLER.sub(" ", _FILLER.sub(" ", text))
    cleaned = _REPEAT.sub(r"\1", cleaned)
    cleaned = " ".join(cleaned.split())
    cleaned = re.sub(r"\s+([,.?!;:])", r"\1", cleaned)
    cleaned = re.sub(r",+([,.?!;:])", r"\1", cleaned)
    cleaned = re.sub(r"^[,;:\s]+", "", cleaned)
    stripped = _LEADING.sub("", cleaned)
    if re.search(r"\w", stripped):
        cleaned = stripped
    return cleaned[:1].upper() + cleaned[1:] if cleaned else cleaned


def sentences(segments: Sequence[Segment]) -> list[Sentence]:
    """Split the transcript into sentences. Consecutive segments of one speaker form a turn; a sentence ends
    at terminal punctuation, so a sentence the recogniser cut across two segments is rejoined and carries
    both segment indexes."""
    result: list[Sentence] = []
    for turn in _turns(segments):
        text, owners = _join(turn)
        for begin, end in _spans(text, owners):
            piece = text[begin:end]
            spanned = [turn[i] for i in sorted({owners[k] for k in range(begin, end) if owners[k] >= 0})]
            result.append(
                Sentence(
                    text=piece.strip(),
                    clean=normalise(piece),
                    speaker=turn[0].speaker,
                    segments=tuple(segment.index for segment in spanned),
                    start=spanned[0].start,
                    end=spanned[-1].end,
                )
            )
    return [sentence for sentence in result if re.search(r"\w", sentence.clean)]


MAX_SENTENCE_WORDS = 60  # an unpunctuated run longer than this is cut where its segments meet


def _spans(text: str, owners: list[int]) -> list[tuple[int, int]]:
    """(begin, end) of each sentence of a turn's text."""
    spans: list[tuple[int, int]] = []
    position = 0
    for piece in _BOUNDARY.split(text):
        begin = text.index(piece, position)
        end = position = begin + len(piece)
        if not piece.strip():
            continue
        if len(piece.split()) > MAX_SENTENCE_WORDS:
            cuts = [begin, *(k for k in range(begin, end) if owners[k] < 0), end]
            spans += [(a, b) for a, b in pairwise(cuts) if text[a:b].strip()]
        else:
            spans.append((begin, end))
    return spans


def _turns(segments: Sequence[Segment]) -> list[list[Segment]]:
    turns: list[list[Segment]] = []
    for segment in segments:
        if not segment.text.strip():
            continue
        if turns and turns[-1][0].speaker == segment.speaker:
            turns[-1].append(segment)
        else:
            turns.append([segment])
    return turns


def _join(turn: list[Segment]) -> tuple[str, list[int]]:
    """The turn's text and, per character, the position in ``turn`` of the segment it came from (-1 for
    the joining spaces). A segment that ends without terminal punctuation runs on into the next one."""
    parts: list[str] = []
    owners: list[int] = []
    for position, segment in enumerate(turn):
        piece = " ".join(segment.text.split())
        if parts:
            parts.append(" ")
            owners.append(-1)
        parts.append(piece)
        owners.extend([position] * len(piece))
    return "".join(parts), owners
