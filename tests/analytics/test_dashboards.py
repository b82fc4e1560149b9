"""The analytics dashboard (``/analytics``): the page per role, the figures of its sections on seeded
encounters, the filters (period, organisation), the forecast button, the doctor's risk list (with and
without a model), the pure helpers, and the permission matrix of its routes."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from caresync.analytics.dashboards import pages as dashboard_pages
from caresync.analytics.dashboards import service
from caresync.analytics.forecasting import jobs as forecast_jobs
from caresync.analytics.risk import service as risk_service
from caresync.analytics.risk import store
from caresync.analytics.statistics.trends import WeeklyTop, monday_of
from caresync.core.jobs import Job
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Patient
from tests.analytics.test_risk import generated_frame
from tests.conftest import Cast, Factory, web_login
from tests.permission_matrix import Case, assert_covered, check_pages, identities, only, pages

AddEncounter = Callable[..., uuid.UUID]
Browser = Callable[[str], tuple[TestClient, str]]


@pytest.fixture
def browser(app: object, cast: Cast) -> Iterator[Browser]:
    """``browser(role)``: a cookie-signed-in client of the cast member and its CSRF token."""
    clients: list[TestClient] = []

    def open_as(role: str) -> tuple[TestClient, str]:
        client = TestClient(app)  # type: ignore[arg-type]
        clients.append(client)
        return client, web_login(client, cast[role])

    yield open_as
    for client in clients:
        client.close()


def section(client: TestClient, name: str, **params: str) -> str:
    """The HTML of a dashboard section (asserting 200)."""
    response = client.get(f"/analytics/sections/{name}", params=params, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text
    return response.text


def text_of(html: str, name: str) -> str:
    """The text of the first element with ``data-testid=name`` (tags stripped, whitespace collapsed)."""
    match = re.search(rf'data-testid="{name}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no {name} in the fragment"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


@pytest.fixture
def seeded(cast: Cast, encounter: AddEncounter) -> dict[str, datetime]:
    """Encounters of the cast's patient: three this week (two influenza, one admitted hypertension), two
    influenza and one hypertension last week, one influenza the week before, one 200 days ago."""
    now = utcnow()
    monday = datetime.combine(monday_of(now.date()), datetime.min.time(), tzinfo=UTC)
    patient, org = cast["patient"].patient_id, cast.org.id
    just_now = now - timedelta(seconds=1)
    encounter(patient, org, just_now, ("J11",))
    encounter(patient, org, just_now, ("J11", "I10"))
    encounter(patient, org, just_now, ("I10",), outcome="admitted")
    for codes in (("J11",), ("J11",), ("I10",)):
        encounter(patient, org, monday - timedelta(days=5), codes)
    encounter(patient, org, monday - timedelta(days=12), ("J11",))
    encounter(patient, org, now - timedelta(days=200), ("A09",))
    return {"now": now, "monday": monday}


# --- pages per role -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sections"),
    [
        ("admin", ("kpis", "volume", "surges", "trends", "demographics", "associations")),
        ("doctor", ("risks", "trends", "seasonality")),
        ("nurse", ("today", "staffing", "trends")),
    ],
)
def test_page_has_the_sections_of_the_role(browser: Browser, role: str, sections: tuple[str, ...]) -> None:
    client, _ = browser(role)
    response = client.get("/analytics")
    assert response.status_code == 200
    shown = re.findall(r'hx-get="/analytics/sections/(\w+)\?', response.text)
    assert tuple(shown) == sections
    assert "/static/analytics-live.js" in response.text
    assert 'data-testid="analytics-filters"' in response.text
    assert ('data-testid="exports"' in response.text) is (role == "admin")
    assert "analytics-refresh from:body" in response.text


def test_home_dashboards_link_the_analytics(browser: Browser) -> None:
    doctor, _ = browser("doctor")
    assert 'hx-get="/analytics/sections/risks"' in doctor.get("/").text
    admin, _ = browser("admin")
    assert 'data-testid="analytics-card"' in admin.get("/").text


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    for path in ("/analytics", "/analytics/sections/kpis"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


# --- figures ------------------------------------------------------------------------------------------


def test_kpis_on_seeded_encounters(browser: Browser, seeded: dict[str, datetime]) -> None:
    client, _ = browser("admin")
    html = section(client, "kpis")
    assert text_of(html, "kpi-week") == "3"
    assert text_of(html, "kpi-period") == "7"  # 12 weeks: not the visit 200 days ago
    assert text_of(html, "kpi-admissions") == "14.3 %"  # 1 of 7
    assert text_of(html, "kpi-top") == "Influenza, virus not identified"  # 5 of the 7 encounters
    assert "(3 that whole week)" in html


def test_period_filters_change_the_numbers(browser: Browser, seeded: dict[str, datetime]) -> None:
    client, _ = browser("admin")
    assert text_of(section(client, "kpis", period="12m"), "kpi-period") == "8"
    long_ago = (seeded["now"] - timedelta(days=200)).date()
    custom = section(
        client,
        "kpis",
        period="custom",
        start=(long_ago - timedelta(days=1)).isoformat(),
        end=long_ago.isoformat(),
    )
    assert text_of(custom, "kpi-period") == "1"
    assert text_of(custom, "kpi-top") == "Infectious gastroenteritis and colitis"
    assert text_of(custom, "kpi-week") == "1"  # the last week of a custom period is the week of its end
    reversed_dates = client.get(
        "/analytics/sections/kpis", params={"period": "custom", "start": "2026-02-01", "end": "2026-01-01"}
    )
    assert reversed_dates.status_code == 422
    page = client.get("/analytics", params={"period": "custom", "start": "2026-01-01"})
    assert page.status_code == 200
    assert 'data-testid="filter-error"' in page.text


def test_organisation_filter(
    browser: Browser, cast: Cast, make: Factory, seeded: dict[str, datetime]
) -> None:
    client, _ = browser("admin")
    own = section(client, "kpis", organisation_id=str(cast.org.id))
    assert text_of(own, "kpi-week") == "3"
    other = make.org("Elsewhere General")
    assert (
        client.get("/analytics/sections/kpis", params={"organisation_id": str(other.id)}).status_code == 403
    )
    assert client.get("/analytics", params={"organisation_id": str(other.id)}).status_code == 403


def test_empty_states_without_encounters(browser: Browser) -> None:
    client, _ = browser("admin")
    kpis = section(client, "kpis")
    assert text_of(kpis, "kpi-week") == "0"
    assert text_of(kpis, "kpi-admissions") == "—"
    assert "No encounters in this period" in section(client, "volume")
    assert "No diagnoses in this period" in section(client, "trends")
    assert "No patients seen in this period" in section(client, "demographics")
    assert "Nothing to test" in section(client, "associations")
    assert "No conditions to assess" in section(client, "surges")


def test_trends_demographics_and_volume(browser: Browser, seeded: dict[str, datetime]) -> None:
    client, _ = browser("admin")
    trends = section(client, "trends")
    first = re.search(r'data-testid="trend-row" data-code="([^"]+)"', trends)
    assert first
    assert first.group(1) == "J11"
    assert text_of(trends, "trend-count") == "2"  # last (complete) week: 2 influenza, 1 the week before
    assert "+100.0 %" in trends
    demographics = section(client, "demographics")
    assert 'data-group="female"' in demographics or 'data-group="male"' in demographics
    volume = section(client, "volume")
    assert 'data-testid="no-forecast"' in volume
    chart = json.loads(re.search(r'id="chart-volume-data">(.*?)</script>', volume, re.S).group(1))  # type: ignore[union-attr]
    assert chart["data"]["datasets"][0]["data"][-3:] == [1.0, 3.0, 3.0]
    assert 'role="img"' in volume
    assert 'data-testid="volume-table"' in volume
    assert f"{seeded['monday'].date().isoformat()} (so far)" in volume


def test_today_for_the_nurse(browser: Browser, seeded: dict[str, datetime]) -> None:
    client, _ = browser("nurse")
    html = section(client, "today")
    assert text_of(html, "today-count") == "3"
    assert "No clinic queue to show." in html


def _store_forecast(owner: uuid.UUID, organisation_id: uuid.UUID, monday: date) -> None:
    """A finished weekly forecast job as the forecasting service keeps it (this week 10, next week 13)."""
    points = [
        {
            "period": (monday + timedelta(weeks=k)).isoformat(),
            "actual": None,
            "sarima": value,
            "lower_80": value - 2,
            "upper_80": value + 2,
            "lower_95": value - 4,
            "upper_95": value + 4,
            "seasonal_naive": value - 1,
        }
        for k, value in enumerate((10.0, 13.0, 12.0))
    ]
    result = {
        "key": forecast_jobs.result_key("weekly", [organisation_id]),
        "cache_key": "x",
        "data_version": "0:-",
        "organisation_ids": [str(organisation_id)],
        "generated_at": utcnow().isoformat(),
        "model": "ARIMA(1,1,1) + 3 yearly Fourier pairs",
        "baseline": "seasonal naive",
        "verdict": "SARIMA beats the seasonal naive on both splits.",
        "better": "SARIMA",
        "forecast": points,
    }
    with transaction(session_factory()) as s:
        s.add(
            Job(
                kind=forecast_jobs.FORECAST_JOB,
                owner_id=owner,
                status="succeeded",
                progress=100,
                result=json.dumps(result),
                finished_at=utcnow(),
            )
        )


def test_forecast_verdict_staffing_and_run_button(
    browser: Browser, cast: Cast, seeded: dict[str, datetime]
) -> None:
    admin, csrf = browser("admin")
    started = admin.post(
        "/analytics/forecast", data={"section": "volume", "period": "12w", "csrf_token": csrf}
    )
    assert started.status_code == 200
    assert "weeks" in text_of(started.text, "forecast-problem")  # far too little history for the weekly model
    _store_forecast(cast["admin"].id, cast.org.id, seeded["monday"].date())
    volume = section(admin, "volume")
    assert "SARIMA beats the seasonal naive" in text_of(volume, "forecast-verdict")
    assert 'data-testid="forecast-stale"' in volume  # encounters were recorded after it
    chart = json.loads(re.search(r'id="chart-volume-data">(.*?)</script>', volume, re.S).group(1))  # type: ignore[union-attr]
    names = [d["label"] for d in chart["data"]["datasets"]]
    assert "Forecast (SARIMA)" in names
    assert "80 % interval" in names
    assert chart["data"]["datasets"][names.index("80 % interval (lower)")]["legend"] is False
    assert chart["data"]["datasets"][names.index("Forecast (SARIMA)")]["data"][-3:] == [10.0, 13.0, 12.0]
    nurse, _ = browser("nurse")
    staffing = section(nurse, "staffing")
    assert text_of(staffing, "expected-this-week") == "10"
    assert text_of(staffing, "expected-next-week") == "13"
    assert "busier (+30 %)" in text_of(staffing, "staffing-advice")


@pytest.fixture
def no_models() -> Iterator[None]:
    shutil.rmtree(store.models_root(), ignore_errors=True)
    yield
    shutil.rmtree(store.models_root(), ignore_errors=True)


def test_doctor_risks_without_and_with_a_model(
    browser: Browser, cast: Cast, make: Factory, seeded: dict[str, datetime], no_models: None
) -> None:
    client, _ = browser("doctor")
    assert "No risk model in use" in section(client, "risks")
    card = risk_service.train_and_store(generated_frame(patients=150), organisation_id=None, synthetic=True)
    store.set_active(card["version"], store.DEFAULT_SCOPE)
    second = make.patient(given_name="Ada", family_name="Second")
    make.care(cast["doctor"], second)
    html = section(client, "risks")
    rows = re.findall(r'data-testid="risk-row" data-level="(\w+)"', html)
    assert len(rows) == 2
    assert cast.other_patient.family_name not in html
    assert 'data-testid="model-label"' in html
    with transaction(session_factory()) as s:
        patient = s.get(Patient, cast["patient"].patient_id)
        assert patient is not None
        assert patient.family_name in html


# --- pure helpers ---------------------------------------------------------------------------------------


def test_named_periods_and_custom_checks() -> None:
    today = date(2026, 3, 18)  # a Wednesday
    assert service.resolve_view("12w", None, None, None, today).start == date(2025, 12, 29)
    assert service.resolve_view("12m", None, None, None, today).start == date(2025, 4, 1)
    assert service.resolve_view("3y", None, None, None, today).start == date(2023, 4, 1)
    custom = service.resolve_view("custom", date(2026, 1, 1), date(2026, 1, 31), None, today)
    assert custom.query() == {"period": "custom", "start": "2026-01-01", "end": "2026-01-31"}
    for period, start, end in (
        ("5y", None, None),
        ("custom", None, today),
        ("custom", today, date(2026, 1, 1)),
    ):
        with pytest.raises(Exception, match=r"period|dates|before"):
            service.resolve_view(period, start, end, None, today)


def test_staffing_advice_and_latest_complete_week() -> None:
    monday = date(2026, 3, 16)
    forecast = {
        "forecast": [{"period": "2026-03-16", "sarima": 100.0}, {"period": "2026-03-23", "sarima": 95.0}]
    }
    steady = service.staffing(forecast, date(2026, 3, 18))
    assert steady.this_week == monday
    assert steady.change_pct == -5.0
    assert "usual staffing" in steady.advice
    assert (
        "quieter"
        in service.staffing(
            {
                "forecast": [
                    {"period": "2026-03-16", "sarima": 100.0},
                    {"period": "2026-03-23", "sarima": 80.0},
                ]
            },
            date(2026, 3, 18),
        ).advice
    )
    rows = [
        WeeklyTop("2026-W11", date(2026, 3, 9), 1, "J11", "Influenza", 5, 4, 1, 25.0),
        WeeklyTop("2026-W12", date(2026, 3, 16), 1, "J11", "Influenza", 1, 5, -4, -80.0),
    ]
    assert [r.week for r in service.latest_complete_week(rows, date(2026, 3, 18))] == ["2026-W11"]
    assert [r.week for r in service.latest_complete_week(rows, date(2026, 3, 23))] == ["2026-W12"]


# --- permission matrix ----------------------------------------------------------------------------------

VIEWERS = ("admin", "doctor", "nurse")
PAGE_CASES: dict[tuple[str, str], Case[Cast]] = {
    # blood bank staff and donors are sent to their own analytics page (/analytics/blood)
    ("GET", "/analytics"): Case(pages({**only(200, *VIEWERS), "bloodbank_staff": 303, "donor": 303})),
    ("GET", "/analytics/sections/{section}"): Case(
        pages(only(200, *VIEWERS)), path=lambda _w: {"section": "kpis"}
    ),
    ("POST", "/analytics/forecast"): Case(
        pages(only(200, *VIEWERS)), data=lambda _w: {"section": "staffing", "period": "12w"}
    ),
}


def test_permission_matrix(app: object, cast: Cast, seeded: dict[str, datetime]) -> None:
    assert_covered((dashboard_pages.router, PAGE_CASES))
    check_pages(app, cast, cast, PAGE_CASES, secrets=identities(cast.other_patient))


@pytest.mark.parametrize("role", ["bloodbank_staff", "donor"])
def test_blood_bank_staff_and_donors_get_the_blood_supply_analytics(
    client: TestClient, cast: Cast, role: str
) -> None:
    web_login(client, cast[role])
    response = client.get("/analytics", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == dashboard_pages.BLOOD_ANALYTICS
    assert client.get(dashboard_pages.BLOOD_ANALYTICS).status_code == 200
