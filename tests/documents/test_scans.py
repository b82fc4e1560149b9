"""Scanned documents end to end: upload over the API and the web form, the OCR job (real OCRmyPDF and
Tesseract, on generated scans), the searchable PDF filed into the patient's record, the inbox, page review,
bad files, and who may see what (care relationship, consent for the category)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.documents.models import DocumentScan
from caresync.documents.ocr import engine
from caresync.documents.ocr.engine import OcrResult
from caresync.records.models import HealthRecord
from tests.conftest import API, Cast, web_login
from tests.documents import scans
from tests.pdftext import pdf_text

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs Debian tesseract-ocr")
S = f"{API}/documents/scans"


@pytest.fixture(scope="module", autouse=True)
def _ocr_once_per_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The OCR job reads each distinct file once per module (seconds per page; the engine itself is tested
    in test_ocr.py): later jobs on the same bytes get a copy of the first result. Everything around the
    engine (storage, job, record, pages, permissions) runs for real every time."""
    cache_dir = tmp_path_factory.mktemp("ocr-cache")
    results: dict[str, OcrResult] = {}
    real = engine.ocr_document

    def cached(source: Path, content_type: str, output: Path, **kwargs: Any) -> OcrResult:
        key = hashlib.sha256(source.read_bytes()).hexdigest()
        if key not in results:
            results[key] = real(source, content_type, cache_dir / f"{key}.pdf", **kwargs)
        progress = kwargs.get("progress")
        for page in results[key].pages:
            if progress:
                progress(page.number, len(results[key].pages))
        shutil.copyfile(results[key].output, output)
        return dataclasses.replace(results[key], output=output)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "ocr_document", cached)
        yield


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One tilted, noisy scanned page of a cardiology letter, as a PDF of its image."""
    folder = tmp_path_factory.mktemp("scans")
    letter = scans.LETTERS[0]  # a page as tall as its text: half the OCR time of a whole A4 page
    page = scans.render_page(letter, seed=3, size=scans.letter_sheet(letter))
    return scans.save_pdf([page], folder / "letter.pdf").read_bytes()


@pytest.fixture(scope="module")
def digital_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A born-digital PDF: it has a text layer already."""
    return scans.digital_pdf([scans.LETTERS[2]], tmp_path_factory.mktemp("digital") / "d.pdf").read_bytes()


def upload(
    client: TestClient, headers: dict[str, str], patient_id: Any, content: bytes, **fields: str
) -> Any:
    form = {"patient_id": str(patient_id), "title": "Cardiology letter", **fields}
    return client.post(
        S, data=form, files={"file": ("letter.pdf", content, "application/pdf")}, headers=headers
    )


def test_a_scan_is_read_and_filed_as_a_searchable_pdf_in_the_record(
    client: TestClient, cast: Cast, sign_in: Any, scanned_pdf: bytes, tx: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    response = upload(client, doctor, cast["patient"].patient_id, scanned_pdf)
    assert response.status_code == 202, response.text
    scan = client.get(f"{S}/{response.json()['id']}", headers=doctor).json()
    assert scan["status"] == "done", scan
    assert not scan["ocr_skipped"]
    assert scan["page_count"] == scan["pages_done"] == 1
    page = scan["pages"][0]
    assert "ejection fraction" in page["text"].lower()
    assert 0.5 < page["confidence"] <= 1
    # the searchable PDF is a signed record of the patient's, and its text layer has the letter's words
    record = client.get(f"{API}/records/{scan['record_id']}", headers=doctor).json()
    assert record["category"] == "document"
    assert record["title"] == "Cardiology letter"
    pdf = client.get(f"{S}/{scan['id']}/pdf", headers=doctor)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert "atrial fibrillation" in pdf_text(pdf.content).lower()
    assert client.get(f"{S}/{scan['id']}/original", headers=doctor).content == scanned_pdf
    with tx() as session:
        actions = set(session.execute(select(AuditEntry.action)).scalars())
        assert session.get(HealthRecord, uuid.UUID(scan["record_id"])).uploaded_by == cast["doctor"].id
    assert {"document.scan.upload", "document.scan.ocr", "document.scan.read", "record.create"} <= actions


def test_an_already_searchable_pdf_keeps_its_text_layer(
    client: TestClient, cast: Cast, sign_in: Any, digital_pdf: bytes
) -> None:
    doctor = sign_in(cast["doctor"])
    scan_id = upload(client, doctor, cast["patient"].patient_id, digital_pdf).json()["id"]
    scan = client.get(f"{S}/{scan_id}", headers=doctor).json()
    assert scan["status"] == "done"
    assert scan["ocr_skipped"] is True
    assert "community acquired pneumonia" in scan["pages"][0]["text"].lower()
    assert client.get(f"{S}/{scan_id}/pdf", headers=doctor).content == digital_pdf


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.7\nthis is not really a PDF\n", "damaged"),
        (b"hello, I am a text file", "accepted"),
        (b"", "empty"),
    ],
    ids=["corrupt-pdf", "not-a-scan", "empty"],
)
def test_a_bad_file_gets_a_clear_4xx(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any, content: bytes, message: str
) -> None:
    response = upload(client, sign_in(cast["doctor"]), cast["patient"].patient_id, content)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["detail"].lower()
    with tx() as session:
        assert session.execute(select(DocumentScan)).first() is None  # nothing half-written


def test_who_may_upload_and_read_a_scan(
    client: TestClient, cast: Cast, sign_in: Any, digital_pdf: bytes
) -> None:
    nurse, pharmacist = sign_in(cast["nurse"]), sign_in(cast["pharmacist"])
    assert upload(client, nurse, cast.other_patient.id, digital_pdf).status_code == 404  # not in their care
    assert upload(client, pharmacist, cast["patient"].patient_id, digital_pdf).status_code in (403, 404)
    scan_id = upload(client, nurse, cast["patient"].patient_id, digital_pdf).json()["id"]
    assert client.get(f"{S}/{scan_id}", headers=sign_in(cast["doctor"])).status_code == 200  # same care team
    assert client.get(f"{S}/{scan_id}", headers=sign_in(cast["patient"])).status_code == 200  # their own
    assert client.get(f"{S}/{scan_id}", headers=pharmacist).status_code == 404
    assert client.get(f"{S}/{scan_id}").status_code == 401


def test_a_sensitive_category_needs_the_patients_consent(
    client: TestClient, cast: Cast, sign_in: Any, digital_pdf: bytes
) -> None:
    scan_id = upload(
        client, sign_in(cast["doctor"]), cast["patient"].patient_id, digital_pdf, category="mental-health"
    ).json()["id"]
    assert client.get(f"{S}/{scan_id}", headers=sign_in(cast["nurse"])).status_code == 404
    assert client.get(f"{S}/{scan_id}/pdf", headers=sign_in(cast["nurse"])).status_code == 404


def test_the_inbox_lists_my_patients_scans_and_filters_by_status(
    client: TestClient, cast: Cast, make: Any, sign_in: Any, digital_pdf: bytes
) -> None:
    doctor = sign_in(cast["doctor"])
    upload(client, doctor, cast["patient"].patient_id, digital_pdf)
    mine = client.get(S, headers=doctor).json()
    assert mine["total"] == 1
    assert mine["items"][0]["title"] == "Cardiology letter"
    assert client.get(S, params={"status": "failed"}, headers=doctor).json()["total"] == 0
    assert client.get(S, params={"status": "nonsense"}, headers=doctor).status_code == 422
    stranger = sign_in(make.staff("doctor", make.org()))
    assert client.get(S, headers=stranger).json()["total"] == 0


def test_the_web_pages_upload_follow_and_review_a_scan(
    client: TestClient, cast: Cast, scanned_pdf: bytes, tx: Any
) -> None:
    csrf = web_login(client, cast["doctor"])
    patient_id = cast["patient"].patient_id
    assert "Scan a document" in client.get(f"/patients/{patient_id}").text
    form = client.get(f"/patients/{patient_id}/scans/new")
    assert form.status_code == 200
    assert 'name="file"' in form.text
    missing = client.post(
        f"/patients/{patient_id}/scans/new",
        data={"csrf_token": csrf, "title": "Letter", "category": "document"},
    )
    assert missing.status_code == 422
    assert "Choose a file" in missing.text
    response = client.post(
        f"/patients/{patient_id}/scans/new",
        data={"csrf_token": csrf, "title": "Letter from cardiology", "category": "document"},
        files={"file": ("letter.pdf", scanned_pdf, "application/pdf")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Letter from cardiology" in page.text
    assert "Page 1" in page.text
    inbox = client.get("/documents/scans")
    assert "Letter from cardiology" in inbox.text
    assert "Done" in inbox.text
    scan_id = response.headers["location"].rsplit("/", 1)[-1]
    with tx() as session:  # make the page one that awaits review, then check it
        scan = session.get(DocumentScan, uuid.UUID(scan_id))
        scan.pages[0].needs_review = True
    assert "Mark as checked" in client.get(f"/documents/scans/{scan_id}").text
    reviewed = client.post(f"/documents/scans/{scan_id}/pages/1/review", data={"csrf_token": csrf})
    assert reviewed.status_code == 200
    assert "Checked by a person" in reviewed.text
