"""Browser: the demo doctor goes from the imaging worklist to a patient's imaging page, drops a file that
is not an image (refused in the page), chooses the shipped chest X-ray DICOM, uploads and analyses it,
follows its progress (jobs run in-process on the e2e server, so the result may already be there), then sees
the heatmap over the image and fades it with the opacity slider, by mouse and by keyboard."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from pydicom.data import get_testdata_file

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e
CHEST_XRAY = "RG1_UNCI.dcm"  # a CR chest X-ray, MONOCHROME1, 1955x1841, shipped by pydicom-data


def test_upload_a_dicom_watch_progress_and_see_the_heatmap(page: Any, log_in: Any) -> None:
    log_in(page, DEMO_EMAILS["doctor"])
    page.goto("/imaging/studies")
    rows = page.locator("[data-testid=worklist-row]")
    expect(rows.first).to_be_visible()  # the demo analysed two studies of the doctor's first patient
    with page.expect_navigation():
        rows.first.locator("a[href$='/imaging']").click()
    assert re.search(r"/patients/[0-9a-f-]{36}/imaging$", page.url), page.url

    # a dropped file that is no image is refused in the page, before any upload
    dropped = page.evaluate_handle(
        "() => { const d = new DataTransfer();"
        " d.items.add(new File(['just some notes'], 'notes.txt', {type: 'text/plain'})); return d; }"
    )
    page.dispatch_event("[data-drop-zone]", "drop", {"dataTransfer": dropped})
    expect(page.locator("[data-testid=file-error]")).to_have_text(
        "notes.txt is not a DICOM, PNG or JPEG image."
    )

    page.set_input_files("#f-file", get_testdata_file(CHEST_XRAY))
    expect(page.locator("[data-file-name]")).to_contain_text(f"{CHEST_XRAY} · DICOM")
    expect(page.locator("[data-testid=file-error]")).to_have_text("")
    page.fill("#f-description", "Chest PA")
    page.select_option("#f-task", "chest_xray")
    with page.expect_navigation(timeout=120_000):  # decoding 1955x1841 and, in-process, the analysis
        page.locator("[data-testid=imaging-upload]").click()
    assert "/imaging/analyses/" in page.url

    analysis = page.locator("[data-testid=analysis]")
    assert analysis.get_attribute("data-status") in ("queued", "running", "done")
    if analysis.get_attribute("data-status") != "done":  # a worker is still on it: the bar is shown
        expect(page.locator("[data-testid=analysis-progress]")).to_be_visible()
    expect(analysis).to_have_attribute("data-status", "done")  # swapped in without a reload
    expect(page.locator("[data-testid=demo-banner]")).to_contain_text("Demonstration only")
    expect(page.locator("[data-testid=model-version]")).to_contain_text("v")
    expect(page.locator("[data-testid=probabilities] .imaging-bar").first).to_be_visible()

    heatmap = page.locator("[data-testid=heatmap]")
    expect(heatmap).to_be_visible()
    page.wait_for_function("() => document.querySelector('[data-testid=heatmap]').naturalWidth > 0")
    page.wait_for_function("() => document.querySelector('[data-testid=study-image]').naturalWidth > 0")
    assert heatmap.evaluate("img => getComputedStyle(img).opacity") == "0.5"

    slider = page.locator("#heatmap-opacity")
    slider.fill("80")
    assert heatmap.evaluate("img => getComputedStyle(img).opacity") == "0.8"
    expect(page.locator("[data-opacity-value]")).to_have_text("80 %")
    slider.focus()
    page.keyboard.press("Home")
    assert heatmap.evaluate("img => getComputedStyle(img).opacity") == "0"
    expect(page.locator("[data-opacity-value]")).to_have_text("0 %")
