"""Browser: a patient uploads a lab report and sees it verified, adds a mental-health note, and grants a
doctor with no care relationship access to lab results only; that doctor finds the patient in their list and
reads the lab report, but not the mental-health note."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_EMAILS

pytestmark = pytest.mark.e2e

# The blood centre's doctor: no practitioner profile and no care relationship with any demo patient, so only
# the patient's consent can open the demo patient's record to them.
OUTSIDE_DOCTOR = "doctor@national.demo.caresync.dev"
BLOOD_CENTRE = "National Blood Centre Lisbon"
LAB_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% HbA1c 5.4 %\n%%EOF\n"


def _save(page: Any) -> None:
    with page.expect_navigation():
        page.locator("[data-testid=save-record]").click()


def test_patient_shares_lab_results_only_with_a_doctor(new_page: Any, log_in: Any) -> None:
    run = uuid.uuid4().hex[:8]
    lab_title, note_title = f"HbA1c {run}", f"Counselling note {run}"

    doctor = new_page()
    log_in(doctor, OUTSIDE_DOCTOR)
    doctor_name = doctor.locator("[data-testid=whoami]").inner_text().split(" · ")[0]

    patient = new_page()
    log_in(patient, DEMO_EMAILS["patient"])
    patient.locator("#sidebar-menu").get_by_role("link", name="My health record").click()
    expect(patient.locator("[data-testid=patient-name]")).to_be_visible()
    records_url = patient.url
    health_id = patient.locator("main .font-monospace").first.inner_text()

    # A lab report as a PDF: saved, signed and shown as verified.
    patient.locator("[data-testid=add-record]").click()
    patient.select_option("#f-category", "lab")
    patient.fill("#f-title", lab_title)
    patient.set_input_files(
        "#f-file",
        files=[{"name": "hba1c.pdf", "mimeType": "application/pdf", "buffer": LAB_PDF + run.encode()}],
    )
    _save(patient)
    expect(patient.locator("[data-testid=uploaded]")).to_be_visible()
    expect(patient.locator("[data-testid=verified]")).to_contain_text("Verified")
    expect(patient.locator("[data-testid=verified]")).to_contain_text("file intact")
    expect(patient.locator("[data-testid=fingerprint]")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(patient.locator("[data-testid=preview-pdf]")).to_be_visible()
    lab_url = patient.url.split("?")[0]

    # A mental-health note, typed.
    patient.goto(records_url + "/new")
    patient.select_option("#f-category", "mental-health")
    patient.fill("#f-title", note_title)
    patient.fill("#f-text", "Low mood since the winter; sleeping better with the new routine.")
    _save(patient)
    expect(patient.locator("[data-testid=verified]")).to_be_visible()
    expect(patient.locator("[data-testid=preview-text]")).to_contain_text("Low mood")
    note_url = patient.url.split("?")[0]

    patient.goto(records_url)
    expect(patient.locator("[data-testid=record-link]", has_text=lab_title)).to_be_visible()
    expect(patient.locator("[data-testid=record-link]", has_text=note_title)).to_be_visible()

    # Grant the doctor access to lab results only.
    patient.locator("#sidebar-menu").get_by_role("link", name="Who reads my record").click()
    patient.locator("[data-testid=grantee-practitioner]").check(force=True)
    patient.fill("#f-clinician-q", doctor_name.removeprefix("Dr. "))
    choice = patient.locator("label.form-check", has_text=BLOOD_CENTRE).locator("[data-testid=clinician]")
    expect(choice).to_have_count(1)  # (another clinician of the demo may share the name)
    choice.check()
    for box in patient.locator("input[name=categories]").all():
        box.set_checked(box.get_attribute("value") == "lab")
    with patient.expect_navigation():
        patient.locator("[data-testid=grant]").click()
    expect(patient.locator("[data-testid=granted]")).to_be_visible()
    row = patient.locator("[data-testid=consent]", has_text=doctor_name).first
    expect(row).to_contain_text("Lab result")
    expect(row.locator("[data-testid=consent-status]")).to_have_text("active")

    # The doctor now finds the patient in their list and reads the lab report, not the note.
    doctor.goto("/patients")
    doctor.locator("#q").fill(health_id)
    patient_row = doctor.locator("#patient-table tbody tr").filter(has_text=health_id)
    expect(patient_row).to_have_count(1)
    with doctor.expect_navigation():
        patient_row.get_by_role("link").first.click()
    with doctor.expect_navigation():
        doctor.locator("[data-testid=health-record]").click()
    expect(doctor.locator("[data-testid=record-link]", has_text=lab_title)).to_be_visible()
    expect(doctor.locator("[data-testid=record-link]", has_text=note_title)).to_have_count(0)
    expect(doctor.locator("[data-testid=scope-note]")).to_contain_text("Only Lab result records are shared")
    expect(doctor.locator("[data-testid=add-record]")).to_have_count(0)
    with doctor.expect_navigation():
        doctor.locator("[data-testid=record-link]", has_text=lab_title).click()
    assert doctor.url.split("?")[0] == lab_url
    expect(doctor.locator("[data-testid=verified]")).to_contain_text("file intact")
    response = doctor.goto(note_url)
    assert response is not None
    assert response.status == 404
    expect(doctor.locator("main")).not_to_contain_text(note_title)
