"""The records demo: multi-year histories that every verify, lab reports and letters as well-formed PDFs, an
ECG strip as a well-formed PNG, the care team's notes, tasks and threads, a consent, and determinism."""

from __future__ import annotations

import re
import struct
import zlib
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from caresync.core import storage
from caresync.core.auth import system_principal
from caresync.db import utcnow
from caresync.demo import DEMO_LOGINS, load_demo
from caresync.identity.models import Patient, User
from caresync.records import service
from caresync.records.demo_documents import ecg_strip, text_pdf
from caresync.records.models import (
    CareTask,
    ClinicalNote,
    HealthRecord,
    Message,
    MessageThread,
    RecordConsent,
)
from caresync.scheduling.models import Appointment

PATIENTS = 4


def check_pdf(data: bytes) -> int:
    """Assert the PDF's structure a reader relies on; returns its page count. ``startxref`` must point at
    the ``xref`` table, every entry at its ``N 0 obj``, every stream's ``/Length`` at ``endstream``."""
    assert data.startswith(b"%PDF-1.")
    tail = re.search(rb"startxref\n(\d+)\n%%EOF\n$", data)
    assert tail is not None, "no startxref at the end"
    xref = int(tail.group(1))
    assert data[xref : xref + 5] == b"xref\n"
    head = re.match(rb"xref\n0 (\d+)\n", data[xref:])
    assert head is not None
    size = int(head.group(1))
    table = data[xref + head.end() : xref + head.end() + 20 * size]
    entries = [table[i : i + 20] for i in range(0, len(table), 20)]
    assert entries[0] == b"0000000000 65535 f \n"
    for number, entry in enumerate(entries[1:], 1):
        assert re.fullmatch(rb"\d{10} 00000 n \n", entry), entry
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number), number
    assert b"trailer\n<< /Size %d /Root 1 0 R" % size in data
    for stream in re.finditer(rb"<< /Length (\d+) >>\nstream\n", data):
        end = stream.end() + int(stream.group(1))
        assert data[end:].startswith(b"\nendstream"), "a stream's /Length is wrong"
    pages = len(re.findall(rb"/Type /Page /Parent", data))
    assert re.search(rb"/Count %d\b" % pages, data)
    return pages


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the unfiltered pixel rows of an 8-bit indexed PNG, checking every chunk's CRC."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks[kind] = body
        position += 12 + length
    assert list(chunks)[-1] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 3)
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (width + 1)
    assert len(chunks[b"PLTE"]) % 3 == 0
    return width, height, raw


@pytest.mark.no_db
def test_text_pdf_paginates_and_keeps_every_offset_exact() -> None:
    lines: list[Any] = ["# Results", ("Test", "Result", "Units", "Reference range", "Flag")]
    lines += [("Haemoglobin A1c", "7.4", "%", "4.0 - 5.6", "H")] * 30
    lines += ["Tratamento com ação (µg/dL) — a long paragraph that wraps " * 6] * 8
    pdf = text_pdf("Relatório (teste)", lines, subtitle="Hospital", footer="Ana Silva", created=utcnow())
    assert check_pdf(pdf) == 2
    assert b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding" in pdf
    assert b"(Haemoglobin A1c) Tj" in pdf
    assert b"(H) Tj" in pdf
    assert "Tratamento com ação (µg/dL)".encode("cp1252").replace(b"(", b"\\(").replace(b")", b"\\)") in pdf
    assert b"(Page 2 of 2) Tj" in pdf or b"(Ana Silva   Page 2 of 2) Tj" in pdf
    assert check_pdf(text_pdf("Short", ["one line"])) == 1


@pytest.mark.no_db
def test_ecg_strips_are_valid_pngs_with_a_trace() -> None:
    sinus, af = ecg_strip("sinus", 72), ecg_strip("af", 105)
    assert sinus != af
    assert storage.sniff(sinus) == "image/png"
    for data in (sinus, af):
        width, height, raw = png_pixels(data)
        assert (width, height) == (750, 200)  # 6 s at 25 mm/s, 40 mm, 5 px per mm
        assert raw.count(3) > width  # the trace runs across the whole strip
        assert len(data) < 20_000


def _records_by_patient(s: Any) -> dict[str, list[HealthRecord]]:
    rows = s.execute(select(Patient.health_id, HealthRecord).join(Patient))
    grouped: dict[str, list[HealthRecord]] = defaultdict(list)
    for health_id, record in rows:
        grouped[health_id].append(record)
    return grouped


def test_demo_histories_span_years_verify_and_hold_valid_files(tx: Any) -> None:
    load_demo(patients=PATIENTS, seed=7, documents=False, imaging=False)
    with tx() as s:
        histories = _records_by_patient(s)
        assert len(histories) == PATIENTS
        spans = sorted(
            (max(r.recorded_on for r in rs) - min(r.recorded_on for r in rs)).days
            for rs in histories.values()
        )
        assert spans[-1] >= 3 * 365, spans
        assert spans[len(spans) // 2] >= 365, spans
        records = [r for rs in histories.values() for r in rs]
        categories = {r.category for r in records}
        assert {"diagnosis", "lab", "vitals", "medication", "mental-health", "discharge"} <= categories
        # a healthy adult's years can hold check-ups only (vital signs and labs): two categories is the floor
        # for everyone (a floor of three failed on some days, the ages and windows moving with the date)
        assert all(len({r.category for r in rs}) >= 2 for rs in histories.values())
        assert all(r.recorded_on <= date.today() for r in records)

        system = system_principal("test")
        for record in records:
            assert service.verify(s, system, record.id)[1].ok, record.title
        files = {r.file_sha256: (r.media_type, storage.get(r.file_sha256)) for r in records}
        pdfs = [data for media, data in files.values() if media == "application/pdf"]
        assert len(pdfs) >= 5
        for data in pdfs:
            check_pdf(data)
        assert any(b"(Clinical Pathology Report) Tj" in d for d in pdfs)

        vitals = [r for r in records if r.category == "vitals"]
        assert all(r.measurements and "heart_rate" in r.measurements for r in vitals)
        assert any(r.supersedes_id is not None for r in vitals)  # the corrected weight
        labs = [r for r in records if r.category == "lab"]
        assert {r.title.split(": ")[0] for r in labs} == {"Lab results"}
        diagnoses = [files[r.file_sha256][1].decode() for r in records if r.category == "diagnosis"]
        assert all(re.search(r"Diagnosis: [A-Z]\d\d(\.\d+)? ", text) for text in diagnoses)  # ICD-10 codes

        linked = [r for r in records if r.appointment_id is not None]
        assert linked
        for record in linked:
            appointment = s.get(Appointment, record.appointment_id)
            assert appointment is not None
            assert appointment.patient_id == record.patient_id
        uploaders = {s.get(User, r.uploaded_by).role for r in records}  # type: ignore[union-attr]
        assert uploaders == {"doctor", "nurse", "patient"}


def test_demo_care_team_work_notes_tasks_threads_and_consent(tx: Any) -> None:
    load_demo(patients=PATIENTS, seed=7, documents=False, imaging=False)
    emails = dict(DEMO_LOGINS)
    today = date.today()
    with tx() as s:
        doctor = s.execute(select(User).where(User.email == emails["doctor"])).scalar_one()
        nurse = s.execute(select(User).where(User.email == emails["nurse"])).scalar_one()
        patient = s.execute(select(Patient).where(Patient.email == emails["patient"])).scalar_one()
        notes = s.execute(select(ClinicalNote)).scalars().all()
        tasks = s.execute(select(CareTask)).scalars().all()
        threads = s.execute(select(MessageThread)).scalars().all()
        messages = s.execute(select(Message)).scalars().all()
        consents = s.execute(select(RecordConsent)).scalars().all()
        grantee = s.get(User, consents[0].grantee_user_id) if consents else None

    assert len({n.patient_id for n in notes}) == PATIENTS
    assert any(n.category == "mental-health" for n in notes)
    assert all(n.subjective and n.objective and n.assessment and n.plan for n in notes)
    assert {(t.created_by, t.assignee_id) for t in tasks} == {(doctor.id, nurse.id), (nurse.id, doctor.id)}
    open_tasks = [t for t in tasks if t.status == "open"]
    assert any(t.due_on < today for t in open_tasks)  # overdue
    assert any(t.due_on >= today for t in open_tasks)
    assert any(t.status == "done" and t.completed_by == t.assignee_id for t in tasks)

    assert {t.kind for t in threads} == {"patient", "team"}
    patient_thread = next(t for t in threads if t.kind == "patient")
    assert patient_thread.patient_id == patient.id
    for thread in threads:
        own = sorted((m for m in messages if m.thread_id == thread.id), key=lambda m: m.created_at)
        assert len(own) >= 3
        assert thread.last_message_at == own[-1].created_at

    assert len(consents) == 1
    consent = consents[0]
    assert (consent.patient_id, consent.categories, consent.revoked_at) == (patient.id, ["lab"], None)
    assert grantee is not None
    assert grantee.role == "doctor"
    assert grantee.organisation_id != doctor.organisation_id
    assert consent.expires_at is not None
    assert abs(consent.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=5)
