"""Forecasts and surges as the API serves them: permission (``analytics:view``, own organisation), audit,
the forecast job and its reuse, and the surge table.

Forecasts are kept as the result of their job (:mod:`.jobs`), keyed by granularity, scope and data version
(:func:`caresync.analytics.cache.data_version`). Asking again while no encounter has been recorded in the
scope returns the finished job at once, without a new fit; the latest result of a scope stays readable (marked
``stale``) after new encounters arrive, until someone runs the forecast again. Surges are quick enough
(well under two seconds for three years of three organisations) to compute in the request, from the scope's
encounter frame held in memory (:data:`caresync.analytics.data.FRAMES`), cached until an encounter of an
earlier week arrives or a new week begins (only whole weeks count: new encounters of the week in progress
change nothing).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.analytics import cache
from caresync.analytics.data import FRAMES, covered_organisations
from caresync.analytics.forecasting import jobs as forecast_jobs
from caresync.analytics.forecasting import sarima, surge
from caresync.analytics.models import Encounter
from caresync.analytics.rules import SurgeLevel
from caresync.core import audit, jobs
from caresync.core.auth import Principal
from caresync.core.errors import NotFound, ValidationFailed
from caresync.core.jobs import Job
from caresync.db import utcnow
from caresync.identity.models import Organisation


def _audit(
    session: Session, principal: Principal, action: str, scope: list[uuid.UUID] | None, **detail: Any
) -> None:
    """Record an analysis (aggregates: the scope, never a patient)."""
    single = scope is not None and len(scope) == 1
    audit.record(
        session,
        principal,
        action,
        resource_type="organisation" if single else "analytics",
        resource_id=scope[0] if scope and single else "",
        detail={"scope": forecast_jobs.scope_key(scope), **detail},
    )


def _finished_job(session: Session, field: str, value: str) -> Job | None:
    """The newest succeeded forecast job whose result has ``field`` equal to ``value``."""
    pattern = f'%"{field}": "{value}"%'
    query = (
        select(Job)
        .where(Job.kind == forecast_jobs.FORECAST_JOB, Job.status == "succeeded", Job.result.like(pattern))
        .order_by(Job.finished_at.desc())
        .limit(1)
        .execution_options(populate_existing=True)  # it may have finished in another session meanwhile
    )
    return session.execute(query).scalar_one_or_none()


def available_periods(session: Session, scope: list[uuid.UUID] | None, spec: sarima.Spec) -> int:
    """How many whole periods of encounters the scope has (the forecast series' length), from one query."""
    query = select(func.min(Encounter.started_at))
    if scope is not None:
        query = query.where(Encounter.organisation_id.in_(scope))
    first = session.execute(query).scalar_one()
    if first is None:
        return 0
    return len(sarima.whole_periods(pd.Timestamp(first), pd.Timestamp(utcnow()), spec))


def request_forecast(
    session: Session, principal: Principal, granularity: str, organisation_id: uuid.UUID | None
) -> tuple[Job, bool]:
    """The forecast job for this granularity and scope, and whether it is an earlier one reused because no
    encounter arrived since (no new fit). 422 when the scope's history is too short."""
    spec = sarima.SPECS[granularity]
    scope = covered_organisations(session, principal, organisation_id, "analytics.forecast.run")
    version = cache.data_version(session, scope)
    earlier = _finished_job(session, "cache_key", forecast_jobs.cache_key(granularity, scope, version))
    if earlier is not None:
        _audit(session, principal, "analytics.forecast.run", scope, granularity=granularity, cached=True)
        return earlier, True
    sarima.require_length(available_periods(session, scope, spec), spec)
    organisation_ids = None if scope is None else [str(o) for o in scope]
    job = jobs.submit(
        session,
        principal,
        forecast_jobs.forecast_job,
        granularity=granularity,
        organisation_ids=organisation_ids,
    )
    _audit(session, principal, "analytics.forecast.run", scope, granularity=granularity, cached=False)
    return job, False


def job_out(job: Job, cached: bool) -> dict[str, Any]:
    """The public shape of a forecast job (:func:`caresync.core.jobs.job_view` plus ``cached``)."""
    return {**jobs.job_view(job), "cached": cached}


def latest_forecast(
    session: Session, principal: Principal, granularity: str, organisation_id: uuid.UUID | None
) -> dict[str, Any]:
    """The newest finished forecast of this granularity for the scope, ``stale`` if encounters arrived since
    (404 when none has been run)."""
    scope = covered_organisations(session, principal, organisation_id, "analytics.forecast.view")
    job = _finished_job(session, "key", forecast_jobs.result_key(granularity, scope))
    if job is None:
        raise NotFound(
            f"No {granularity} forecast has been made for this scope yet: run a forecast first "
            "(POST /api/v1/analytics/forecasts)."
        )
    result = json.loads(job.result)
    _audit(session, principal, "analytics.forecast.view", scope, granularity=granularity)
    return {
        **result,
        "job_id": str(job.id),
        "stale": result["data_version"] != cache.data_version(session, scope),
    }


def surge_moment(as_of: date | None) -> datetime:
    """The moment surges are counted up to: now, or the end of the day ``as_of`` (422 in the future)."""
    now = utcnow()
    if as_of is None:
        return now
    if as_of > now.date():
        raise ValidationFailed("`as_of` cannot be in the future.")
    return min(datetime.combine(as_of + timedelta(days=1), day_time(), tzinfo=UTC), now)


def surges(
    session: Session, principal: Principal, organisation_id: uuid.UUID | None, as_of: date | None
) -> dict[str, Any]:
    """Every condition's surge level in the scope, counted in whole weeks up to ``as_of`` (default now)."""
    scope = covered_organisations(session, principal, organisation_id, "analytics.surges.view")
    until = surge_moment(as_of)
    week = sarima.period_start(pd.DatetimeIndex([until]), sarima.WEEKLY)[0]
    held = FRAMES.held(session, scope)  # the frame the other analyses of the scope share
    counted = (held.frame["started_at"] < week.tz_localize(UTC)).to_numpy()  # only whole weeks count

    def compute() -> dict[str, Any]:
        started = time.perf_counter()
        found = surge.surges(held.frame.loc[counted], as_of=pd.Timestamp(until))
        names = _organisation_names(session, {s.organisation_id for s in found})
        return {
            "organisation_ids": None if scope is None else [str(o) for o in scope],
            "as_of": week.date().isoformat(),
            "rules": [
                {"level": level.value, "min_z": z, "min_ratio": ratio, "min_excess_per_week": excess}
                for level, z, ratio, excess in surge.LEVEL_RULES
            ],
            "levels": {level.value: sum(s.level == level for s in found) for level in SurgeLevel},
            "seconds": time.perf_counter() - started,
            "surges": [
                {**dataclasses.asdict(s), "organisation_name": names.get(s.organisation_id, "")}
                for s in found
            ],
        }

    # Encounters are only added (the frame store reloads in full, as a new generation, otherwise), so the
    # weeks before `week` are unchanged while no encounter started before it arrives: new encounters of the
    # week in progress do not recompute the surges.
    key = ("surges", forecast_jobs.scope_key(scope), week.isoformat())
    result = cache.results.get_or_compute(key, f"{held.generation}:{int(counted.sum())}", compute)
    _audit(session, principal, "analytics.surges.view", scope, as_of=until.date().isoformat())
    return {**result, "data_version": held.state.version}


def _organisation_names(session: Session, ids: set[str]) -> dict[str, str]:
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    if not valid:
        return {}
    rows = session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(valid)))
    return {str(org_id): name for org_id, name in rows}
