"""Statistics endpoints (``analytics:view``: clinicians and administrators, for their own organisation):
``GET /api/v1/analytics/trends``, ``/seasonality``, ``/demographics`` and ``/associations``, filtered by
``organisation_id``, ``start`` and ``end`` (whole UTC days, inclusive) and, for trends, ``weeks``.
``?format=csv`` downloads the answer's table as CSV, ``?format=json`` the answer as a JSON file."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.analytics.export import EXPORTS, Format, OrganisationId, download
from caresync.analytics.statistics import service
from caresync.analytics.statistics.schemas import AssociationsOut, DemographicsOut, SeasonalityOut, TrendsOut
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

Start = Annotated[date | None, Query(description="first day (UTC); omitted: from the first encounter")]
End = Annotated[date | None, Query(description="last day (UTC), included; omitted: up to now")]
Weeks = Annotated[
    int,
    Query(
        ge=1,
        le=service.MAX_WEEKS,
        description="how many ISO weeks up to `end` (used when `start` is omitted)",
    ),
]


Body = TrendsOut | SeasonalityOut | DemographicsOut | AssociationsOut


def respond(db: Session, body: Body, name: str, export: str | None) -> Body | Response:
    """The body (or its CSV or JSON download), ending the handler's transaction (the audit entry)."""
    db.commit()
    if export is None:
        return body
    return download(body, body.csv(), name, export)


def _filters(organisation_id: uuid.UUID | None, start: date | None, end: date | None) -> service.Filters:
    return service.Filters(organisation_id=organisation_id, start=start, end=end)


@router.get("/trends", response_model=TrendsOut, responses=EXPORTS)
def trends(
    principal: CurrentUser,
    db: Db,
    organisation_id: OrganisationId = None,
    start: Start = None,
    end: End = None,
    weeks: Weeks = service.DEFAULT_WEEKS,
    export: Format = None,
) -> Body | Response:
    """The top 5 conditions of each ISO week (encounters diagnosed with them) with the change from the week
    before, for the weeks from `start` (or the last `weeks` weeks) to `end` (default: this week)."""
    analysis = service.trends(
        db, principal, _filters(organisation_id, start, end), weeks=weeks, export=export
    )
    return respond(db, TrendsOut.of(analysis), "trends", export)


@router.get("/seasonality", response_model=SeasonalityOut, responses=EXPORTS)
def seasonality(
    principal: CurrentUser,
    db: Db,
    organisation_id: OrganisationId = None,
    start: Start = None,
    end: End = None,
    export: Format = None,
) -> Body | Response:
    """Each condition's average count per calendar month over the period's months, its ratio to the
    condition's monthly mean, and its peak month."""
    analysis = service.seasonality(db, principal, _filters(organisation_id, start, end), export=export)
    return respond(db, SeasonalityOut.of(analysis), "seasonality", export)


@router.get("/demographics", response_model=DemographicsOut, responses=EXPORTS)
def demographics(
    principal: CurrentUser,
    db: Db,
    organisation_id: OrganisationId = None,
    start: Start = None,
    end: End = None,
    export: Format = None,
) -> Body | Response:
    """Patients and encounters by age band (0-19, 20-39, 40-59, 60-79, 80+) and sex, with their shares,
    overall and per organisation."""
    analysis = service.demographic_profile(
        db, principal, _filters(organisation_id, start, end), export=export
    )
    return respond(db, DemographicsOut.of(analysis), "demographics", export)


@router.get("/associations", response_model=AssociationsOut, responses=EXPORTS)
def associations(
    principal: CurrentUser,
    db: Db,
    organisation_id: OrganisationId = None,
    start: Start = None,
    end: End = None,
    export: Format = None,
) -> Body | Response:
    """Chi-square tests of independence between age band, and sex, and each condition (one observation per
    patient), with Cramér's V, expected-count warnings and Benjamini-Hochberg adjusted p-values."""
    analysis = service.association_tests(db, principal, _filters(organisation_id, start, end), export=export)
    return respond(db, AssociationsOut.of(analysis), "associations", export)
