"""Browser: a doctor scans a paper letter for their patient, the OCR reads it (in-process jobs), a symptom
search finds it with highlighted snippets, and opening the hit shows the document with the terms marked."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.documents import scans
from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e
QUERY = "chest pain, breathless at night, ankle swelling"


def _demo_patient_id(new_page: Any, log_in: Any) -> str:
    """The demo patient's id (the demo doctor cares for them), read from their own profile link."""
    page = new_page()
    log_in(page, DEMO_EMAILS["patient"])
    with page.expect_navigation():
        page.locator("main").get_by_role("link", name="Edit", exact=True).click()
    found = re.search(r"/patients/([0-9a-f-]{36})/edit$", page.url)
    assert found, page.url
    return found.group(1)


def test_a_scanned_letter_is_found_by_symptoms_and_opened_highlighted(
    new_page: Any, log_in: Any, tmp_path: Path
) -> None:
    patient_id = _demo_patient_id(new_page, log_in)
    title = f"Cardiology letter {uuid.uuid4().hex[:8]}"
    letter = scans.LETTERS[0]  # a page as tall as its text: half the OCR time of a whole A4 page
    scanned = scans.render_page(letter, seed=5, size=scans.letter_sheet(letter))
    pdf = scans.save_pdf([scanned], tmp_path / "letter.pdf")

    page = new_page()
    log_in(page, DEMO_EMAILS["doctor"])
    page.goto(f"/patients/{patient_id}/scans/new")
    page.fill("#f-title", title)
    page.set_input_files("#f-file", str(pdf))
    with page.expect_navigation(timeout=120_000):  # the OCR runs in-process before the redirect
        page.locator("[data-testid=scan-form] button[type=submit]").click()
    page.reload()
    expect(page.locator("[data-testid=scan-status]")).to_have_attribute("data-status", "done")

    page.goto(f"/documents/search?patient_id={patient_id}")
    page.fill("#f-q", QUERY)
    with page.expect_navigation():
        page.locator("[data-testid=search-form] button[type=submit]").click()
    hit = page.locator("[data-testid=search-hit]", has_text=title)
    expect(hit).to_have_count(1)
    expect(hit.locator("[data-testid=search-snippet] mark").first).to_be_visible()
    expect(hit.locator("[data-testid=negated-badge]")).to_have_count(0)

    with page.expect_navigation():
        hit.get_by_role("link", name=title).click()
    assert "/documents/search/open/" in page.url
    expect(page.locator("h1")).to_have_text(title)
    marks = page.locator("[data-testid=document-text] mark")
    expect(marks.first).to_be_visible()
    assert {m.lower() for m in marks.all_inner_texts()} & {"chest pain", "shortness of breath at night"}
    expect(page.locator("[data-testid=document-file]")).to_be_visible()
