"""Blood bank report figures on a fixed dataset: units with a known history (dated events), units on the
shelf now, and donations, in the cast's hospital and in another one (which must never count). Every
figure is checked exactly, then the period boundaries, the period rules and the page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.bloodbank.models import BloodUnit, Donation, UnitEvent
from caresync.bloodbank.reports import service
from caresync.bloodbank.reports.service import CrossmatchRatio, Period
from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import din, make_donor, make_unit
from tests.conftest import Cast, web_login

API = "/api/v1/bloodbank/reports"
PERIOD = {"from": "2026-01-01", "to": "2026-02-28"}


def at(text: str) -> datetime:
    """A UTC instant from ``YYYY-MM-DD HH:MM[:SS]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def unit_with_history(
    org_id: uuid.UUID, group: str, component: str, steps: list[tuple[str, str, str]]
) -> uuid.UUID:
    """A unit whose history is ``steps`` of ``(when, to_status, note)`` (the first creates it); its status
    is the last step's."""
    start = at(steps[0][0])
    with transaction(session_factory()) as s:
        unit = BloodUnit(
            organisation_id=org_id,
            din=din(),
            product_code="E0336",
            component=component,
            blood_group=group,
            volume_ml=280,
            collected_at=start,
            expires_at=start + timedelta(days=42),
            status=steps[-1][1],
        )
        s.add(unit)
        s.flush()
        previous = None
        for when, status, note in steps:
            s.add(
                UnitEvent(
                    unit_id=unit.id,
                    at=at(when),
                    from_status=previous,
                    to_status=status,
                    organisation_id=org_id,
                    note=note,
                )
            )
            previous = status
    return unit.id


def donation(org_id: uuid.UUID, donor_id: uuid.UUID, when: str, outcome: str = "completed") -> None:
    """A donation visit with ``outcome``."""
    with transaction(session_factory()) as s:
        s.add(
            Donation(
                donor_id=donor_id,
                organisation_id=org_id,
                donation_type="whole_blood",
                outcome=outcome,
                din=din() if outcome == "completed" else None,
                collected_at=at(when),
                volume_ml=470 if outcome == "completed" else None,
            )
        )


def history(org_id: uuid.UUID) -> None:
    """Units that moved in and around January-February 2026 (see the expected figures below)."""
    issued_and_transfused = [("2025-12-20 08:00", "available", "")]
    issued_and_transfused += [("2026-01-10 09:00", "reserved", ""), ("2026-01-10 10:00", "crossmatched", "")]
    issued_and_transfused += [("2026-01-10 12:00", "issued", ""), ("2026-01-10 14:00", "transfused", "")]
    unit_with_history(org_id, "O+", "red_cells", issued_and_transfused)
    crossmatched_twice = [("2025-12-22 08:00", "available", ""), ("2026-01-15 09:00", "reserved", "")]
    crossmatched_twice += [("2026-01-15 10:00", "crossmatched", ""), ("2026-01-20 10:00", "available", "")]
    crossmatched_twice += [("2026-02-01 09:00", "reserved", ""), ("2026-02-01 10:00", "crossmatched", "")]
    crossmatched_twice += [("2026-02-02 08:00", "issued", ""), ("2026-02-02 11:00", "transfused", "")]
    unit_with_history(org_id, "O+", "red_cells", crossmatched_twice)
    crossmatched_then_expired = [("2025-12-01 08:00", "available", ""), ("2026-01-05 09:00", "reserved", "")]
    crossmatched_then_expired += [
        ("2026-01-05 10:00", "crossmatched", ""),
        ("2026-01-06 10:00", "available", ""),
    ]
    crossmatched_then_expired += [("2026-02-10 00:00", "expired", "")]
    unit_with_history(org_id, "A+", "red_cells", crossmatched_then_expired)
    unit_with_history(
        org_id,
        "A+",
        "platelets",
        [("2026-01-02 08:00", "available", ""), ("2026-01-07 08:00", "expired", ""),
         ("2026-01-08 08:00", "discarded", "disposal of an expired unit")],
    )  # fmt: skip
    for day in ("2026-02-14", "2026-01-25"):
        steps = [("2026-01-03 08:00", "available", ""), (f"{day} 08:00", "discarded", "broken bag")]
        unit_with_history(org_id, "O-", "plasma", steps)
    unit_with_history(
        org_id,
        "B+",
        "red_cells",
        [("2026-02-27 08:00", "available", ""), ("2026-02-28 23:59:59", "issued", "")],
    )
    unit_with_history(
        org_id, "B+", "red_cells", [("2026-02-27 08:00", "available", ""), ("2026-03-01 00:00", "issued", "")]
    )
    unit_with_history(
        org_id,
        "AB+",
        "red_cells",
        [("2025-12-20 08:00", "available", ""), ("2025-12-31 23:59:59", "issued", ""),
         ("2026-01-01 00:00", "transfused", "")],
    )  # fmt: skip
    unit_with_history(
        org_id,
        "O+",
        "red_cells",
        [("2026-01-04 08:00", "quarantined", ""), ("2026-01-05 08:00", "discarded", " ")],
    )


@dataclass
class Dataset:
    """The cast's hospital holding the dataset, and another hospital with units and donations of its own."""

    org: Organisation
    other: Organisation


def build_dataset(cast: Cast, make: Any) -> Dataset:
    """The fixed dataset: :func:`history` at the cast's hospital, units on the shelves and donations."""
    other = make.org()
    history(cast.org.id)
    unit_with_history(
        other.id,
        "O+",
        "red_cells",
        [("2026-01-09 08:00", "available", ""), ("2026-01-10 09:00", "reserved", ""),
         ("2026-01-10 10:00", "crossmatched", ""), ("2026-01-10 12:00", "issued", ""),
         ("2026-01-10 14:00", "transfused", "")],
    )  # fmt: skip
    # on the shelf now
    make_unit(cast.org, "O+", "red_cells")
    make_unit(cast.org, "O+", "red_cells", expires_in=timedelta(hours=-1))  # out of date: not available
    make_unit(cast.org, "O+", "red_cells", status="reserved")
    make_unit(cast.org, "O+", "red_cells", status="crossmatched")
    make_unit(cast.org, "A-", "platelets", status="quarantined")
    make_unit(other, "O+", "red_cells")
    # donations
    o_neg = make_donor(blood_group="O-")
    a_pos = make_donor(blood_group="A+")
    untyped = make_donor(blood_group=None)
    o_neg_2 = make_donor(blood_group="O-")
    for donor_id, when, outcome in (
        (o_neg.id, "2026-01-05 10:00", "completed"),
        (o_neg.id, "2025-12-30 10:00", "completed"),  # before the period
        (a_pos.id, "2026-01-20 10:00", "completed"),
        (a_pos.id, "2026-02-03 10:00", "deferred"),
        (untyped.id, "2026-02-28 23:00", "completed"),
        (o_neg_2.id, "2026-02-10 10:00", "completed"),
        (o_neg_2.id, "2026-02-11 10:00", "incomplete"),
    ):
        donation(cast.org.id, donor_id, when, outcome)
    donation(other.id, o_neg_2.id, "2026-01-10 10:00")
    return Dataset(org=cast.org, other=other)


@pytest.fixture
def dataset(cast: Cast, make: Any) -> Dataset:
    return build_dataset(cast, make)


EXPECTED_STOCK = [
    {"blood_group": "O+", "component": "red_cells", "available": 1, "reserved": 2, "quarantined": 0},
    {"blood_group": "A-", "component": "platelets", "available": 0, "reserved": 0, "quarantined": 1},
]
EXPECTED_UTILISATION = [
    {"blood_group": "O+", "component": "red_cells", "issued": 2, "transfused": 2},
    {"blood_group": "B+", "component": "red_cells", "issued": 1, "transfused": 0},
    {"blood_group": "AB+", "component": "red_cells", "issued": 0, "transfused": 1},
]
EXPECTED_MONTHS = [
    {"month": "2026-01", "issued": 1, "transfused": 2},
    {"month": "2026-02", "issued": 2, "transfused": 1},
]
EXPECTED_OUTDATES = [
    {"component": "red_cells", "expired": 1, "left_inventory": 6, "rate": pytest.approx(1 / 6)},
    {"component": "platelets", "expired": 1, "left_inventory": 1, "rate": 1.0},
    {"component": "plasma", "expired": 0, "left_inventory": 2, "rate": 0.0},
    {"component": "all", "expired": 2, "left_inventory": 9, "rate": pytest.approx(2 / 9)},
]
EXPECTED_WASTAGE = [
    {"component": "red_cells", "reason": "expired", "units": 1},
    {"component": "red_cells", "reason": "unspecified", "units": 1},
    {"component": "platelets", "reason": "expired", "units": 1},
    {"component": "plasma", "reason": "broken bag", "units": 2},
]
EXPECTED_DONATION_MONTHS = [
    {"month": "2026-01", "blood_group": "O-", "completed": 1},
    {"month": "2026-01", "blood_group": "A+", "completed": 1},
    {"month": "2026-02", "blood_group": "O-", "completed": 1},
    {"month": "2026-02", "blood_group": "untyped", "completed": 1},
]


def test_every_figure_of_the_fixed_dataset(
    client: TestClient, dataset: Dataset, cast: Cast, sign_in: Any
) -> None:
    response = client.get(API, params=PERIOD, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["organisation_id"], body["organisation_name"]) == (str(dataset.org.id), dataset.org.name)
    assert (body["date_from"], body["date_to"]) == ("2026-01-01", "2026-02-28")
    assert body["stock"] == EXPECTED_STOCK
    assert body["utilisation"] == EXPECTED_UTILISATION
    assert body["utilisation_by_month"] == EXPECTED_MONTHS
    assert body["outdates"] == EXPECTED_OUTDATES
    assert body["wastage"] == EXPECTED_WASTAGE
    # 4 crossmatches (one unit twice, one released then expired) for 3 units transfused
    assert body["crossmatch"] == {
        "crossmatched": 4,
        "transfused": 3,
        "ratio": 1.33,
        "benchmark": 2.0,
        "within_benchmark": True,
    }
    assert body["donations_by_month"] == EXPECTED_DONATION_MONTHS
    assert body["donations"] == {
        "completed": 4,
        "deferred": 1,
        "incomplete": 1,
        "visits": 6,
        "deferral_rate": pytest.approx(1 / 6),
    }


def test_the_other_hospital_sees_only_its_own_figures(
    client: TestClient, dataset: Dataset, make: Any, sign_in: Any
) -> None:
    staff = make.staff("bloodbank_staff", dataset.other)
    body = client.get(API, params=PERIOD, headers=sign_in(staff)).json()
    assert body["stock"] == [
        {"blood_group": "O+", "component": "red_cells", "available": 1, "reserved": 0, "quarantined": 0}
    ]
    assert body["utilisation"] == [
        {"blood_group": "O+", "component": "red_cells", "issued": 1, "transfused": 1}
    ]
    assert body["crossmatch"]["ratio"] == 1.0
    assert body["donations"]["completed"] == 1
    assert body["wastage"] == []


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        ("2025-12-31", "2025-12-31", [("AB+", 1, 0)]),  # issued at 23:59:59 on the last day
        ("2026-01-01", "2026-01-01", [("AB+", 0, 1)]),  # transfused at midnight on the first day
        ("2026-02-28", "2026-02-28", [("B+", 1, 0)]),
        ("2026-03-01", "2026-03-01", [("B+", 1, 0)]),  # the other B+ unit, at midnight
        ("2026-03-02", "2026-06-30", []),
    ],
    ids=["last-second-of-a-day", "midnight-starts-a-day", "end-of-february", "start-of-march", "nothing"],
)
def test_period_boundaries_are_whole_utc_days(
    dataset: Dataset, cast: Cast, date_from: str, date_to: str, expected: list[tuple[str, int, int]]
) -> None:
    with transaction(session_factory()) as s:
        report = service.organisation_report(
            s, principal(cast), date.fromisoformat(date_from), date.fromisoformat(date_to)
        )
    assert [(u.blood_group, u.issued, u.transfused) for u in report.utilisation] == expected


def principal(cast: Cast) -> Principal:
    """The cast's blood bank staff member as a principal."""
    person = cast["bloodbank_staff"]
    return Principal(user_id=person.id, role="bloodbank_staff", full_name="BB", organisation_id=cast.org.id)


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        (None, None, (date(2026, 3, 3), date(2026, 5, 31))),  # the last 90 days, today included
        (date(2026, 1, 1), None, (date(2026, 1, 1), date(2026, 3, 31))),
        (None, date(2026, 1, 31), (date(2025, 11, 3), date(2026, 1, 31))),
        (date(2026, 1, 1), date(2026, 1, 1), (date(2026, 1, 1), date(2026, 1, 1))),
        (date(2024, 1, 1), date(2026, 12, 31), (date(2024, 1, 1), date(2026, 12, 31))),  # 1096 days
    ],
    ids=["default", "from-only", "to-only", "one-day", "three-years"],
)
def test_period_defaults(date_from: date | None, date_to: date | None, expected: tuple[date, date]) -> None:
    asked = service.period(date_from, date_to, today=date(2026, 5, 31))
    assert (asked.date_from, asked.date_to) == expected


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("date_from", "date_to", "message"),
    [
        (date(2026, 2, 1), date(2026, 1, 31), "starts after it ends"),
        (date(2023, 12, 1), date(2026, 12, 31), "at most 1098 days"),
    ],
    ids=["reversed", "too-long"],
)
def test_period_refusals(date_from: date, date_to: date, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        service.period(date_from, date_to)
    assert caught.value.extra == {"field": "from"}


@pytest.mark.no_db
def test_period_months_span_year_ends() -> None:
    assert Period(date(2025, 11, 30), date(2026, 2, 1)).months == ["2025-11", "2025-12", "2026-01", "2026-02"]


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("crossmatched", "transfused", "ratio", "within"),
    [(4, 2, 2.0, True), (5, 2, 2.5, False), (3, 0, None, None), (0, 4, 0.0, True), (7, 3, 2.33, False)],
    ids=["at-the-benchmark", "above", "nothing-transfused", "no-crossmatch", "rounded"],
)
def test_crossmatch_ratio_against_the_benchmark(
    crossmatched: int, transfused: int, ratio: float | None, within: bool | None
) -> None:
    figure = CrossmatchRatio(crossmatched, transfused)
    assert (figure.ratio, figure.within_benchmark) == (ratio, within)


def test_an_empty_organisation_has_zeros_not_errors(client: TestClient, cast: Cast, sign_in: Any) -> None:
    body = client.get(API, params=PERIOD, headers=sign_in(cast["admin"])).json()
    assert body["stock"] == body["utilisation"] == body["wastage"] == body["donations_by_month"] == []
    assert body["utilisation_by_month"] == [
        {"month": "2026-01", "issued": 0, "transfused": 0},
        {"month": "2026-02", "issued": 0, "transfused": 0},
    ]
    assert body["outdates"] == [{"component": "all", "expired": 0, "left_inventory": 0, "rate": None}]
    assert body["crossmatch"]["ratio"] is None
    assert body["donations"]["deferral_rate"] is None


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "2026-03-01", "to": "2026-02-01"}, "starts after it ends"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most"),
    ],
    ids=["reversed", "too-long"],
)
def test_api_refuses_a_bad_period(
    client: TestClient, cast: Cast, sign_in: Any, params: dict[str, str], detail: str
) -> None:
    response = client.get(API, params=params, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert detail in response.json()["detail"]


def test_api_refuses_a_malformed_date(client: TestClient, cast: Cast, sign_in: Any) -> None:
    response = client.get(API, params={"from": "31/01/2026"}, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 422


def test_the_page_shows_the_figures_and_the_benchmark(
    client: TestClient, dataset: Dataset, cast: Cast
) -> None:
    web_login(client, cast["bloodbank_staff"])
    page = client.get("/bloodbank/reports", params=PERIOD)
    assert page.status_code == 200, page.text
    html = page.text
    assert dataset.org.name in html
    assert 'data-testid="kpi-ct">1.33<' in html
    assert "AABB benchmark ≤ 2.0: met" in html
    assert 'data-testid="kpi-outdate">22.2 %<' in html
    assert 'data-testid="kpi-transfused">3<' in html
    assert "broken bag" in html
    assert 'href="/bloodbank/reports/export.csv?from=2026-01-01&amp;to=2026-02-28"' in html
    assert 'id="report-charts"' in html
    assert '"months": ["2026-01", "2026-02"]' in html
    assert client.get("/bloodbank/reports/charts.js").headers["content-type"].startswith("text/javascript")


def test_the_page_defaults_to_the_last_90_days(client: TestClient, cast: Cast) -> None:
    web_login(client, cast["admin"])
    html = client.get("/bloodbank/reports").text
    today = utcnow().date()
    assert f"{(today - timedelta(days=89)).isoformat()} to {today.isoformat()}" in html
    assert "No units on the shelf" in html


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "Enter a date as YYYY-MM-DD."),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "starts after"),
    ],
    ids=["malformed", "reversed"],
)
def test_the_page_explains_a_bad_period(
    client: TestClient, cast: Cast, params: dict[str, str], message: str
) -> None:
    web_login(client, cast["bloodbank_staff"])
    page = client.get("/bloodbank/reports", params=params)
    assert page.status_code == 422
    assert message in page.text
    assert 'aria-invalid="true"' in page.text
