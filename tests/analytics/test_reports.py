"""PDF reports: each role's report holds its sections (read back with ``pdftotext``, poppler-utils), a
doctor's lists the patients at moderate risk or above and counts the others, forecasts are reused while the
whole weeks are the same, the charts are inline SVG, the job flow (202, progress, download; 409 while
running or failed), who may ask and download (permission matrices: another user's report is 404), and the
page's "Generate report"."""

from __future__ import annotations

import gc
import json
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.analytics import cache
from caresync.analytics.forecasting import jobs as forecast_jobs
from caresync.analytics.reports import api as reports_api
from caresync.analytics.reports import charts, service
from caresync.analytics.reports import jobs as report_jobs
from caresync.analytics.reports import pages as reports_pages
from caresync.analytics.risk import service as risk_service
from caresync.analytics.risk import store
from caresync.analytics.risk.model import RiskResult
from caresync.analytics.rules import RiskLevel
from caresync.analytics.statistics.trends import WeeklyTop
from caresync.core.jobs import Job, huey
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.service import acting_user
from tests.analytics.test_forecasting_api import seed_history
from tests.analytics.test_risk import generated_frame
from tests.conftest import API, Cast, Factory, web_login
from tests.pdftext import pdf_text
from tests.permission_matrix import Case, assert_covered, check_api, check_pages, only, pages

REPORTS = f"{API}/analytics/reports"
THREE_YEARS = 1100  # days: enough whole weeks (149) for the weekly forecast's 70/30 split
World = dict[str, str]
Headers = Callable[..., dict[str, str]]
AddEncounter = Callable[..., uuid.UUID]


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    cache.results.clear()
    shutil.rmtree(store.models_root(), ignore_errors=True)
    yield
    cache.results.clear()
    shutil.rmtree(store.models_root(), ignore_errors=True)


@pytest.fixture(scope="module")
def model_card() -> dict[str, Any]:
    """A small shared model trained once on generated synthetic data (labelled "demonstration only")."""
    card = risk_service.train_and_store(
        generated_frame(patients=150), organisation_id=None, synthetic=True, max_rows=600
    )
    shutil.copytree(store.models_root() / card["version"], _kept(card["version"]), dirs_exist_ok=True)
    return card


def _kept(version: str) -> Any:
    return store.models_root().parent / f"kept-{version}"


@pytest.fixture
def active_model(model_card: dict[str, Any]) -> str:
    """The module's model, stored again (``_fresh`` removes it) and active for every organisation."""
    version = str(model_card["version"])
    shutil.copytree(_kept(version), store.models_root() / version, dirs_exist_ok=True)
    store.set_active(version, store.DEFAULT_SCOPE)
    return version


def make_report(client: TestClient, headers: dict[str, str], **body: Any) -> tuple[dict[str, Any], str]:
    """Ask for a report (the job runs at once in tests), check the job, and return it with the PDF's text."""
    response = client.post(REPORTS, json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = client.get(f"{API}/jobs/{response.json()['id']}", headers=headers).json()
    assert job["status"] == "succeeded", job
    assert job["kind"] == service.REPORT_JOB
    assert job["progress"] == 100
    pdf = client.get(f"{REPORTS}/{job['id']}/pdf", headers=headers)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert f'filename="{job["result"]["filename"]}"' in pdf.headers["content-disposition"]
    assert pdf.content.startswith(b"%PDF-")
    assert len(pdf.content) == job["result"]["size"]
    return job, pdf_text(pdf.content)


def seed_population(
    make: Factory, encounter: AddEncounter, organisation_id: uuid.UUID, count: int = 24
) -> None:
    """``count`` patients of both sexes and four ages, one recent encounter each: the older ones with
    hypertension, the younger ones with influenza (something for the chi-square tests to find)."""
    when = utcnow() - timedelta(days=20)
    for i in range(count):
        born = date(1950 + 15 * (i % 4), 3, 1)
        patient = make.patient(birth_date=born, sex=("female", "male")[i % 2])
        encounter(patient.id, organisation_id, when, ("I10",) if born.year < 1970 else ("J11",))


def test_admin_report_has_every_section_and_is_fast(
    client: TestClient,
    cast: Cast,
    sign_in: Headers,
    make: Factory,
    encounter: AddEncounter,
    active_model: str,
) -> None:
    seed_history(cast.org.id, cast["patient"].patient_id, days=THREE_YEARS, spike_days=14)
    seed_population(make, encounter, cast.org.id)
    job, text = make_report(client, sign_in(cast["admin"]))
    assert job["result"]["kind"] == "admin"
    today = utcnow().date()
    assert job["result"]["end"] == today.isoformat()
    assert job["result"]["start"] == (today - timedelta(days=364)).isoformat()
    for expected in (
        "CareSync activity report",
        cast.org.name,
        "Encounters",  # KPIs
        "Forecast this week",
        "Weekly patient volume and forecast",  # the chart's own title: the SVG is in the PDF
        "Encounters per week",  # its axis
        "MAE MSE RMSE MAPE % MASE",
        "Seasonal naive",
        "70/30",
        "80/20",
        "(mean over the 70/30 and 80/20 splits)",  # the overall verdict
        "Surges",
        "A09 Infectious gastroenteritis and colitis",  # the injected spike
        "Top conditions of the last whole week",
        "J11 Influenza",
        "Demographics",
        "Patients by age band",  # chart
        "Associations",
        "tests significant after the correction",
        "Cramér's",  # the header of the V column (wrapped)
        "χ²",
        "Risk model",
        active_model,
        "Demonstration only - not for clinical use",
        "Neural network",
        "Random forest",
        "ROC-AUC",
        "Brier",
    ):
        assert expected in text, (expected, text)
    assert "SARIMA (better)" in text or "Seasonal naive (better)" in text
    assert job["result"]["seconds"] < 30  # the target (< 3 s) is measured by bench/, not asserted on CI


def test_doctor_report_lists_the_care_list_risks(
    client: TestClient, cast: Cast, sign_in: Headers, active_model: str
) -> None:
    seed_history(cast.org.id, cast["patient"].patient_id, days=400)
    job, text = make_report(client, sign_in(cast["doctor"]))
    assert job["result"]["kind"] == "doctor"
    patient = cast["patient"]
    for expected in (
        "CareSync clinical report",
        "No forecast",  # 400 days are too short for the weekly model: said, not failed
        "Top conditions of the last whole week",
        "J11 Influenza",
        "Seasonality",
        "Seasonal profile (ratio to the monthly mean)",  # chart
        "Your patients' risk",
        "demonstration only",
        active_model,
    ):
        assert expected in text, (expected, text)
    assert patient.patient is not None
    with transaction(session_factory()) as s:  # each patient's risk was audited with the patient's id
        from caresync.core.audit import AuditEntry

        audited = s.query(AuditEntry).filter_by(
            action="analytics.risk.patient", patient_id=patient.patient_id
        )
        assert audited.count() == 1
        level = json.loads(audited.one().detail)["level"]
    assert cast.other_patient.family_name not in text
    if level == "low":  # counted, not listed
        assert patient.patient.family_name not in text
        assert "1 patient in your care is at low risk (not listed)." in text
    else:  # the one patient in care, listed with their level
        assert patient.patient.family_name in text
        assert f" {level} " in text
        assert "0 patients in your care are at low risk (not listed)." in text


def _risk(patient_id: uuid.UUID, level: RiskLevel, consensus: float) -> risk_service.PatientRisk:
    result = RiskResult(level, consensus, {"mlp": consensus, "forest": consensus}, False, ())
    return risk_service.PatientRisk(patient_id, utcnow(), "v1", "demonstration only", result)


def test_doctor_report_lists_moderate_risk_and_above_and_counts_the_low(
    cast: Cast, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moderate, high and critical risks are listed, the highest level first and then by probability;
    low risks are only counted, with a line saying so."""
    doctor = cast["doctor"]
    risks = {
        "Adams": (RiskLevel.MODERATE, 0.20),
        "Brown": (RiskLevel.CRITICAL, 0.55),
        "Clark": (RiskLevel.LOW, 0.05),
        "Davis": (RiskLevel.HIGH, 0.45),
        "Evans": (RiskLevel.LOW, 0.02),
        "Fox": (RiskLevel.MODERATE, 0.30),
    }
    patients = [make.patient(family_name=name) for name in risks]
    names = {p.id: p.family_name for p in patients}
    monkeypatch.setattr(
        service.risk,
        "visible_patients_risk",
        lambda session, principal, listed: [
            _risk(p.id, *risks[names[p.id]]) for p in listed if p.id in names
        ],
    )
    for p in patients:
        make.care(doctor, p)
    today = utcnow().date()
    with transaction(session_factory()) as s:
        principal = acting_user(s, doctor.id)
        section = service._care_list(s, principal, service.ReportRequest("doctor", None, today, today))
    care = section["care_list"]
    assert [r["name"].split(",")[0] for r in care["rows"]] == ["Brown", "Davis", "Fox", "Adams"]
    assert care["low"] == 2
    assert care["version"] == "v1"
    html = service.render_html(
        {
            "kind": "doctor",
            "title": "Clinical report",
            "organisation": "Test",
            "start": today,
            "end": today,
            "generated_at": utcnow(),
            "author": "D",
            "forecast": {"report": None, "problem": "x"},
            **section,
        }
    )
    assert "2 patients in your care are at low risk (not listed)." in html
    assert "Clark" not in html
    assert "Evans" not in html
    assert html.index("Brown") < html.index("Davis") < html.index("Fox") < html.index("Adams")


def test_weekly_grid_has_a_column_per_week_and_a_row_per_condition() -> None:
    def top(week: int, rank: int, code: str, count: int) -> WeeklyTop:
        start = date(2026, 1, 5) + timedelta(weeks=week)
        return WeeklyTop(f"W{week}", start, rank, code, f"name {code}", count, 0, count, None)

    rows = [top(0, 1, "A", 9), top(0, 2, "B", 5), top(1, 1, "B", 7), top(1, 2, "C", 3), top(1, 3, "D", 8)]
    grid = service._weekly_grid(rows)
    assert grid["weeks"] == ["W1", "W0"]  # newest first
    assert [(r["code"], r["counts"]) for r in grid["rows"]] == [
        ("D", [8, None]),  # in the newest week, by largest count
        ("B", [7, 5]),
        ("C", [3, None]),
        ("A", [None, 9]),  # then the others
    ]


def test_nurse_report_has_this_and_next_week_and_surges_and_reuses_the_forecast(
    client: TestClient,
    cast: Cast,
    sign_in: Headers,
    encounter: AddEncounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report reuses the latest forecast job's result while the whole weeks are the same, even after
    new encounters of the week in progress (a fit would give the same): no new fit."""
    seed_history(cast.org.id, cast["patient"].patient_id, days=THREE_YEARS, spike_days=14)
    nurse = sign_in(cast["nurse"])
    forecast = client.post(f"{API}/analytics/forecasts", json={"granularity": "weekly"}, headers=nurse)
    assert forecast.status_code == 202, forecast.text
    forecast_job = client.get(f"{API}/jobs/{forecast.json()['id']}", headers=nurse).json()
    assert forecast_job["status"] == "succeeded", forecast_job
    encounter(cast["patient"].patient_id, cast.org.id, utcnow())  # this week: the data version changes
    cache.results.clear()
    refits: list[Any] = []
    monkeypatch.setattr(forecast_jobs, "compute", lambda *args: refits.append(args))
    job, text = make_report(client, nurse, kind="nurse")
    assert refits == []
    assert job["result"]["kind"] == "nurse"
    for expected in (
        "CareSync ward volume report",
        "Last week",
        "This week",
        "Next week",
        "95 %:",
        "Surges",
        "A09",
    ):
        assert expected in text, (expected, text)
    assert "Associations" not in text
    assert "Your patients' risk" not in text
    this_week = forecast_job["result"]["forecast"][0]
    assert f"{this_week['sarima']:.0f}" in text  # the forecast job's own figures


def test_charts_are_inline_svg_with_their_titles() -> None:
    svg = charts.bar_chart("Patients by age band", ["0-19", "20-39"], [3, 5], ylabel="Patients")
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "Patients by age band" in svg  # text stays text (svg.fonttype none)
    assert svg == charts.bar_chart("Patients by age band", ["0-19", "20-39"], [3, 5], ylabel="Patients")
    html = service.render_html(
        {
            "kind": "nurse",
            "title": "Ward volume report",
            "organisation": "Test",
            "start": utcnow().date(),
            "end": utcnow().date(),
            "generated_at": utcnow(),
            "author": "N",
            "forecast": {"report": None, "problem": "too short"},
            "volume_chart": svg,
        }
    )
    assert "No forecast: too short" in html


def test_fixed_margins_keep_labels_and_legend_inside_the_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed margins (no constrained layout): tick labels, the y label and a long legend all fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn: list[Any] = []
    real_svg = charts._svg

    def keep(figure: Any, name: str) -> str:
        drawn.append(figure)
        return real_svg(figure, name)

    monkeypatch.setattr(charts, "_svg", keep)
    lines = {"J45.9 Asthma, unspecified - long name"[:40]: [1.0] * 12, "I10 Hypertension": [1.2] * 12}
    charts.lines_chart("Seasonal profile", list("JFMAMJJASOND"), lines, ylabel="Ratio")
    history = [(date(2024, 1, 1) + timedelta(weeks=i), 1000.0 + i) for i in range(104)]
    charts.volume_chart("Weekly patient volume and forecast", history, [])
    charts.bar_chart(
        "Patients by age band", ["0-17", "18-39", "40-64", "65+"], [10, 20, 30, 40], ylabel="Patients"
    )
    for figure in drawn:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        used = figure.axes[0].get_tightbbox(canvas.get_renderer())  # ticks, labels, title, legend
        assert used.x0 >= 0
        assert used.y0 >= 0
        assert used.x1 <= figure.bbox.x1
        assert used.y1 <= figure.bbox.y1
    assert len(drawn) == 3


def test_workers_warm_up_what_reports_need() -> None:
    """A worker loads WeasyPrint, matplotlib and the fonts when it starts (a Huey start-up hook), so its
    first report costs what the next ones do."""
    assert huey._startup["warm_up"] is report_jobs.warm_up
    try:
        report_jobs.warm_up()
        assert {"weasyprint", "matplotlib"} <= set(sys.modules)
        assert gc.get_freeze_count() > 0  # what is loaded is out of the collector's way
    finally:
        gc.unfreeze()  # the test process goes on collecting as usual


def test_kinds_periods_and_organisations_are_checked(
    client: TestClient, cast: Cast, sign_in: Headers, make: Factory
) -> None:
    nurse = sign_in(cast["nurse"])
    assert client.post(REPORTS, json={"kind": "admin"}, headers=nurse).status_code == 403
    bad = client.post(REPORTS, json={"start": "2026-02-01", "end": "2026-01-01"}, headers=nurse)
    assert bad.status_code == 422
    elsewhere = make.org("Elsewhere Clinic")
    assert client.post(REPORTS, json={"organisation_id": str(elsewhere.id)}, headers=nurse).status_code == 403
    assert client.post(REPORTS, json={"kind": "weekly"}, headers=nurse).status_code == 422


def _job(owner: uuid.UUID, status: str, message: str = "") -> str:
    with transaction(session_factory()) as s:
        job = Job(kind=service.REPORT_JOB, owner_id=owner, status=status, progress=40, message=message)
        s.add(job)
        s.flush()
        return str(job.id)


def test_download_is_409_while_running_or_failed_and_404_for_other_jobs(
    client: TestClient, cast: Cast, sign_in: Headers
) -> None:
    admin = cast["admin"]
    headers = sign_in(admin)
    running = client.get(f"{REPORTS}/{_job(admin.id, 'running')}/pdf", headers=headers)
    assert running.status_code == 409
    assert "not ready yet (40 %)" in running.json()["detail"]
    failed = client.get(f"{REPORTS}/{_job(admin.id, 'failed', 'Boom.')}/pdf", headers=headers)
    assert failed.status_code == 409
    assert "Boom." in failed.json()["detail"]
    with transaction(session_factory()) as s:
        other = Job(kind="audit.verify", owner_id=admin.id, status="succeeded")
        s.add(other)
        s.flush()
        other_id = other.id
    assert client.get(f"{REPORTS}/{other_id}/pdf", headers=headers).status_code == 404
    assert client.get(f"{REPORTS}/{uuid.uuid4()}/pdf", headers=headers).status_code == 404


def test_page_generates_a_report_and_links_the_pdf(client: TestClient, cast: Cast) -> None:
    csrf = web_login(client, cast["nurse"])
    page = client.get("/analytics/reports")
    assert page.status_code == 200
    assert 'data-testid="generate-report"' in page.text
    assert "Ward volume report (nurse)" in page.text
    assert "Clinical report (doctor)" in page.text
    started = client.post(
        "/analytics/reports", data={"csrf_token": csrf, "kind": "nurse"}, follow_redirects=False
    )
    assert started.status_code == 303
    location = started.headers["location"]
    job_id = location.split("job=")[1]
    followed = client.get(location)
    assert 'data-status="succeeded"' in followed.text
    assert f"/api/v1/analytics/reports/{job_id}/pdf" in followed.text
    fragment = client.get(f"/analytics/reports/jobs/{job_id}", headers={"HX-Request": "true"})
    assert 'data-testid="report-download"' in fragment.text
    assert "hx-trigger" not in fragment.text
    pdf = client.get(f"/api/v1/analytics/reports/{job_id}/pdf")  # the browser's cookie is enough
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")


# --- permission matrices -----------------------------------------------------------------------------------

VIEWERS = ("admin", "doctor", "nurse")
API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", REPORTS): Case(only(202, *VIEWERS), json=lambda _: {}),
    ("GET", f"{REPORTS}/{{job_id}}/pdf"): Case(
        only(200, "admin", others=403) | {"doctor": 404, "nurse": 404},
        path=lambda w: {"job_id": w["job"]},
        foreign=lambda w: {"job_id": w["foreign"]},
    ),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/analytics/reports"): Case(pages(only(200, *VIEWERS))),
    ("POST", "/analytics/reports"): Case(pages(only(303, *VIEWERS)), data=lambda _: {}),
    ("GET", "/analytics/reports/jobs/{job_id}"): Case(
        pages(only(200, "admin") | {"doctor": 404, "nurse": 404}),
        path=lambda w: {"job_id": w["job"]},
        foreign=lambda w: {"job_id": w["foreign"]},
    ),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((reports_api.router, API_CASES), (reports_pages.router, PAGE_CASES))


def _world(client: TestClient, cast: Cast, sign_in: Headers, make: Factory) -> World:
    admin_job = client.post(REPORTS, json={}, headers=sign_in(cast["admin"])).json()["id"]
    stranger = make.user("admin", org=make.org("Other Hospital"))
    return {"job": admin_job, "foreign": _job(stranger.id, "succeeded")}


def test_reports_api_permission_matrix(
    client: TestClient, cast: Cast, sign_in: Headers, make: Factory
) -> None:
    check_api(client, cast, _world(client, cast, sign_in, make), API_CASES)


def test_reports_page_permission_matrix(
    app: Any, client: TestClient, cast: Cast, sign_in: Headers, make: Factory
) -> None:
    check_pages(app, cast, _world(client, cast, sign_in, make), PAGE_CASES)
