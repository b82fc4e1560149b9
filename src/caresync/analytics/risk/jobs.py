"""Background jobs of the risk models: training a new version on an organisation's encounters."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from caresync.analytics.data import encounter_frame
from caresync.analytics.risk import service
from caresync.core import jobs
from caresync.core.auth import Principal
from caresync.core.jobs import JobContext, job_task
from caresync.db import session_factory, transaction


@job_task("analytics.risk.train")
def train_job(ctx: JobContext, organisation_id: str) -> dict[str, Any]:
    """Job: train both models on the organisation's encounters and store them as a new version (not
    activated: an administrator chooses when to switch)."""
    org = uuid.UUID(organisation_id)
    ctx.progress(1, "Loading encounters")
    with transaction(session_factory()) as session:
        frame = encounter_frame(session, organisation_ids=[org])
        synthetic = service.has_synthetic(session, [org])
    card = service.train_and_store(frame, organisation_id=org, synthetic=synthetic, progress=ctx.progress)
    return {
        "version": card["version"],
        "roc_auc": {name: card["metrics"][name]["test"]["roc_auc"] for name in ("mlp", "forest")},
    }


def start_training(session: Session, principal: Principal) -> jobs.Job:
    """Check and audit the request (administrators, own organisation) and queue the training job; the job
    is enqueued when the caller's transaction commits."""
    organisation_id = service.authorize_training(session, principal)
    return jobs.submit(session, principal, train_job, organisation_id=str(organisation_id))
