"""Document search as people use it: who may search whose documents (care team, consent per category,
break-glass, strangers, roles without patient data), "my patients" mixing patients who open different
categories, the audit trail, and keeping the index in step with the records (text files, PDFs with a text
layer, corrections, scans)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, NotFound, ValidationFailed
from caresync.db import utcnow
from caresync.documents.models import DocumentScan, ScanPage
from caresync.documents.search import service
from caresync.documents.search.embeddings import CachingEmbedder, default_embedder
from caresync.documents.search.models import SearchDocument
from caresync.identity.models import BreakGlassGrant
from caresync.records import service as records
from caresync.records.consent import read_scope
from caresync.records.models import HealthRecord, RecordConsent
from tests.conftest import Factory, Person
from tests.documents import scans

Tx = Callable[[], AbstractContextManager[Session]]
CHEST = "Seen in clinic with chest pain and shortness of breath at night for two weeks."
CHEST_ANXIOUS = "Low mood for months; chest pain when anxious, no shortness of breath."
DENIES = "Routine review. Denies chest pain. Mild dry cough since the winter."
UNRELATED = "Sprained left ankle after a fall, swelling settling with rest and ice."


@pytest.fixture(scope="module")
def embedder() -> CachingEmbedder:
    """The real MiniLM model, loaded once, remembering vectors."""
    return CachingEmbedder(default_embedder())


def principal_of(person: Person) -> Principal:
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
        patient_id=person.patient.id if person.patient else None,
    )


def add_record(
    tx: Tx,
    author: Person,
    patient_id: uuid.UUID,
    text: str,
    category: str = "note",
    *,
    data: bytes | None = None,
    media_type: str = "text/plain",
    supersedes: uuid.UUID | None = None,
) -> uuid.UUID:
    """Upload a record as ``author`` (the upload submits its indexing job, which runs on commit)."""
    with tx() as s:
        principal = principal_of(author)
        request = records.Upload(
            patient_id, category, f"{category} record", date(2025, 3, 1), supersedes_id=supersedes
        )
        record = records.upload(s, principal, request, data if data is not None else text.encode())
        assert record.media_type == media_type
        return record.id


def consent(tx: Tx, patient_id: uuid.UUID, grantee: Person, categories: list[str]) -> None:
    with tx() as s:
        s.add(
            RecordConsent(
                patient_id=patient_id,
                grantee_user_id=grantee.id,
                categories=categories,
                created_by=grantee.id,
            )
        )


@dataclass
class World:
    doctor: Person  # care team of ann and bob (standard policy: no mental health); consent for cy's labs
    nurse: Person  # care team of ann
    consented: Person  # another hospital's doctor: ann consented to mental health only
    stranger: Person
    pharmacist: Person
    ann: Person
    bob: uuid.UUID
    cy: uuid.UUID
    docs: dict[str, uuid.UUID]


@pytest.fixture
def world(make: Factory, tx: Tx) -> World:
    doctor, nurse, pharmacist = make.staff("doctor"), make.staff("nurse"), make.staff("pharmacist")
    elsewhere = make.org()
    consented, stranger, cy_doctor = make.staff("doctor", elsewhere), make.staff("doctor", elsewhere), None
    ann, bob, cy = make.patient_user(), make.patient(), make.patient()
    make.care(doctor, ann)
    make.care(nurse, ann)
    make.care(doctor, bob)
    cy_doctor = make.staff("doctor", elsewhere)
    make.care(cy_doctor, cy)
    docs = {
        "ann-note": add_record(tx, doctor, ann.patient_id, CHEST),
        "ann-mental": add_record(tx, doctor, ann.patient_id, CHEST_ANXIOUS, "mental-health"),
        "ann-ankle": add_record(tx, nurse, ann.patient_id, UNRELATED),
        "bob-lab": add_record(tx, doctor, bob.id, DENIES, "lab"),
        "cy-note": add_record(tx, cy_doctor, cy.id, CHEST),
        "cy-lab": add_record(tx, cy_doctor, cy.id, "Troponin normal; chest pain settled.", "lab"),
    }
    consent(tx, ann.patient_id, consented, ["mental-health"])
    consent(tx, cy.id, doctor, ["lab"])
    return World(doctor, nurse, consented, stranger, pharmacist, ann, bob.id, cy.id, docs)


def found(tx: Tx, who: Person, query: str = "chest pain", **kwargs: Any) -> list[uuid.UUID]:
    with tx() as s:
        return [h.document_id for h in service.search(s, principal_of(who), query, **kwargs).hits]


def named(world: World, ids: list[uuid.UUID]) -> list[str]:
    names = {v: k for k, v in world.docs.items()}
    return [names[i] for i in ids]


def test_one_patients_search_follows_the_consent_rule(world: World, tx: Tx) -> None:
    ann = world.ann.patient_id
    assert named(world, found(tx, world.doctor, patient_id=ann)) == ["ann-note"]  # no mental health
    assert named(world, found(tx, world.nurse, patient_id=ann)) == ["ann-note"]
    assert named(world, found(tx, world.consented, patient_id=ann)) == ["ann-mental"]  # consent only
    assert set(named(world, found(tx, world.ann))) == {"ann-note", "ann-mental"}  # their own, everything
    with pytest.raises(NotFound):
        found(tx, world.stranger, patient_id=ann)
    with pytest.raises(NotFound):
        found(tx, world.ann, patient_id=world.bob)  # a patient searches only their own record
    with pytest.raises(Forbidden):
        found(tx, world.pharmacist, patient_id=ann)


def test_my_patients_mixes_patients_who_open_different_categories(world: World, tx: Tx) -> None:
    hits = named(world, found(tx, world.doctor))
    # ann and bob through the care team (no mental health), cy's labs through her consent (not her notes);
    # bob's lab only denies chest pain: it comes last
    assert set(hits) == {"ann-note", "cy-lab", "bob-lab"}
    assert hits[-1] == "bob-lab"
    assert named(world, found(tx, world.consented)) == ["ann-mental"]
    assert found(tx, world.stranger) == []
    with tx() as s:
        results = service.search(s, principal_of(world.doctor), "chest pain")
        assert results.patients == 3
        assert [h.negated for h in results.hits][-1] is True
    # paging through the merged hits
    first = found(tx, world.doctor, limit=2)
    rest = found(tx, world.doctor, limit=2, offset=2)
    assert first + rest == found(tx, world.doctor)
    with pytest.raises(ValidationFailed):
        found(tx, world.doctor, limit=20, offset=90)


def test_bulk_scopes_agree_with_the_consent_rule(world: World, tx: Tx, make: Factory) -> None:
    with tx() as s:
        s.add(
            BreakGlassGrant(
                patient_id=world.cy,
                user_id=world.nurse.id,
                reason="collapsed in the waiting room",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    for person in (world.doctor, world.nurse, world.consented, world.stranger):
        with tx() as s:
            principal = principal_of(person)
            scopes = service.patient_scopes(s, principal)
            for patient_id, scope in scopes.items():
                assert read_scope(s, principal, patient_id) == scope
            for patient_id in {world.ann.patient_id, world.bob, world.cy} - scopes.keys():
                with pytest.raises(NotFound):
                    read_scope(s, principal, patient_id)
    with tx() as s:
        assert service.patient_scopes(s, principal_of(world.nurse))[world.cy].break_glass


def test_every_search_is_audited_without_its_text(world: World, tx: Tx) -> None:
    with tx() as s:
        s.add(
            BreakGlassGrant(
                patient_id=world.cy,
                user_id=world.doctor.id,
                reason="unconscious on arrival",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    with tx() as s:
        since = s.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
    hits = named(world, found(tx, world.doctor, "chest pain at night"))
    assert "cy-note" in hits  # break-glass opens everything of cy's
    with tx() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.seq > since).order_by(AuditEntry.seq)).all()
        searches = [e for e in entries if e.action == "document.search"]
        shown = {e.patient_id: e for e in entries if e.action == "document.search.read"}
    assert len(searches) == 1
    assert json.loads(searches[0].detail)["query_chars"] == len("chest pain at night")
    assert "chest" not in str(searches[0].detail)
    assert shown.keys() == {world.ann.patient_id, world.bob, world.cy}
    assert shown[world.cy].flagged
    assert not shown[world.bob].flagged
    assert str(world.docs["cy-note"]) in json.loads(shown[world.cy].detail)["documents"]


def test_records_with_text_are_indexed_and_corrections_replace_them(
    make: Factory, tx: Tx, tmp_path: Any
) -> None:
    doctor, patient = make.staff("doctor"), make.patient()
    make.care(doctor, patient)
    pdf = scans.digital_pdf([scans.LETTERS[0]], tmp_path / "letter.pdf").read_bytes()
    letter = add_record(tx, doctor, patient.id, "", "document", data=pdf, media_type="application/pdf")
    note = add_record(tx, doctor, patient.id, "Wheeze and fever for three days.")
    image = add_record(tx, doctor, patient.id, "", "lab", data=_png(), media_type="image/png")
    with tx() as s:
        indexed = {d.document_id: d for d in s.scalars(select(SearchDocument))}
    assert letter in indexed
    assert note in indexed
    assert image not in indexed
    assert "ejection fraction" in indexed[letter].text.lower()  # the PDF's text layer
    assert found(tx, doctor, "breathless at night", patient_id=patient.id)[0] == letter  # a synonym
    corrected = add_record(tx, doctor, patient.id, "Wheeze and fever for four days.", supersedes=note)
    with tx() as s:
        ids = set(s.scalars(select(SearchDocument.document_id)))
    assert corrected in ids
    assert note not in ids
    # a rebuild indexes the same current versions
    with tx() as s:
        assert service.reindex(s, patient_ids=[patient.id]) == 2
        assert set(s.scalars(select(SearchDocument.document_id))) == {letter, corrected}


def test_a_scans_ocr_text_is_indexed_with_its_record(
    make: Factory, tx: Tx, embedder: CachingEmbedder
) -> None:
    doctor, patient = make.staff("doctor"), make.patient()
    make.care(doctor, patient)
    with tx() as s:
        record = records.upload(
            s,
            principal_of(doctor),
            records.Upload(patient.id, "document", "Scanned letter", date(2025, 1, 5)),
            b"%PDF-1.4 stand-in",
        )
        scan = DocumentScan(
            patient_id=patient.id,
            organisation_id=doctor.user.organisation_id,
            uploaded_by=doctor.id,
            title="Scanned letter",
            category="document",
            filename="letter.pdf",
            media_type="application/pdf",
            original_sha256=record.file_sha256,
            record_id=record.id,
            pages=[ScanPage(number=1, text=CHEST, confidence=0.9, needs_review=False)],
        )
        s.add(scan)
        s.flush()
        assert service.index_scan(s, scan, embedder=embedder)
        # the record's own indexing job then finds it indexed already and leaves it
        assert not service.index_pending(s, record.id, embedder=embedder)
    assert found(tx, doctor, "dyspnoea", patient_id=patient.id) == [record.id]


def test_opening_a_hit_highlights_the_query_under_the_same_rule(world: World, tx: Tx) -> None:
    with tx() as s:
        opened = service.open_document(
            s, principal_of(world.doctor), world.docs["ann-note"], "chest pain, SOB"
        )
    assert "<mark>chest pain</mark>" in opened.text_html
    assert "<mark>shortness of breath</mark>" in opened.text_html
    assert opened.indexed
    assert opened.marks == 2
    with tx() as s, pytest.raises(NotFound):
        service.open_document(s, principal_of(world.doctor), world.docs["ann-mental"], "chest pain")
    with tx() as s:
        actions = set(
            s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == str(world.docs["ann-note"])))
        )
    assert "document.search.open" in actions


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_record_kind_decides_what_is_indexed(make: Factory, tx: Tx) -> None:
    doctor, patient = make.staff("doctor"), make.patient()
    make.care(doctor, patient)
    with tx() as s:
        record = records.upload(
            s,
            principal_of(doctor),
            records.Upload(patient.id, "note", "Note", date(2025, 1, 5)),
            b"%PDF-1.7\nnot really a PDF\n",
        )
        assert service.record_text(record) == ""  # damaged: nothing to index, no error
        assert s.get(HealthRecord, record.id) is not None
