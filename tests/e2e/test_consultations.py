"""Browser: a doctor uploads a short recorded consultation (two espeak-ng voices) on the recorder page, the
transcription runs in-process, the transcript shows with its speakers; the doctor names the speakers, edits
the draft note and approves it (after the confirmation) into the record."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.documents import speech
from tests.e2e.conftest import DEMO_EMAILS
from tests.e2e.test_documents import _demo_patient_id

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng"),
]
# Doctor, patient, doctor: 13 s of speech (about 1.3 s of CPU to transcribe).
LINES = tuple(speech.CONSULTATION[i] for i in (0, 1, 8))
NAMES = {"name-1": "Dr Okafor", "name-2": "Mrs Jones (daughter)"}
NOTE = "Sore throat and fever since Monday; tonsils swollen.\nPlan: antibiotics, review if no better."


def test_a_recorded_consultation_is_transcribed_named_edited_and_approved(
    new_page: Any, log_in: Any, tmp_path: Path
) -> None:
    patient_id = _demo_patient_id(new_page, log_in)
    recording = speech.synthesise(tmp_path, LINES).path

    page = new_page()
    log_in(page, DEMO_EMAILS["doctor"])
    page.goto(f"/patients/{patient_id}/consultations/new")
    page.set_input_files("#f-audio", str(recording))
    with page.expect_navigation(timeout=120_000):  # the transcription runs in-process before the redirect
        page.locator("[data-testid=consultation-upload] button[type=submit]").click()
    assert "/documents/consultations/" in page.url
    page.reload()  # the redirect may have rendered the page before the job's transaction committed

    speakers = page.locator("[data-testid=transcript] [data-testid=segment-speaker]")
    expect(speakers.first).to_be_visible()
    expect(page.locator("[data-testid=transcript]")).to_contain_text("sore throat")
    assert set(speakers.all_inner_texts()) == {"Speaker 1", "Speaker 2"}

    for field, name in NAMES.items():
        page.fill(f"#{field}", name)
    with page.expect_navigation():
        page.click("[data-testid=speakers-save]")
    expect(page.get_by_role("status").filter(has_text="Speakers corrected")).to_be_visible()
    assert set(speakers.all_inner_texts()) == set(NAMES.values())
    expect(page.locator("#name-2")).to_have_value(NAMES["name-2"])

    page.fill("#f-text", NOTE)
    with page.expect_navigation():
        page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status").filter(has_text="Your edits are saved")).to_be_visible()
    expect(page.locator("#f-text")).to_have_value(NOTE)

    confirmations: list[str] = []

    def confirm(dialog: Any) -> None:
        confirmations.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with page.expect_navigation():
        page.click("[data-testid=approve-note]")
    assert len(confirmations) == 1
    assert confirmations[0].startswith("Approve this note?")
    expect(page.get_by_role("status").filter(has_text="approved and in the patient's record")).to_be_visible()
    expect(page.locator("[data-testid=approved-note]")).to_have_text(NOTE)
    expect(page.locator("[data-testid=note-form]")).to_have_count(0)
    expect(page.locator("[data-testid=speakers-form]")).to_have_count(0)  # no renaming once approved
    assert set(speakers.all_inner_texts()) == set(NAMES.values())
    with page.expect_navigation():
        page.get_by_role("link", name="Open it in the record").click()
    assert "/records/" in page.url
