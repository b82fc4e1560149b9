"""PDF reports per role, generated as jobs: what goes in them, who may ask for which, and the download.

Kinds. ``admin``: KPIs, weekly volumes with the forecast and its intervals, the forecast's test metrics
against the seasonal naive and the verdict, surges, the top 5 conditions, demographics, the strongest
significant chi-square associations and the active risk model's card. ``doctor``: the organisation's trends
and seasonality, and the patients in the doctor's care at moderate risk or above (those at low risk are
counted). ``nurse``: last week's volume, this week's and next week's forecast, and surges. A role asks for
its own kind by default and may ask for the kinds in :data:`ALLOWED_KINDS` (403, audited, otherwise); the
organisation must be in the caller's analytics scope.

Cost. Tables are short and laid out with fixed column widths, the charts are simple inline SVG, and a
forecast is reused while the whole weeks it counts are the same (:func:`_forecast_section`): once the worker
is warm a report takes under 2 s (issue #8 asks for 3 s), except the first one after the whole weeks change
(a new week begins, a past week's encounter is recorded), which fits the forecast again (about 2 s more).

How. :func:`authorize_request` checks and audits the request; :mod:`.jobs` queues the job. The job acts
for its owner: it rebuilds their principal and calls the analytics services as them, so every permission
is checked again when the report is made and every view is audited (each patient's risk with the patient's
id). The PDF is kept in the encrypted file store (:mod:`caresync.core.storage`; it may name patients), its
address in the job's result; only the job's owner downloads it (:func:`report_pdf`: 404 for anyone else,
409 while it is being made).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.analytics import cache
from caresync.analytics.data import covered_organisations, shared_encounter_frame
from caresync.analytics.forecasting import jobs as forecast_jobs
from caresync.analytics.forecasting import sarima
from caresync.analytics.forecasting import service as forecasting
from caresync.analytics.risk import service as risk
from caresync.analytics.rules import RiskLevel, SurgeLevel
from caresync.analytics.statistics import service as statistics
from caresync.analytics.statistics.trends import TOP, WeeklyTop, monday_of
from caresync.core import audit, storage
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.jobs import Job, job_view
from caresync.core.rbac import Perm, cared_for_patient_ids, require
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation, Patient
from caresync.identity.rules import format_health_id
from caresync.identity.service import acting_user
from caresync.web.templating import TEMPLATES

REPORT_JOB = "analytics.report"
ALLOWED_KINDS: dict[str, tuple[str, ...]] = {
    "admin": ("admin", "nurse"),
    "doctor": ("doctor", "nurse"),
    "nurse": ("nurse", "doctor"),
    "system": ("admin", "nurse"),
}
TITLES = {"admin": "Activity report", "doctor": "Clinical report", "nurse": "Ward volume report"}
TEMPLATE = "analytics/reports/print.html"
DEFAULT_DAYS = 364  # the default period: the last 52 weeks up to today
CHART_WEEKS = {"admin": 104, "doctor": 52, "nurse": 26}  # weeks of history drawn before the forecast
MAX_CARE_LIST = 200  # patients assessed for a doctor's report (those at low risk are only counted)
SEASONAL_ROWS = 10  # the most seasonal conditions listed in a doctor's report
ASSOCIATION_ROWS = 15  # the strongest significant associations listed in an admin's report
SEVERITY = {level: rank for rank, level in enumerate(SurgeLevel)}
RISK_SEVERITY = {level.value: rank for rank, level in enumerate(RiskLevel)}
Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class ReportRequest:
    """What a report covers: its kind, one organisation (None: the caller's scope) and the period (whole
    UTC days, inclusive)."""

    kind: str
    organisation_id: uuid.UUID | None
    start: date
    end: date

    def filters(self) -> statistics.Filters:
        """The statistics services' filters for this report."""
        return statistics.Filters(self.organisation_id, self.start, self.end)


def allowed_kinds(principal: Principal) -> tuple[str, ...]:
    """The report kinds this principal may ask for (their own first)."""
    return ALLOWED_KINDS.get(principal.role, ())


def authorize_request(
    session: Session,
    principal: Principal,
    *,
    kind: str | None,
    organisation_id: uuid.UUID | None,
    start: date | None,
    end: date | None,
) -> ReportRequest:
    """Check (``analytics:view``, the kind, the organisation, the period: 403 audited, 422) and audit a
    report request; the period defaults to the last 52 weeks up to today."""
    action = "analytics.report.request"
    covered_organisations(session, principal, organisation_id, action)
    kinds = allowed_kinds(principal)
    chosen = kind or (kinds[0] if kinds else "")
    if chosen not in kinds or principal.user_id is None:
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"kind": chosen[:20]})
        raise Forbidden(f"Your role can ask for these reports: {', '.join(kinds) or 'none'}.")
    last = end or utcnow().date()
    first = start or last - timedelta(days=DEFAULT_DAYS)
    statistics.check_period(first, last)
    audit.record(
        session,
        principal,
        action,
        resource_type="organisation" if organisation_id else "analytics",
        resource_id=organisation_id or "",
        detail={"kind": chosen, "start": first, "end": last},
    )
    return ReportRequest(chosen, organisation_id, first, last)


# --- the content -----------------------------------------------------------------------------------------


def _whole_weeks(scope: list[uuid.UUID] | None) -> list[list[Any]]:
    """The scope's encounters per whole ISO week as a forecast's ``series`` holds them (from the frame held
    in memory: only newly recorded encounters are read)."""
    with transaction(session_factory()) as session:
        frame = shared_encounter_frame(session, organisation_ids=scope)
    series = sarima.volume_series(frame, sarima.SPECS["weekly"], until=pd.Timestamp(utcnow()))
    return [[period.date().isoformat(), float(count)] for period, count in series.items()]


def _latest_forecast(
    principal: Principal, request: ReportRequest, weeks: list[list[Any]]
) -> dict[str, Any] | None:
    """The newest finished weekly forecast job's result for the scope (:func:`forecasting.latest_forecast`,
    audited as a view) if it was fitted on exactly these whole weeks, else None."""
    with transaction(session_factory()) as session:
        try:
            latest = forecasting.latest_forecast(session, principal, "weekly", request.organisation_id)
        except NotFound:
            return None
    return latest if latest["series"] == weeks else None


def _forecast_section(
    principal: Principal, request: ReportRequest, scope: list[uuid.UUID] | None, progress: Progress
) -> dict[str, Any]:
    """The weekly forecast of the scope and its chart, or why there is none. A forecast counts whole weeks
    only and its fit depends on nothing else, so it is fitted only when no forecast of the same whole weeks
    is at hand: one this process made or reused (cached under the weeks' fingerprint, so encounters of the
    week in progress change nothing) or the latest forecast job's. It opens its own transactions, between
    which ``progress`` may write."""
    from caresync.analytics.reports import charts

    def step(percent: int, message: str) -> None:
        progress(10 + percent * 30 // 100, message)

    weeks = _whole_weeks(scope)
    fingerprint = hashlib.sha256(json.dumps(weeks).encode()).hexdigest()

    def latest_or_fit() -> dict[str, Any]:
        sarima.require_length(len(weeks), sarima.SPECS["weekly"])  # the job's 422, before loading anything
        return _latest_forecast(principal, request, weeks) or forecast_jobs.compute("weekly", scope, step)

    try:
        key = ("reports.forecast", forecast_jobs.scope_key(scope))
        report = cache.results.get_or_compute(key, fingerprint, latest_or_fit)
    except ValidationFailed as exc:
        return {"forecast": {"report": None, "problem": exc.detail}}
    history = [(date.fromisoformat(p), v) for p, v in report["series"][-CHART_WEEKS[request.kind] :]]
    chart = charts.volume_chart("Weekly patient volume and forecast", history, report["forecast"])
    return {"forecast": {"report": report, "problem": ""}, "volume_chart": chart}


def _scope_name(session: Session, scope: list[uuid.UUID] | None) -> str:
    if scope is None:
        return "All organisations"
    if not scope:
        return "No organisation"
    names = session.execute(select(Organisation.name).where(Organisation.id.in_(scope))).scalars()
    return ", ".join(sorted(names))


def _surges(session: Session, principal: Principal, request: ReportRequest) -> dict[str, Any]:
    """``surges``: conditions above their seasonal norm (low ones left out), worst first."""
    as_of = min(request.end, utcnow().date())
    answer = forecasting.surges(session, principal, request.organisation_id, as_of)
    rising = [s for s in answer["surges"] if s["level"] != SurgeLevel.LOW]
    rising.sort(key=lambda s: (-SEVERITY[SurgeLevel(s["level"])], s["name"]))
    return {"surges": {"as_of": answer["as_of"], "levels": answer["levels"], "rows": rising}}


def _trends(session: Session, principal: Principal, request: ReportRequest) -> dict[str, Any]:
    """``trends``: the top 5 conditions of the last whole week of the period (a week in progress would look
    like a collapse), and their grid over the last four (:func:`_weekly_grid`)."""
    last_day = min(request.end, monday_of(utcnow().date()) - timedelta(days=1))
    answer = statistics.trends(
        session, principal, statistics.Filters(request.organisation_id, None, last_day), weeks=4
    )
    weeks = answer.result.weeks
    latest = [row for row in weeks if row.week_start == answer.result.last_week]
    return {"trends": {"latest": latest, "grid": _weekly_grid(weeks)}}


def _weekly_grid(rows: list[WeeklyTop]) -> dict[str, Any]:
    """Weekly top conditions as one small table: a column per week (newest first), a row per condition in
    any week's top (the newest week's order first, then by their largest count), its count in each week
    where it was in the top (None elsewhere)."""
    weeks = sorted({(row.week_start, row.week) for row in rows}, reverse=True)
    counts: dict[str, dict[date, int]] = {}
    names: dict[str, str] = {}
    for row in rows:
        counts.setdefault(row.code, {})[row.week_start] = row.count
        names[row.code] = row.name
    newest = weeks[0][0] if weeks else None
    order = sorted(counts, key=lambda code: (newest not in counts[code], -max(counts[code].values()), code))
    return {
        "weeks": [label for _, label in weeks],
        "rows": [
            {"code": code, "name": names[code], "counts": [counts[code].get(start) for start, _ in weeks]}
            for code in order
        ],
    }


def _population(session: Session, principal: Principal, request: ReportRequest) -> dict[str, Any]:
    """Demographics (overall) with their charts, and the chi-square associations (``strongest``: the
    :data:`ASSOCIATION_ROWS` significant ones with the largest Cramér's V; ``significant``: how many are)."""
    from caresync.analytics.reports import charts

    groups = statistics.demographic_profile(session, principal, request.filters()).result
    overall = [g for g in groups if g.scope == "overall"]
    ages = [g for g in overall if g.dimension == "age_band"]
    sexes = [g for g in overall if g.dimension == "sex"]
    tests = statistics.association_tests(session, principal, request.filters()).result
    significant = sorted((t for t in tests.tests if t.significant), key=lambda t: (-t.cramers_v, t.code))
    return {
        "ages": ages,
        "sexes": sexes,
        "age_chart": charts.bar_chart(
            "Patients by age band", [g.group for g in ages], [g.patients for g in ages], ylabel="Patients"
        ),
        "associations": tests,
        "strongest": significant[:ASSOCIATION_ROWS],
        "significant": len(significant),
    }


def _model_card(session: Session, principal: Principal, _request: ReportRequest) -> dict[str, Any]:
    """``model``: the card of the risk model the caller's organisation uses, if any."""
    cards, active = risk.list_models(session, principal)
    return {"model": next((card for card in cards if card["version"] == active), None)}


def _kpis(context: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The headline figures: (label, value, note)."""
    ages = context["ages"]
    report = context["forecast"]["report"]
    surges = context["surges"]["levels"]
    figures = [
        ("Encounters", f"{sum(g.encounters for g in ages):,}", "in the period"),
        ("Patients", f"{sum(g.patients for g in ages):,}", "seen in the period"),
        ("Surges", str(surges.get("high", 0) + surges.get("critical", 0)), "high or critical now"),
    ]
    if report is not None:
        start, end = context["start"].isoformat(), context["end"].isoformat()
        weeks = [v for p, v in report["series"] if start <= p <= end]
        if weeks:
            figures.append(
                ("Mean per week", f"{sum(weeks) / len(weeks):,.1f}", f"over {len(weeks)} whole weeks")
            )
        upcoming = report["forecast"][0]
        figures.append(
            (
                "Forecast this week",
                f"{upcoming['sarima']:,.0f}",
                f"95 % interval {upcoming['lower_95']:,.0f} to {upcoming['upper_95']:,.0f}",
            )
        )
    return figures


def _seasonality(session: Session, principal: Principal, request: ReportRequest) -> dict[str, Any]:
    """The :data:`SEASONAL_ROWS` most seasonal conditions of the period (``more_peaks``: how many others),
    and a chart of the monthly profile of the top ones."""
    from caresync.analytics.reports import charts

    profile = statistics.seasonality(session, principal, request.filters()).result
    peaks = sorted(profile.peaks, key=lambda p: -p.peak_ratio)
    shown = [p.code for p in peaks[:TOP]]
    months = ["J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"]
    lines = {
        f"{code} {next(p.name for p in peaks if p.code == code)}"[:40]: [
            next((m.ratio for m in profile.profile if m.code == code and m.month == month), 0.0)
            for month in range(1, 13)
        ]
        for code in shown
    }
    chart = charts.lines_chart("Seasonal profile (ratio to the monthly mean)", months, lines, ylabel="Ratio")
    return {
        "peaks": peaks[:SEASONAL_ROWS],
        "more_peaks": len(peaks[SEASONAL_ROWS:]),
        "season_chart": chart if shown else "",
    }


def _care_list(session: Session, principal: Principal, _request: ReportRequest) -> dict[str, Any]:
    """``care_list``: the patients in the caller's care at moderate risk or above, the highest level first
    and by probability, and how many are at low risk (counted, not listed). The risk service audits each
    patient assessed with the patient's id. At most :data:`MAX_CARE_LIST` patients are assessed (by name;
    ``unassessed``: how many more are in care); ``problem`` says why none are."""
    in_care = cared_for_patient_ids(principal)
    patients = list(
        session.execute(
            select(Patient)
            .where(Patient.id.in_(in_care))
            .order_by(Patient.family_name, Patient.given_name)
            .limit(MAX_CARE_LIST)
        ).scalars()
    )
    unassessed = 0
    if len(patients) == MAX_CARE_LIST:
        in_care_count = select(func.count()).select_from(Patient).where(Patient.id.in_(in_care))
        unassessed = session.execute(in_care_count).scalar_one() - MAX_CARE_LIST
    try:
        results = risk.visible_patients_risk(session, principal, patients)
    except Conflict as exc:
        return {"care_list": {"rows": [], "problem": exc.detail, "label": None, "version": None}}
    by_id = {p.id: p for p in patients}
    rows: list[dict[str, Any]] = []
    for result in results:
        if result.result.level == RiskLevel.LOW:
            continue
        patient = by_id[result.patient_id]
        drivers = result.result.drivers
        rows.append(
            {
                "name": f"{patient.family_name}, {patient.given_name}",
                "health_id": format_health_id(patient.health_id),
                "level": result.result.level.value,
                "consensus": result.result.consensus,
                "driver": drivers[0].label if drivers else "",
            }
        )
    rows.sort(key=lambda r: (-RISK_SEVERITY[r["level"]], -r["consensus"], r["name"]))
    return {
        "care_list": {
            "rows": rows,
            "low": len(results) - len(rows),
            "unassessed": unassessed,
            "version": results[0].version if results else None,
            "label": results[0].label if results else None,
            "problem": "" if results else "No patient is in your care.",
        }
    }


# --- the file --------------------------------------------------------------------------------------------


def render_html(context: dict[str, Any]) -> str:
    """The report as the HTML WeasyPrint prints."""
    return TEMPLATES.env.get_template(TEMPLATE).render(context)


def render_pdf(html: str) -> bytes:
    """An A4 PDF of the report's HTML; it fetches nothing (the charts are inline SVG)."""
    import weasyprint  # slow to import: only when a PDF is made

    fetcher = weasyprint.URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    return bytes(weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf())


def warm_up() -> None:
    """Import WeasyPrint and matplotlib and make one small PDF with a chart (fonts found, caches filled), so
    that a worker's first report costs what the next ones do (run when a worker starts)."""
    from caresync.analytics.reports import charts

    render_pdf(f"<p>CareSync</p>{charts.bar_chart('Warm-up', ['a', 'b'], [1.0, 2.0], ylabel='Count')}")


def file_name(kind: str, start: date, end: date) -> str:
    """A sensible name to save the PDF under."""
    return f"caresync-{kind}-report-{start.isoformat()}-{end.isoformat()}.pdf"


Section = Callable[[Session, Principal, ReportRequest], dict[str, Any]]
SECTIONS: dict[str, tuple[tuple[str, Section], ...]] = {
    "admin": (
        ("Surges", _surges),
        ("Trends", _trends),
        ("Demographics and associations", _population),
        ("The risk model", _model_card),
    ),
    "doctor": (("Trends", _trends), ("Seasonality", _seasonality), ("Your patients' risks", _care_list)),
    "nurse": (("Surges", _surges),),
}


def make_report(user_id: uuid.UUID, request: ReportRequest, progress: Progress) -> dict[str, Any]:
    """Build, render and store one report as its owner; returns the job's result (the PDF's address).
    Each part runs in its own short transaction (with its audit entries), so that ``progress`` can record
    between them."""
    started = time.perf_counter()
    with transaction(session_factory()) as session:
        principal = acting_user(session, user_id)
        if request.kind not in allowed_kinds(principal):
            raise Forbidden("Your role can no longer ask for this report.")
        action = "analytics.report.make"
        scope = covered_organisations(session, principal, request.organisation_id, action)
        context: dict[str, Any] = {
            "kind": request.kind,
            "title": TITLES[request.kind],
            "organisation": _scope_name(session, scope),
            "start": request.start,
            "end": request.end,
            "generated_at": utcnow(),
            "author": principal.full_name,
        }
    progress(10, "Forecasting weekly volumes")
    context.update(_forecast_section(principal, request, scope, progress))
    sections = SECTIONS[request.kind]
    for number, (message, section) in enumerate(sections):
        progress(40 + 40 * number // len(sections), message)
        with transaction(session_factory()) as session:
            context.update(section(session, principal, request))
    if request.kind == "admin":
        context["kpis"] = _kpis(context)
    built = time.perf_counter()
    progress(80, "Rendering the PDF")
    pdf = render_pdf(render_html(context))
    progress(95, "Storing the PDF")
    with transaction(session_factory()) as session:
        stored = storage.put(session, pdf, allowed_types=("application/pdf",), max_bytes=len(pdf))
    return {
        "kind": request.kind,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "filename": file_name(request.kind, request.start, request.end),
        "sha256": stored.sha256,
        "size": stored.size,
        "seconds": round(time.perf_counter() - started, 3),
        "render_seconds": round(time.perf_counter() - built, 3),
    }


def _own_report(session: Session, principal: Principal, job_id: uuid.UUID, action: str) -> Job:
    """One of the caller's report jobs: 403 (audited) without ``analytics:view``, 404 (audited) for anyone
    else's job or another kind of job, exactly like a missing one."""
    require(session, principal, Perm.ANALYTICS_VIEW, action)
    job = session.get(Job, job_id)
    if job is None or job.kind != REPORT_JOB or job.owner_id != principal.user_id:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="Job", resource_id=job_id
        )
        raise NotFound("No such report.")
    return job


def report_pdf(session: Session, principal: Principal, job_id: uuid.UUID) -> tuple[bytes, str]:
    """A finished report's PDF and file name, for the job's owner only (see :func:`_own_report`); 409 while
    it is being made or when it failed. The download is audited."""
    action = "analytics.report.download"
    job = _own_report(session, principal, job_id, action)
    if job.status in ("queued", "running"):
        raise Conflict(f"The report is not ready yet ({job.progress} %): try again in a moment.")
    if job.status == "failed":
        raise Conflict(f"The report could not be made: {job.message}")
    result = job_view(job)["result"]
    audit.record(
        session, principal, action, resource_type="Job", resource_id=job.id, detail={"kind": result["kind"]}
    )
    return storage.get(result["sha256"]), str(result["filename"])


def recent_reports(session: Session, principal: Principal, limit: int = 10) -> list[dict[str, Any]]:
    """The caller's latest report jobs (:func:`caresync.core.jobs.job_view`), newest first (403 audited
    without ``analytics:view``)."""
    require(session, principal, Perm.ANALYTICS_VIEW, "analytics.report.list")
    query = (
        select(Job)
        .where(Job.owner_id == principal.user_id, Job.kind == REPORT_JOB)
        .order_by(Job.created_at.desc())
        .limit(limit)
    )
    return [job_view(job) for job in session.execute(query).scalars()]


def report_job_view(session: Session, principal: Principal, job_id: uuid.UUID) -> dict[str, Any]:
    """One of the caller's report jobs (:func:`caresync.core.jobs.job_view`; see :func:`_own_report`)."""
    return job_view(_own_report(session, principal, job_id, "analytics.report.status"))
