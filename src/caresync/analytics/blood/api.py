"""Blood supply analytics endpoints: blood bank staff (their own blood bank) and administrators (any, their
own by default, ``organisation_id``) read ``GET /api/v1/analytics/blood/summary``, ``/series``,
``/forecast``, ``/shortages`` and ``/donations``; a donor reads ``/me``. ``?format=csv`` downloads the
answer's table (``table`` chooses it where there are several), ``?format=json`` the answer as a file."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from caresync.analytics.blood import schemas, service
from caresync.analytics.export import EXPORTS, Format, OrganisationId, download
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/analytics/blood", tags=["analytics"])

Start = Annotated[date | None, Query(description="first day (UTC); omitted: 52 weeks before `end`")]
End = Annotated[date | None, Query(description="last day (UTC), included; omitted: today")]
Organisation = Annotated[
    OrganisationId, Query(description="administrators: the blood bank (default: their own); staff: their own")
]


def respond(db: Session, body: BaseModel, csv: bytes, name: str, export: str | None) -> BaseModel | Response:
    """The body (or its CSV or JSON download), ending the handler's transaction (the audit entry)."""
    db.commit()
    return body if export is None else download(body, csv, f"blood-{name}", export)


@router.get("/summary", response_model=schemas.SummaryOut, responses=EXPORTS)
def summary(
    principal: CurrentUser, db: Db, organisation_id: Organisation = None, export: Format = None
) -> BaseModel | Response:
    """Stock by group and component, red cell days of supply, shortage levels and the groups to call donors
    for, with each group's forecast method and verdict (CSV: the stock table)."""
    body = schemas.SummaryOut.of_summary(*service.summary(db, principal, organisation_id))
    return respond(db, body, body.csv(), "summary", export)


@router.get("/series", response_model=schemas.SeriesOut, responses=EXPORTS)
def series(
    principal: CurrentUser,
    db: Db,
    organisation_id: Organisation = None,
    start: Start = None,
    end: End = None,
    table: Annotated[schemas.SeriesTable, Query(description="the table a CSV download holds")] = "usage",
    export: Format = None,
) -> BaseModel | Response:
    """Units issued, transfused, expired and discarded per ISO week by group and component, and completed
    donations per week, for the period (default: the last 52 weeks)."""
    body = schemas.SeriesOut.of(service.weekly_series(db, principal, organisation_id, start, end))
    return respond(db, body, body.csv(table), f"series-{table}", export)


@router.get("/forecast", response_model=schemas.ForecastOut, responses=EXPORTS)
def forecast(
    principal: CurrentUser,
    db: Db,
    organisation_id: Organisation = None,
    table: Annotated[schemas.ForecastTable, Query(description="the table a CSV download holds")] = "forecast",
    export: Format = None,
) -> BaseModel | Response:
    """Red cell demand per group for the next 4 weeks with 80 % and 95 % intervals, the test metrics against
    the baseline and the verdict (the weekly SARIMA model with two years of history, else a moving average,
    said in ``note``)."""
    outlook = service.outlook(db, principal, organisation_id, "analytics.blood.forecast")
    body = schemas.ForecastOut.of(outlook)
    return respond(db, body, body.csv(table), f"forecast-{table}", export)


@router.get("/shortages", response_model=schemas.ShortagesOut, responses=EXPORTS)
def shortages(
    principal: CurrentUser, db: Db, organisation_id: Organisation = None, export: Format = None
) -> BaseModel | Response:
    """Per group: available red cells, forecast daily demand, days of supply, the projected shortage date
    (stock net of expiries below the policy minimum, without new supplies) and the level."""
    body = schemas.ShortagesOut.of(
        service.outlook(db, principal, organisation_id, "analytics.blood.shortages")
    )
    return respond(db, body, body.csv(), "shortages", export)


@router.get("/donations", response_model=schemas.DonationsOut, responses=EXPORTS)
def donations(
    principal: CurrentUser,
    db: Db,
    organisation_id: Organisation = None,
    start: Start = None,
    end: End = None,
    table: Annotated[schemas.DonationTable, Query(description="the table a CSV download holds")] = "groups",
    export: Format = None,
) -> BaseModel | Response:
    """Completed donations per month by blood group and by first-time against returning donors, and the
    period's visits by outcome."""
    body = schemas.DonationsOut.of(service.donation_trends(db, principal, organisation_id, start, end))
    return respond(db, body, body.csv(table), f"donations-{table}", export)


@router.get("/me", response_model=schemas.MyBloodOut, responses=EXPORTS)
def me(principal: CurrentUser, db: Db, export: Format = None) -> BaseModel | Response:
    """The signed-in donor's donations per year, next eligible date (whole blood) and how much their group
    is needed at the blood banks they give at (CSV: donations per year)."""
    body = schemas.MyBloodOut.model_validate(service.my_blood(db, principal))
    return respond(db, body, body.csv(), "me", export)
