"""Blood supply analytics against the database: the weekly series against hand-counted events and
donations, the outlook of a blood bank short of O- red cells, donation trends (first-time against returning
donors), and the donor's own view (only their own donations; only the level of need of their group)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from caresync.analytics import cache
from caresync.analytics.blood import service
from caresync.bloodbank.models import BloodBankPolicy, Donation, UnitEvent
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import din, make_donor, make_unit
from tests.conftest import Factory, Person

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(days: float, hours: float = 10) -> datetime:
    """A moment ``days`` after Monday 2 March 2026 (UTC)."""
    return MONDAY + timedelta(days=days, hours=hours)


def event(unit: Any, to_status: str, when: datetime, from_status: str | None = None, org: Any = None) -> None:
    """Add one history event of a unit."""
    with transaction(session_factory()) as s:
        org_id = org or unit.organisation_id
        s.add(
            UnitEvent(
                unit_id=unit.id, from_status=from_status, to_status=to_status, at=when, organisation_id=org_id
            )
        )


def donation(donor_id: uuid.UUID, org_id: uuid.UUID, when: datetime, outcome: str = "completed") -> None:
    """Add one donation visit."""
    with transaction(session_factory()) as s:
        s.add(
            Donation(
                donor_id=donor_id,
                organisation_id=org_id,
                donation_type="whole_blood",
                outcome=outcome,
                din=din() if outcome == "completed" else None,
                collected_at=when,
            )
        )


def principal(person: Person) -> Principal:
    """The principal of a factory-made person."""
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
    )


def test_weekly_series_counts_distinct_units_per_week_group_and_component(make: Factory) -> None:
    bank, other = make.org(), make.org()
    staff = principal(make.user("bloodbank_staff", org=bank))
    a, b, c = (make_unit(bank, "O+") for _ in range(3))
    d = make_unit(bank, "A-", "platelets")
    event(a, "issued", at(0), "available")  # week 1: issued, then transfused
    event(a, "transfused", at(1), "issued")
    event(b, "issued", at(2), "available")  # issued, returned and issued again: one unit issued that week
    event(b, "available", at(3), "issued")
    event(b, "issued", at(4), "available")
    event(c, "expired", at(6, 23.5), "available")  # Sunday 23:30: still week 1
    event(
        c, "discarded", at(7, 0), "expired"
    )  # Monday 00:00, week 2: disposing of an expired unit, not counted
    event(d, "discarded", at(8), "available")  # week 2: discarded for another reason
    foreign = make_unit(other, "O+")
    event(foreign, "issued", at(1), "available")  # another blood bank's: not counted
    event(a, "issued", at(12), "available", org=other.id)  # moved by the bank holding it then: not ours
    donor = make_donor(organisation=bank)
    for when, outcome in (
        (at(0), "completed"),
        (at(2), "completed"),
        (at(3), "deferred"),
        (at(9), "completed"),
    ):
        donation(donor.id, bank.id, when, outcome)
    with transaction(session_factory()) as s:
        found = service.weekly_series(s, staff, None, date(2026, 3, 2), date(2026, 3, 15))
    assert found.weeks == ["2026-03-02", "2026-03-09"]
    rows = {
        (r.week, r.blood_group, r.component): (r.issued, r.transfused, r.expired, r.discarded)
        for r in found.usage
    }
    assert rows == {
        ("2026-03-02", "O+", "red_cells"): (2, 1, 1, 0),
        ("2026-03-09", "A-", "platelets"): (0, 0, 0, 1),
    }
    assert [(w.week, w.donations) for w in found.donations] == [("2026-03-02", 2), ("2026-03-09", 1)]


def test_outlook_flags_the_group_short_of_red_cells_and_is_cached_until_data_change(make: Factory) -> None:
    bank = make.org()
    staff = principal(make.user("bloodbank_staff", org=bank))
    with transaction(session_factory()) as s:
        s.add(BloodBankPolicy(organisation_id=bank.id, low_stock_days=3.0, critical_stock_days=1.0))
    now = utcnow()
    this_monday = datetime.combine(
        now.date() - timedelta(days=now.weekday()), datetime.min.time(), tzinfo=UTC
    )
    for week in range(1, 13):  # twelve whole weeks: 7 O- red cells issued a week (1 a day)
        for day in range(7):
            unit = make_unit(bank, "O-", status="transfused")
            event(unit, "issued", this_monday - timedelta(weeks=week, days=-day, hours=-9), "available")
    make_unit(bank, "O-")  # one on the shelf: one day of supply
    for _ in range(30):
        make_unit(bank, "A+", expires_in=timedelta(days=35))  # A+: none used, so no demand known
    cache.results.clear()
    with transaction(session_factory()) as s:
        outlook = service.outlook(s, staff, None, "analytics.blood.shortages")
    o_neg = next(x for x in outlook.supplies if x.blood_group == "O-")
    assert o_neg.daily_demand == pytest.approx(1.0)
    assert (o_neg.available, o_neg.level, o_neg.shortage_date) == (1, "short", now.date())
    a_pos = next(x for x in outlook.supplies if x.blood_group == "A+")
    assert (a_pos.days_of_supply, a_pos.level) == (None, "ok")
    assert outlook.call_groups == ["O-"]
    forecast = next(f for f in outlook.forecasts if f.blood_group == "O-")
    assert forecast.weeks == 12
    assert forecast.method == "moving average"
    assert len(forecast.evaluations) == 2
    with transaction(session_factory()) as s:
        assert service.outlook(s, staff, None, "x") is outlook  # cached
    make_unit(bank, "O-")
    with transaction(session_factory()) as s:
        again = service.outlook(s, staff, None, "x")
    assert again is not outlook
    assert next(x for x in again.supplies if x.blood_group == "O-").available == 2


def test_staff_cannot_ask_for_another_blood_bank(make: Factory) -> None:
    bank, other = make.org(), make.org()
    staff = make.user("bloodbank_staff", org=bank)
    with transaction(session_factory()) as s, pytest.raises(Forbidden):
        service.weekly_series(s, principal(staff), other.id)
    with transaction(session_factory()) as s:
        denied = s.execute(
            select(AuditEntry).where(AuditEntry.actor_id == staff.id, AuditEntry.outcome == "denied")
        ).scalars()
        assert [e.action for e in denied] == ["analytics.blood.series"]


def test_donation_trends_tell_first_time_from_returning_donors(make: Factory) -> None:
    bank = make.org()
    staff = principal(make.user("bloodbank_staff", org=bank))
    regular = make_donor(organisation=bank, blood_group="A+", donations=((date(2025, 12, 1), "whole_blood"),))
    newcomer = make_donor(organisation=bank, blood_group="O-")
    donation(regular.id, bank.id, datetime(2026, 3, 4, 10, tzinfo=UTC))
    donation(newcomer.id, bank.id, datetime(2026, 3, 5, 10, tzinfo=UTC))
    donation(newcomer.id, bank.id, datetime(2026, 4, 20, 10, tzinfo=UTC))
    with transaction(session_factory()) as s:
        trends = service.donation_trends(s, staff, None, date(2026, 3, 1), date(2026, 4, 30))
    assert [(m.month, m.first_time, m.returning) for m in trends.by_donor] == [
        ("2026-03", 1, 1),
        ("2026-04", 0, 1),
    ]
    assert [(r.month, r.blood_group, r.completed) for r in trends.by_group] == [
        ("2026-03", "O-", 1),
        ("2026-03", "A+", 1),
        ("2026-04", "O-", 1),
    ]
