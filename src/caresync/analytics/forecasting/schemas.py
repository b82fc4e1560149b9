"""Request and response bodies of the forecast and surge endpoints (aggregates only: no patient appears)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from caresync.core.csvfile import csv_table

Granularity = Literal["monthly", "weekly"]
ForecastTable = Literal["forecast", "metrics"]


class ForecastRequest(BaseModel):
    """What to forecast."""

    model_config = ConfigDict(extra="forbid")

    granularity: Granularity = "monthly"
    organisation_id: uuid.UUID | None = Field(
        default=None, description="one organisation of your scope; omitted: all of them"
    )


class ForecastJobOut(BaseModel):
    """The forecast job (``/api/v1/jobs/{id}`` follows it); ``cached``: an earlier job's result for the same
    data, returned without a new fit."""

    id: uuid.UUID
    kind: str
    status: str
    progress: int
    message: str
    result: dict[str, Any]
    created_at: str | None
    finished_at: str | None
    cached: bool


class AccuracyOut(BaseModel):
    """A model's errors on the test window (MAPE in percent; MASE against the in-sample seasonal naive)."""

    mae: float
    mse: float
    rmse: float
    mape: float | None = Field(description="over the test periods with a non-zero actual; null if none")
    mase: float | None = Field(description="null when the training window gives no seasonal-naive scale")


class PointOut(BaseModel):
    """One period: the actual (null in the future), SARIMA with its 80 % and 95 % intervals, the baseline."""

    period: str
    actual: float | None
    sarima: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    seasonal_naive: float


class EvaluationOut(BaseModel):
    """One chronological split (the test window starts after the training window ends)."""

    split: str = Field(description="training/test percentages, e.g. 70/30")
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_size: int
    test_size: int
    sarima: AccuracyOut
    seasonal_naive: AccuracyOut
    coverage_80: float = Field(description="share of test actuals inside the 80 % interval")
    coverage_95: float = Field(description="share of test actuals inside the 95 % interval")
    better: str = Field(description="SARIMA, seasonal naive or tie")
    verdict: str
    converged: bool
    seconds: float = Field(description="SARIMA fit + forecast time")
    points: list[PointOut]


class ForecastOut(BaseModel):
    """A finished forecast: volumes, both splits' evaluations, the verdict and the forecast ahead."""

    job_id: uuid.UUID
    granularity: Granularity
    organisation_ids: list[uuid.UUID] | None = Field(description="the scope; null: every organisation")
    data_version: str
    stale: bool = Field(description="encounters were recorded since: run the forecast again")
    generated_at: str
    model: str
    baseline: str
    series: list[tuple[str, float]] = Field(description="[period start, encounters]")
    evaluations: list[EvaluationOut]
    better: str
    verdict: str
    forecast: list[PointOut]
    forecast_seconds: float

    def csv(self, table: ForecastTable) -> bytes:
        """``forecast``: every test and future period (``section``: the split, or ``forecast``);
        ``metrics``: one row per split and model."""
        if table == "metrics":
            columns = ["split", "model", *AccuracyOut.model_fields, "coverage_80", "coverage_95", "verdict"]
            rows = [
                [
                    e.split,
                    name,
                    *accuracy.model_dump().values(),
                    e.coverage_80 if name == "SARIMA" else None,
                    e.coverage_95 if name == "SARIMA" else None,
                    e.verdict,
                ]
                for e in self.evaluations
                for name, accuracy in (("SARIMA", e.sarima), ("seasonal naive", e.seasonal_naive))
            ]
            return csv_table(columns, rows)
        sections = [(f"test {e.split}", e.points) for e in self.evaluations] + [("forecast", self.forecast)]
        return csv_table(
            ["section", *PointOut.model_fields],
            ([section, *point.model_dump().values()] for section, points in sections for point in points),
        )


class SignalOut(BaseModel):
    """A signal against the condition's seasonal norm (the same weeks of earlier years)."""

    value: float = Field(description="encounters a week")
    norm_mean: float
    norm_sd: float
    z: float
    ratio: float
    level: str


class SurgeOut(BaseModel):
    """One condition at one organisation."""

    model_config = ConfigDict(from_attributes=True)

    organisation_id: str
    organisation_name: str
    code: str
    name: str
    week: str = Field(description="the last whole week counted (its Monday)")
    level: str
    signal: str = Field(description="which signal set the level: observed, forecast or none")
    observed: SignalOut | None
    forecast: SignalOut | None
    forecast_weeks: list[float]
    note: str


class SurgesOut(BaseModel):
    """Surge levels of every condition seen in the scope, most urgent first."""

    organisation_ids: list[uuid.UUID] | None
    as_of: str = Field(description="the whole weeks before this Monday (UTC) are counted")
    data_version: str
    rules: list[dict[str, Any]] = Field(description="the level thresholds (all three of a row must hold)")
    levels: dict[str, int] = Field(description="how many conditions are at each level")
    seconds: float
    surges: list[SurgeOut]

    def csv(self) -> bytes:
        """One row per (organisation, condition)."""
        columns = [
            "organisation_id",
            "organisation_name",
            "code",
            "name",
            "week",
            "level",
            "signal",
            "observed",
            "observed_norm_mean",
            "observed_z",
            "observed_ratio",
            "forecast",
            "forecast_norm_mean",
            "forecast_z",
            "forecast_ratio",
        ]

        def signal(s: SignalOut | None) -> list[float | None]:
            return [s.value, s.norm_mean, s.z, s.ratio] if s else [None] * 4

        rows = (
            [
                *(s.organisation_id, s.organisation_name, s.code, s.name, s.week, s.level, s.signal),
                *signal(s.observed),
                *signal(s.forecast),
            ]
            for s in self.surges
        )
        return csv_table(columns, rows)
