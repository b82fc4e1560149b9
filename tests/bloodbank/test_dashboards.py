"""The landing dashboards of blood bank staff and donors show real figures from the blood bank (their own
organisation's only), empty states when there is nothing, a profile invitation for a donor without one, and
leave every other role's dashboard as it was."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.donors.appointments import local_day, slot_starts
from caresync.bloodbank.models import (
    BloodAlert,
    BloodTransfer,
    CalloutContact,
    DonationAppointment,
    DonorCallout,
    RequestOffer,
)
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor, make_request, make_unit
from tests.bloodbank.test_stock_dashboard import set_policy
from tests.conftest import Cast, Factory, Person, web_login


@pytest.fixture
def browser(app: Any) -> Iterator[Any]:
    """Sign a fresh browser in as someone: ``browser(person) -> TestClient``."""
    clients: list[TestClient] = []

    def open_as(person: Person) -> TestClient:
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        web_login(client, person)
        return client

    yield open_as
    for client in clients:
        client.__exit__(None, None, None)


def text_of(html: str, testid: str) -> str:
    """The text of the first element with ``data-testid`` (tags removed, spaces collapsed)."""
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</(?:strong|div|a|span)>', html, re.S)
    assert match, f"no {testid}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def add(*rows: Any) -> None:
    with transaction(session_factory()) as s:
        s.add_all(rows)


def alert(org_id: Any, severity: str, message: str, *, resolved: bool = False) -> BloodAlert:
    return BloodAlert(
        organisation_id=org_id,
        kind="low_stock",
        subject=message[:60],
        severity=severity,
        message=message,
        figures={},
        resolved_at=utcnow() if resolved else None,
    )


def appointment(
    donor_id: Any, org_id: Any, starts_at: datetime, status: str = "booked"
) -> DonationAppointment:
    return DonationAppointment(
        donor_id=donor_id,
        organisation_id=org_id,
        starts_at=starts_at,
        chair=1,
        donation_type="whole_blood",
        status=status,
    )


# --- blood bank staff ---------------------------------------------------------------------------------------


@pytest.fixture
def busy_blood_bank(cast: Cast, make: Factory) -> dict[str, Any]:
    """The cast's hospital with stock, alerts, requests, offers, transfers and appointments, and a
    neighbour whose own rows must never be counted."""
    org, other = cast.org, make.org("Neighbour Hospital")
    set_policy(org.id, baseline_daily_use={"O-:red_cells": 1.0, "A+:red_cells": 1.0, "AB+:platelets": 2.0})
    for _ in range(2):
        make_unit(org, "O-")  # 2 days of supply: low (below 3)
    for _ in range(10):
        make_unit(org, "A+")  # 10 days: ok
    make_unit(org, "AB+", "platelets")  # 0.5 days: critical (another component)
    make_unit(org, "B+", status="quarantined")  # not available
    make_unit(other, "B+")  # the neighbour's
    add(
        alert(org.id, "critical", "O- red cells: 0.5 days of supply"),
        alert(org.id, "critical", "AB+ platelets: 0.5 days of supply"),
        alert(org.id, "warning", "2 units expire within 3 days"),
        alert(org.id, "critical", "Resolved yesterday", resolved=True),
        alert(other.id, "critical", "The neighbour's alert"),
    )
    patient, doctor = cast["patient"].patient_id, cast["doctor"].id
    emergency = make_request(org, patient, doctor, urgency="emergency", needed_in=timedelta(minutes=30))
    make_request(org, patient, doctor, urgency="routine", needed_in=timedelta(days=1))
    make_request(org, patient, doctor, urgency="urgent", status="allocated")
    make_request(org, patient, doctor, status="completed")
    theirs = make_request(other, cast.other_patient, doctor)
    add(
        RequestOffer(request_id=theirs.id, organisation_id=org.id, rank=1, units_available=2),
        BloodTransfer(
            from_organisation_id=org.id,
            to_organisation_id=other.id,
            status="requested",
            blood_group="O+",
            component="red_cells",
            units_wanted=2,
        ),
        BloodTransfer(from_organisation_id=other.id, to_organisation_id=org.id, status="dispatched"),
        BloodTransfer(from_organisation_id=org.id, to_organisation_id=other.id, status="received"),
    )
    slots = slot_starts(local_day(utcnow()))
    tomorrow = slot_starts(local_day(utcnow()) + timedelta(days=1))
    add(  # a donor has at most one booked appointment: one donor each
        appointment(make_donor(organisation=org).id, org.id, slots[0]),
        appointment(make_donor(organisation=org).id, org.id, slots[1]),
        appointment(make_donor(organisation=org).id, org.id, slots[2], status="cancelled"),
        appointment(make_donor(organisation=org).id, org.id, tomorrow[0]),
        appointment(make_donor(organisation=other).id, other.id, slots[3]),
    )
    return {"emergency": emergency}


@pytest.mark.parametrize(
    ("testid", "shown"),
    [
        pytest.param("available-O-", "2", id="O- available"),
        pytest.param("days-O-", "2.0 days (low)", id="O- days of supply, low"),
        pytest.param("available-A+", "10", id="A+ available"),
        pytest.param("days-A+", "10.0 days", id="A+ days of supply"),
        pytest.param("available-B+", "0", id="quarantined and the neighbour's units do not count"),
        pytest.param("alerts-critical", "2", id="open critical alerts of my organisation"),
        pytest.param("alerts-warning", "1", id="open warnings"),
        pytest.param("queue-open", "2", id="open requests"),
        pytest.param("queue-allocated", "1", id="allocated requests"),
        pytest.param("offers-waiting", "1", id="offers to answer"),
        pytest.param("to-dispatch", "1", id="transfers to dispatch"),
        pytest.param("to-receive", "1", id="transfers to receive"),
        pytest.param("appointments-today", "2", id="booked today, not cancelled, not tomorrow"),
    ],
)
def test_staff_dashboard_figures(
    busy_blood_bank: dict[str, Any], cast: Cast, browser: Any, testid: str, shown: str
) -> None:
    page = browser(cast["bloodbank_staff"]).get("/")
    assert page.status_code == 200
    assert text_of(page.text, testid) == shown


def test_staff_dashboard_levels_lists_and_links(
    busy_blood_bank: dict[str, Any], cast: Cast, browser: Any
) -> None:
    html = browser(cast["bloodbank_staff"]).get("/").text
    assert 'data-testid="group-O-" data-level="low"' in html
    assert 'data-testid="group-A+" data-level="ok"' in html
    assert "component cell is low or critical" in text_of(html, "other-short")
    assert text_of(html, "other-short").startswith("1 other group")
    alerts = re.findall(r'data-testid="alert-row">.*?</a>', html, re.S)
    assert len(alerts) == 3
    assert "Critical" in alerts[0]
    assert "Warning" in alerts[-1]
    assert "The neighbour" not in html
    assert "Resolved yesterday" not in html
    rows = re.findall(r'data-testid="request-row"', html)
    assert len(rows) == 3  # open and allocated, not completed, not the neighbour's
    first = html.index('data-testid="request-row"')
    assert f'href="/bloodbank/requests/{busy_blood_bank["emergency"].id}"' in html[first - 200 : first]
    for link in (
        "/bloodbank/stock",
        "/bloodbank/alerts",
        "/bloodbank/requests",
        "/bloodbank/transfers",
        "/bloodbank/appointments",
    ):
        assert f'href="{link}"' in html
    assert "arrives with the Blood bank module" not in html


def test_staff_dashboard_audits_the_patients_it_lists(
    busy_blood_bank: dict[str, Any], cast: Cast, browser: Any
) -> None:
    browser(cast["bloodbank_staff"]).get("/")
    with transaction(session_factory()) as s:
        entries = s.scalars(
            select(AuditEntry).where(
                AuditEntry.actor_id == cast["bloodbank_staff"].id,
                AuditEntry.action == "bloodbank.request.list",
            )
        ).all()
        assert entries  # the urgent requests listed name the patient: the look-up is on their record
        assert {e.patient_id for e in entries} == {cast["patient"].patient_id}


def test_an_empty_blood_bank_dashboard(cast: Cast, browser: Any) -> None:
    html = browser(cast["bloodbank_staff"]).get("/").text
    assert html.count('data-level="ok"') == 8  # one red-cell card per group
    for testid in ("alerts-critical", "queue-open", "offers-waiting", "to-dispatch", "appointments-today"):
        assert text_of(html, testid) == "0", testid
    for empty in ("No open alerts", "No requests waiting", "No donation appointments today"):
        assert empty in html
    assert "no group below its threshold" in html


# --- donors -------------------------------------------------------------------------------------------------


def test_a_donor_without_a_profile_is_invited_to_complete_it(cast: Cast, browser: Any) -> None:
    page = browser(cast["donor"]).get("/")
    assert page.status_code == 200
    assert 'data-testid="complete-profile"' in page.text
    assert 'href="/donor" data-testid="complete-profile-link"' in page.text
    assert 'data-testid="eligibility-card"' not in page.text
    assert "Health articles" in page.text
    assert "My donations and eligibility" in page.text


def test_the_donor_dashboard_figures(cast: Cast, browser: Any) -> None:
    today = local_day(utcnow())
    last = today - timedelta(days=30)
    donor = make_donor(
        user_id=cast["donor"].id,
        organisation=cast.org,
        donations=((today - timedelta(days=400), "whole_blood"), (last, "whole_blood")),
    )
    with transaction(session_factory()) as s:
        callout = DonorCallout(
            organisation_id=cast.org.id,
            blood_groups=["O-"],
            donation_type="whole_blood",
            donors_needed=3,
            reason="O- shortage",
            waves_sent=1,
        )
        s.add(callout)
        s.flush()
        s.add(CalloutContact(callout_id=callout.id, donor_id=donor.id, wave=1))
        s.add(appointment(donor.id, cast.org.id, slot_starts(today + timedelta(days=3))[2]))
        s.add(
            appointment(donor.id, cast.org.id, slot_starts(today + timedelta(days=1))[5], status="cancelled")
        )
    html = browser(cast["donor"]).get("/").text
    # US profile, 21 CFR 630.15 / American Red Cross: 56 days between whole blood donations, 28 before plasma
    assert 'data-testid="eligibility-whole_blood" data-eligible="no"' in html
    assert f"From {(last + timedelta(days=56)).isoformat()}" in html
    assert 'data-testid="eligibility-plasma" data-eligible="yes"' in html
    assert text_of(html, "donations-given") == "2"
    assert last.isoformat() in text_of(html, "last-donation")
    upcoming = text_of(html, "upcoming")
    assert slot_starts(today + timedelta(days=3))[2].strftime("%Y-%m-%d %H:%M") in upcoming
    assert text_of(html, "calls-to-answer") == "1"
    assert 'href="/donor/callouts" data-testid="callouts-link"' in html
    assert "Health articles" in html


def test_a_new_donor_can_donate_today_and_has_nothing_booked(cast: Cast, browser: Any) -> None:
    make_donor(user_id=cast["donor"].id)
    html = browser(cast["donor"]).get("/").text
    assert 'data-testid="eligibility-whole_blood" data-eligible="yes"' in html
    assert "You can donate today" in html
    assert text_of(html, "donations-given") == "0"
    assert 'data-testid="book-link"' in html
    assert "No calls for you right now" in html
    assert 'data-testid="callout-banner"' not in html


def test_a_closed_callout_is_not_shown(cast: Cast, browser: Any) -> None:
    donor = make_donor(user_id=cast["donor"].id)
    with transaction(session_factory()) as s:
        callout = DonorCallout(
            organisation_id=cast.org.id,
            blood_groups=["O-"],
            donation_type="whole_blood",
            donors_needed=1,
            reason="Over",
            status="closed",
            closed_at=datetime.combine(local_day(utcnow()), time(8), tzinfo=UTC),
        )
        s.add(callout)
        s.flush()
        s.add(CalloutContact(callout_id=callout.id, donor_id=donor.id, wave=1))
    html = browser(cast["donor"]).get("/").text
    assert 'data-testid="callout-banner"' not in html


# --- every other role ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "marker"),
    [
        pytest.param("admin", "Staff without MFA", id="admin"),
        pytest.param("doctor", "patients in my care", id="doctor"),
        pytest.param("nurse", "patients in my care", id="nurse"),
        pytest.param("pharmacist", "Dispense by QR code", id="pharmacist"),
        pytest.param("patient", "My care team", id="patient"),
    ],
)
def test_other_roles_keep_their_dashboards(cast: Cast, browser: Any, role: str, marker: str) -> None:
    page = browser(cast[role]).get("/")
    assert page.status_code == 200
    assert marker in page.text
    assert 'data-testid="stock-card"' not in page.text
    assert 'data-testid="eligibility-card"' not in page.text
