"""An administrator adds a doctor; the doctor must enrol MFA at first sign-in before anything else."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# Not admin@riverside: other tests sign in as that admin, and each TOTP time step works only once.
ADMIN = "admin@st.demo.caresync.dev"


def test_admin_creates_doctor_who_must_enrol_mfa(new_page: Any, log_in: Any, totp_code: Any) -> None:
    admin = new_page()
    log_in(admin, ADMIN)
    admin.goto("/admin/users/new")
    email = f"new.doctor.{uuid.uuid4().hex[:8]}@stclare.example.org"
    password = "Vivid-Otter-Canyon-77"

    # The form checks its input: a short password is refused inline.
    admin.fill("#f-full_name", "Dr. Helena Vaz")
    admin.fill("#f-email", email)
    admin.select_option("#f-role", "doctor")
    admin.fill("#f-password", "short")
    with admin.expect_navigation():
        admin.click("main button[type=submit]")
    expect(admin.locator("main .is-invalid, main [data-testid=form-error]").first).to_be_visible()
    expect(admin.locator("#f-email")).to_have_value(email)

    admin.fill("#f-password", password)
    with admin.expect_navigation():
        admin.click("main button[type=submit]")
    assert "/admin/users" in admin.url
    expect(admin.locator("[data-testid=created]")).to_contain_text(email)
    row = admin.locator("[data-testid=users-table] tr", has_text=email)
    expect(row).to_contain_text("Dr. Helena Vaz")
    expect(row).to_contain_text("pending")

    doctor = new_page()
    doctor.goto("/login")
    doctor.fill("#f-email", email)
    doctor.fill("#f-password", password)
    with doctor.expect_navigation():
        doctor.click("main button[type=submit]")
    assert doctor.url.endswith("/account/mfa"), doctor.url
    expect(doctor.locator("main [role=alert]")).to_contain_text("requires two-step verification")
    # Nothing else is reachable before enrolling.
    for path in ("/", "/patients"):
        doctor.goto(path)
        assert doctor.url.endswith("/account/mfa"), f"{path} -> {doctor.url}"
    expect(doctor.locator("[data-testid=dashboard-title]")).to_have_count(0)
    expect(doctor.locator("main [role=img] svg")).to_be_visible()  # the QR code

    secret = doctor.locator("[data-testid=mfa-secret]").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + drift) for drift in (-30, 0, 30, 60)}
    doctor.fill(
        "#f-code", next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)
    )
    with doctor.expect_navigation():
        doctor.click("main button[type=submit]")
    expect(doctor.locator("#e-code")).to_be_visible()  # a wrong code is refused inline
    assert doctor.locator("[data-testid=mfa-secret]").inner_text().strip() == secret  # same pending key

    doctor.fill("#f-code", totp_code(secret, email))
    with doctor.expect_navigation():
        doctor.click("main button[type=submit]")
    expect(doctor.locator("[data-testid=mfa-done]")).to_be_visible()
    codes = doctor.locator("[data-testid=recovery-codes] li")
    expect(codes).to_have_count(10)
    assert len(set(codes.all_inner_texts())) == 10

    with doctor.expect_navigation():
        doctor.get_by_role("link", name="Continue to the dashboard").click()
    expect(doctor.locator("[data-testid=dashboard-title]")).to_have_text("Welcome, Dr. Helena Vaz")
    expect(doctor.locator("[data-testid=whoami]")).to_contain_text("Doctor")
    expect(doctor.locator("[data-testid=care-count]")).to_have_text("0")

    admin.goto("/admin/users?q=" + email)
    row = admin.locator("[data-testid=users-table] tbody tr", has_text=email)
    expect(row.locator(".badge", has_text=re.compile(r"^on$"))).to_have_count(1)
    expect(row.get_by_role("button", name="Reset MFA")).to_be_visible()
