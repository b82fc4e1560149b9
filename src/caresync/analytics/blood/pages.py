"""The blood supply analytics page (``/analytics/blood``).

- Blood bank staff (their own blood bank) and administrators (any, chosen in the filters): the page holds
  the filters and its sections load as HTMX fragments (``/analytics/blood/sections/{name}``): ``supply``
  (red cell stock, days of supply, shortage levels, groups to call donors for), ``usage`` (red cells issued
  per week of one group with the 4-week forecast and its 80 % and 95 % bands), ``forecast`` (each group's
  test metrics and verdict) and ``donations`` (per month by group, first-time against returning donors),
  with links to the CSV and JSON exports of the API.
- Donors: their donations per year, the next day they may give, and how much their group is needed.
- Every other role: 403 (audited). Thin: the figures come from :mod:`.service`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.analytics.blood import forecast, service
from caresync.analytics.dashboards import service as dashboards
from caresync.analytics.dashboards.pages import api_query, parse_view
from caresync.bloodbank.rules import BLOOD_GROUPS
from caresync.core.auth import Principal
from caresync.core.errors import NotFound, ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.db import utcnow
from caresync.web.deps import Db
from caresync.web.pagekit import PageUser, domain_field_errors, render_page

router = APIRouter(include_in_schema=False)
T = "analytics/blood"
DEFAULT_PERIOD = "12m"
SECTIONS = ("supply", "usage", "forecast", "donations")
LEVEL_COLOURS = {"ok": "green", "watch": "yellow", "short": "orange", "critical": "red"}


@router.get("/analytics/blood")
def blood_page(request: Request, db: Db, principal: PageUser) -> Response:
    """The donor's page, or the blood bank's with its filters (its sections load as fragments)."""
    if has_perm(principal, Perm.DONATE):
        return _donor_page(request, db, principal)
    errors: dict[str, str] = {}
    today = utcnow().date()
    try:
        view = parse_view(dict(request.query_params), today, DEFAULT_PERIOD)
    except ValidationFailed as exc:
        errors = domain_field_errors(exc)
        view = dashboards.resolve_view(DEFAULT_PERIOD, None, None, None, today)
    organisation = service.blood_organisation(db, principal, view.organisation_id, "analytics.blood.page")
    context = {
        "view": view,
        "organisation": organisation,
        "periods": dashboards.PERIODS,
        "organisations": service.organisation_choices(db, principal),
        "sections": SECTIONS,
        "query": urlencode(view.query()),
        "api_query": api_query(view),
        "org_query": urlencode({"organisation_id": str(view.organisation_id)})
        if view.organisation_id
        else "",
        "errors": errors,
        "values": {"organisation_id": str(organisation.id), **dict(request.query_params)},
    }
    return render_page(request, db, principal, f"{T}/index.html", context)


def _donor_page(request: Request, db: Session, principal: Principal) -> Response:
    try:
        mine = service.my_blood(db, principal)
    except NotFound:
        mine = None
    chart = None
    if mine and mine.years:
        labels = [str(y.year) for y in mine.years]
        data: list[float | None] = [float(y.donations) for y in mine.years]
        chart = dashboards.bar_chart(labels, [dashboards.series("Donations", data, dashboards.COLOURS[1])])
    context = {"mine": mine, "chart_data": chart, "level_colours": LEVEL_COLOURS, "today": utcnow().date()}
    return render_page(request, db, principal, f"{T}/donor.html", context)


Builder = Callable[[Session, Principal, dashboards.View, dict[str, str]], dict[str, Any]]


def _supply(
    db: Session, principal: Principal, view: dashboards.View, _params: dict[str, str]
) -> dict[str, Any]:
    outlook, stock = service.summary(db, principal, view.organisation_id)
    return {"outlook": outlook, "stock": stock}


def usage_chart(
    weeks: list[str], issued: list[float | None], group: forecast.GroupForecast
) -> dict[str, Any]:
    """Red cells of one group issued per week and the forecast weeks after them with 80 % and 95 % bands."""
    ahead = [p for p in group.forecast if not weeks or p.week > weeks[-1]]
    labels = weeks + [p.week for p in ahead]
    datasets = [dashboards.series(f"{group.blood_group} red cells issued", issued, dashboards.COLOURS[0])]
    if ahead:
        offset = [None] * len(weeks)

        def line(values: list[float]) -> list[float | None]:
            return [*offset, *(round(v, 1) for v in values)]

        for level, colour in ((95, "rgba(214,57,57,.12)"), (80, "rgba(214,57,57,.25)")):
            upper = line([getattr(p, f"upper_{level}") for p in ahead])
            lower = line([getattr(p, f"lower_{level}") for p in ahead])
            datasets += [
                dashboards.series(f"{level} % interval", upper, colour, pointRadius=0),
                dashboards.series(f"{level} %", lower, colour, pointRadius=0, fill="-1", legend=False),
            ]
        datasets.append(
            dashboards.series(
                f"Forecast ({group.method})",
                line([p.predicted for p in ahead]),
                dashboards.COLOURS[1],
                borderDash=[6, 4],
            )
        )
    return dashboards.line_chart(labels, datasets, y_title="red cell units per week")


def _usage(
    db: Session, principal: Principal, view: dashboards.View, params: dict[str, str]
) -> dict[str, Any]:
    found = service.weekly_series(db, principal, view.organisation_id, view.start, view.end)
    outlook = service.outlook(db, principal, view.organisation_id, "analytics.blood.forecast")
    default = outlook.call_groups[0] if outlook.call_groups else "O+"
    group = params.get("group", "") if params.get("group", "") in BLOOD_GROUPS else default
    issued = {r.week: 0 for r in found.usage}
    for row in found.usage:
        if row.blood_group == group and row.component == service.RED_CELLS:
            issued[row.week] = row.issued
    group_forecast = next(f for f in outlook.forecasts if f.blood_group == group)
    counts: list[float | None] = [float(issued.get(week, 0)) for week in found.weeks]
    ends_today = view.end >= outlook.today
    chart = usage_chart(
        found.weeks, counts, group_forecast if ends_today else replace(group_forecast, forecast=[])
    )
    totals = {kind: sum(getattr(r, kind) for r in found.usage) for kind in service.SERIES_KINDS}
    return {
        "series": found,
        "group": group,
        "groups": BLOOD_GROUPS,
        "forecast": group_forecast,
        "rows": list(zip(found.weeks, counts, strict=True)),
        "totals": totals,
        "ends_today": ends_today,
        "chart_data": chart,
    }


def _forecast(
    db: Session, principal: Principal, view: dashboards.View, _params: dict[str, str]
) -> dict[str, Any]:
    return {"outlook": service.outlook(db, principal, view.organisation_id, "analytics.blood.forecast")}


def _donations(
    db: Session, principal: Principal, view: dashboards.View, _params: dict[str, str]
) -> dict[str, Any]:
    trends = service.donation_trends(db, principal, view.organisation_id, view.start, view.end)
    months = trends.period.months
    present = [g for g in (*BLOOD_GROUPS, "untyped") if any(r.blood_group == g for r in trends.by_group)]
    counts = {(r.month, r.blood_group): r.completed for r in trends.by_group}
    datasets = [
        dashboards.series(
            g, [float(counts.get((m, g), 0)) for m in months], dashboards.COLOURS[i % len(dashboards.COLOURS)]
        )
        for i, g in enumerate(present)
    ]
    return {
        "trends": trends,
        "months": months,
        "chart_data": dashboards.bar_chart(months, datasets, stacked=True),
        "any": bool(trends.by_group),
    }


BUILDERS: dict[str, Builder] = {
    "supply": _supply,
    "usage": _usage,
    "forecast": _forecast,
    "donations": _donations,
}


@router.get("/analytics/blood/sections/{section}")
def section_fragment(request: Request, db: Db, principal: PageUser, section: str) -> Response:
    """One section of the blood bank's page for the filters of the query string (an HTMX fragment)."""
    if section not in BUILDERS:
        raise NotFound("No such section.")
    params = dict(request.query_params)
    view = parse_view(params, utcnow().date(), DEFAULT_PERIOD)
    context = BUILDERS[section](db, principal, view, params)
    context |= {
        "view": view,
        "query": urlencode(view.query()),
        "api_query": api_query(view),
        "level_colours": LEVEL_COLOURS,
    }
    return render_page(request, db, principal, f"{T}/_{section}.html", context)
