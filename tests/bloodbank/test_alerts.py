"""Blood bank alerts: what a scan raises on fixed stock and requests (low/critical thresholds, per-cell
overrides, the expiry window, urgent requests short of units), resolving when the condition clears, never
two open alerts for one subject, staff told once; and the alerts API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from caresync.bloodbank.alerts import jobs, service
from caresync.bloodbank.models import BloodAlert, BloodBankPolicy, BloodUnit
from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Factory, Person

API = "/api/v1/bloodbank"


@pytest.fixture
def bank(make: Factory) -> Organisation:
    """A blood bank whose O- red cells are used 2 units a day (baseline), other cells unknown use."""
    org = make.org(kind="blood_bank")
    set_policy(org, baseline_daily_use={"O-:red_cells": 2.0})
    return org


@pytest.fixture
def staff(make: Factory, bank: Organisation) -> Person:
    return make.staff("bloodbank_staff", bank)


def set_policy(org: Organisation, **fields: Any) -> None:
    with transaction(session_factory()) as s:
        policy = s.get(BloodBankPolicy, org.id) or BloodBankPolicy(organisation_id=org.id)
        for key, value in fields.items():
            setattr(policy, key, value)
        s.add(policy)


def units(org: Organisation, count: int, group: str = "O-", component: str = "red_cells", **kw: Any) -> None:
    for _ in range(count):
        make_unit(org, group, component, **kw)


def scan(org: Organisation, at: Any = None) -> service.ScanResult:
    with transaction(session_factory()) as s:
        result = service.scan(s, org.id, at or utcnow())
        for alert in (*result.raised, *result.resolved, *result.escalated):
            s.refresh(alert)
        s.expunge_all()
    return result


def open_alerts(org: Organisation) -> list[BloodAlert]:
    with transaction(session_factory()) as s:
        rows = s.scalars(
            select(BloodAlert)
            .where(BloodAlert.organisation_id == org.id, BloodAlert.resolved_at.is_(None))
            .order_by(BloodAlert.kind, BloodAlert.subject)
        ).all()
        s.expunge_all()
        return list(rows)


# --- low stock ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (10, None),  # 5 days of supply
        (6, None),  # exactly 3 days: not below the low threshold
        (5, "warning"),  # 2.5 days
        (2, "warning"),  # exactly 1 day: not below the critical threshold
        (1, "critical"),  # 0.5 day
        (0, "critical"),  # none left
    ],
    ids=["5-days", "3-days-boundary", "2.5-days", "1-day-boundary", "half-day", "empty"],
)
def test_low_stock_severity_follows_days_of_supply(
    bank: Organisation, available: int, expected: str | None
) -> None:
    units(bank, available)
    scan(bank)
    alerts = [a for a in open_alerts(bank) if a.kind == "low_stock"]
    if expected is None:
        assert alerts == []
        return
    assert [(a.subject, a.severity) for a in alerts] == [("O-:red_cells", expected)]
    figures = alerts[0].figures
    assert figures["available"] == available
    assert figures["days_of_supply"] == pytest.approx(available / 2.0)
    assert figures["low_days"] == 3.0
    assert "O- red cells" in alerts[0].message


def test_a_per_cell_threshold_overrides_the_default(bank: Organisation) -> None:
    units(bank, 8)  # 4 days: fine by the default 3 days
    scan(bank)
    assert open_alerts(bank) == []
    set_policy(bank, stock_thresholds={"O-:red_cells": 5.0})
    result = scan(bank)
    assert [(a.subject, a.severity, a.figures["low_days"]) for a in result.raised] == [
        ("O-:red_cells", "warning", 5.0)
    ]


def test_cells_without_known_use_raise_no_low_stock(bank: Organisation) -> None:
    units(bank, 1, "AB-", "platelets")  # no baseline, no issues: days of supply unknown
    assert [a.subject for a in scan(bank).raised] == ["O-:red_cells"]  # the empty cell with a known use


# --- expiring -----------------------------------------------------------------------------------------------


def test_expiring_counts_available_units_inside_the_window(bank: Organisation) -> None:
    set_policy(bank, expiry_warning_days=3)
    now = utcnow()
    for hours in (30, 60, 71):
        make_unit(bank, "A+", "plasma", expires_in=timedelta(hours=hours))
    make_unit(bank, "A+", "plasma", expires_in=timedelta(hours=73))  # outside the 3 days
    make_unit(bank, "A+", "plasma", status="quarantined", expires_in=timedelta(hours=10))  # not available
    make_unit(bank, "A+", "plasma", status="expired", expires_in=timedelta(hours=-1))
    make_unit(bank, "B+", "platelets", expires_in=timedelta(hours=12))
    scan(bank, now)
    alerts = {a.subject: a for a in open_alerts(bank) if a.kind == "expiring"}
    assert set(alerts) == {"expiring:A+:plasma", "expiring:B+:platelets"}
    plasma = alerts["expiring:A+:plasma"]
    assert plasma.figures["count"] == 3
    assert plasma.figures["window_days"] == 3
    assert plasma.severity == "warning"  # first expiry in 30 h
    assert plasma.message.startswith("3 available A+ plasma units expire within 3 days")
    assert alerts["expiring:B+:platelets"].severity == "critical"  # within a day
    assert alerts["expiring:B+:platelets"].figures["count"] == 1


def test_a_wider_window_catches_more(bank: Organisation) -> None:
    make_unit(bank, "A+", "plasma", expires_in=timedelta(days=5))
    scan(bank)
    assert [a for a in open_alerts(bank) if a.kind == "expiring"] == []
    set_policy(bank, expiry_warning_days=7)
    assert [a.subject for a in scan(bank).raised] == ["expiring:A+:plasma"]


# --- unmet urgent requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("urgency", "needed_in", "held", "expected"),
    [
        ("urgent", timedelta(hours=1), 0, "warning"),
        ("emergency", timedelta(hours=1), 0, "critical"),
        ("urgent", timedelta(minutes=-10), 0, "critical"),  # overdue
        ("urgent", timedelta(minutes=119), 1, "warning"),  # half held, still short
        ("urgent", timedelta(hours=3), 0, None),  # not due yet
        ("routine", timedelta(minutes=-10), 0, None),  # routine requests are not alerted
        ("emergency", timedelta(hours=1), 2, None),  # fully held
    ],
    ids=["urgent-1h", "emergency-1h", "urgent-overdue", "urgent-half-held", "urgent-3h", "routine", "held"],
)
def test_unmet_urgent_requests(
    bank: Organisation,
    staff: Person,
    make: Factory,
    urgency: str,
    needed_in: timedelta,
    held: int,
    expected: str | None,
) -> None:
    patient = make.patient(given_name="Henrietta", family_name="Quarmby")
    request = make_request(bank, patient, staff.id, urgency=urgency, needed_in=needed_in, units_requested=2)
    for _ in range(held):
        make_unit(bank, "A+", "red_cells", status="reserved", request_id=request.id)
    scan(bank)
    alerts = [a for a in open_alerts(bank) if a.kind == "unmet_request"]
    if expected is None:
        assert alerts == []
        return
    [alert] = alerts
    assert (alert.subject, alert.severity) == (str(request.id), expected)
    assert alert.figures["missing"] == 2 - held
    assert "Quarmby" not in alert.message
    assert "Henrietta" not in alert.message
    assert f"is {2 - held} short" in alert.message


# --- lifecycle: resolve, no duplicates, notify once ---------------------------------------------------------


def test_an_alert_resolves_when_its_condition_clears_and_can_be_raised_again(bank: Organisation) -> None:
    units(bank, 1)
    [raised] = scan(bank).raised
    units(bank, 9)  # 5 days
    result = scan(bank)
    assert [a.id for a in result.resolved] == [raised.id]
    assert result.resolved[0].resolved_at is not None
    assert open_alerts(bank) == []
    with transaction(session_factory()) as s:  # the shelf empties again
        s.execute(update(BloodUnit).where(BloodUnit.organisation_id == bank.id).values(status="discarded"))
    [again] = scan(bank).raised
    assert again.id != raised.id
    assert again.severity == "critical"
    assert [a.id for a in open_alerts(bank)] == [again.id]


def test_scanning_twice_keeps_one_open_alert(bank: Organisation) -> None:
    units(bank, 2)
    assert len(scan(bank).raised) == 1
    second = scan(bank)
    assert second.raised == []
    assert second.resolved == []
    assert second.still_open == 1
    assert len(open_alerts(bank)) == 1


def test_escalation_to_critical_updates_the_same_alert(bank: Organisation, staff: Person) -> None:
    units(bank, 5)  # 2.5 days: warning
    [alert] = scan(bank).raised
    set_policy(bank, critical_stock_days=3.0)  # now 2.5 < 3 -> critical
    result = scan(bank)
    assert [a.id for a in result.escalated] == [alert.id]
    [now_open] = open_alerts(bank)
    assert (now_open.id, now_open.severity) == (alert.id, "critical")
    assert notifications(staff) == 2  # raised, then escalated


def test_the_database_refuses_a_second_open_alert_for_one_subject(bank: Organisation) -> None:
    def add() -> None:
        with transaction(session_factory()) as s:
            s.add(
                BloodAlert(
                    organisation_id=bank.id,
                    kind="low_stock",
                    subject="O-:red_cells",
                    severity="warning",
                    message="x",
                )
            )

    add()
    with pytest.raises(IntegrityError):
        add()


def notifications(person: Person) -> int:
    with transaction(session_factory()) as s:
        query = select(func.count()).where(
            Notification.user_id == person.id, Notification.kind.like("bloodbank.alert%")
        )
        return int(s.execute(query).scalar_one())


def test_staff_are_told_once_per_new_alert(
    bank: Organisation, staff: Person, make: Factory, outbox: Path
) -> None:
    colleague = make.staff("bloodbank_staff", bank)
    elsewhere = make.staff("bloodbank_staff", make.org(kind="blood_bank"))
    before = set(outbox.glob("*.eml"))
    units(bank, 1)
    scan(bank)
    scan(bank)
    scan(bank)
    assert (notifications(staff), notifications(colleague), notifications(elsewhere)) == (1, 1, 0)
    mails = [p.read_text() for p in set(outbox.glob("*.eml")) - before]
    assert sorted(m.count(staff.email) + m.count(colleague.email) for m in mails) == [1, 1]
    assert all("O- red cells" in m for m in mails)


def test_scan_all_covers_organisations_with_stock_a_policy_or_open_alerts(
    bank: Organisation, make: Factory
) -> None:
    stocked = make.org(kind="blood_bank")
    units(stocked, 1, "A+", "plasma")
    unrelated = make.org(kind="clinic")
    with transaction(session_factory()) as s:
        scanned = service.organisations_to_scan(s)
        assert {bank.id, stocked.id} <= set(scanned)  # a policy (even with an empty shelf), units
        assert unrelated.id not in scanned
        totals = service.scan_all(s, utcnow())
    assert totals["raised"] >= 1


# --- API ----------------------------------------------------------------------------------------------------


def test_api_lists_open_alerts_filters_and_scans(
    client: Any, sign_in: Any, bank: Organisation, staff: Person, make: Factory
) -> None:
    headers = sign_in(staff)
    units(bank, 1)
    make_unit(bank, "A+", "plasma", expires_in=timedelta(days=1, hours=6))
    response = client.post(f"{API}/alerts/scan", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(a["kind"] for a in body["raised"]) == ["expiring", "low_stock"]
    assert body["still_open"] == 2
    listed = client.get(f"{API}/alerts", headers=headers).json()
    assert {a["subject"] for a in listed["items"]} == {"O-:red_cells", "expiring:A+:plasma"}
    only = client.get(f"{API}/alerts", params={"kind": "expiring"}, headers=headers).json()["items"]
    assert [a["subject"] for a in only] == ["expiring:A+:plasma"]
    assert client.get(f"{API}/alerts", params={"state": "resolved"}, headers=headers).json()["items"] == []
    bad = client.get(f"{API}/alerts", params={"kind": "fire"}, headers=headers)
    assert bad.status_code == 422
    # another blood bank sees none of it
    other = make.staff("bloodbank_staff", make.org(kind="blood_bank"))
    assert client.get(f"{API}/alerts", headers=sign_in(other)).json()["items"] == []
    with transaction(session_factory()) as s:
        audited = s.scalar(
            select(func.count()).where(
                AuditEntry.actor_id == staff.id, AuditEntry.action == "bloodbank.alerts.scan"
            )
        )
    assert audited == 1


def test_api_pages_through_alerts(client: Any, sign_in: Any, bank: Organisation, staff: Person) -> None:
    for group in ("O+", "A+", "B+"):
        make_unit(bank, group, "plasma", expires_in=timedelta(days=1))
    scan(bank)  # three expiring, and the empty O- red cells
    headers = sign_in(staff)
    first = client.get(f"{API}/alerts", params={"limit": 3}, headers=headers).json()
    assert len(first["items"]) == 3
    assert first["next_cursor"]
    rest = client.get(
        f"{API}/alerts", params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    seen = {a["id"] for a in first["items"]} | {a["id"] for a in rest["items"]}
    assert len(seen) == 4


def test_the_periodic_jobs_scan_and_advance(bank: Organisation, staff: Person) -> None:
    units(bank, 1)
    totals = jobs.scan_alerts.call_local()
    assert totals["raised"] == 1
    assert [a.subject for a in open_alerts(bank)] == ["O-:red_cells"]
    assert jobs.scan_alerts.call_local()["raised"] == 0
    assert jobs.advance_callouts.call_local() == {"closed": 0, "waves": 0, "contacted": 0}


def test_emails_about_unmet_requests_carry_no_request_details(
    bank: Organisation, staff: Person, make: Factory, outbox: Path
) -> None:
    units(bank, 20)  # no low-stock alert: only the request's
    request = make_request(
        bank, make.patient(), staff.id, urgency="emergency", needed_in=timedelta(minutes=30)
    )
    before = set(outbox.glob("*.eml"))
    [alert] = scan(bank).raised
    assert alert.subject == str(request.id)
    [mail] = [p.read_text() for p in set(outbox.glob("*.eml")) - before]
    assert "An urgent blood request is still short of units." in mail
    assert "A+" not in mail
    assert "red cells" not in mail
