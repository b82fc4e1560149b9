"""The search API and pages: hits with highlighted snippets and links, scopes, errors, escaping, the
document viewer with highlights (in the text and in the PDF itself), and who may use them."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core.audit import AuditEntry
from caresync.records import service as records
from tests.conftest import API, Cast, web_login
from tests.documents import scans
from tests.documents.test_search_service import principal_of

Tx = Callable[[], AbstractContextManager[Session]]
S = f"{API}/documents/search"


def note(tx: Tx, cast: Cast, text: str, category: str = "note") -> uuid.UUID:
    return upload(tx, cast, text.encode(), category)


def upload(tx: Tx, cast: Cast, data: bytes, category: str = "note") -> uuid.UUID:
    with tx() as s:
        principal = principal_of(cast["doctor"])
        request = records.Upload(cast["patient"].patient_id, category, "Clinic <letter>", date(2025, 2, 1))
        record = records.upload(s, principal, request, data)
        return record.id


def test_the_api_returns_highlighted_hits_with_links(
    client: TestClient, cast: Cast, sign_in: Any, tx: Tx
) -> None:
    record_id = note(tx, cast, "Chest pain on exertion <script>alert(1)</script> and SOB at night.")
    negated = note(tx, cast, "Follow-up visit: she denies chest pain.")
    doctor = sign_in(cast["doctor"])
    body = client.get(
        S, params={"q": "chest pain", "patient_id": str(cast["patient"].patient_id)}, headers=doctor
    )
    assert body.status_code == 200, body.text
    out = body.json()
    assert out["patient_id"] == str(cast["patient"].patient_id)
    assert out["patients"] == 1
    first, second = out["items"]
    assert first["document_id"] == str(record_id)
    assert second["document_id"] == str(negated)
    assert "<mark>Chest pain</mark>" in first["snippet"]
    assert "<script>" not in first["snippet"]
    assert "&lt;script&gt;" in first["snippet"]
    assert first["concepts"] == ["chest pain"]
    assert not first["negated"]
    assert second["negated"]
    assert first["title"] == "Clinic <letter>"
    assert first["category_label"] == "Clinical note"
    assert first["date"] == "2025-02-01"
    assert first["url"] == f"/documents/search/open/{record_id}?q=chest+pain"
    assert first["patient_name"]
    mine = client.get(S, params={"q": "chest pain"}, headers=doctor).json()  # all my patients
    assert mine["patient_id"] is None
    assert len(mine["items"]) == 2
    assert client.get(S, params={"q": "???"}, headers=doctor).status_code == 422
    assert client.get(S, params={"q": "x", "limit": 500}, headers=doctor).status_code == 422
    other = {"q": "chest pain", "patient_id": str(cast.other_patient.id)}
    assert client.get(S, params=other, headers=doctor).status_code == 404
    assert client.get(S, params={"q": "chest pain"}, headers=sign_in(cast["pharmacist"])).status_code == 403
    assert client.get(S, params={"q": "chest pain"}).status_code == 401
    own = client.get(S, params={"q": "chest pain"}, headers=sign_in(cast["patient"])).json()
    assert len(own["items"]) == 2  # a patient searches their own record


def test_the_search_page_scopes_highlights_and_pages(client: TestClient, cast: Cast, tx: Tx) -> None:
    for i in range(12):
        note(tx, cast, f"Visit {i}: shortness of breath when climbing stairs.")
    note(tx, cast, "Denies shortness of breath.")
    web_login(client, cast["nurse"])
    empty = client.get("/documents/search")
    assert empty.status_code == 200
    assert "Examples" in empty.text
    assert "all your patients" in empty.text
    page = client.get("/documents/search", params={"q": "dyspnoea"})
    assert page.status_code == 200
    assert page.text.count('data-testid="search-hit"') == 10
    assert "<mark>shortness of breath</mark>" in page.text
    assert 'rel="next"' in page.text
    last = client.get("/documents/search", params={"q": "dyspnoea", "offset": 10})
    assert last.text.count('data-testid="search-hit"') == 3
    assert "mentioned as absent" in last.text
    assert 'rel="prev"' in last.text
    patient_id = cast["patient"].patient_id
    scoped = client.get("/documents/search", params={"q": "dyspnoea", "patient_id": str(patient_id)})
    assert "search all my patients instead" in scoped.text
    none = client.get("/documents/search", params={"q": "xylophone"})
    assert "No documents found" in none.text
    bad = client.get("/documents/search", params={"q": "!!!"})
    assert bad.status_code == 422
    assert "at least one word" in bad.text
    assert (
        client.get("/documents/search", params={"patient_id": str(cast.other_patient.id)}).status_code == 404
    )


def test_the_viewer_shows_the_document_with_highlights(client: TestClient, cast: Cast, tx: Tx) -> None:
    record_id = note(tx, cast, "Night sweats <b>and</b> a productive cough for a month.")
    hidden = note(tx, cast, "Panic attacks with a cough.", "mental-health")
    web_login(client, cast["doctor"])
    page = client.get(f"/documents/search/open/{record_id}", params={"q": "cough"})
    assert page.status_code == 200
    assert "<mark>productive cough</mark>" in page.text
    assert "&lt;b&gt;and&lt;/b&gt;" in page.text
    assert f'src="/api/v1/records/{record_id}/file"' in page.text
    assert client.get(f"/documents/search/open/{hidden}", params={"q": "cough"}).status_code == 404
    assert client.get(f"/documents/search/open/{uuid.uuid4()}").status_code == 404
    web_login(client, cast["pharmacist"])
    assert client.get(f"/documents/search/open/{record_id}").status_code == 404
    assert client.get("/documents/search").status_code == 403


def highlights(data: bytes) -> list[list[str]]:
    """Each page's Highlight annotations, by the text they mark."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [
            [str(a.Contents) for a in page.obj.get("/Annots", []) if a.Subtype == "/Highlight"]
            for page in pdf.pages
        ]


def test_the_viewer_shows_the_pdf_with_the_hits_highlighted_in_it(
    client: TestClient, cast: Cast, tx: Tx, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pdf = scans.digital_pdf([scans.LETTERS[0], scans.LETTERS[1]], tmp_path / "letter.pdf").read_bytes()
    record_id = upload(tx, cast, pdf, "document")
    web_login(client, cast["doctor"])
    page = client.get(f"/documents/search/open/{record_id}", params={"q": "furosemide"})
    file_url = f"/documents/search/open/{record_id}/file?q=furosemide"
    assert f'src="{file_url}#page=2"' in page.text  # opened at the first hit's page
    assert "1 in the PDF from page 2" in page.text
    shown = client.get(file_url)
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "application/pdf"
    assert shown.headers["x-frame-options"] == "SAMEORIGIN"
    assert highlights(shown.content) == [[], ["Furosemide"]]
    assert client.get(f"{API}/records/{record_id}/file").content == pdf  # the stored file is untouched
    with tx() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == str(record_id))).all()
    assert actions.count("document.search.view") == 1
    # a synonym is highlighted where the text says it; a blank or unusable query shows the plain PDF
    assert highlights(client.get(file_url.replace("furosemide", "dyspnoea")).content)[0] == [
        "shortness of breath"
    ]
    assert client.get(file_url.replace("furosemide", "%21%21%21")).content == pdf
    assert client.get(f"/documents/search/open/{record_id}/file").content == pdf
    # a damaged PDF is shown as stored, with a warning; the viewer opens it without a page
    damaged = upload(tx, cast, b"%PDF-1.7\nnot really a PDF\n")
    with caplog.at_level(logging.WARNING, logger="caresync.documents.search.pdf_highlight"):
        plain = client.get(f"/documents/search/open/{damaged}/file", params={"q": "chest pain"})
    assert plain.content == b"%PDF-1.7\nnot really a PDF\n"
    assert f"record {damaged}" in caplog.text
    viewer = client.get(f"/documents/search/open/{damaged}", params={"q": "chest pain"})
    assert f'src="/documents/search/open/{damaged}/file?q=chest+pain"' in viewer.text
    # the same rule as the viewer: no access, no file
    web_login(client, cast["pharmacist"])
    assert client.get(file_url).status_code == 404
    client.cookies.clear()
    assert client.get(file_url, follow_redirects=False).status_code in (302, 303)
