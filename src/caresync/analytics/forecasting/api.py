"""Forecast and surge endpoints (``analytics:view``: clinicians and administrators, for their own
organisation):

- ``POST /api/v1/analytics/forecasts`` ``{granularity, organisation_id?}``: starts the forecast job (202) and
  returns it, or returns the finished job of an earlier request at once (200, ``cached``) while no
  encounter has arrived since; 422 when there is too little history.
- ``GET /api/v1/analytics/forecasts/latest?granularity=``: the newest finished forecast of the scope (404:
  run one first); ``?format=csv`` downloads the ``table`` (``forecast`` or ``metrics``) as CSV,
  ``?format=json`` the answer as a JSON file.
- ``GET /api/v1/analytics/surges?as_of=``: every condition's surge level (computed in the request, cached),
  with the same ``format`` downloads.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse, Response

from caresync.analytics.export import EXPORTS, Format, OrganisationId, download
from caresync.analytics.forecasting import service
from caresync.analytics.forecasting.schemas import (
    ForecastJobOut,
    ForecastOut,
    ForecastRequest,
    ForecastTable,
    Granularity,
    SurgesOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


@router.post(
    "/forecasts",
    response_model=ForecastJobOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": ForecastJobOut, "description": "an earlier job's result for the same data"}},
)
def run_forecast(body: ForecastRequest, principal: CurrentUser, db: Db) -> ForecastJobOut | JSONResponse:
    """Forecast patient volumes (SARIMA against the seasonal naive, 70/30 and 80/20 splits, 80 % and 95 %
    intervals) as a job; follow it at ``/api/v1/jobs/{id}``."""
    job, cached = service.request_forecast(db, principal, body.granularity, body.organisation_id)
    db.commit()
    db.refresh(job)  # a worker may have picked it up already (with CARESYNC_JOBS_IMMEDIATE it has finished)
    out = ForecastJobOut(**service.job_out(job, cached))
    db.rollback()
    if cached:
        return JSONResponse(out.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    return out


@router.get("/forecasts/latest", response_model=ForecastOut, responses=EXPORTS)
def latest_forecast(
    principal: CurrentUser,
    db: Db,
    granularity: Granularity = "monthly",
    organisation_id: OrganisationId = None,
    export: Format = None,
    table: Annotated[ForecastTable, Query(description="the table a CSV download holds")] = "forecast",
) -> ForecastOut | Response:
    """The newest finished forecast of your scope (``stale`` once encounters were recorded since)."""
    out = ForecastOut.model_validate(service.latest_forecast(db, principal, granularity, organisation_id))
    db.commit()
    return out if export is None else download(out, out.csv(table), f"forecast-{granularity}-{table}", export)


@router.get("/surges", response_model=SurgesOut, responses=EXPORTS)
def surges(
    principal: CurrentUser,
    db: Db,
    organisation_id: OrganisationId = None,
    as_of: Annotated[
        date | None, Query(description="count the whole weeks up to this day; default now")
    ] = None,
    export: Format = None,
) -> SurgesOut | Response:
    """Each condition's surge level (low, moderate, high, critical) from its last two weeks and a four-week
    forecast against its seasonal norm, most urgent first."""
    out = SurgesOut.model_validate(service.surges(db, principal, organisation_id, as_of))
    db.commit()
    return out if export is None else download(out, out.csv(), "surges", export)
