"""Recorded consultations: the recording, its transcript with speakers, the draft note and its approval.

A clinician records (or uploads) a conversation with a patient in their care; a job transcribes it
(:mod:`caresync.documents.transcription`: times, two speakers, a guess of who the doctor is) and drafts a
SOAP note with key facts (:mod:`caresync.documents.summaries`), every sentence citing the transcript
segments it came from. The clinician corrects the speakers' roles (the draft is made again) and names them
("Speaker 1" -> "Dr Okafor"), edits the note and approves it: only then does it enter the patient's record,
as a signed clinical note (:func:`caresync.records.service.upload`). Reading a consultation needs the right
to read the patient's clinical notes (consent applies).
"""

from __future__ import annotations

import dataclasses
import tempfile
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core import audit, jobs, storage
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, authorize_patient, require
from caresync.db import session_factory, transaction, utcnow
from caresync.documents.models import SPEAKER_ROLES, Consultation, ConsultationNote, TranscriptSegment
from caresync.identity.service import acting_user
from caresync.records import service as records
from caresync.records.consent import read_scope

if TYPE_CHECKING:  # the engines import faster-whisper and the lexicons: only the job needs them
    from caresync.documents.summaries import Summary
    from caresync.documents.transcription import Transcript

AUDIO_TYPES = ("audio/wav", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/flac", "video/webm")
EXTENSIONS = {
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "video/webm": "webm",
}
NOTE_CATEGORY = "note"  # where an approved note goes in the record (and what reading a consultation needs)
MAX_NOTE_CHARS = 20_000
MAX_SPEAKER_NAME_CHARS = 60
# Never in a speaker's name: control characters (category Cc), lone surrogates, line and paragraph separators,
# and the bidirectional controls that could make a name display as something else.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

Progress = Callable[[float, str], None]


def record(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    data: bytes,
    appointment_id: uuid.UUID | None = None,
) -> Consultation:
    """Store a consultation's recording for a patient in the clinician's care; the caller submits the
    transcription job."""
    require(session, principal, Perm.ENCOUNTER_RECORD, "document.consultation.record")
    authorize_patient(session, principal, patient_id, Perm.PATIENT_WRITE, "document.consultation.record")
    stored = storage.put(session, data, allowed_types=AUDIO_TYPES)
    assert principal.user_id is not None  # clinicians are signed-in users
    consultation = Consultation(
        patient_id=patient_id,
        clinician_id=principal.user_id,
        appointment_id=appointment_id,
        audio_sha256=stored.sha256,
        media_type=stored.media_type,
    )
    session.add(consultation)
    session.flush()
    audit.record(
        session,
        principal,
        "document.consultation.record",
        patient_id=patient_id,
        resource_type="Consultation",
        resource_id=consultation.id,
        detail={"media_type": stored.media_type, "size": stored.size},
    )
    return consultation


def get(
    session: Session,
    principal: Principal,
    consultation_id: uuid.UUID,
    action: str = "document.consultation.read",
) -> Consultation:
    """A consultation with its transcript and note, for whoever may read the patient's clinical notes (404
    otherwise, audited)."""
    consultation = session.get(Consultation, consultation_id)
    scope = read_scope(session, principal, consultation.patient_id, action) if consultation else None
    if consultation is None or scope is None or not scope.allows(NOTE_CATEGORY):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=consultation.patient_id if consultation else None,
            resource_type="Consultation",
            resource_id=consultation_id,
        )
        raise NotFound("No such consultation.")
    audit.record(
        session,
        principal,
        action,
        patient_id=consultation.patient_id,
        resource_type="Consultation",
        resource_id=consultation.id,
        flagged=scope.break_glass,
    )
    return consultation


def of_patient(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Consultation]:
    """A patient's recorded consultations, newest first (for whoever may read their clinical notes)."""
    scope = read_scope(session, principal, patient_id, "document.consultation.list")
    if not scope.allows(NOTE_CATEGORY):
        return Page([], None, 0)
    page = paginate(
        session,
        select(Consultation).where(Consultation.patient_id == patient_id),
        sort_column=Consultation.created_at,
        id_column=Consultation.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=True,
    )
    audit.record(
        session,
        principal,
        "document.consultation.list",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        flagged=scope.break_glass,
    )
    return page


def audio(session: Session, principal: Principal, consultation_id: uuid.UUID) -> tuple[Consultation, bytes]:
    """A consultation and its recording (audited as a download)."""
    consultation = get(session, principal, consultation_id, "document.consultation.download")
    return consultation, storage.get(consultation.audio_sha256)


def set_speakers(
    session: Session,
    principal: Principal,
    consultation_id: uuid.UUID,
    roles: Mapping[str, str],
    names: Mapping[str, str] | None = None,
) -> Consultation:
    """Correct who each speaker is, by their detected label: their role (doctor, patient or other; the draft
    note is made again from the corrected transcript, keeping text the clinician already edited) and their
    name (``{"speaker 1": "Dr Okafor"}``; a name equal to the label goes back to the label). Renaming is
    audited. Once the note is approved, 409."""
    consultation = _editable(session, principal, consultation_id, "document.consultation.speakers")
    note = _draft(consultation)
    names = names or {}
    if not roles and not names:
        raise ValidationFailed("Give a role or a name for at least one speaker.", extra={"field": "speakers"})
    unknown = (set(roles) | set(names)) - set(consultation.speakers)
    if unknown:
        raise ValidationFailed(f"Unknown speaker: {', '.join(sorted(unknown))}.", extra={"field": "speakers"})
    if any(role not in SPEAKER_ROLES for role in roles.values()):
        raise ValidationFailed(
            "A speaker is the doctor, the patient or someone else (other).", extra={"field": "speakers"}
        )
    given = _names_after(consultation, names)
    if any(consultation.speakers[label] != role for label, role in roles.items()):
        consultation.speakers = {**consultation.speakers, **roles}
        generated = str(note.draft.get("text", ""))
        note.draft = draft_of(summarise(consultation.segments, consultation.speakers))
        if note.text == generated:  # not edited by hand: follow the new draft
            note.text = str(note.draft["text"])
    before = dict(consultation.speaker_names or {})
    if given != before:
        consultation.speaker_names = given
        audit.record(
            session,
            principal,
            "document.consultation.rename",
            patient_id=consultation.patient_id,
            resource_type="Consultation",
            resource_id=consultation.id,
            detail={
                "speakers": sorted(k for k in given.keys() | before.keys() if given.get(k) != before.get(k))
            },
        )
    session.flush()
    return consultation


def speaker_name(consultation: Consultation, label: str) -> str:
    """What the transcript calls a speaker: the name the clinician gave them, else their detected label
    ("Speaker 1")."""
    return (consultation.speaker_names or {}).get(label) or label.capitalize()


def speaker_names(consultation: Consultation) -> dict[str, str]:
    """Every speaker's label (of the speakers and of the segments) with what the transcript calls them."""
    labels = [*consultation.speakers, *(s.speaker for s in consultation.segments)]
    return {label: speaker_name(consultation, label) for label in labels}


def clean_speaker_name(name: str) -> str:
    """A speaker's name as kept: trimmed and NFC-normalised, 1 to 60 characters, no control characters (a
    clear 422 otherwise)."""
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise ValidationFailed("Give the speaker a name.", extra={"field": "names"})
    if len(cleaned) > MAX_SPEAKER_NAME_CHARS:
        raise ValidationFailed(
            f"Keep a speaker's name to {MAX_SPEAKER_NAME_CHARS} characters.", extra={"field": "names"}
        )
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES or c in _BIDI_CONTROLS for c in cleaned):
        raise ValidationFailed(
            "A speaker's name cannot hold control characters (tabs, line breaks, direction marks).",
            extra={"field": "names"},
        )
    return cleaned


def _names_after(consultation: Consultation, names: Mapping[str, str]) -> dict[str, str]:
    """The speakers' given names once ``names`` apply: checked, distinct, and without those that merely
    repeat their label."""
    given = dict(consultation.speaker_names or {})
    for label, name in names.items():
        try:
            cleaned = clean_speaker_name(name)
        except ValidationFailed as exc:  # say whose name, for the form field beside it
            raise ValidationFailed(exc.detail, extra={"field": f"name:{label}"}) from None
        if cleaned.casefold() == label.casefold():
            given.pop(label, None)
        else:
            given[label] = cleaned
    shown = [(given.get(label) or label).casefold() for label in consultation.speakers]
    if len(set(shown)) < len(shown):
        raise ValidationFailed("Give each speaker a different name.", extra={"field": "names"})
    return given


def save_note(
    session: Session, principal: Principal, consultation_id: uuid.UUID, text: str
) -> ConsultationNote:
    """Keep the clinician's edits of the draft note."""
    consultation = _editable(session, principal, consultation_id, "document.consultation.edit")
    note = _draft(consultation)
    note.text = _checked_text(text)
    session.flush()
    return note


def approve(
    session: Session, principal: Principal, consultation_id: uuid.UUID, text: str
) -> ConsultationNote:
    """Approve the note (as edited): it enters the patient's record as a signed clinical note and no longer
    changes. Only the clinician who recorded the consultation approves it."""
    consultation = _editable(session, principal, consultation_id, "document.consultation.approve")
    note = _draft(consultation)
    note.text = _checked_text(text)
    day = consultation.created_at.date()
    filed = records.upload(
        session,
        principal,
        records.Upload(
            patient_id=consultation.patient_id,
            category=NOTE_CATEGORY,
            title=f"Consultation note, {day.isoformat()}",
            recorded_on=day,
            client_id="consultation",
            appointment_id=consultation.appointment_id,
        ),
        note.text.encode(),
    )
    note.status, note.approved_by, note.approved_at, note.record_id = (
        "approved",
        principal.user_id,
        utcnow(),
        filed.id,
    )
    session.flush()
    audit.record(
        session,
        principal,
        "document.consultation.approve",
        patient_id=consultation.patient_id,
        resource_type="Consultation",
        resource_id=consultation.id,
        detail={"record_id": str(filed.id)},
    )
    return note


def _editable(
    session: Session, principal: Principal, consultation_id: uuid.UUID, action: str
) -> Consultation:
    consultation = get(session, principal, consultation_id, action)
    if consultation.clinician_id != principal.user_id:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=consultation.patient_id,
            resource_type="Consultation",
            resource_id=consultation.id,
        )
        raise Forbidden("Only the clinician who recorded the consultation edits and approves its note.")
    if consultation.status != "ready":
        raise Conflict(
            "The transcript is not ready yet."
            if consultation.status != "failed"
            else "The transcription failed."
        )
    return consultation


def _draft(consultation: Consultation) -> ConsultationNote:
    note = consultation.note
    if note is None:
        raise Conflict("This consultation has no draft note.")
    if note.status == "approved":
        raise Conflict("The note is approved and in the record; correct it there with a new version.")
    return note


def _checked_text(text: str) -> str:
    cleaned = text.replace("\r\n", "\n").strip()
    if not cleaned:
        raise ValidationFailed("The note is empty.", extra={"field": "text"})
    if len(cleaned) > MAX_NOTE_CHARS:
        raise ValidationFailed(f"Keep the note under {MAX_NOTE_CHARS:,} characters.", extra={"field": "text"})
    return cleaned


# --- the transcription job ----------------------------------------------------------------------------------


def run_transcription(consultation_id: uuid.UUID, progress: Progress) -> dict[str, object]:
    """Job body: transcribe the recording, separate the speakers, draft the note. A recording that cannot be
    used (not audio, silent, too long) marks the consultation failed with a message for the clinician."""
    from caresync.documents import transcription

    with transaction(session_factory()) as session:
        consultation = jobs.subject_of(session, Consultation, consultation_id, "consultation")
        consultation.status = "transcribing"
        data = storage.get(consultation.audio_sha256)
        suffix = EXTENSIONS[consultation.media_type]
    with tempfile.TemporaryDirectory(prefix="caresync-audio-") as folder:
        path = Path(folder) / f"consultation.{suffix}"
        path.write_bytes(data)
        try:
            transcript = transcription.transcribe(path, progress=lambda done: progress(done, "Transcribing"))
            progress(0.95, "Drafting the note")
            with transaction(session_factory()) as session:
                return _keep(session, consultation_id, transcript)
        except Exception as exc:
            jobs.mark_failed(Consultation, consultation_id, jobs.safe_message(exc))
            raise


def _keep(session: Session, consultation_id: uuid.UUID, transcript: Transcript) -> dict[str, object]:
    consultation = jobs.subject_of(session, Consultation, consultation_id, "consultation")
    principal = acting_user(session, consultation.clinician_id)
    consultation.duration_s = transcript.duration
    consultation.segments = [
        TranscriptSegment(
            index=s.index, start_s=s.start, end_s=s.end, speaker=s.speaker or "speaker 1", text=s.text
        )
        for s in transcript.segments
    ]
    consultation.speakers = {
        speaker: transcript.roles.get(speaker, "patient") for speaker in transcript.speakers
    }
    session.flush()
    summary = summarise(consultation.segments, consultation.speakers)
    draft = draft_of(summary)
    consultation.note = ConsultationNote(draft=draft, text=str(draft["text"]))
    consultation.status = "ready"
    audit.record(
        session,
        principal,
        "document.consultation.transcribe",
        patient_id=consultation.patient_id,
        resource_type="Consultation",
        resource_id=consultation.id,
        detail={"seconds": round(transcript.duration, 1), "segments": len(transcript.segments)},
    )
    return {"consultation_id": str(consultation.id), "segments": len(transcript.segments)}


def summarise(segments: list[TranscriptSegment], roles: Mapping[str, str]) -> Summary:
    """The draft note and key facts of a stored transcript, with the speakers' roles as they are now."""
    from caresync.documents import summaries

    return summaries.summarise(
        [
            summaries.Segment(s.index, s.start_s, s.end_s, _summary_role(roles.get(s.speaker)), s.text)
            for s in segments
        ]
    )


def _summary_role(role: str | None) -> str:
    """The summariser knows the doctor and the patient; anyone else (a relative, an interpreter) is scored by
    what they say, like an unknown speaker."""
    return role if role in ("doctor", "patient") else "unknown"


def draft_of(summary: Summary) -> dict[str, Any]:
    """A summary as stored with the note: its sentences and facts (each with segment indexes) and the
    plain text the note starts from."""
    from caresync.documents.summaries import render_text

    return {
        "sentences": [dataclasses.asdict(sentence) for sentence in summary.note.sentences],
        "facts": dataclasses.asdict(summary.facts),
        "text": render_text(summary),
    }
