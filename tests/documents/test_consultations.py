"""Recorded consultations end to end: a two-voice espeak-ng dialogue uploaded over the API and the web form,
transcribed by the job (real faster-whisper), its speakers and draft SOAP note (every sentence citing
segments), role correction, naming the speakers, editing, approval into the record as a signed clinical
note, bad recordings, and who may see, edit and approve."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.core.errors import ValidationFailed
from caresync.documents import transcription
from caresync.documents.consultations import service
from caresync.documents.models import Consultation
from caresync.documents.transcription import Transcript
from caresync.records.models import HealthRecord
from tests.conftest import API, Cast, web_login
from tests.documents import speech

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng")
C = f"{API}/documents/consultations"


@pytest.fixture(scope="module", autouse=True)
def _transcribe_once_per_recording() -> Iterator[None]:
    """The job transcribes each distinct recording once per module (seconds each; the engine itself is
    tested in test_transcription.py): later jobs on the same bytes get the first transcript. Storage, the
    job, speakers, the draft note and permissions run for real every time."""
    transcripts: dict[str, Transcript] = {}
    real = transcription.transcribe

    def cached(path: Path, **kwargs: Any) -> Transcript:
        key = hashlib.sha256(path.read_bytes()).hexdigest()
        if key not in transcripts:
            transcripts[key] = real(path, **kwargs)
        return transcripts[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transcription, "transcribe", cached)
        yield


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Part of the sore-throat consultation spoken by two espeak-ng voices (about 15 s of WAV: every test
    transcribes it again, on both databases)."""
    lines = (*speech.CONSULTATION[:4], speech.CONSULTATION[8], speech.CONSULTATION[12])
    return speech.synthesise(tmp_path_factory.mktemp("speech"), lines).path.read_bytes()


def record(client: TestClient, headers: dict[str, str], patient_id: Any, audio: bytes) -> Any:
    files = {"audio": ("consultation.wav", audio, "audio/wav")}
    return client.post(C, data={"patient_id": str(patient_id)}, files=files, headers=headers)


@pytest.fixture
def transcribed(client: TestClient, cast: Cast, sign_in: Any, recording: bytes) -> dict[str, Any]:
    """The cast doctor's consultation with the cast patient, transcribed (the job runs at once in tests)."""
    response = record(client, sign_in(cast["doctor"]), cast["patient"].patient_id, recording)
    assert response.status_code == 202, response.text
    return client.get(f"{C}/{response.json()['id']}", headers=sign_in(cast["doctor"])).json()


def test_a_recording_is_transcribed_with_speakers_and_a_grounded_draft(transcribed: dict[str, Any]) -> None:
    assert transcribed["status"] == "ready", transcribed["error"]
    assert sorted(transcribed["speakers"].values()) == ["doctor", "patient"]
    text = " ".join(s["text"] for s in transcribed["segments"]).lower()
    assert "sore throat" in text
    assert "antibiotics" in text
    doctor_lines = " ".join(s["text"] for s in transcribed["segments"] if s["role"] == "doctor").lower()
    assert "prescribe" in doctor_lines  # the doctor's words are attributed to the doctor
    note = transcribed["note"]
    assert note["status"] == "draft"
    segments = {s["index"]: s["text"] for s in transcribed["segments"]}
    sentences = note["draft"]["sentences"]
    assert {s["section"] for s in sentences} >= {"subjective", "plan"}
    for sentence in sentences:  # grounded: every sentence cites segments that exist and hold its words
        cited = " ".join(segments[i] for i in sentence["segments"]).lower()
        assert sentence["text"].split()[0].lower().strip(".,?") in cited
    assert any(f["concept"] == "fever" and not f["negated"] for f in note["draft"]["facts"]["symptoms"])
    assert "SUBJECTIVE" in note["text"]


def test_correcting_the_speakers_remakes_the_draft(
    client: TestClient, cast: Cast, sign_in: Any, transcribed: dict[str, Any]
) -> None:
    swapped = {
        speaker: "patient" if role == "doctor" else "doctor"
        for speaker, role in transcribed["speakers"].items()
    }
    response = client.put(
        f"{C}/{transcribed['id']}/speakers", json={"speakers": swapped}, headers=sign_in(cast["doctor"])
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["speakers"] == swapped
    assert after["note"]["draft"] != transcribed["note"]["draft"]
    bad = client.put(
        f"{C}/{transcribed['id']}/speakers",
        json={"speakers": {"speaker 9": "doctor"}},
        headers=sign_in(cast["doctor"]),
    )
    assert bad.status_code == 422


def test_the_approved_note_enters_the_record_and_then_stays(
    client: TestClient, cast: Cast, sign_in: Any, transcribed: dict[str, Any], tx: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    url = f"{C}/{transcribed['id']}/note"
    assert client.put(url, json={"text": "   "}, headers=doctor).status_code == 422
    assert (
        client.put(url, json={"text": "Sore throat. Plan: antibiotics."}, headers=doctor).status_code == 200
    )
    nurse = sign_in(cast["nurse"])  # same care team: may read, may not approve someone else's note
    assert (
        client.get(f"{C}/{transcribed['id']}", headers=nurse).json()["note"]["text"].startswith("Sore throat")
    )
    assert client.post(f"{url}/approve", json={"text": "x"}, headers=nurse).status_code == 403
    approved = client.post(
        f"{url}/approve", json={"text": "Tonsillitis. Antibiotics for a week."}, headers=doctor
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    record_id = approved.json()["record_id"]
    record = client.get(f"{API}/records/{record_id}", headers=doctor).json()
    assert record["category"] == "note"
    assert (
        client.get(f"{API}/records/{record_id}/file", headers=doctor).content
        == b"Tonsillitis. Antibiotics for a week."
    )
    assert client.get(f"{API}/records/{record_id}/verify", headers=doctor).json()["signature_valid"] is True
    assert client.put(url, json={"text": "changed"}, headers=doctor).status_code == 409
    roles = {"speakers": {"speaker 1": "patient"}}
    assert client.put(f"{C}/{transcribed['id']}/speakers", json=roles, headers=doctor).status_code == 409
    assert client.post(f"{url}/approve", json={"text": "again"}, headers=doctor).status_code == 409
    with tx() as session:
        assert session.get(HealthRecord, uuid.UUID(record_id)).uploaded_by == cast["doctor"].id


def test_who_may_record_and_read(
    client: TestClient, cast: Cast, make: Any, sign_in: Any, transcribed: dict[str, Any]
) -> None:
    consultation = f"{C}/{transcribed['id']}"
    assert client.get(consultation, headers=sign_in(cast["patient"])).status_code == 200  # their own record
    assert client.get(consultation, headers=sign_in(cast["pharmacist"])).status_code == 404
    assert client.get(consultation).status_code == 401
    stranger = sign_in(make.staff("doctor", make.org()))  # not in the patient's care: it does not exist
    assert client.get(consultation, headers=stranger).status_code == 404
    assert (
        client.post(f"{consultation}/note/approve", json={"text": "x"}, headers=stranger).status_code == 404
    )
    audio = client.get(f"{consultation}/audio", headers=sign_in(cast["doctor"]))
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    listed = client.get(
        C, params={"patient_id": str(cast["patient"].patient_id)}, headers=sign_in(cast["nurse"])
    )
    assert [c["id"] for c in listed.json()["items"]] == [transcribed["id"]]
    for role in ("patient", "pharmacist"):  # only clinicians record, and only for their patients
        response = record(client, sign_in(cast[role]), cast["patient"].patient_id, b"RIFF....WAVE")
        assert response.status_code in (403, 404)
    assert record(client, sign_in(cast["nurse"]), cast.other_patient.id, b"RIFF....WAVE").status_code == 404


def test_bad_recordings_get_clear_errors(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any, tmp_path: Path
) -> None:
    doctor = sign_in(cast["doctor"])
    not_audio = record(client, doctor, cast["patient"].patient_id, b"this is a text file, not a recording")
    assert not_audio.status_code == 415
    silence = speech.write_wav(tmp_path / "silence.wav", np.zeros(speech.SAMPLE_RATE * 3, dtype=np.int16))
    response = record(client, doctor, cast["patient"].patient_id, silence.read_bytes())
    assert response.status_code == 202
    failed = client.get(f"{C}/{response.json()['id']}", headers=doctor).json()
    assert failed["status"] == "failed"
    assert "silent" in failed["error"].lower()
    with tx() as session:
        assert session.execute(select(Consultation.status)).scalars().all() == ["failed"]


def test_the_pages_record_show_and_approve(client: TestClient, cast: Cast, recording: bytes) -> None:
    csrf = web_login(client, cast["doctor"])
    patient_id = cast["patient"].patient_id
    assert "Record a consultation" in client.get(f"/patients/{patient_id}").text
    recorder = client.get(f"/patients/{patient_id}/consultations/new")
    assert recorder.status_code == 200
    assert "consultation-recorder.js" in recorder.text
    response = client.post(
        f"/patients/{patient_id}/consultations/new",
        data={"csrf_token": csrf},
        files={"audio": ("consultation.webm", recording, "audio/wav")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert 'data-testid="transcript"' in page.text
    assert 'data-testid="note-sentence"' in page.text
    approved = client.post(
        f"{response.headers['location']}/note",
        data={"csrf_token": csrf, "action": "approve", "text": "Tonsillitis."},
    )
    assert approved.status_code == 200
    assert "approved and in the patient" in approved.text


# --- naming the speakers ------------------------------------------------------------------------------------

NAME_LIMIT = "x" * 60


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Dr Okafor", "Dr Okafor"),
        ("  Mrs Jones (daughter) \n", "Mrs Jones (daughter)"),  # trimmed, the line break with it
        ("Zoe\u0308 Ó Súilleabháin", "Zoë Ó Súilleabháin"),  # NFC: one way to spell each letter
        ("李小龙", "李小龙"),
        ("<b>Dr</b> O'Neil & co", "<b>Dr</b> O'Neil & co"),  # kept as typed; the page escapes it
        ("A", "A"),
        (NAME_LIMIT, NAME_LIMIT),
        (f"  {NAME_LIMIT}  ", NAME_LIMIT),
    ],
)
def test_a_good_speaker_name_is_kept_trimmed(given: str, kept: str) -> None:
    assert service.clean_speaker_name(given) == kept


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "Give the speaker a name"),
        ("   \t ", "Give the speaker a name"),
        ("x" * 61, "60 characters"),
        ("Dr\tOkafor", "control characters"),
        ("Dr\nOkafor", "control characters"),
        ("Dr\x00Okafor", "control characters"),
        ("Dr\x7f", "control characters"),
        ("Dr\x85Okafor", "control characters"),  # C1 next line
        ("Dr\u2028Okafor", "control characters"),  # line separator
        ("\u202erofakO rD", "control characters"),  # right-to-left override: displays as something else
        ("Dr\u2066Okafor\u2069", "control characters"),
        ("Dr\ud800", "control characters"),  # a lone surrogate (valid in JSON, not storable)
    ],
)
def test_a_bad_speaker_name_is_refused_clearly(given: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as raised:
        service.clean_speaker_name(given)
    assert raised.value.status == 422


def test_the_doctor_names_the_speakers_and_the_transcript_shows_them(
    client: TestClient, cast: Cast, sign_in: Any, transcribed: dict[str, Any], tx: Any
) -> None:
    doctor, url = sign_in(cast["doctor"]), f"{C}/{transcribed['id']}/speakers"
    assert transcribed["speaker_names"] == {"speaker 1": "Speaker 1", "speaker 2": "Speaker 2"}
    assert {s["name"] for s in transcribed["segments"]} == {"Speaker 1", "Speaker 2"}
    doctor_label = next(label for label, role in transcribed["speakers"].items() if role == "doctor")
    other_label = next(label for label in transcribed["speakers"] if label != doctor_label)
    body = {
        "names": {doctor_label: "  Dr Okafor ", other_label: "Mrs Jones (daughter)"},
        "speakers": {other_label: "other"},
    }
    renamed = client.put(url, json=body, headers=doctor)
    assert renamed.status_code == 200, renamed.text
    after = client.get(f"{C}/{transcribed['id']}", headers=sign_in(cast["nurse"])).json()  # the team sees it
    names = {doctor_label: "Dr Okafor", other_label: "Mrs Jones (daughter)"}
    assert renamed.json()["speaker_names"] == after["speaker_names"] == names
    assert after["speakers"] == {doctor_label: "doctor", other_label: "other"}
    for segment in after["segments"]:
        assert (segment["speaker"], segment["name"]) in names.items()
        assert segment["role"] == after["speakers"][segment["speaker"]]

    with tx() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "document.consultation.rename")
        ).all()
        assert [(e.actor_id, str(e.patient_id), e.resource_id) for e in entries] == [
            (cast["doctor"].id, str(cast["patient"].patient_id), transcribed["id"])
        ]
        assert json.loads(entries[0].detail) == {"speakers": sorted(names)}  # which speakers, not the names
    same = client.put(url, json={"names": {doctor_label: "Dr Okafor"}}, headers=doctor)
    assert same.status_code == 200
    back = client.put(url, json={"names": {other_label: other_label.upper()}}, headers=doctor)
    assert back.json()["speaker_names"][other_label] == other_label.capitalize()  # the label again
    with tx() as session:
        renames = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "document.consultation.rename")
            .order_by(AuditEntry.seq)
        )
        assert [json.loads(e.detail) for e in renames] == [
            {"speakers": sorted(names)},
            {"speakers": [other_label]},  # naming a speaker what they are called already is no change
        ]


def test_bad_names_and_wrong_people_are_refused(
    client: TestClient, cast: Cast, sign_in: Any, transcribed: dict[str, Any], tx: Any
) -> None:
    doctor, url = sign_in(cast["doctor"]), f"{C}/{transcribed['id']}/speakers"
    labels = sorted(transcribed["speakers"])
    refused = [
        ({"names": {labels[0]: "   "}}, "Give the speaker a name"),
        ({"names": {labels[0]: "x" * 61}}, "60 characters"),
        ({"names": {labels[0]: "Dr\u202eOkafor"}}, "control characters"),
        ({"names": {labels[0]: "Dr Okafor", labels[1]: "dr okafor"}}, "different name"),
        ({"names": {labels[0]: labels[1]}}, "different name"),  # what the other speaker is called
        ({"names": {"speaker 9": "Dr Okafor"}}, "Unknown speaker: speaker 9"),
        ({"speakers": {labels[0]: "nurse"}}, "doctor, the patient or someone else"),
        ({}, "a role or a name"),
    ]
    for body, message in refused:
        response = client.put(url, json=body, headers=doctor)
        assert response.status_code == 422, body
        assert message in response.text, (body, response.text)
    nurse = client.put(url, json={"names": {labels[0]: "Nurse Ama"}}, headers=sign_in(cast["nurse"]))
    assert nurse.status_code == 403
    stranger = sign_in(cast["pharmacist"])
    assert client.put(url, json={"names": {labels[0]: "X"}}, headers=stranger).status_code == 404
    assert client.put(url, json={"names": {labels[0]: "X"}}).status_code == 401

    approved = client.post(
        f"{C}/{transcribed['id']}/note/approve", json={"text": "Sore throat."}, headers=doctor
    )
    assert approved.status_code == 200
    late = client.put(url, json={"names": {labels[0]: "Dr Okafor"}}, headers=doctor)
    assert late.status_code == 409
    assert "approved" in late.json()["detail"]
    with tx() as session:
        assert session.get(Consultation, uuid.UUID(transcribed["id"])).speaker_names == {}
        action = AuditEntry.action == "document.consultation.rename"
        assert session.scalars(select(AuditEntry).where(action)).all() == []


def test_the_page_names_the_speakers(client: TestClient, cast: Cast, transcribed: dict[str, Any]) -> None:
    csrf = web_login(client, cast["doctor"])
    page_url = f"/documents/consultations/{transcribed['id']}"
    roles = {f"role:{label}": role for label, role in transcribed["speakers"].items()}
    form = {"csrf_token": csrf, **roles, "name:speaker 1": "<b>Dr</b> Okafor", "name:speaker 2": "Mrs Jones"}
    saved = client.post(f"{page_url}/speakers", data=form, follow_redirects=False)
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "Speakers corrected" in page
    assert 'value="&lt;b&gt;Dr&lt;/b&gt; Okafor"' in page  # escaped, never markup
    shown = re.findall(r'data-testid="segment-speaker">([^<]*)<', page)
    assert set(shown) == {"&lt;b&gt;Dr&lt;/b&gt; Okafor", "Mrs Jones"}
    assert "<b>Dr</b>" not in page

    refused = client.post(f"{page_url}/speakers", data={**form, "name:speaker 2": "Mrs\tJones"})
    assert refused.status_code == 422
    error = re.search(r'id="name-(\d)-error" data-testid="speaker-name-error">([^<]*)<', refused.text)
    assert error is not None, "the error is shown beside the refused name"
    assert "control characters" in error.group(2)
    assert f'id="name-{error.group(1)}" name="name:speaker 2"' in refused.text
    assert refused.text.count("is-invalid") == 1  # only that field
    assert 'value="Mrs\tJones"' in refused.text  # what was typed stays in the form
    assert "Mrs Jones" in re.findall(r'data-testid="segment-speaker">([^<]*)<', refused.text)  # still stored
    same = client.post(f"{page_url}/speakers", data={**form, "name:speaker 1": "mrs jones"})
    assert same.status_code == 422
    assert re.search(r'data-testid="speakers-error">Give each speaker a different name', same.text)
