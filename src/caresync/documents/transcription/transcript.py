"""The transcript of a consultation: segments with times, words, speakers and the speakers' roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from caresync.core.errors import ValidationFailed

ROLES = ("doctor", "patient")


@dataclass(frozen=True)
class Word:
    """One recognised word (punctuation attached) with its time span in seconds and Whisper's probability."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of speech by one speaker.

    ``avg_logprob`` and ``no_speech_prob`` are Whisper's (a low log-probability or a high no-speech
    probability mark text worth checking). ``speaker`` is "speaker 1" / "speaker 2" (numbered in order of
    first appearance) once speakers are separated, else None; ``speaker_confidence`` runs from 0.5 (a coin
    toss) to 1.0 (certain).
    """

    index: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    avg_logprob: float
    no_speech_prob: float
    speaker: str | None = None
    speaker_confidence: float | None = None


@dataclass(frozen=True)
class Transcript:
    """A whole recording: language, duration in seconds, segments in time order, and ``roles`` (speaker ->
    "doctor" / "patient", guessed by :func:`~caresync.documents.transcription.roles.guess_roles`)."""

    language: str
    duration: float
    segments: tuple[Segment, ...]
    roles: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def text(self) -> str:
        """The whole text, one segment after another."""
        return " ".join(segment.text for segment in self.segments)

    @property
    def speakers(self) -> tuple[str, ...]:
        """The speakers in order of first appearance."""
        return tuple(dict.fromkeys(s.speaker for s in self.segments if s.speaker is not None))

    def with_roles(self, roles: Mapping[str, str]) -> Transcript:
        """A copy with the roles corrected by a person, e.g. ``{"speaker 1": "patient", "speaker 2":
        "doctor"}``; speakers not named keep their role."""
        unknown = set(roles) - set(self.speakers)
        if unknown:
            raise ValidationFailed(f"Unknown speaker(s): {', '.join(sorted(unknown))}.")
        bad = {role for role in roles.values() if role not in ROLES}
        if bad:
            raise ValidationFailed(f"A role must be one of {', '.join(ROLES)}, not {', '.join(sorted(bad))}.")
        return replace(self, roles=MappingProxyType({**self.roles, **roles}))
