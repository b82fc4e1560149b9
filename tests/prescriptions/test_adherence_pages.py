"""The dose schedule and adherence pages: the patient's day (grouped, Taken / Skip with and without HTMX,
errors inline, previous and next day, the reminder switch), the dashboard fragment, the adherence page
with its chart, the clinician's view, the care team's low-adherence list, and who may open each."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.db import utcnow
from caresync.prescriptions.models import DoseLog, Prescription
from tests.conftest import Cast, Person, web_login
from tests.prescriptions.conftest import PrescriptionFactory
from tests.prescriptions.test_adherence import dispense

HTMX = {"HX-Request": "true"}
SCHEDULE = "/me/medications/schedule"


def today() -> date:
    return utcnow().date()


@pytest.fixture
def tid(cast: Cast, prescription_factory: PrescriptionFactory) -> Prescription:
    """Amoxicillin three times a day (08:00, 14:00, 20:00) for the cast's patient, started 20 days ago."""
    return prescription_factory(
        cast["doctor"], cast["patient"], start_date=today() - timedelta(days=20), duration_days=60
    )


def mark_form(p: Prescription, day: date, hour: int, status: str, csrf: str) -> dict[str, str]:
    at = datetime.combine(day, time(hour), tzinfo=UTC).isoformat()
    return {
        "prescription_id": str(p.id),
        "scheduled_at": at,
        "status": status,
        "day": day.isoformat(),
        "csrf_token": csrf,
    }


def test_day_page_groups_doses_and_links_the_neighbouring_days(
    client: TestClient, cast: Cast, tid: Prescription
) -> None:
    web_login(client, cast["patient"])
    day = today() - timedelta(days=1)
    page = client.get(SCHEDULE, params={"day": day.isoformat()})
    assert page.status_code == 200
    html = page.text
    for part in ("part-morning", "part-afternoon", "part-evening"):
        assert f'data-testid="{part}"' in html
    assert html.count('data-testid="dose"') == 3
    assert re.findall(r'data-testid="dose-time">(\d\d:\d\d)<', html) == ["08:00", "14:00", "20:00"]
    assert "Amoxicillin 500 mg capsule" in html
    assert "By mouth" in html
    assert html.count('value="taken"') == 3  # yesterday's doses can all be marked
    assert f"day={(day - timedelta(days=1)).isoformat()}" in html
    assert f"day={today().isoformat()}" in html
    assert "times in your time zone (UTC)" in html
    assert "Turn off" in html  # reminders are on
    for odd in ("not-a-day", "9999-12-31", "0001-01-01"):  # fall back to today
        page = client.get(SCHEDULE, params={"day": odd})
        assert page.status_code == 200
        assert f"day={(today() + timedelta(days=1)).isoformat()}" in page.text


def test_marking_with_htmx_swaps_the_row(client: TestClient, cast: Cast, tid: Prescription, tx: Any) -> None:
    csrf = web_login(client, cast["patient"])
    day = today() - timedelta(days=1)
    response = client.post(f"{SCHEDULE}/mark", data=mark_form(tid, day, 14, "taken", csrf), headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'data-mark="taken"' in response.text
    assert "Marked taken." in response.text
    assert 'value="skipped"' in response.text
    assert 'value="taken"' not in response.text
    skipped = client.post(f"{SCHEDULE}/mark", data=mark_form(tid, day, 14, "skipped", csrf), headers=HTMX)
    assert 'data-mark="skipped"' in skipped.text
    with tx() as s:
        assert s.scalars(select(DoseLog.status).where(DoseLog.prescription_id == tid.id)).all() == ["skipped"]


def test_marking_without_javascript_redirects_back(client: TestClient, cast: Cast, tid: Prescription) -> None:
    csrf = web_login(client, cast["patient"])
    day = today() - timedelta(days=2)
    response = client.post(
        f"{SCHEDULE}/mark", data=mark_form(tid, day, 8, "taken", csrf), follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{SCHEDULE}?day={day.isoformat()}&saved=dose"
    page = client.get(response.headers["location"])
    assert 'data-testid="saved"' in page.text
    assert 'data-mark="taken"' in page.text


def test_marking_errors_are_shown(client: TestClient, cast: Cast, tid: Prescription, tx: Any) -> None:
    csrf = web_login(client, cast["patient"])
    tomorrow = today() + timedelta(days=1)
    inline = client.post(f"{SCHEDULE}/mark", data=mark_form(tid, tomorrow, 20, "taken", csrf), headers=HTMX)
    assert inline.status_code == 200  # HTMX swaps the row with its error
    assert 'data-testid="dose-error"' in inline.text
    assert "not due yet" in inline.text
    full = client.post(f"{SCHEDULE}/mark", data=mark_form(tid, tomorrow, 20, "taken", csrf))
    assert full.status_code == 422
    assert 'data-testid="form-error"' in full.text
    assert "not due yet" in full.text
    wrong_time = client.post(f"{SCHEDULE}/mark", data=mark_form(tid, today(), 9, "taken", csrf), headers=HTMX)
    assert "not one of" in wrong_time.text
    no_csrf = client.post(
        f"{SCHEDULE}/mark", data=mark_form(tid, today() - timedelta(days=1), 8, "taken", "x")
    )
    assert no_csrf.status_code == 403
    with tx() as s:
        assert s.scalars(select(DoseLog)).all() == []


def test_reminder_switch(client: TestClient, cast: Cast, tid: Prescription, tx: Any) -> None:
    csrf = web_login(client, cast["patient"])
    day = today().isoformat()
    off = client.post(
        f"/me/medications/{tid.id}/reminders",
        data={"enabled": "0", "day": day, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert off.status_code == 303
    assert off.headers["location"] == f"{SCHEDULE}?day={day}&saved=reminders-off"
    with tx() as s:
        assert s.get(Prescription, tid.id).reminders_enabled is False  # type: ignore[union-attr]
    page = client.get(off.headers["location"])
    assert "Reminders turned off" in page.text
    assert "Turn on" in page.text
    on = client.post(f"/me/medications/{tid.id}/reminders", data={"enabled": "1", "csrf_token": csrf})
    assert on.status_code == 200
    assert "Reminders turned on" in on.text


def test_turning_reminders_off_asks_first(client: TestClient, cast: Cast, tid: Prescription) -> None:
    web_login(client, cast["patient"])
    html = client.get(SCHEDULE).text
    assert 'data-confirm="Stop reminders for Amoxicillin?' in html


def test_empty_states(
    client: TestClient, make: Any, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    person: Person = make.patient_user()
    web_login(client, person)
    assert "No scheduled doses" in client.get(SCHEDULE).text
    assert "Nothing to remind you of" in client.get(SCHEDULE).text
    assert "No active medications" in client.get("/me/medications/adherence").text
    assert "No doses today" in client.get(f"{SCHEDULE}/panel").text
    prescription_factory(cast["doctor"], person, start_date=today() + timedelta(days=3))
    assert "No doses on this day" in client.get(SCHEDULE).text


def test_dashboard_panel_is_a_fragment_with_todays_doses(
    client: TestClient, cast: Cast, tid: Prescription, tx: Any
) -> None:
    web_login(client, cast["patient"])
    panel = client.get(f"{SCHEDULE}/panel", headers=HTMX)
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert 'data-testid="dose-panel"' in panel.text
    assert panel.text.count('data-testid="dose"') == 3
    with tx() as s:
        for hour in (8, 14, 20):
            at = datetime.combine(today(), time(hour), tzinfo=UTC)
            s.add(DoseLog(prescription_id=tid.id, patient_id=tid.patient_id, scheduled_at=at, status="taken"))
    assert "All done for today" in client.get(f"{SCHEDULE}/panel").text


def test_adherence_page_shows_pdc_chart_and_dose_rate(
    client: TestClient, cast: Cast, tid: Prescription
) -> None:
    dispense(tid, cast["pharmacist"], today() - timedelta(days=20), 7)  # 7 of 21 days covered
    web_login(client, cast["patient"])
    page = client.get("/me/medications/adherence")
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="pdc">33 %<' in html
    assert 'data-testid="below"' in html
    assert 'data-testid="coverage-chart"' in html
    assert 'data-testid="threshold-line"' in html
    assert html.count("<rect") == 12  # one bar per week (a flat mark for weeks before the start)
    assert "of doses marked taken" in html
    assert "<script" not in html.split("</svg>")[0].split("<svg")[-1]  # no JavaScript in the chart
    month = client.get("/me/medications/adherence", params={"days": 30})
    assert 'aria-current="page">30 days' in month.text


def test_clinician_adherence_page(client: TestClient, cast: Cast, tid: Prescription) -> None:
    web_login(client, cast["nurse"])
    page = client.get(f"/patients/{cast['patient'].patient_id}/adherence")
    assert page.status_code == 200
    assert cast["patient"].patient.family_name in page.text
    assert "Amoxicillin" in page.text
    assert client.get(f"/patients/{cast.other_patient.id}/adherence").status_code == 404


def test_pharmacist_cannot_open_a_patients_adherence(
    client: TestClient, cast: Cast, tid: Prescription
) -> None:
    web_login(client, cast["pharmacist"])
    page = client.get(f"/patients/{cast['patient'].patient_id}/adherence")
    assert page.status_code == 404
    assert "Amoxicillin" not in page.text


def test_low_adherence_page(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory, make: Any
) -> None:
    p = prescription_factory(
        cast["doctor"],
        cast["patient"],
        frequency="QD",
        start_date=today() - timedelta(days=45),
        duration_days=365,
        days_supply=30,
        medication_name="Ramipril",
        strength="5 mg",
    )
    dispense(p, cast["pharmacist"], today() - timedelta(days=45), 30)
    web_login(client, cast["doctor"])
    page = client.get("/prescriptions/adherence")
    assert page.status_code == 200
    assert page.text.count('data-testid="flag"') == 1
    assert f'href="/patients/{cast["patient"].patient_id}/adherence"' in page.text
    assert f'href="/prescriptions/{p.id}"' in page.text
    assert "65 %" in page.text
    panel = client.get("/prescriptions/adherence/panel")
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert panel.text.count('data-testid="flag"') == 1
    assert "Ramipril" in panel.text
    assert "65 %" in panel.text
    assert 'hx-get="/prescriptions/adherence/panel"' in client.get("/").text  # on the doctor's dashboard
    other = TestClient(client.app)
    web_login(other, make.staff("nurse"))
    assert "Nobody below the threshold" in other.get("/prescriptions/adherence").text
    assert "Nobody below the threshold" in other.get("/prescriptions/adherence/panel").text


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("doctor", SCHEDULE, 403),
        ("nurse", "/me/medications/adherence", 403),
        ("pharmacist", f"{SCHEDULE}/panel", 403),
        ("patient", "/prescriptions/adherence", 403),
        ("pharmacist", "/prescriptions/adherence", 403),
        ("patient", "/prescriptions/adherence/panel", 403),
    ],
    ids=[
        "doctor-schedule",
        "nurse-own-adherence",
        "pharmacist-panel",
        "patient-flags",
        "pharmacist-flags",
        "patient-flags-panel",
    ],
)
def test_pages_refuse_the_wrong_role(
    client: TestClient, cast: Cast, role: str, path: str, status: int
) -> None:
    web_login(client, cast[role])
    assert client.get(path).status_code == status


@pytest.mark.parametrize(
    "path", [SCHEDULE, f"{SCHEDULE}/panel", "/me/medications/adherence", "/prescriptions/adherence"]
)
def test_pages_need_signing_in(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_patient_cannot_switch_someone_elses_reminders(
    client: TestClient, make: Any, cast: Cast, tid: Prescription, tx: Any
) -> None:
    csrf = web_login(client, make.patient_user())
    response = client.post(f"/me/medications/{tid.id}/reminders", data={"enabled": "0", "csrf_token": csrf})
    assert response.status_code == 404
    with tx() as s:
        assert s.get(Prescription, tid.id).reminders_enabled is True  # type: ignore[union-attr]
