"""The imaging model registry and condition catalog under ``/api/v1/imaging``: model versions with their
cards, switching the serving version of a task (admins), and the catalog's tasks and conditions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from caresync.imaging.registry import service
from caresync.imaging.registry.schemas import (
    ConditionOut,
    ModelCardOut,
    ModelList,
    ModelOut,
    ServingOut,
    TaskOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/imaging", tags=["imaging"])


@router.get("/models", response_model=ModelList)
def list_models(
    principal: CurrentUser,
    db: Db,
    task: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> ModelList:
    """Trained model versions (of one task, if given), newest first, with their headline test metrics
    (admins, doctors and nurses)."""
    page = service.page_models(db, principal, task=task, limit=limit, cursor=cursor)
    serving = {model.id for model in service.serving(db).values()}
    out = ModelList(
        items=[ModelOut.of(m, serving=m.id in serving) for m in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
    )
    db.commit()
    return out


@router.get("/models/{model_id}", response_model=ModelCardOut)
def get_model(model_id: uuid.UUID, principal: CurrentUser, db: Db) -> ModelCardOut:
    """One version with its model card."""
    model = service.get_model(db, principal, model_id)
    current = service.serving_model(db, model.task)
    out = ModelCardOut.of_card(model, serving=current is not None and current.id == model.id)
    db.commit()
    return out


@router.post("/models/{model_id}/serve", response_model=ServingOut)
def serve(model_id: uuid.UUID, principal: CurrentUser, db: Db) -> ServingOut:
    """Make this version answer new analyses of its task (administrators). Analyses already running
    finish with the version they started with; no restart is needed."""
    out = ServingOut.of(service.serve(db, principal, model_id))
    db.commit()
    return out


@router.get("/tasks", response_model=list[TaskOut])
def tasks(principal: CurrentUser, db: Db) -> list[TaskOut]:
    """The catalog's tasks (model heads): input contract, labels, the conditions each covers and the
    version serving it."""
    out = [TaskOut.of(task, model) for task, model in service.tasks(db, principal)]
    db.commit()
    return out


@router.get("/conditions", response_model=list[ConditionOut])
def conditions(
    principal: CurrentUser, db: Db, specialty: Annotated[str | None, Query(max_length=40)] = None
) -> list[ConditionOut]:
    """The conditions the imaging models cover, with specialty, modality, ICD-10 code and task."""
    out = [ConditionOut.of(c) for c in service.conditions(db, principal, specialty=specialty)]
    db.commit()
    return out
