"""API shapes of recorded consultations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from caresync.core.errors import ValidationFailed
from caresync.documents.consultations.service import clean_speaker_name, speaker_names
from caresync.documents.models import Consultation, ConsultationNote, TranscriptSegment


class SegmentOut(BaseModel):
    """A stretch of speech: when (seconds from the start), who (the detected label, the speaker's name and
    role) and what."""

    index: int
    start: float
    end: float
    speaker: str
    name: str
    role: str
    text: str

    @classmethod
    def of(cls, segment: TranscriptSegment, roles: dict[str, str], names: dict[str, str]) -> SegmentOut:
        return cls(
            index=segment.index,
            start=segment.start_s,
            end=segment.end_s,
            speaker=segment.speaker,
            name=names[segment.speaker],
            role=roles.get(segment.speaker, "unknown"),
            text=segment.text,
        )


class NoteOut(BaseModel):
    """The note: the draft (sentences with the segments they came from, key facts) and the edited text."""

    status: str
    text: str
    draft: dict[str, Any]
    approved_at: datetime | None
    record_id: uuid.UUID | None

    @classmethod
    def of(cls, note: ConsultationNote) -> NoteOut:
        return cls(
            status=note.status,
            text=note.text,
            draft=note.draft,
            approved_at=note.approved_at,
            record_id=note.record_id,
        )


class ConsultationOut(BaseModel):
    """A recorded consultation; its transcript and note once transcribed (when asked for one)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    clinician_id: uuid.UUID
    status: str
    error: str | None
    duration_s: float | None
    job_id: uuid.UUID | None
    created_at: datetime
    speakers: dict[str, str] = Field(description="Each speaker's label and role (doctor, patient or other).")
    speaker_names: dict[str, str] = Field(
        description="Each speaker's label and name: the one the clinician gave, else the label (Speaker 1)."
    )
    segments: list[SegmentOut] | None = None
    note: NoteOut | None = None

    @classmethod
    def of(cls, consultation: Consultation, *, full: bool = False) -> ConsultationOut:
        out = cls(
            id=consultation.id,
            patient_id=consultation.patient_id,
            clinician_id=consultation.clinician_id,
            status=consultation.status,
            error=consultation.error,
            duration_s=consultation.duration_s,
            job_id=consultation.job_id,
            created_at=consultation.created_at,
            speakers=dict(consultation.speakers or {}),
            speaker_names=speaker_names(consultation),
        )
        if full:
            out.segments = [SegmentOut.of(s, out.speakers, out.speaker_names) for s in consultation.segments]
            out.note = NoteOut.of(consultation.note) if consultation.note else None
        return out


class ConsultationList(BaseModel):
    """One page of a patient's consultations."""

    items: list[ConsultationOut]
    next_cursor: str | None
    total: int | None


def _speaker_name(name: str) -> str:
    try:
        return clean_speaker_name(name)
    except ValidationFailed as exc:
        raise ValueError(exc.detail) from None


SpeakerName = Annotated[str, Field(max_length=200), AfterValidator(_speaker_name)]


class SpeakersIn(BaseModel):
    """Who each speaker is, by their label: roles ``{"speaker 1": "doctor", "speaker 2": "other"}`` and names
    ``{"speaker 1": "Dr Okafor", "speaker 2": "Mrs Jones (daughter)"}`` (1 to 60 characters, trimmed); either
    may be left out."""

    speakers: dict[str, str] = Field(default_factory=dict, max_length=2)
    names: dict[str, SpeakerName] = Field(default_factory=dict, max_length=2)


class NoteIn(BaseModel):
    """The note as the clinician edited it."""

    text: str = Field(max_length=20_000)
