"""API shapes of recorded consultations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from caresync.documents.models import Consultation, ConsultationNote, TranscriptSegment


class SegmentOut(BaseModel):
    """A stretch of speech: when (seconds from the start), who and what."""

    index: int
    start: float
    end: float
    speaker: str
    role: str
    text: str

    @classmethod
    def of(cls, segment: TranscriptSegment, roles: dict[str, str]) -> SegmentOut:
        return cls(
            index=segment.index,
            start=segment.start_s,
            end=segment.end_s,
            speaker=segment.speaker,
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
    speakers: dict[str, str]
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
        )
        if full:
            out.segments = [SegmentOut.of(s, out.speakers) for s in consultation.segments]
            out.note = NoteOut.of(consultation.note) if consultation.note else None
        return out


class ConsultationList(BaseModel):
    """One page of a patient's consultations."""

    items: list[ConsultationOut]
    next_cursor: str | None
    total: int | None


class SpeakersIn(BaseModel):
    """Who each speaker is: ``{"speaker 1": "doctor", "speaker 2": "patient"}``."""

    speakers: dict[str, str] = Field(min_length=1, max_length=2)


class NoteIn(BaseModel):
    """The note as the clinician edited it."""

    text: str = Field(max_length=20_000)
