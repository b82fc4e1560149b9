"""Request and response shapes of the risk API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from caresync.analytics.risk.service import PatientRisk
from caresync.analytics.risk.store import VERSION_PATTERN
from caresync.analytics.rules import RiskLevel


class MetricSet(BaseModel):
    """One evaluation of a model (weighted precision, recall and F1; Brier: lower is better)."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    brier: float


class ModelMetrics(BaseModel):
    """A model's scores on the held-out 30 % and the mean and standard deviation of its cross-validation."""

    test: MetricSet
    cv_mean: MetricSet
    cv_sd: MetricSet


class ModelCardOut(BaseModel):
    """A stored model version and its card."""

    version: str
    trained_at: datetime
    organisation_id: uuid.UUID | None = Field(description="the organisation it was trained for; none: shared")
    synthetic: bool
    label: str | None = Field(description='"demonstration only - not for clinical use" on synthetic data')
    intended_use: str
    active: bool = Field(description="the version the caller's organisation uses now")
    mlp: ModelMetrics
    forest: ModelMetrics
    data: dict[str, Any]
    features: list[str]
    card: dict[str, Any] = Field(description="the whole model card as stored")

    @classmethod
    def of(cls, card: dict[str, Any], active: str | None) -> ModelCardOut:
        """From a stored card and the caller's active version."""
        return cls(
            version=card["version"],
            trained_at=card["trained_at"],
            organisation_id=card.get("organisation_id"),
            synthetic=card["synthetic"],
            label=card.get("label"),
            intended_use=card["intended_use"],
            active=card["version"] == active,
            mlp=card["metrics"]["mlp"],
            forest=card["metrics"]["forest"],
            data=card["data"],
            features=card["features"],
            card=card,
        )


class ModelList(BaseModel):
    """The versions the caller may see, newest first, and the one their organisation uses."""

    active: str | None
    items: list[ModelCardOut]


class ActivateIn(BaseModel):
    """Which version the organisation should use from now on."""

    version: str = Field(pattern=VERSION_PATTERN.pattern, examples=["20260101-120000-a1b2c3"])


class DriverOut(BaseModel):
    """A feature that drove the patient's risk (forest importance x distance from the average patient)."""

    feature: str
    label: str
    value: float
    z: float = Field(description="standard deviations from the training mean")
    direction: str = Field(description="above or below the average patient")
    importance: float
    score: float


class RiskOut(BaseModel):
    """A patient's risk now."""

    patient_id: uuid.UUID
    computed_at: datetime
    level: RiskLevel
    consensus: float = Field(description="consensus probability of an adverse outcome (admission or death)")
    mlp: float = Field(description="the neural network's probability")
    forest: float = Field(description="the random forest's probability")
    escalated: bool = Field(description="the models disagreed strongly: the higher probability was taken")
    drivers: list[DriverOut]
    model_version: str
    model_label: str | None

    @classmethod
    def of(cls, risk: PatientRisk) -> RiskOut:
        """From the service's result."""
        result = risk.result
        return cls(
            patient_id=risk.patient_id,
            computed_at=risk.computed_at,
            level=result.level,
            consensus=round(result.consensus, 4),
            mlp=round(result.probabilities["mlp"], 4),
            forest=round(result.probabilities["forest"], 4),
            escalated=result.escalated,
            drivers=[
                DriverOut(
                    feature=d.feature,
                    label=d.label,
                    value=round(d.value, 2),
                    z=d.z,
                    direction=d.direction,
                    importance=d.importance,
                    score=d.score,
                )
                for d in result.drivers
            ],
            model_version=risk.version,
            model_label=risk.label,
        )
