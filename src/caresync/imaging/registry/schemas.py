"""API shapes of the imaging model registry and the condition catalog."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from caresync.imaging import catalog
from caresync.imaging.models import ImagingModel, ImagingServing
from caresync.imaging.registry import service


class ModelOut(BaseModel):
    """A trained version of a task's classifier, with its headline test metrics."""

    id: uuid.UUID
    task: str
    version: int
    architecture: str
    labels: list[str]
    multilabel: bool
    in_channels: int
    input_size: int
    temperature: float
    demonstration: bool
    label: str | None = Field(description='"Demonstration only — not for clinical use" on synthetic data')
    serving: bool = Field(description="Whether this version answers new analyses of its task")
    accuracy: float | None
    baseline: float | None = Field(description="Accuracy of always answering the commonest label")
    macro_auc: float | None
    created_at: datetime

    @classmethod
    def of(cls, model: ImagingModel, *, serving: bool) -> ModelOut:
        """The summary of ``model``."""
        metrics = model.card.get("metrics", {})
        return cls(
            id=model.id,
            task=model.task,
            version=model.version,
            architecture=model.architecture,
            labels=list(model.labels),
            multilabel=model.multilabel,
            in_channels=model.in_channels,
            input_size=model.input_size,
            temperature=model.temperature,
            demonstration=model.demonstration,
            label=service.label(model),
            serving=serving,
            accuracy=metrics.get("accuracy"),
            baseline=service.baseline_of(metrics),
            macro_auc=metrics.get("macro_auc"),
            created_at=model.created_at,
        )


class ModelCardOut(ModelOut):
    """A version with its whole model card: data, training, metrics, intended use and limitations."""

    card: dict[str, Any]

    @classmethod
    def of_card(cls, model: ImagingModel, *, serving: bool) -> ModelCardOut:
        """``model`` with its card."""
        return cls(**ModelOut.of(model, serving=serving).model_dump(), card=model.card)


class ModelList(BaseModel):
    """One page of model versions, newest first."""

    items: list[ModelOut]
    next_cursor: str | None
    total: int | None


class ServingOut(BaseModel):
    """Which version serves a task, and since when."""

    task: str
    model_id: uuid.UUID
    version: int
    demonstration: bool
    label: str | None
    changed_at: datetime

    @classmethod
    def of(cls, row: ImagingServing) -> ServingOut:
        """The serving row of a task."""
        return cls(
            task=row.task,
            model_id=row.model_id,
            version=row.model.version,
            demonstration=row.model.demonstration,
            label=service.label(row.model),
            changed_at=row.changed_at,
        )


class ConditionOut(BaseModel):
    """A condition of the catalog and the task (model head) and label that cover it."""

    code: str
    name: str
    specialty: str
    modality: str
    icd10: str
    task: str
    label: str

    @classmethod
    def of(cls, condition: catalog.Condition) -> ConditionOut:
        """A catalog condition."""
        return cls(
            code=condition.code,
            name=condition.name,
            specialty=condition.specialty,
            modality=condition.modality,
            icd10=condition.icd10,
            task=condition.task,
            label=condition.label,
        )


class ServingVersion(BaseModel):
    """The version answering new analyses of a task."""

    model_id: uuid.UUID
    version: int
    architecture: str
    demonstration: bool
    label: str | None


class TaskOut(BaseModel):
    """A task of the catalog: its input contract, its labels, the conditions it covers, its serving
    version (none until a model is trained and served)."""

    key: str
    title: str
    specialty: str
    modalities: list[str]
    body_parts: list[str]
    channels: int
    multilabel: bool
    labels: list[str]
    dataset: str
    normal_label: str | None
    conditions: list[ConditionOut]
    serving: ServingVersion | None

    @classmethod
    def of(cls, task: catalog.Task, model: ImagingModel | None) -> TaskOut:
        """A task and its serving ``model``."""
        return cls(
            key=task.key,
            title=task.title,
            specialty=task.specialty,
            modalities=list(task.modalities),
            body_parts=list(task.body_parts),
            channels=task.channels,
            multilabel=task.multilabel,
            labels=list(task.labels),
            dataset=task.dataset,
            normal_label=task.normal_label,
            conditions=[ConditionOut.of(c) for c in catalog.conditions_of(task.key)],
            serving=None
            if model is None
            else ServingVersion(
                model_id=model.id,
                version=model.version,
                architecture=model.architecture,
                demonstration=model.demonstration,
                label=service.label(model),
            ),
        )
