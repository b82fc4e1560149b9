"""Recorded consultations under ``/api/v1/documents/consultations``: upload a recording (transcribed as a
job), read the transcript and draft note, correct and name the speakers, edit and approve the note, play the
audio."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response

from caresync.core import jobs
from caresync.documents.consultations import service
from caresync.documents.consultations.jobs import transcribe_job
from caresync.documents.consultations.schemas import (
    ConsultationList,
    ConsultationOut,
    NoteIn,
    NoteOut,
    SpeakersIn,
)
from caresync.records.api import stored_file_response
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/documents/consultations", tags=["documents"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ConsultationOut)
def record(
    principal: CurrentUser,
    db: Db,
    patient_id: Annotated[uuid.UUID, Form()],
    audio: Annotated[
        UploadFile, File(description="WAV, MP3, WebM (a browser's recording), M4A, OGG or FLAC")
    ],
    appointment_id: Annotated[uuid.UUID | None, Form()] = None,
) -> ConsultationOut:
    """Upload a consultation's recording; it is transcribed as a job (follow ``job_id``), then its draft note
    awaits your edits and approval."""
    consultation = service.record(db, principal, patient_id, audio.file.read(), appointment_id)
    consultation.job_id = jobs.submit(db, principal, transcribe_job, consultation_id=str(consultation.id)).id
    out = ConsultationOut.of(consultation)
    db.commit()
    return out


@router.get("", response_model=ConsultationList)
def of_patient(
    principal: CurrentUser,
    db: Db,
    patient_id: uuid.UUID,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> ConsultationList:
    """A patient's recorded consultations, newest first."""
    page = service.of_patient(db, principal, patient_id, limit=limit, cursor=cursor)
    out = ConsultationList(
        items=[ConsultationOut.of(c) for c in page.items], next_cursor=page.next_cursor, total=page.total
    )
    db.commit()
    return out


@router.get("/{consultation_id}", response_model=ConsultationOut)
def get_consultation(consultation_id: uuid.UUID, principal: CurrentUser, db: Db) -> ConsultationOut:
    """One consultation with its transcript (speakers and times) and its note."""
    out = ConsultationOut.of(service.get(db, principal, consultation_id), full=True)
    db.commit()
    return out


@router.get("/{consultation_id}/audio", response_class=Response)
def audio(consultation_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """The recording, for playing a sentence's span."""
    consultation, data = service.audio(db, principal, consultation_id)
    name = f"consultation-{consultation.id}.{service.EXTENSIONS[consultation.media_type]}"
    response = stored_file_response(name, consultation.media_type, data, download=False)
    db.commit()
    return response


@router.put("/{consultation_id}/speakers", response_model=ConsultationOut)
def set_speakers(
    consultation_id: uuid.UUID, body: SpeakersIn, principal: CurrentUser, db: Db
) -> ConsultationOut:
    """Correct who each speaker is: their role (the draft note is made again when one changes) and their
    name ("Speaker 1" -> "Dr Okafor"); 409 once the note is approved."""
    consultation = service.set_speakers(db, principal, consultation_id, body.speakers, body.names)
    out = ConsultationOut.of(consultation, full=True)
    db.commit()
    return out


@router.put("/{consultation_id}/note", response_model=NoteOut)
def save_note(consultation_id: uuid.UUID, body: NoteIn, principal: CurrentUser, db: Db) -> NoteOut:
    """Keep your edits of the draft note."""
    out = NoteOut.of(service.save_note(db, principal, consultation_id, body.text))
    db.commit()
    return out


@router.post("/{consultation_id}/note/approve", response_model=NoteOut)
def approve(consultation_id: uuid.UUID, body: NoteIn, principal: CurrentUser, db: Db) -> NoteOut:
    """Approve the note as given: it enters the patient's record as a signed clinical note."""
    out = NoteOut.of(service.approve(db, principal, consultation_id, body.text))
    db.commit()
    return out
