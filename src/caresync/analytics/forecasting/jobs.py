"""The forecast job: load the scope's encounters, evaluate SARIMA against the seasonal naive on both splits,
forecast ahead, and keep the whole answer as the job's result (the store :mod:`.service` serves it from)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from caresync.analytics import cache
from caresync.analytics.data import shared_encounter_frame
from caresync.analytics.forecasting import sarima
from caresync.core.jobs import JobContext, job_task
from caresync.db import session_factory, transaction, utcnow

FORECAST_JOB = "analytics.forecast"


def scope_key(organisation_ids: list[uuid.UUID] | None) -> str:
    """The scope as text: ``all``, or the sorted organisation ids."""
    return "all" if organisation_ids is None else ",".join(sorted(str(o) for o in organisation_ids))


def result_key(granularity: str, organisation_ids: list[uuid.UUID] | None) -> str:
    """What a forecast answers: granularity and scope (without the data version)."""
    return f"forecast:{granularity}:{scope_key(organisation_ids)}"


def cache_key(granularity: str, organisation_ids: list[uuid.UUID] | None, version: str) -> str:
    """A forecast of this granularity and scope for exactly this data."""
    return f"{result_key(granularity, organisation_ids)}@{version}"


def compute(
    granularity: str, organisation_ids: list[uuid.UUID] | None, progress: sarima.Progress
) -> dict[str, Any]:
    """The forecast of the scope's current encounters, as the JSON-ready dict the job keeps. The leading
    ``key`` and ``cache_key`` fields are what :mod:`.service` looks jobs up by."""
    spec = sarima.SPECS[granularity]
    progress(5, "Loading encounters")
    with transaction(session_factory()) as session:
        version = cache.data_version(session, organisation_ids)

    def build() -> dict[str, Any]:
        # A version read before the frame: if encounters arrive in between, the result is merely recomputed
        # on the next request. No transaction stays open while the models are fitted.
        with transaction(session_factory()) as session:
            frame = shared_encounter_frame(session, organisation_ids=organisation_ids)
        now = utcnow()
        report = sarima.forecast_report(sarima.volume_series(frame, spec, until=now), spec, progress)
        return {
            "key": result_key(granularity, organisation_ids),
            "cache_key": cache_key(granularity, organisation_ids, version),
            "data_version": version,
            "organisation_ids": None if organisation_ids is None else [str(o) for o in organisation_ids],
            "generated_at": now.isoformat(),
            **dataclasses.asdict(report),
        }

    return cache.results.get_or_compute(result_key(granularity, organisation_ids), version, build)


@job_task(FORECAST_JOB)
def forecast_job(ctx: JobContext, granularity: str, organisation_ids: list[str] | None) -> dict[str, Any]:
    """Job: the volume forecast of a scope (``organisation_ids`` ``None``: every organisation)."""
    scope = None if organisation_ids is None else [uuid.UUID(o) for o in organisation_ids]
    return compute(granularity, scope, ctx.progress)
