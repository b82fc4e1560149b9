"""Document AI demo data: scanned letters and a recorded consultation in the demo doctor's patients' charts.

Letters from another hospital about the first three adults among the demo doctor's patients go through
the scan upload like a user's: a cardiology clinic note as a tilted, noisy scanned slip (the one page the
demo really OCRs: seconds per page), a discharge summary and an orthopaedic letter as born-digital PDFs,
already searchable, which the OCR engine files unchanged. The demo nurse uploads the letters of a patient
they care for too, so their scan inbox is not empty. The first of these patients' follow-up consultation
with the demo doctor is spoken by two espeak-ng voices and stored as a recording, which is transcribed
into a transcript with speakers and a draft SOAP note awaiting the doctor's approval; without espeak-ng
(a Debian package) the consultation is left out with a warning, and without Tesseract so is the scanned
page.

Two steps, because the OCR and transcription jobs work in their own transactions: :func:`load` stores the
uploads inside the demo's transaction, and :func:`process`, after it commits, runs the jobs' bodies
directly (:func:`caresync.documents.scans.service.run_ocr`,
:func:`caresync.documents.consultations.service.run_transcription`) rather than through the job queue, so
the demo is complete when ``caresync demo`` returns, whether or not a worker runs.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core.errors import DomainError
from caresync.core.rbac import cared_for_patient_ids
from caresync.db import session_factory, transaction
from caresync.documents import samples
from caresync.documents.consultations import service as consultations
from caresync.documents.models import DocumentScan
from caresync.documents.scans import service as scans
from caresync.documents.search import service as search
from caresync.identity.models import Patient, User
from caresync.identity.service import acting_user

log = logging.getLogger(__name__)

SENDER = "St. Clare University Hospital"
ADULT_AGE = 18

# The first chosen patient's follow-up visit with the demo doctor: (role, text, pause after in seconds);
# about 30 s of speech.
CONSULTATION: samples.Lines = (
    ("doctor", "Good morning. How have you been since your visit to the hospital?", 0.7),
    ("patient", "I still get short of breath when I climb the stairs.", 0.7),
    ("doctor", "Do you have any chest pain?", 0.6),
    ("patient", "No, I have no chest pain. My legs are swollen in the evening.", 0.8),
    ("doctor", "Your legs are swollen, and I can hear some crackles in your lungs.", 0.6),
    ("doctor", "I think your heart failure is not well controlled.", 0.7),
    ("doctor", "I will double your water tablets, and we will do a blood test this week.", 0.7),
    ("patient", "Thank you. I will weigh myself at home.", 0.5),
)


@dataclass(frozen=True)
class _Letter:
    """A letter template: its title in the record, category, and text (``str.format`` fields below)."""

    title: str
    category: str
    text: str


# Fields: sender, date, admitted, doctor, name, title (Mr/Ms/Mx), family, born, health_id, allergies.
CARDIOLOGY = _Letter(
    "Cardiology clinic note",
    "document",
    """{sender}, Cardiology Clinic
{date}

Dear {doctor},
Re: {name}, born {born}, health number {health_id}

Seen today with three months of exertional chest pain and shortness of breath at night; {title} \
{family} sleeps on three pillows and has swollen ankles by the evening. No palpitations.

Pulse 88 and irregular, blood pressure 146/92 mmHg, fine bibasal crackles and pitting oedema. The ECG \
showed atrial fibrillation; echocardiography a left ventricular ejection fraction of 38 percent.

Impression: heart failure with reduced ejection fraction and new atrial fibrillation.
Plan: bisoprolol, ramipril, furosemide 40 mg each morning and apixaban; please check the renal \
function in one week. We will review in six weeks with a repeat echocardiogram.

Dr Samuel Okafor, Consultant Cardiologist""",
)
DISCHARGE = _Letter(
    "Discharge summary, community acquired pneumonia",
    "discharge",
    """Discharge summary, {sender}, General Medicine

Patient: {name}, born {born}, health number {health_id}
Admitted {admitted}, discharged {date}
Allergies: {allergies}

Presenting complaint: fever, productive cough and pleuritic chest pain for four days.
Diagnosis: community acquired pneumonia of the right lower lobe, CURB-65 score 1.

Treated with intravenous amoxicillin and oral clarithromycin, then oral antibiotics to complete seven \
days. The C-reactive protein fell from 212 to 38 mg/L and the fever settled on the third day.

Follow-up: chest radiograph in six weeks to confirm resolution. Dear {doctor}, please review in the \
clinic in two weeks.""",
)
ORTHOPAEDICS = _Letter(
    "Orthopaedic clinic letter",
    "document",
    """{sender}, Orthopaedics and Trauma
{date}

Dear {doctor},

Re: {name}, born {born}, health number {health_id}

{title} {family} attended with pain in the right knee for eight months, worse on stairs and after \
walking more than a kilometre, with morning stiffness lasting about twenty minutes. There was no injury. \
The patient denies fever, night pain and weight loss.

The knee has a small effusion, crepitus and medial joint line tenderness; the range of movement is \
0 to 110 degrees. Radiographs show medial compartment osteoarthritis with joint space narrowing.

We recommend physiotherapy with quadriceps strengthening, weight loss advice, and paracetamol or topical \
diclofenac gel for pain. Surgery is not indicated at present. Review in the clinic in six months.""",
)
TITLES = {"female": "Ms", "male": "Mr"}


@dataclass(frozen=True)
class DocumentsDemo:
    """What :func:`load` stored and :func:`process` completes."""

    scans: tuple[uuid.UUID, ...]
    consultations: tuple[uuid.UUID, ...]


NOTHING = DocumentsDemo((), ())  # a demo loaded without documents


def load(
    session: Session,
    rng: random.Random,
    now: datetime,
    *,
    doctor: User,
    nurse: User,
    patients: Sequence[Patient],
) -> DocumentsDemo:
    """Upload the letters and the recording for the first three adults among ``patients`` whom the demo
    ``doctor`` cares for (the ``nurse`` uploads those of a patient in their care as well); call after the
    care relationships are flushed, and :func:`process` the result once the transaction is committed."""
    today = now.date()
    in_care = _cared_for(session, doctor, patients)
    chosen = [p for p in in_care if _age(p, today) >= ADULT_AGE][:3]
    if not chosen:
        log.warning("The document demo is left out: the demo doctor cares for no adult patient.")
        return DocumentsDemo((), ())
    nurse_cares = {p.id for p in _cared_for(session, nurse, chosen)}
    uploaded: list[uuid.UUID] = []
    with tempfile.TemporaryDirectory(prefix="caresync-demo-") as folder:
        for number, letter in enumerate((CARDIOLOGY, DISCHARGE, ORTHOPAEDICS)):
            patient = chosen[number % len(chosen)]
            text = _fill(letter, rng, patient, doctor, today)
            scanned = letter is CARDIOLOGY
            if scanned and shutil.which("tesseract") is None:
                log.warning("The demo's scanned letter is left out: Tesseract OCR is not installed.")
                continue
            path = Path(folder) / f"letter-{number}.pdf"
            if scanned:
                tilt = rng.choice((-1, 1)) * rng.uniform(0.8, 2.0)
                page = samples.render_page(
                    text, seed=rng.getrandbits(32), tilt=tilt, size=samples.letter_sheet(text)
                )
                samples.save_pdf([page], path)
            else:
                samples.digital_pdf([text], path)
            uploader = nurse if patient.id in nurse_cares and not scanned else doctor
            request = scans.ScanUpload(patient.id, letter.title, letter.category, f"{letter.title}.pdf")
            uploaded.append(
                scans.upload(session, acting_user(session, uploader.id), request, path.read_bytes()).id
            )
        recorded = _record_consultation(session, doctor, chosen[0], Path(folder))
    return DocumentsDemo(tuple(uploaded), recorded)


def process(loaded: DocumentsDemo) -> float:
    """Run the OCR and transcription of what :func:`load` stored (committed), as their jobs would, index
    the whole records of the patients with letters for search (the demo's other records are not indexed:
    embedding them all takes minutes; ``search.reindex`` does it), and return the seconds taken. A document
    the engines reject is marked failed and logged, not raised: the rest of the demo stands."""
    started = time.perf_counter()
    for scan_id in loaded.scans:
        _run(scans.run_ocr, scan_id, lambda _done, _total: None)
    for consultation_id in loaded.consultations:
        _run(consultations.run_transcription, consultation_id, lambda _done, _step: None)
    with transaction(session_factory()) as session:  # the featured patients' whole records, searchable
        featured = session.scalars(select(DocumentScan.patient_id).where(DocumentScan.id.in_(loaded.scans)))
        search.reindex(session, patient_ids=sorted(set(featured)))
    return time.perf_counter() - started


def _run(
    body: Callable[[uuid.UUID, Callable[..., None]], object], item: uuid.UUID, progress: Callable[..., None]
) -> None:
    try:
        body(item, progress)
    except DomainError as exc:
        log.warning("Demo document %s could not be processed: %s", item, exc.detail)


def _record_consultation(
    session: Session, doctor: User, patient: Patient, folder: Path
) -> tuple[uuid.UUID, ...]:
    """The doctor's recorded follow-up with ``patient`` (none without espeak-ng)."""
    if samples.ESPEAK is None:
        log.warning("The demo's recorded consultation is left out: espeak-ng is not installed.")
        return ()
    dialogue = samples.synthesise(folder, CONSULTATION)
    consultation = consultations.record(
        session, acting_user(session, doctor.id), patient.id, dialogue.path.read_bytes()
    )
    return (consultation.id,)


def _cared_for(session: Session, user: User, patients: Sequence[Patient]) -> list[Patient]:
    """Those of ``patients`` whose care team ``user`` belongs to (as permissions count it), in order."""
    ids = set(session.scalars(cared_for_patient_ids(acting_user(session, user.id))))
    return [p for p in patients if p.id in ids]


def _age(patient: Patient, today: date) -> int:
    born = patient.birth_date
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _fill(letter: _Letter, rng: random.Random, patient: Patient, doctor: User, today: date) -> str:
    """The letter's text for ``patient``, dated a few days to weeks before ``today``."""
    sent = today - timedelta(days=rng.randint(3, 40))
    return letter.text.format(
        sender=SENDER,
        date=_long_date(sent),
        admitted=_long_date(sent - timedelta(days=rng.randint(3, 8))),
        doctor=doctor.full_name,
        name=f"{patient.given_name} {patient.family_name}",
        title=TITLES.get(patient.sex, "Mx"),
        family=patient.family_name,
        born=patient.birth_date.strftime("%d/%m/%Y"),
        health_id=patient.health_id,
        allergies=patient.allergies or "none known",
    )


def _long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"
