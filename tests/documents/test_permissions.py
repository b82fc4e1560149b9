"""The permission matrix of the document AI routes (scans and consultations, API and pages): every role and
a signed-out caller, on the cast's patient (in the doctor's and nurse's care) and, signed in, on objects of a
patient nobody in the cast cares for (404 like a missing id). The scans are born-digital PDFs (no OCR run) and
the consultations are stored ready-made, so the matrix exercises the permission layer, not the engines."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.core import storage
from caresync.core.auth import Principal
from caresync.db import session_factory, transaction
from caresync.documents.consultations import api as consultations_api
from caresync.documents.consultations import pages as consultations_pages
from caresync.documents.models import Consultation, ConsultationNote, DocumentScan, TranscriptSegment
from caresync.documents.scans import api as scans_api
from caresync.documents.scans import pages as scans_pages
from caresync.documents.scans import service as scans
from caresync.documents.search import api as search_api
from caresync.documents.search import pages as search_pages
from tests.conftest import API, Cast, Factory
from tests.documents import scans as scan_files
from tests.permission_matrix import (
    Case,
    Expect,
    assert_covered,
    check_api,
    check_pages,
    identities,
    only,
    pages,
)

S, C, Q = f"{API}/documents/scans", f"{API}/documents/consultations", f"{API}/documents/search"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "  # enough for the type check; never transcribed here
CARERS = ("doctor", "nurse")
READERS = (*CARERS, "patient")  # the patient reads their own record


@dataclass
class World:
    """The cast patient's scan and consultation, and the same for a patient nobody in the cast cares for."""

    patient_id: uuid.UUID
    scan_id: uuid.UUID
    foreign_scan_id: uuid.UUID
    doctor: Principal
    foreign_doctor: Principal
    foreign_patient_id: uuid.UUID
    pdf: bytes


def _principal(person: Any) -> Principal:
    return Principal(person.id, person.role, person.full_name, organisation_id=person.user.organisation_id)


def _scan(principal: Principal, patient_id: uuid.UUID, pdf: bytes) -> uuid.UUID:
    """A scan uploaded and read (a born-digital PDF: its text is taken over, no OCR)."""
    with transaction(session_factory()) as session:
        scan_id = scans.upload(session, principal, scans.ScanUpload(patient_id, "Letter"), pdf).id
    scans.run_ocr(scan_id, lambda _done, _total: None)
    return scan_id


def _consultation(world: World, foreign: bool = False) -> uuid.UUID:
    """A transcribed consultation with its draft note (fresh for every call: approving changes it)."""
    doctor = world.foreign_doctor if foreign else world.doctor
    with transaction(session_factory()) as session:
        audio = storage.put(session, WAV, allowed_types=("audio/wav",))
        consultation = Consultation(
            patient_id=world.foreign_patient_id if foreign else world.patient_id,
            clinician_id=doctor.user_id,
            audio_sha256=audio.sha256,
            media_type=audio.media_type,
            status="ready",
            speakers={"speaker 1": "doctor", "speaker 2": "patient"},
        )
        consultation.segments = [
            TranscriptSegment(
                index=0, start_s=0.0, end_s=2.0, speaker="speaker 1", text="What brings you in?"
            ),
            TranscriptSegment(index=1, start_s=2.5, end_s=5.0, speaker="speaker 2", text="I have a cough."),
        ]
        consultation.note = ConsultationNote(
            draft={"sentences": [], "facts": {}, "text": "Cough."}, text="Cough."
        )
        session.add(consultation)
        session.flush()
        return consultation.id


@pytest.fixture
def world(cast: Cast, make: Factory, tmp_path: Path) -> World:
    pdf = scan_files.digital_pdf([scan_files.LETTERS[2]], tmp_path / "letter.pdf").read_bytes()
    stranger = make.staff("doctor", make.org())
    make.care(stranger, cast.other_patient)
    doctor, foreign_doctor = _principal(cast["doctor"]), _principal(stranger)
    return World(
        patient_id=cast["patient"].patient_id,
        scan_id=_scan(doctor, cast["patient"].patient_id, pdf),
        foreign_scan_id=_scan(foreign_doctor, cast.other_patient.id, pdf),
        doctor=doctor,
        foreign_doctor=foreign_doctor,
        foreign_patient_id=cast.other_patient.id,
        pdf=pdf,
    )


def readers(code: int) -> Expect:
    """``code`` for the patient's carers and the patient; 404 for other clinical readers would be the object
    rule, but the other roles may not read records at all (404 through the same rule, audited)."""
    return only(code, *READERS, others=404)


def _upload(w: World) -> dict[str, Any]:
    return {
        "patient_id": (None, str(w.patient_id)),
        "title": (None, "Letter"),
        "file": ("letter.pdf", w.pdf, "application/pdf"),
    }


def _recording(w: World) -> dict[str, Any]:
    return {"patient_id": (None, str(w.patient_id)), "audio": ("visit.wav", WAV, "audio/wav")}


def _scan_path(w: World) -> dict[str, str]:
    return {"scan_id": str(w.scan_id)}


def _foreign_scan(w: World) -> dict[str, str]:
    return {"scan_id": str(w.foreign_scan_id)}


def _page_path(w: World) -> dict[str, str]:
    return {"scan_id": str(w.scan_id), "number": "1"}


def _foreign_page(w: World) -> dict[str, str]:
    return {"scan_id": str(w.foreign_scan_id), "number": "1"}


def _search(w: World) -> dict[str, str]:
    return {"q": "pneumonia", "patient_id": str(w.patient_id)}


def _record_path(w: World) -> dict[str, str]:
    with transaction(session_factory()) as session:
        scan = session.get(DocumentScan, w.scan_id)
        assert scan is not None
        return {"record_id": str(scan.record_id)}


def _foreign_record(w: World) -> dict[str, str]:
    with transaction(session_factory()) as session:
        scan = session.get(DocumentScan, w.foreign_scan_id)
        assert scan is not None
        return {"record_id": str(scan.record_id)}


def _consultation_path(w: World) -> dict[str, str]:
    return {"consultation_id": str(_consultation(w))}


def _foreign_consultation(w: World) -> dict[str, str]:
    return {"consultation_id": str(_consultation(w, foreign=True))}


def _patient_path(w: World) -> dict[str, str]:
    return {"patient_id": str(w.patient_id)}


def _foreign_patient(w: World) -> dict[str, str]:
    return {"patient_id": str(w.foreign_patient_id)}


NOT_STAFF = {"admin": 403, "bloodbank_staff": 403, "pharmacist": 403, "donor": 403}
# Only the recording clinician edits; the nurse of the care team reads it but is refused (403). A stranger's
# consultation is hidden from everyone (404: tests/documents/test_consultations.py), which the harness's
# "someone else's" call cannot express for a route some readers are refused.
ONE_CLINICIAN = {**only(200, "doctor", others=404), "nurse": 403}
API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", S): Case({**only(202, *READERS, others=404), "donor": 404}, files=_upload),
    ("GET", S): Case({**only(200, *READERS), **NOT_STAFF}),
    ("GET", f"{S}/{{scan_id}}"): Case(readers(200), path=_scan_path, foreign=_foreign_scan),
    ("GET", f"{S}/{{scan_id}}/pdf"): Case(readers(200), path=_scan_path, foreign=_foreign_scan),
    ("GET", f"{S}/{{scan_id}}/original"): Case(readers(200), path=_scan_path, foreign=_foreign_scan),
    ("POST", f"{S}/{{scan_id}}/pages/{{number}}/review"): Case(
        readers(200), path=_page_path, foreign=_foreign_page
    ),
    ("GET", Q): Case({**readers(200), **NOT_STAFF}, query=_search),
    ("POST", C): Case({**only(202, *CARERS), "patient": 403}, files=_recording),
    ("GET", C): Case(readers(200), query=_patient_path),
    ("GET", f"{C}/{{consultation_id}}"): Case(
        readers(200), path=_consultation_path, foreign=_foreign_consultation
    ),
    ("GET", f"{C}/{{consultation_id}}/audio"): Case(
        readers(200), path=_consultation_path, foreign=_foreign_consultation
    ),
    ("PUT", f"{C}/{{consultation_id}}/speakers"): Case(
        {**ONE_CLINICIAN, "patient": 403},
        path=_consultation_path,
        json=lambda _w: {"speakers": {"speaker 1": "patient", "speaker 2": "doctor"}},
    ),
    ("PUT", f"{C}/{{consultation_id}}/note"): Case(
        {**ONE_CLINICIAN, "patient": 403},
        path=_consultation_path,
        json=lambda _w: {"text": "Cough for a week."},
    ),
    ("POST", f"{C}/{{consultation_id}}/note/approve"): Case(
        {**ONE_CLINICIAN, "patient": 403},
        path=_consultation_path,
        json=lambda _w: {"text": "Cough for a week."},
    ),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/documents/scans"): Case(pages({**only(200, *READERS), **NOT_STAFF})),
    ("GET", "/patients/{patient_id}/scans/new"): Case(
        pages(only(200, *READERS, others=404)), path=_patient_path, foreign=_foreign_patient
    ),
    ("POST", "/patients/{patient_id}/scans/new"): Case(
        pages(only(422, *READERS, others=404)), path=_patient_path, data=lambda _w: {"title": "No file"}
    ),
    ("GET", "/documents/scans/{scan_id}"): Case(pages(readers(200)), path=_scan_path, foreign=_foreign_scan),
    ("GET", "/documents/scans/{scan_id}/status"): Case(
        pages(readers(200)), path=_scan_path, foreign=_foreign_scan
    ),
    ("POST", "/documents/scans/{scan_id}/pages/{number}/review"): Case(
        pages(readers(303)), path=_page_path, data=lambda _w: {}, foreign=_foreign_page
    ),
    ("GET", "/documents/search"): Case(pages({**readers(200), **NOT_STAFF}), query=_search),
    ("GET", "/documents/search/open/{record_id}"): Case(
        pages(readers(200)), path=_record_path, query=lambda _w: {"q": "pneumonia"}, foreign=_foreign_record
    ),
    ("GET", "/documents/search/open/{record_id}/file"): Case(
        pages(readers(200)), path=_record_path, query=lambda _w: {"q": "pneumonia"}, foreign=_foreign_record
    ),
    ("GET", "/patients/{patient_id}/consultations/new"): Case(
        pages({**only(200, *CARERS, others=404), "patient": 200}),
        path=_patient_path,
        foreign=_foreign_patient,
    ),
    ("POST", "/patients/{patient_id}/consultations/new"): Case(
        pages({**only(422, *CARERS, others=404), "patient": 422}), path=_patient_path, data=lambda _w: {}
    ),
    ("GET", "/documents/consultations/{consultation_id}"): Case(
        pages(readers(200)), path=_consultation_path, foreign=_foreign_consultation
    ),
    ("POST", "/documents/consultations/{consultation_id}/speakers"): Case(
        pages({**ONE_CLINICIAN, "doctor": 303, "patient": 403}),
        path=_consultation_path,
        data=lambda _w: {"role:speaker 1": "patient", "role:speaker 2": "doctor"},
    ),
    ("POST", "/documents/consultations/{consultation_id}/note"): Case(
        pages({**ONE_CLINICIAN, "doctor": 303, "patient": 403}),
        path=_consultation_path,
        data=lambda _w: {"text": "Cough.", "action": "save"},
    ),
}


def test_matrices_cover_every_route() -> None:
    assert_covered(
        (scans_api.router, {k: v for k, v in API_CASES.items() if k[1].startswith(S)}),
        (consultations_api.router, {k: v for k, v in API_CASES.items() if k[1].startswith(C)}),
        (scans_pages.router, {k: v for k, v in PAGE_CASES.items() if "scans" in k[1]}),
        (consultations_pages.router, {k: v for k, v in PAGE_CASES.items() if "consultations" in k[1]}),
        (search_api.router, {k: v for k, v in API_CASES.items() if k[1].startswith(Q)}),
        (search_pages.router, {k: v for k, v in PAGE_CASES.items() if k[1].startswith("/documents/search")}),
    )


def test_document_api_permission_matrix(client: TestClient, cast: Cast, world: World) -> None:
    check_api(client, cast, world, API_CASES, secrets=identities(cast.other_patient))


def test_document_page_permission_matrix(app: Any, cast: Cast, world: World) -> None:
    check_pages(app, cast, world, PAGE_CASES, secrets=identities(cast.other_patient))
