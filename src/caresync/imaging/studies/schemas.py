"""API shapes of imaging studies, their analyses and the doctors' feedback."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from caresync.core.jobs import Job
from caresync.imaging.catalog import Task
from caresync.imaging.models import ImagingAnalysis, ImagingFeedback, ImagingModel, ImagingStudy


class TaskOut(BaseModel):
    """An analysis a study can be given (a model head and its labels)."""

    key: str
    title: str
    specialty: str
    labels: list[str]
    multilabel: bool

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            key=task.key,
            title=task.title,
            specialty=task.specialty,
            labels=list(task.labels),
            multilabel=task.multilabel,
        )


class StudyOut(BaseModel):
    """An uploaded image and what its header told; ``tasks``: the analyses it fits."""

    id: uuid.UUID
    patient_id: uuid.UUID
    appointment_id: uuid.UUID | None
    description: str | None
    filename: str
    media_type: str
    modality: str | None
    body_part: str | None
    study_uid: str | None
    series_uid: str | None
    pixel_spacing: list[float] | None
    width: int
    height: int
    channels: int
    created_at: datetime
    tasks: list[TaskOut]

    @classmethod
    def of(cls, study: ImagingStudy, tasks: list[Task]) -> StudyOut:
        return cls(
            id=study.id,
            patient_id=study.patient_id,
            appointment_id=study.appointment_id,
            description=study.description,
            filename=study.filename,
            media_type=study.media_type,
            modality=study.modality,
            body_part=study.body_part,
            study_uid=study.study_uid,
            series_uid=study.series_uid,
            pixel_spacing=study.pixel_spacing,
            width=study.width,
            height=study.height,
            channels=study.channels,
            created_at=study.created_at,
            tasks=[TaskOut.of(task) for task in tasks],
        )


class StudyList(BaseModel):
    """A patient's studies, newest first."""

    items: list[StudyOut]


class AnalyseIn(BaseModel):
    """Which analysis to run (omit it when the study fits only one)."""

    task: str | None = Field(default=None, max_length=40)


class ModelOut(BaseModel):
    """The model version an analysis used, with its card's headline figures."""

    id: uuid.UUID
    task: str
    version: int
    architecture: str
    input_size: int
    demonstration: bool
    label: str | None  # the demonstration warning, shown wherever the model's output appears
    data_source: str | None
    intended_use: str | None
    accuracy: float | None
    macro_auc: float | None

    @classmethod
    def of(cls, model: ImagingModel) -> ModelOut:
        from caresync.imaging.registry.service import DEMONSTRATION_LABEL

        card: dict[str, Any] = model.card or {}
        metrics: dict[str, Any] = card.get("metrics") or {}
        return cls(
            id=model.id,
            task=model.task,
            version=model.version,
            architecture=model.architecture,
            input_size=model.input_size,
            demonstration=model.demonstration,
            label=DEMONSTRATION_LABEL if model.demonstration else None,
            data_source=(card.get("data") or {}).get("source"),
            intended_use=card.get("intended_use"),
            accuracy=metrics.get("accuracy"),
            macro_auc=metrics.get("macro_auc"),
        )


class JobOut(BaseModel):
    """Where the analysis's job stands (progress 0-100 and its current step)."""

    id: uuid.UUID
    status: str
    progress: int
    message: str

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(id=job.id, status=job.status, progress=job.progress, message=job.message)


class FeedbackIn(BaseModel):
    """A doctor's verdict: ``confirmed`` (the findings hold) or ``corrected`` to ``labels`` (empty:
    normal)."""

    verdict: Literal["confirmed", "corrected"]
    labels: list[str] = Field(default_factory=list, max_length=40)
    note: str | None = Field(default=None, max_length=1000)


class FeedbackOut(BaseModel):
    """The latest verdict on an analysis."""

    verdict: str
    labels: list[str]
    note: str | None
    given_by: uuid.UUID
    given_at: datetime

    @classmethod
    def of(cls, feedback: ImagingFeedback) -> FeedbackOut:
        return cls(
            verdict=feedback.verdict,
            labels=list(feedback.labels),
            note=feedback.note,
            given_by=feedback.given_by,
            given_at=feedback.given_at,
        )


class AnalysisOut(BaseModel):
    """An analysis: its status and progress, then per-label probabilities (in the model's label order),
    findings (most likely first), the model version, the preprocessing applied and the time it took."""

    id: uuid.UUID
    study_id: uuid.UUID
    patient_id: uuid.UUID
    task: str
    status: str
    error: str | None
    submitted_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    job: JobOut | None
    model: ModelOut
    probabilities: dict[str, float] | None
    findings: list[str] | None
    preprocessing: list[str] | None
    seconds: float | None
    heatmap_url: str | None
    feedback: FeedbackOut | None

    @classmethod
    def of(cls, analysis: ImagingAnalysis, job: Job | None) -> AnalysisOut:
        return cls(
            id=analysis.id,
            study_id=analysis.study_id,
            patient_id=analysis.study.patient_id,
            task=analysis.task,
            status=analysis.status,
            error=analysis.error,
            submitted_at=analysis.submitted_at,
            started_at=analysis.started_at,
            completed_at=analysis.completed_at,
            job=JobOut.of(job) if job else None,
            model=ModelOut.of(analysis.model),
            probabilities=analysis.probabilities,
            findings=analysis.findings,
            preprocessing=analysis.preprocessing,
            seconds=analysis.seconds,
            heatmap_url=f"/api/v1/imaging/analyses/{analysis.id}/heatmap.png"
            if analysis.heatmap_sha256
            else None,
            feedback=FeedbackOut.of(analysis.feedback) if analysis.feedback else None,
        )


class AnalysisPage(BaseModel):
    """One page of the worklist; ``next_page`` is ``None`` on the last."""

    items: list[AnalysisOut]
    page: int
    next_page: int | None
    total: int | None


class FeedbackExport(BaseModel):
    """One doctor's verdict as training data: the study's file (by content address, no patient identifier),
    the labels held true (empty: normal), the verdict, and the model and findings it judged."""

    file_sha256: str
    media_type: str
    labels: list[str]
    verdict: str
    model_id: uuid.UUID
    findings: list[str]
