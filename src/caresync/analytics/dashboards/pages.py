"""The analytics dashboard (``/analytics``): one page, its sections chosen by role, each section an HTMX
fragment (``/analytics/sections/{name}``) loaded after the page and re-fetched when an encounter of the
organisation is recorded (``/static/analytics-live.js``), so the page itself stays fast and live.

- administrators: KPIs, weekly volume with the latest forecast ("Run forecast": ``POST
  /analytics/forecast``, a job whose progress the section follows), surges, trends, demographics and
  associations, with links to the CSV and JSON exports of the API;
- doctors: their patients' risks, the organisation's trends and seasonality;
- nurses: today's encounters and clinic queues, and a staffing hint from the weekly forecast.

Every section is filtered by organisation (of the caller's scope) and period. Thin: the figures come from
:mod:`.service` and the analytics services, which check permissions and audit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.analytics.dashboards import service
from caresync.analytics.data import analytics_scope, covered_organisations
from caresync.analytics.forecasting import service as forecasting
from caresync.analytics.statistics import service as statistics
from caresync.core import jobs
from caresync.core.auth import Principal
from caresync.core.errors import NotFound, ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.db import utcnow
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "analytics/dashboards"
BLOOD_ANALYTICS = "/analytics/blood"
ROLE_SECTIONS = {
    "admin": ("kpis", "volume", "surges", "trends", "demographics", "associations"),
    "doctor": ("risks", "trends", "seasonality"),
    "nurse": ("today", "staffing", "trends"),
}
NOT_LIVE = frozenset({"risks"})  # each refresh would assess (and audit) every patient again
TREND_ROWS = 5
SEASONAL_ROWS = 10
ASSOCIATION_ROWS = 12
SURGE_ROWS = 12


def parse_view(
    params: dict[str, str], today: date, default_period: str = service.DEFAULT_PERIOD
) -> service.View:
    """The filters of a query string or form: organisation and period (422 naming the field when one is
    wrong)."""
    dates: dict[str, date | None] = {}
    for name in ("start", "end"):
        text = params.get(name, "").strip()
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            raise ValidationFailed("Enter a date as YYYY-MM-DD.", extra={"field": name}) from None
    organisation = params.get("organisation_id", "").strip()
    try:
        organisation_id = uuid.UUID(organisation) if organisation else None
    except ValueError:
        raise ValidationFailed("Choose an organisation.", extra={"field": "organisation_id"}) from None
    period = params.get("period", "").strip() or default_period
    return service.resolve_view(period, dates["start"], dates["end"], organisation_id, today)


def _filters(view: service.View) -> statistics.Filters:
    return statistics.Filters(organisation_id=view.organisation_id, start=view.start, end=view.end)


def api_query(view: service.View, **extra: str) -> str:
    """The view as the analytics API's query string."""
    params = {"start": view.start.isoformat(), "end": view.end.isoformat(), **extra}
    if view.organisation_id:
        params["organisation_id"] = str(view.organisation_id)
    return urlencode(params)


@router.get("/analytics")
def dashboard(request: Request, db: Db, principal: PageUser) -> Response:
    """The dashboard of the user's role, with the filters; its sections load as fragments. Blood bank staff
    and donors have their own analytics page (:mod:`caresync.analytics.blood`)."""
    if not has_perm(principal, Perm.ANALYTICS_VIEW) and (
        has_perm(principal, Perm.BLOOD_STOCK) or has_perm(principal, Perm.DONATE)
    ):
        return redirect(BLOOD_ANALYTICS)
    scope = analytics_scope(db, principal, service.ACTION)
    errors: dict[str, str] = {}
    try:
        view = parse_view(dict(request.query_params), utcnow().date())
    except ValidationFailed as exc:
        errors = domain_field_errors(exc)
        view = service.resolve_view(service.DEFAULT_PERIOD, None, None, None, utcnow().date())
    if view.organisation_id is not None and scope is not None and view.organisation_id not in scope:
        covered_organisations(db, principal, view.organisation_id, service.ACTION)  # 403, audited
    organisations = service.organisation_choices(db, principal, scope)
    context = {
        "view": view,
        "periods": service.PERIODS,
        "organisations": organisations,
        "organisation_ids": [org_id for org_id, _ in organisations],
        "sections": ROLE_SECTIONS.get(principal.role, ROLE_SECTIONS["admin"]),
        "not_live": NOT_LIVE,
        "query": urlencode(view.query()),
        "api_query": api_query(view),
        "errors": errors,
        "values": dict(request.query_params),
    }
    return render_page(request, db, principal, f"{T}/index.html", context)


SectionBuilder = Callable[[Session, Principal, service.View, dict[str, str]], dict[str, Any]]


def _kpis(db: Session, principal: Principal, view: service.View, _params: dict[str, str]) -> dict[str, Any]:
    return {"activity": service.activity(db, principal, view, utcnow())}


def _job(db: Session, principal: Principal, params: dict[str, str]) -> dict[str, Any] | None:
    """The forecast job the section follows (``job`` parameter), if it is the user's."""
    try:
        return jobs.job_view(jobs.get_job(db, principal, uuid.UUID(params.get("job", ""))))
    except (ValueError, NotFound):
        return None


def _volume(db: Session, principal: Principal, view: service.View, params: dict[str, str]) -> dict[str, Any]:
    activity = service.activity(db, principal, view, utcnow())
    forecast = service.latest_weekly_forecast(db, principal, view.organisation_id)
    ends_today = view.end >= utcnow().date()
    chart = service.volume_chart(activity.weeks, forecast if ends_today else None)
    return {
        "activity": activity,
        "forecast": forecast,
        "ends_today": ends_today,
        "chart_data": chart,
        "job": _job(db, principal, params),
    }


def _staffing(
    db: Session, principal: Principal, view: service.View, params: dict[str, str]
) -> dict[str, Any]:
    forecast = service.latest_weekly_forecast(db, principal, view.organisation_id)
    return {
        "forecast": forecast,
        "staffing": service.staffing(forecast, utcnow().date()) if forecast else None,
        "job": _job(db, principal, params),
    }


def _today(db: Session, principal: Principal, view: service.View, _params: dict[str, str]) -> dict[str, Any]:
    now = utcnow()
    return {
        "today": service.today(db, principal, view, now),
        "queues": service.queue_waiting(db, principal, now),
    }


def _surges(db: Session, principal: Principal, view: service.View, _params: dict[str, str]) -> dict[str, Any]:
    result = forecasting.surges(db, principal, view.organisation_id, None)
    return {"surges": result, "rows": result["surges"][:SURGE_ROWS]}


def _trends(db: Session, principal: Principal, view: service.View, _params: dict[str, str]) -> dict[str, Any]:
    weeks = statistics.trends(db, principal, _filters(view), today=utcnow().date()).result.weeks
    leaders = service.week_leaders(weeks)
    rows = service.latest_complete_week(weeks, utcnow().date())[:TREND_ROWS]
    return {"rows": rows, "leaders": leaders, "chart_data": service.leaders_chart(leaders)}


def _seasonality(
    db: Session, principal: Principal, view: service.View, _params: dict[str, str]
) -> dict[str, Any]:
    result = statistics.seasonality(db, principal, _filters(view)).result
    peaks = sorted(result.peaks, key=lambda p: -p.peak_ratio)[:SEASONAL_ROWS]
    chart = service.seasonal_chart(peaks[: len(service.COLOURS) - 3], result.profile)
    return {"result": result, "peaks": peaks, "chart_data": chart, "months": service.MONTHS}


def _demographics(
    db: Session, principal: Principal, view: service.View, _params: dict[str, str]
) -> dict[str, Any]:
    groups = statistics.demographic_profile(db, principal, _filters(view)).result
    overall = [g for g in groups if g.scope == "overall"]
    ages = [g for g in overall if g.dimension == "age_band"]
    sexes = [g for g in overall if g.dimension == "sex"]
    charts = {"age": service.groups_chart(ages, "#206bc4"), "sex": service.groups_chart(sexes, "#ae3ec9")}
    return {"ages": ages, "sexes": sexes, "charts": charts}


def _associations(
    db: Session, principal: Principal, view: service.View, _params: dict[str, str]
) -> dict[str, Any]:
    result = statistics.association_tests(db, principal, _filters(view)).result
    tests = sorted(result.tests, key=lambda t: (not t.significant, t.p_adjusted))
    return {
        "result": result,
        "tests": tests[:ASSOCIATION_ROWS],
        "significant": sum(t.significant for t in tests),
    }


def _risks(db: Session, principal: Principal, _view: service.View, _params: dict[str, str]) -> dict[str, Any]:
    return {"risks": service.my_risks(db, principal)}


SECTIONS: dict[str, SectionBuilder] = {
    "kpis": _kpis,
    "volume": _volume,
    "staffing": _staffing,
    "today": _today,
    "surges": _surges,
    "trends": _trends,
    "seasonality": _seasonality,
    "demographics": _demographics,
    "associations": _associations,
    "risks": _risks,
}


def _render_section(
    request: Request,
    db: Session,
    principal: Principal,
    section: str,
    params: dict[str, str],
    problem: str = "",
) -> Response:
    if section not in SECTIONS:
        raise NotFound("No such dashboard section.")
    view = parse_view(params, utcnow().date())
    context = SECTIONS[section](db, principal, view, params)
    context |= {
        "view": view,
        "section": section,
        "query": urlencode(view.query()),
        "api_query": api_query(view),
        "problem": problem,
        "now": utcnow(),
    }
    return render_page(request, db, principal, f"{T}/_{section}.html", context)


@router.get("/analytics/sections/{section}")
def section_fragment(request: Request, db: Db, principal: PageUser, section: str) -> Response:
    """One section of the dashboard for the filters of the query string (an HTMX fragment)."""
    return _render_section(request, db, principal, section, dict(request.query_params))


@router.post("/analytics/forecast")
def run_forecast(request: Request, db: Db, principal: PageUser, form: FormValues) -> Response:
    """Start the weekly volume forecast of the filtered scope (or reuse the finished one for the same data)
    and return the section (``volume`` or ``staffing``) following the job."""
    params = {key: value for key, value in form.items() if key != "csrf_token"}
    section = params.get("section", "volume")
    if section not in ("volume", "staffing"):
        raise NotFound("No such dashboard section.")
    view = parse_view(params, utcnow().date())
    problem = ""
    try:
        job, _cached = forecasting.request_forecast(db, principal, "weekly", view.organisation_id)
        db.commit()
        db.expire_all()  # the job may have run meanwhile (immediate jobs): read it and its result afresh
        params["job"] = str(job.id)
    except ValidationFailed as exc:
        db.rollback()
        problem = exc.detail
    return _render_section(request, db, principal, section, params, problem)
