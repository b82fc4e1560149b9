"""The document AI demo data: scanned letters and a recorded consultation, loaded for the cast's doctor and
nurse, filed and processed as users' uploads would be (real OCR of the one scanned page, real
transcription), and the same for the same seed."""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.db import utcnow
from caresync.documents import demo
from caresync.documents.models import Consultation, DocumentScan
from caresync.identity.models import Patient, User
from caresync.records.models import HealthRecord
from tests.conftest import Cast, Factory

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None or shutil.which("espeak-ng") is None,
    reason="needs Debian tesseract-ocr and espeak-ng",
)

Tx = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class People:
    """The demo's cast: a doctor, a nurse and patients (in the demo's order)."""

    doctor: uuid.UUID
    nurse: uuid.UUID
    patients: tuple[uuid.UUID, ...]


@pytest.fixture
def people(cast: Cast, make: Factory) -> People:
    """The cast's doctor and nurse, and three patients in the doctor's care: a child (left out: the
    letters are about adults), the cast patient (the nurse's too) and another adult."""
    today = date.today()
    child = make.patient(birth_date=today.replace(year=today.year - 9, day=min(today.day, 28)))
    adult = make.patient(given_name="Rui", family_name="Moreira", sex="male", birth_date=date(1958, 2, 11))
    for patient in (child, adult):
        make.care(cast["doctor"], patient)
    return People(cast["doctor"].id, cast["nurse"].id, (child.id, cast["patient"].patient_id, adult.id))


def load(session: Session, people: People, seed: int = 7) -> demo.DocumentsDemo:
    """:func:`demo.load` with the people read in ``session``."""
    return demo.load(
        session,
        random.Random(seed),
        utcnow(),
        doctor=session.get_one(User, people.doctor),
        nurse=session.get_one(User, people.nurse),
        patients=[session.get_one(Patient, patient_id) for patient_id in people.patients],
    )


def test_the_demo_files_scanned_letters_and_a_transcribed_consultation(tx: Tx, people: People) -> None:
    with tx() as session:
        loaded = load(session, people)
    assert (len(loaded.scans), len(loaded.consultations)) == (3, 1)
    demo.process(loaded)
    _, patient, adult = people.patients
    with tx() as session:
        scans = [session.get_one(DocumentScan, scan_id) for scan_id in loaded.scans]
        # the scanned cardiology letter is really OCRed; the born-digital ones keep their text layer; the
        # nurse uploads the letter of the patient in their care
        assert [(s.patient_id, s.category, s.uploaded_by, s.ocr_skipped) for s in scans] == [
            (patient, "document", people.doctor, False),
            (adult, "discharge", people.doctor, True),
            (patient, "document", people.nurse, True),
        ]
        for scan in scans:
            assert scan.status == "done", scan.error
            assert scan.page_count == scan.pages_done == len(scan.pages) == 1
            record = session.get_one(HealthRecord, scan.record_id)
            assert (record.patient_id, record.category, record.title) == (
                scan.patient_id,
                scan.category,
                scan.title,
            )
        scanned = scans[0].pages[0]
        assert "ejection fraction" in scanned.text.lower()
        assert scanned.confidence is not None
        assert scanned.confidence > 0.8
        assert not scanned.needs_review
        assert "Rui Moreira" in scans[1].pages[0].text

        consultation = session.get_one(Consultation, loaded.consultations[0])
        assert consultation.status == "ready", consultation.error
        assert (consultation.patient_id, consultation.clinician_id) == (patient, people.doctor)
        assert sorted(consultation.speakers.values()) == ["doctor", "patient"]
        said = " ".join(s.text for s in consultation.segments).lower()
        assert "short of breath" in said
        assert "blood test" in said
        note = consultation.note
        assert note is not None
        assert (note.status, note.record_id) == ("draft", None)  # awaiting the doctor's approval
        draft: dict[str, Any] = note.draft
        assert {s["section"] for s in draft["sentences"]} >= {"subjective", "objective", "plan"}
        symptoms = {f["concept"]: f["negated"] for f in draft["facts"]["symptoms"]}
        assert (symptoms.get("chest pain"), symptoms.get("shortness of breath")) == (True, False)


def test_the_same_seed_gives_the_same_demo_documents(db: Session, people: People) -> None:
    def uploads() -> list[tuple[object, ...]]:
        loaded = load(db, people, seed=11)
        scans = db.scalars(select(DocumentScan).where(DocumentScan.id.in_(loaded.scans))).all()
        recording = db.get_one(Consultation, loaded.consultations[0])
        files = sorted((s.patient_id, s.title, s.uploaded_by, s.original_sha256) for s in scans)
        return [*files, (recording.patient_id, recording.audio_sha256)]

    assert uploads() == uploads()
