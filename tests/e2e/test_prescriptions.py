"""Browser: a doctor prescribes, the patient shows the QR code on their phone, the pharmacist uploads a
screenshot of it and dispenses; the old screenshot is then refused as out of date, the patient's refreshed
code is dispensed as the first refill, and the patient sees the refill count drop."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e


def _qr_screenshot(patient: Any, prescription_url: str) -> bytes:
    """The QR code as the patient's phone shows it, once the image has loaded."""
    patient.goto(prescription_url)
    image = patient.get_by_role("img", name="Prescription QR code")
    expect(image).to_be_visible()
    patient.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return bytes(image.screenshot())


def _scan(pharmacist: Any, screenshot: bytes) -> None:
    pharmacist.goto("/pharmacy")
    pharmacist.set_input_files(
        "#f-image", files=[{"name": "qr.png", "mimeType": "image/png", "buffer": screenshot}]
    )
    pharmacist.locator("[data-testid=verify]").click()


def _dispense(pharmacist: Any, lot: str) -> None:
    expect(pharmacist.locator("[data-testid=verified]")).to_contain_text("Montelukast 10 mg")
    pharmacist.fill("#f-lot", lot)
    pharmacist.once("dialog", lambda dialog: dialog.accept())  # "Dispense fill N of 3 …?"
    pharmacist.locator("[data-testid=dispense]").click()
    expect(pharmacist.locator("[data-testid=dispensed]")).to_be_visible()


def test_doctor_prescribes_pharmacist_scans_the_qr_and_the_refills_drop(new_page: Any, log_in: Any) -> None:
    patient = new_page(width=390, height=844)  # a phone
    log_in(patient, DEMO_EMAILS["patient"])
    profile = patient.locator("a[href^='/patients/'][href$='/edit']").first.get_attribute("href")
    assert profile is not None
    patient_id = profile.split("/")[2]

    # The doctor finds Montelukast in the formulary and prescribes it with two refills.
    doctor = new_page()
    log_in(doctor, DEMO_EMAILS["doctor"])
    doctor.goto(f"/patients/{patient_id}/prescriptions/new")
    doctor.fill("#f-q", "montelukast")
    choice = doctor.get_by_role("radio", name=re.compile("^Montelukast 10 mg"))
    expect(choice).to_have_count(1)
    choice.check()
    doctor.fill("#f-dose", "1 tablet")
    doctor.select_option("#f-frequency", "QHS")
    doctor.fill("#f-duration_days", "90")
    doctor.fill("#f-quantity", "30")
    doctor.fill("#f-days_supply", "30")
    doctor.fill("#f-refills", "2")
    doctor.fill("#f-instructions", f"One tablet at bedtime. Ref {uuid.uuid4().hex[:6]}")
    expect(choice).to_be_checked()
    with doctor.expect_navigation():
        doctor.locator("[data-testid=prescribe]").click()
    expect(doctor.locator("[data-testid=medication]")).to_contain_text("Montelukast 10 mg")
    prescription_url = doctor.url.split("?")[0]
    assert re.search(r"/prescriptions/[0-9a-f-]{36}$", prescription_url)

    # The patient sees it with three fills (two refills) and its QR code.
    patient.goto("/me/medications")
    expect(patient.get_by_role("link", name=re.compile("Montelukast 10 mg")).first).to_be_visible()
    first_code = _qr_screenshot(patient, prescription_url)
    expect(patient.locator("[data-testid=fills]")).to_contain_text("0 of 3")
    expect(patient.locator("[data-testid=fills]")).to_contain_text("(2 refills)")

    # The pharmacist uploads the screenshot, checks the details and dispenses the first fill.
    pharmacist = new_page()
    log_in(pharmacist, DEMO_EMAILS["pharmacist"])
    _scan(pharmacist, first_code)
    _dispense(pharmacist, "LOT-A1")
    expect(pharmacist.locator("[data-testid=refills-left]")).to_have_text("2")

    # The same screenshot again: refused, a newer code exists since that dispense.
    _scan(pharmacist, first_code)
    expect(pharmacist.locator("[data-testid=refusal]")).to_have_attribute("data-reason", "superseded")

    # The patient's refreshed code is dispensed as the first refill, and the count drops to one.
    second_code = _qr_screenshot(patient, prescription_url)
    assert second_code != first_code
    _scan(pharmacist, second_code)
    _dispense(pharmacist, "LOT-A2")
    expect(pharmacist.locator("[data-testid=refills-left]")).to_have_text("1")

    patient.goto(prescription_url)
    expect(patient.locator("[data-testid=fills]")).to_contain_text("2 of 3")
    expect(patient.locator("[data-testid=fills]")).to_contain_text("(1 refill)")
    expect(patient.locator("[data-testid=dispense]")).to_have_count(2)
