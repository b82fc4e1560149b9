"""Imaging model pages: the registry (``/imaging/models``: each task with its serving version and every
trained version's test metrics), one version's model card (``/imaging/models/{id}``: per-class table,
confusion matrix, data, training, intended use, limitations, and for admins "Serve this version"), and the
condition catalog (``/imaging/conditions``)."""

from __future__ import annotations

import uuid
from itertools import groupby

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.core.errors import ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.imaging import catalog
from caresync.imaging.registry import service
from caresync.web.deps import Db
from caresync.web.pagekit import PageUser, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "imaging/models"
PAGE = "/imaging/models"


@router.get(PAGE)
def registry_page(request: Request, db: Db, principal: PageUser, served: int = 0) -> Response:
    """Every task with its serving version, and the versions trained for it with their test metrics."""
    models = service.list_models(db, principal)
    by_task = {task: list(versions) for task, versions in groupby(models, key=lambda m: m.task)}
    current = service.serving(db)
    tasks = list(catalog.TASKS.values())
    context = {
        "trained": [
            (task, by_task[task.key], current.get(task.key)) for task in tasks if task.key in by_task
        ],
        "untrained": [task for task in tasks if task.key not in by_task],
        "orphans": sorted(set(by_task) - set(catalog.TASKS)),
        "can_serve": has_perm(principal, Perm.IMAGING_MODELS),
        "served": served,
        "demo_label": service.DEMONSTRATION_LABEL,
    }
    return render_page(request, db, principal, f"{T}/registry.html", context)


@router.get(PAGE + "/{model_id}")
def card_page(
    request: Request, db: Db, principal: PageUser, model_id: uuid.UUID, served: int = 0
) -> Response:
    """One version's model card: metrics per class, confusion matrix, data, training and intended use."""
    model = service.get_model(db, principal, model_id)
    current = service.serving_model(db, model.task)
    try:
        task = catalog.get_task(model.task)
    except ValidationFailed:
        task = None
    context = {
        "model": model,
        "card": model.card,
        "task": task,
        "current": current,
        "can_serve": has_perm(principal, Perm.IMAGING_MODELS),
        "served": served,
        "demo_label": service.DEMONSTRATION_LABEL,
    }
    return render_page(request, db, principal, f"{T}/card.html", context)


@router.post(PAGE + "/{model_id}/serve")
def serve(db: Db, principal: PageUser, model_id: uuid.UUID) -> Response:
    """Make this version serve its task (administrators; the button asks for confirmation first)."""
    service.serve(db, principal, model_id)
    db.commit()
    return redirect(f"{PAGE}/{model_id}?served=1")


@router.get("/imaging/conditions")
def conditions_page(request: Request, db: Db, principal: PageUser, specialty: str | None = None) -> Response:
    """The conditions the imaging models cover, by specialty, with ICD-10 codes and the covering task."""
    found = service.conditions(db, principal, specialty=specialty or None)
    groups = [
        (name, list(items))
        for name, items in groupby(sorted(found, key=lambda c: c.specialty), key=lambda c: c.specialty)
    ]
    context = {
        "groups": groups,
        "count": len(found),
        "specialty": specialty or "",
        "specialties": sorted({c.specialty for c in catalog.CONDITIONS}),
        "tasks": catalog.TASKS,
        "serving": service.serving(db),
    }
    return render_page(request, db, principal, f"{T}/conditions.html", context)
