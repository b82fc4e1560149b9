"""What the role dashboards (``/analytics``) show, computed from the analytics services.

The filters are an organisation of the caller's scope and a period (the last 12 weeks, 12 months or 3 years
up to today, or custom days). The statistics, forecasts and surges come from their own services (which
check the permission, audit and cache); this module adds the figures only the dashboards need:

- :func:`activity`: encounters of the period's last week against the week before over the same span, the
  admission rate and top condition of the period, and the weekly volume (aggregates; audited);
- :func:`today`: encounters today so far against the same weekday of the last weeks;
- :func:`staffing`: expected visits this week and next from the latest weekly forecast;
- :func:`my_risks`: the risk of each patient in the clinician's care, highest first (each one through the
  risk service: patient access rule, audited with the patient's id);
- :func:`queue_waiting`: how many are waiting in each clinic queue of the organisation (tickets only).

Chart data are plain dicts in the shape Chart.js takes (:func:`line_chart`, :func:`bar_chart`), drawn by
``/static/analytics-charts.js``; every chart also has a table on the page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.analytics.data import covered_organisations, shared_encounter_frame
from caresync.analytics.forecasting import service as forecasting
from caresync.analytics.risk import service as risk_service
from caresync.analytics.rules import CONDITION_BY_CODE, Outcome
from caresync.analytics.statistics.demographics import GroupShare
from caresync.analytics.statistics.service import check_period, midnight
from caresync.analytics.statistics.trends import WEEK, MonthProfile, SeasonalPeak, WeeklyTop, monday_of
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.identity.models import CareRelationship, Organisation, Patient
from caresync.scheduling.queue import service as queue_service

PERIODS = {"12w": "Last 12 weeks", "12m": "Last 12 months", "3y": "Last 3 years", "custom": "Custom dates"}
DEFAULT_PERIOD = "12w"
WEEKDAY_HISTORY = 8  # same weekdays averaged for "today"
RISK_LIMIT = 20  # patients listed on "my patients' risks"
RISK_CANDIDATES = 100  # patients of the care list whose risk is computed (the most recent relationships)
STAFFING_MARGIN = 0.10  # a change of more than 10 % in expected visits is worth a staffing note
ACTION = "analytics.dashboard.view"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
COLOURS = ("#206bc4", "#d63939", "#2fb344", "#f59f00", "#ae3ec9", "#17a2b8", "#f76707", "#868e96")


@dataclass(frozen=True)
class View:
    """The dashboard's filters, resolved: the organisation (None: the whole scope), the named period and
    its days (``start`` to ``end``, inclusive, UTC)."""

    organisation_id: uuid.UUID | None
    period: str
    start: date
    end: date

    def query(self) -> dict[str, str]:
        """The filters as query parameters (what the page's fragments and export links carry)."""
        params = {"period": self.period}
        if self.period == "custom":
            params |= {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.organisation_id:
            params["organisation_id"] = str(self.organisation_id)
        return params


def months_before(day: date, months: int) -> date:
    """The first day of the month ``months`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def resolve_view(
    period: str, start: date | None, end: date | None, organisation_id: uuid.UUID | None, today: date
) -> View:
    """The filters as a :class:`View` (422 for an unknown period, or custom dates missing or reversed).
    The named periods end today: 12 ISO weeks, 12 calendar months or 36 calendar months."""
    if period not in PERIODS:
        raise ValidationFailed(f"Choose a period: {', '.join(PERIODS)}.", extra={"field": "period"})
    if period == "custom":
        if start is None or end is None:
            raise ValidationFailed("Give both dates of a custom period.", extra={"field": "start"})
        check_period(start, end)
        return View(organisation_id, period, start, end)
    first = {
        "12w": monday_of(today) - 11 * WEEK,
        "12m": months_before(today, 11),
        "3y": months_before(today, 35),
    }[period]
    return View(organisation_id, period, first, today)


def organisation_choices(
    session: Session, principal: Principal, scope: list[uuid.UUID] | None
) -> list[tuple[str, str]]:
    """(id, name) of the organisations the caller may filter by, by name."""
    query = select(Organisation.id, Organisation.name).order_by(Organisation.name)
    if scope is not None:
        query = query.where(Organisation.id.in_(scope))
    return [(str(org_id), name) for org_id, name in session.execute(query)]


def _audit(session: Session, principal: Principal, view: View, section: str) -> None:
    audit.record(
        session,
        principal,
        ACTION,
        resource_type="organisation" if view.organisation_id else "analytics",
        resource_id=view.organisation_id or "",
        detail={"section": section, "start": view.start, "end": view.end},
    )


def _frame(session: Session, organisations: list[uuid.UUID] | None, start: date, end: date) -> pd.DataFrame:
    """Encounters of the days ``start`` to ``end`` (inclusive), loaded once per data version."""
    return shared_encounter_frame(
        session, organisation_ids=organisations, start=midnight(start), end=midnight(end + timedelta(days=1))
    )


def _encounters(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per encounter (its first diagnosis row)."""
    return frame.drop_duplicates("encounter_id")


def _between(encounters: pd.DataFrame, start: datetime, end: datetime) -> int:
    started = encounters["started_at"]
    return int(((started >= start) & (started < end)).sum())


def percent_change(now: float, before: float) -> float | None:
    """``now`` against ``before`` in percent (None when ``before`` is 0)."""
    return None if before == 0 else round((now - before) / before * 100, 1)


@dataclass(frozen=True)
class Activity:
    """The KPIs and the weekly volume of a period."""

    week_start: date  # the Monday of the period's last week
    week_until: datetime  # counted up to here (the end of the period, or now)
    week_count: int
    previous_count: int  # the week before, over the same span
    previous_total: int  # the whole week before
    change_pct: float | None
    encounters: int  # in the whole period
    admissions: int
    admission_rate: float | None
    top_code: str | None
    top_name: str | None
    top_count: int
    week_in_progress: bool  # the last week is not over yet (its count is "so far")
    weeks: list[tuple[date, int]] = field(default_factory=list)  # (Monday, encounters), every week


def activity(session: Session, principal: Principal, view: View, now: datetime) -> Activity:
    """The dashboard KPIs and weekly volume of the view (403 audited outside the caller's scope)."""
    organisations = covered_organisations(session, principal, view.organisation_id, ACTION)
    week_start = monday_of(view.end)
    first_day = min(view.start, week_start - WEEK)
    frame = _frame(session, organisations, first_day, view.end)
    encounters = _encounters(frame)
    until = min(midnight(view.end + timedelta(days=1)), now)
    week_count = _between(encounters, midnight(week_start), until)
    previous_count = _between(encounters, midnight(week_start) - WEEK, until - WEEK)
    previous_total = _between(encounters, midnight(week_start) - WEEK, midnight(week_start))
    in_period = encounters[encounters["started_at"] >= midnight(view.start)]
    admissions = int((in_period["outcome"] == Outcome.ADMITTED.value).sum())
    period_rows = frame[frame["started_at"] >= midnight(view.start)]
    top = period_rows.groupby("code")["encounter_id"].nunique().sort_values(ascending=False, kind="stable")
    top_code = str(top.index[0]) if len(top) else None
    days = in_period["started_at"].dt.tz_convert(None).dt.normalize()
    counts = (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date.value_counts()
    weeks, day = [], monday_of(view.start)
    while day <= view.end:
        weeks.append((day, int(counts.get(day, 0))))
        day += WEEK
    _audit(session, principal, view, "activity")
    return Activity(
        week_start=week_start,
        week_until=until,
        week_count=week_count,
        previous_count=previous_count,
        previous_total=previous_total,
        change_pct=percent_change(week_count, previous_count),
        encounters=len(in_period),
        admissions=admissions,
        admission_rate=round(admissions / len(in_period), 4) if len(in_period) else None,
        top_code=top_code,
        top_name=CONDITION_BY_CODE[top_code].name if top_code in CONDITION_BY_CODE else top_code,
        top_count=int(top.iloc[0]) if len(top) else 0,
        week_in_progress=until < midnight(week_start + WEEK),
        weeks=weeks,
    )


@dataclass(frozen=True)
class Today:
    """Encounters today (UTC) so far, and the same weekday's average over :data:`WEEKDAY_HISTORY` weeks:
    by this time of day and over the whole day."""

    day: date
    so_far: int
    usual_by_now: float
    usual_day: float
    change_pct: float | None


def today(session: Session, principal: Principal, view: View, now: datetime) -> Today:
    """Today's encounters so far against the same weekday of the previous weeks."""
    organisations = covered_organisations(session, principal, view.organisation_id, ACTION)
    day = now.date()
    first = day - WEEKDAY_HISTORY * WEEK
    encounters = _encounters(_frame(session, organisations, first, day))
    start = midnight(day)
    so_far = _between(encounters, start, now)
    by_now = [_between(encounters, start - k * WEEK, now - k * WEEK) for k in range(1, WEEKDAY_HISTORY + 1)]
    whole = [
        _between(encounters, start - k * WEEK, start - k * WEEK + timedelta(days=1))
        for k in range(1, WEEKDAY_HISTORY + 1)
    ]
    usual_by_now = sum(by_now) / WEEKDAY_HISTORY
    _audit(session, principal, view, "today")
    return Today(
        day=day,
        so_far=so_far,
        usual_by_now=round(usual_by_now, 1),
        usual_day=round(sum(whole) / WEEKDAY_HISTORY, 1),
        change_pct=percent_change(so_far, usual_by_now),
    )


def latest_weekly_forecast(
    session: Session, principal: Principal, organisation_id: uuid.UUID | None
) -> dict[str, Any] | None:
    """The newest weekly forecast of the scope (None when none was made yet)."""
    try:
        return forecasting.latest_forecast(session, principal, "weekly", organisation_id)
    except NotFound:
        return None


@dataclass(frozen=True)
class Staffing:
    """Expected visits this week and next (the forecast's points for those Mondays) and the advice."""

    this_week: date
    this_week_expected: float | None
    next_week_expected: float | None
    change_pct: float | None
    advice: str
    stale: bool
    generated_at: str


def staffing(forecast: dict[str, Any], today_: date) -> Staffing:
    """The staffing hint from a weekly forecast (pure)."""
    points = {p["period"]: p for p in forecast["forecast"]}
    monday = monday_of(today_)
    this = points.get(monday.isoformat())
    following = points.get((monday + WEEK).isoformat())
    expected = this["sarima"] if this else None
    upcoming = following["sarima"] if following else None
    change = percent_change(upcoming, expected) if upcoming is not None and expected is not None else None
    if upcoming is None:
        advice = "The forecast does not reach next week: run the forecast again."
    elif change is None or abs(change) <= STAFFING_MARGIN * 100:
        advice = "Next week should be about as busy as this one: keep the usual staffing."
    elif change > 0:
        advice = f"Next week should be busier ({change:+.0f} %): consider adding staff to the rota."
    else:
        advice = f"Next week should be quieter ({change:+.0f} %): fewer staff may be needed."
    return Staffing(
        this_week=monday,
        this_week_expected=expected,
        next_week_expected=upcoming,
        change_pct=change,
        advice=advice,
        stale=bool(forecast.get("stale")),
        generated_at=str(forecast.get("generated_at", "")),
    )


@dataclass(frozen=True)
class RiskRow:
    """A patient of the care list and their risk now."""

    patient: Patient
    level: str
    consensus: float
    drivers: list[str]


@dataclass(frozen=True)
class RiskList:
    """The riskiest patients of the care list, the number assessed and why none could be (no model)."""

    rows: list[RiskRow]
    assessed: int
    in_care: int
    problem: str = ""
    label: str | None = None
    version: str | None = None


def care_patients(session: Session, principal: Principal) -> list[Patient]:
    """The patients in the user's care (active relationships), the most recent first."""
    query = (
        select(Patient)
        .join(CareRelationship, CareRelationship.patient_id == Patient.id)
        .where(CareRelationship.practitioner_id == principal.user_id, CareRelationship.ended_at.is_(None))
        .order_by(CareRelationship.created_at.desc(), Patient.id)
    )
    return list(session.execute(query).scalars().unique())


def my_risks(session: Session, principal: Principal, limit: int = RISK_LIMIT) -> RiskList:
    """The risk of the patients in the caller's care (the :data:`RISK_CANDIDATES` most recent), highest
    first, at most ``limit``; ``problem`` says why there is none (no active model)."""
    covered_organisations(session, principal, None, ACTION)
    patients = care_patients(session, principal)
    rows: list[RiskRow] = []
    label = version = None
    try:
        risks = risk_service.visible_patients_risk(session, principal, patients[:RISK_CANDIDATES])
    except Conflict as exc:
        return RiskList([], 0, len(patients), problem=exc.detail)
    by_id = {p.id: p for p in patients}
    for risk in risks:
        patient = by_id[risk.patient_id]
        label, version = risk.label, risk.version
        drivers = [d.label for d in risk.result.drivers[:3]]
        rows.append(RiskRow(patient, risk.result.level.value, risk.result.consensus, drivers))
    rows.sort(key=lambda row: (-row.consensus, row.patient.family_name))
    return RiskList(rows[:limit], len(rows), len(patients), label=label, version=version)


@dataclass(frozen=True)
class QueueCount:
    """How many patients wait at one clinic location, and how many of them are overdue."""

    location_id: uuid.UUID
    name: str
    waiting: int
    overdue: int


def queue_waiting(session: Session, principal: Principal, now: datetime) -> list[QueueCount]:
    """The waiting tickets of each clinic location of the organisation (none for roles without queues)."""
    if not has_perm(principal, Perm.QUEUE_MANAGE):
        return []
    counts = []
    for location in queue_service.locations(session, principal):
        board = queue_service.board(session, principal, location.id, now)
        overdue = sum(ticket.overdue for ticket in board.tickets)
        counts.append(QueueCount(location.id, location.name, len(board.tickets), overdue))
    return counts


def latest_complete_week(weeks: list[WeeklyTop], today_: date) -> list[WeeklyTop]:
    """The rows of the last week of a trend table that is over (the current week is still filling), or of
    its last week when none is."""
    mondays = sorted({row.week_start for row in weeks})
    if not mondays:
        return []
    complete = [monday for monday in mondays if monday + WEEK <= today_]
    chosen = complete[-1] if complete else mondays[-1]
    return [row for row in weeks if row.week_start == chosen]


# --- chart data (Chart.js configurations as plain JSON) ---------------------------------------------------


def line_chart(labels: list[str], datasets: list[dict[str, Any]], *, y_title: str = "") -> dict[str, Any]:
    """A line chart configuration."""
    options: dict[str, Any] = {"scales": {"y": {"beginAtZero": True, "title": {"display": bool(y_title)}}}}
    options["scales"]["y"]["title"]["text"] = y_title
    return {"type": "line", "data": {"labels": labels, "datasets": datasets}, "options": options}


def bar_chart(labels: list[str], datasets: list[dict[str, Any]], *, stacked: bool = False) -> dict[str, Any]:
    """A bar chart configuration."""
    scales = {"x": {"stacked": stacked}, "y": {"stacked": stacked, "beginAtZero": True}}
    return {"type": "bar", "data": {"labels": labels, "datasets": datasets}, "options": {"scales": scales}}


def series(label: str, data: list[float | None], colour: str, **extra: Any) -> dict[str, Any]:
    """One dataset."""
    return {"label": label, "data": data, "borderColor": colour, "backgroundColor": colour, **extra}


def volume_chart(weeks: list[tuple[date, int]], forecast: dict[str, Any] | None) -> dict[str, Any]:
    """Encounters per week and, when given, the forecast weeks after them with 80 % and 95 % bands."""
    labels = [monday.isoformat() for monday, _ in weeks]
    actual: list[float | None] = [float(count) for _, count in weeks]
    ahead = [p for p in (forecast or {}).get("forecast", []) if not labels or p["period"] >= labels[-1]]
    extra = [p["period"] for p in ahead if p["period"] not in labels]
    labels += extra
    actual += [None] * len(extra)
    datasets = [series("Encounters", actual, COLOURS[0], tension=0.2)]
    if ahead:
        offset = len(labels) - len(ahead)

        def aligned(key: str) -> list[float | None]:
            return [None] * offset + [round(p[key], 1) for p in ahead]

        def band(label: str, level: str, colour: str) -> list[dict[str, Any]]:
            """The interval as a filled band: its upper edge, then the lower one filled up to it."""
            return [
                series(label, aligned(f"upper_{level}"), colour, pointRadius=0),
                series(
                    f"{label} (lower)",
                    aligned(f"lower_{level}"),
                    colour,
                    pointRadius=0,
                    fill="-1",
                    legend=False,
                ),
            ]

        datasets += [
            *band("95 % interval", "95", "rgba(214,57,57,.12)"),
            *band("80 % interval", "80", "rgba(214,57,57,.25)"),
            series("Forecast (SARIMA)", aligned("sarima"), COLOURS[1], borderDash=[6, 4]),
            series("Seasonal naive", aligned("seasonal_naive"), COLOURS[7], borderDash=[2, 3], pointRadius=0),
        ]
    return line_chart(labels, datasets, y_title="encounters per week")


def week_leaders(weeks: list[WeeklyTop]) -> list[WeeklyTop]:
    """The most frequent condition of each week of a trend table, in week order."""
    return sorted((row for row in weeks if row.rank == 1), key=lambda row: row.week_start)


def leaders_chart(leaders: list[WeeklyTop]) -> dict[str, Any]:
    """Bars of the encounters with each week's most frequent condition."""
    counts: list[float | None] = [float(row.count) for row in leaders]
    label = "Encounters with the week's top condition"
    return bar_chart([row.week_start.isoformat() for row in leaders], [series(label, counts, COLOURS[0])])


def seasonal_chart(peaks: list[SeasonalPeak], profile: list[MonthProfile]) -> dict[str, Any]:
    """Each month's ratio to the monthly mean, one line per condition of ``peaks``."""
    ratios = {(m.code, m.month): m.ratio for m in profile}
    datasets = [
        series(
            f"{peak.code} {peak.name}",
            [ratios.get((peak.code, month)) for month in range(1, 13)],
            COLOURS[i],
            tension=0.3,
        )
        for i, peak in enumerate(peaks)
    ]
    return line_chart(list(MONTHS), datasets, y_title="ratio to the monthly mean")


def groups_chart(groups: list[GroupShare], colour: str) -> dict[str, Any]:
    """Bars of the patients of each group (age band or sex)."""
    return bar_chart(
        [g.group for g in groups], [series("Patients", [float(g.patients) for g in groups], colour)]
    )
