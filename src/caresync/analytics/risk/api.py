"""Risk model endpoints under ``/api/v1/analytics/risk``: train a version (a job), list versions with their
cards, choose the active one, and a patient's risk now. Tables are also served as CSV (``?format=csv``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from caresync.analytics.risk import jobs as risk_jobs
from caresync.analytics.risk import service
from caresync.analytics.risk.schemas import ActivateIn, ModelCardOut, ModelList, RiskOut
from caresync.core import jobs
from caresync.core.csvfile import csv_download, csv_table
from caresync.web.api import JobOut
from caresync.web.deps import CurrentUser, Db

router = APIRouter(tags=["analytics"])
PREFIX = "/api/v1/analytics/risk"
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
TABLE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}
METRIC_COLUMNS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier")


def _table(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...], name: str) -> Response:
    """A table of dicts as a CSV file to save."""
    return csv_download(csv_table(columns, ([row.get(c) for c in columns] for row in rows)), name)


@router.post(f"{PREFIX}/models", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def train_model(principal: CurrentUser, db: Db) -> JobOut:
    """Administrators: train a new version on your organisation's encounters, as a job (follow it at
    ``/api/v1/jobs/{id}``). The new version is stored, not activated."""
    job = risk_jobs.start_training(db, principal)
    view = jobs.job_view(job)
    db.commit()
    return JobOut(**view)


@router.get(f"{PREFIX}/models", response_model=ModelList, responses=TABLE_RESPONSES)
def list_models(principal: CurrentUser, db: Db, format: Format = "json") -> ModelList | Response:
    """The versions you may use (your organisation's and the shared ones), newest first, with their
    cards; ``format=csv``: one row per version and model with its test metrics."""
    cards, active = service.list_models(db, principal)
    db.commit()
    out = ModelList(active=active, items=[ModelCardOut.of(card, active) for card in cards])
    if format == "csv":
        columns = ("version", "trained_at", "active", "synthetic", "model", *METRIC_COLUMNS)
        rows = [
            {**item.model_dump(include={"version", "trained_at", "active", "synthetic"}), "model": name}
            | getattr(item, name).test.model_dump()
            for item in out.items
            for name in ("mlp", "forest")
        ]
        return _table(rows, columns, "risk-models.csv")
    return out


@router.put(f"{PREFIX}/models/active", response_model=ModelCardOut)
def activate_model(body: ActivateIn, principal: CurrentUser, db: Db) -> ModelCardOut:
    """Administrators: the version your organisation uses from now on (no restart needed)."""
    card = service.activate(db, principal, body.version)
    db.commit()
    return ModelCardOut.of(card, body.version)


@router.get(f"{PREFIX}/patients/{{patient_id}}", response_model=RiskOut, responses=TABLE_RESPONSES)
def patient_risk(
    patient_id: uuid.UUID, principal: CurrentUser, db: Db, format: Format = "json"
) -> RiskOut | Response:
    """A patient's risk now (the doctors and nurses caring for them; audited): level, consensus and
    per-model probabilities, and the drivers (``format=csv``: the drivers as a table). 409 when no model
    is active."""
    out = RiskOut.of(service.patient_risk(db, principal, patient_id))
    db.commit()
    if format == "csv":
        columns = ("feature", "label", "value", "z", "direction", "importance", "score")
        return _table((d.model_dump() for d in out.drivers), columns, f"risk-drivers-{patient_id}.csv")
    return out
