"""Imaging studies and their AI analyses: upload, the contract check, the analysis job, the worklist and the
doctors' feedback.

A study is an uploaded image (DICOM, PNG or JPEG) of a patient, decoded at once (a bad file is refused with
a 4xx before anything is stored), kept encrypted with an 8-bit preview. An analysis asks the model serving a
task (:mod:`caresync.imaging.registry.service`) for per-label probabilities and a Grad-CAM heatmap; it runs
as a job, in order of submission, pinned to the model version serving when it was asked for.

Access: clinicians upload and analyse studies of patients in their care (``IMAGING_ANALYSE`` and write
access to the patient); reading a study follows the patient record's consent, as the category
:data:`STUDY_CATEGORY` (so the patient reads their own studies too); analysis results are for clinicians;
only doctors confirm or correct a finding (``IMAGING_REVIEW``). Every read and write is audited.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from caresync.core import audit, jobs, storage
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page
from caresync.core.rbac import (
    Perm,
    authorize_patient,
    break_glass_patient_ids,
    cared_for_patient_ids,
    require,
)
from caresync.core.text import clean_line
from caresync.db import session_factory, transaction, utcnow
from caresync.imaging import catalog, images
from caresync.imaging.catalog import Task
from caresync.imaging.models import (
    ANALYSIS_STATUSES,
    VERDICTS,
    ImagingAnalysis,
    ImagingFeedback,
    ImagingStudy,
)
from caresync.imaging.registry import service as registry
from caresync.records.consent import read_scope
from caresync.scheduling.booking import appointment_belongs_to

PREVIEW_TYPES = ("image/png",)
EXTENSIONS = {"application/dicom": "dcm", "image/png": "png", "image/jpeg": "jpg"}
STUDY_CATEGORY = "procedure"  # the record category whose consent opens a patient's imaging studies
ACTIVE = ("queued", "running")
MAX_PER_PAGE = 100

Progress = Callable[[int, str], None]


# --- studies ------------------------------------------------------------------------------------------------


def upload(
    session: Session,
    principal: Principal,
    *,
    patient_id: uuid.UUID,
    data: bytes,
    filename: str,
    appointment_id: uuid.UUID | None = None,
    description: str | None = None,
) -> ImagingStudy:
    """Decode and store an image of a patient in the caller's care as an imaging study (the caller
    commits). A file that is too large, not an image or not decodable is refused (413/415/422) before
    anything is stored; an appointment must be this patient's (422)."""
    require(session, principal, Perm.IMAGING_ANALYSE, "imaging.study.upload")
    authorize_patient(session, principal, patient_id, Perm.PATIENT_WRITE, "imaging.study.upload")
    if appointment_id is not None and not appointment_belongs_to(session, appointment_id, patient_id):
        raise ValidationFailed(
            "That appointment is not one of this patient's.", extra={"field": "appointment_id"}
        )
    storage.check_size(data)  # before decoding it
    image = images.decode(data)
    preview = images.preview_png(image)
    original = storage.put(session, data, allowed_types=images.MEDIA_TYPES)
    stored_preview = storage.put(session, preview, allowed_types=PREVIEW_TYPES)
    assert principal.user_id is not None  # authorize_patient lets only signed-in users write
    study = ImagingStudy(
        patient_id=patient_id,
        organisation_id=principal.organisation_id,
        appointment_id=appointment_id,
        uploaded_by=principal.user_id,
        description=clean_line(description or "")[:200] or None,
        filename=clean_line(filename)[:200] or f"image.{EXTENSIONS[original.media_type]}",
        media_type=original.media_type,
        file_sha256=original.sha256,
        preview_sha256=stored_preview.sha256,
        modality=image.modality,
        body_part=image.body_part,
        study_uid=image.study_uid,
        series_uid=image.series_uid,
        pixel_spacing=list(image.pixel_spacing) if image.pixel_spacing else None,
        width=image.width,
        height=image.height,
        channels=image.channels,
    )
    session.add(study)
    session.flush()
    audit.record(
        session,
        principal,
        "imaging.study.upload",
        patient_id=patient_id,
        resource_type="ImagingStudy",
        resource_id=study.id,
        detail={"media_type": original.media_type, "size": original.size, "modality": image.modality},
    )
    return study


def _readable(
    session: Session,
    principal: Principal,
    study: ImagingStudy,
    action: str,
    kind: str,
    resource_id: uuid.UUID,
) -> None:
    """Audit a read of the study (or of its analysis) if the record's consent allows it; 404 otherwise."""
    scope = read_scope(session, principal, study.patient_id, action)
    if not scope.allows(STUDY_CATEGORY):
        _deny(session, principal, action, kind, resource_id, study.patient_id)
    audit.record(
        session,
        principal,
        action,
        patient_id=study.patient_id,
        resource_type=kind,
        resource_id=resource_id,
        flagged=scope.break_glass,
    )


def _deny(
    session: Session,
    principal: Principal,
    action: str,
    kind: str,
    resource_id: uuid.UUID,
    patient_id: uuid.UUID | None = None,
) -> None:
    audit.record_and_commit(
        session,
        principal,
        action,
        outcome="denied",
        patient_id=patient_id,
        resource_type=kind,
        resource_id=resource_id,
    )
    raise NotFound("No such imaging study." if kind == "ImagingStudy" else "No such analysis.")


def get(
    session: Session, principal: Principal, study_id: uuid.UUID, action: str = "imaging.study.read"
) -> ImagingStudy:
    """One study, if the caller may read the patient's imaging (404 otherwise, audited)."""
    study = session.get(ImagingStudy, study_id)
    if study is None:
        _deny(session, principal, action, "ImagingStudy", study_id)
    assert study is not None
    _readable(session, principal, study, action, "ImagingStudy", study.id)
    return study


def of_patient(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[ImagingStudy]:
    """The patient's studies, newest first (empty when consent does not open their imaging)."""
    scope = read_scope(session, principal, patient_id, "imaging.study.list")
    studies: list[ImagingStudy] = []
    if scope.allows(STUDY_CATEGORY):
        query = (
            select(ImagingStudy)
            .where(ImagingStudy.patient_id == patient_id)
            .order_by(ImagingStudy.created_at.desc(), ImagingStudy.id)
        )
        studies = list(session.execute(query).scalars())
    audit.record(
        session,
        principal,
        "imaging.study.list",
        patient_id=patient_id,
        resource_type="ImagingStudy",
        detail={"count": len(studies)},
        flagged=scope.break_glass,
    )
    return studies


def preview(session: Session, principal: Principal, study_id: uuid.UUID) -> bytes:
    """The study's windowed 8-bit PNG preview."""
    return storage.get(get(session, principal, study_id, "imaging.study.view").preview_sha256)


def original(session: Session, principal: Principal, study_id: uuid.UUID) -> tuple[str, str, bytes]:
    """The file as uploaded: its name, media type and bytes (audited as a download)."""
    study = get(session, principal, study_id, "imaging.study.download")
    return study.filename, study.media_type, storage.get(study.file_sha256)


def tasks_of(study: ImagingStudy) -> list[Task]:
    """The tasks whose input contract the study fits (modality, body part, channels)."""
    return catalog.tasks_for(study.modality, study.body_part, study.channels)


def _header_image(study: ImagingStudy) -> images.ImageData:
    """The study's header facts as an image without pixel values (a zero-sized broadcast), for the contract
    check at submission: decoding the whole file again is for the job."""
    shape = (study.height, study.width) if study.channels == 1 else (study.height, study.width, 3)
    return images.ImageData(
        pixels=np.broadcast_to(np.float32(0), shape),
        channels=study.channels,
        media_type=study.media_type,
        modality=study.modality,
        body_part=study.body_part,
        study_uid=study.study_uid,
        series_uid=study.series_uid,
        pixel_spacing=(study.pixel_spacing[0], study.pixel_spacing[1]) if study.pixel_spacing else None,
        steps=(),
    )


def _choose_task(session: Session, study: ImagingStudy, task: str | None) -> Task:
    """The task asked for; else the only one the study fits, or the only fitting one a model serves (422
    when none fits, or several do and it is not clear which)."""
    if task:
        chosen = catalog.get_task(task)
        images.check_contract(_header_image(study), chosen)
        return chosen
    fitting = tasks_of(study)
    served_tasks = registry.served_tasks(session)
    served = [t for t in fitting if t.key in served_tasks]
    if len(fitting) == 1 or len(served) == 1:
        return fitting[0] if len(fitting) == 1 else served[0]
    if not fitting:
        found = f"a {'colour' if study.channels == 3 else 'greyscale'} image"
        if study.modality:
            found += f", modality {study.modality}"
        if study.body_part:
            found += f", body part {study.body_part}"
        raise ValidationFailed(f"No analysis accepts this study ({found}).", extra={"field": "task"})
    names = ", ".join(f"{t.key} ({t.title})" for t in fitting)
    raise ValidationFailed(
        f"Several analyses fit this study; choose one of: {names}.", extra={"field": "task"}
    )


def analyse(
    session: Session, principal: Principal, study_id: uuid.UUID, *, task: str | None = None
) -> ImagingAnalysis:
    """Ask for an analysis of the study by the model serving ``task`` (or the only task it fits) and submit
    its job, which starts once the caller commits. 422 when the study is outside the task's contract, 409
    when no model serves the task yet."""
    from caresync.imaging.studies.jobs import analysis_job  # the job module imports this one

    action = "imaging.analysis.request"
    require(session, principal, Perm.IMAGING_ANALYSE, action)
    study = get(session, principal, study_id, action)
    authorize_patient(session, principal, study.patient_id, Perm.PATIENT_WRITE, action)
    chosen = _choose_task(session, study, task)
    model = registry.serving_model(session, chosen.key)
    if model is None:
        raise Conflict(f"No model serves {chosen.key} ({chosen.title}) yet; ask an administrator.")
    assert principal.user_id is not None
    analysis = ImagingAnalysis(
        study_id=study.id, task=chosen.key, model_id=model.id, status="queued", submitted_by=principal.user_id
    )
    session.add(analysis)
    session.flush()
    analysis.job_id = jobs.submit(session, principal, analysis_job, analysis_id=str(analysis.id)).id
    audit.record(
        session,
        principal,
        action,
        patient_id=study.patient_id,
        resource_type="ImagingAnalysis",
        resource_id=analysis.id,
        detail={"task": chosen.key, "model_id": str(model.id), "version": model.version},
    )
    return analysis


# --- analyses -----------------------------------------------------------------------------------------------


def get_analysis(
    session: Session, principal: Principal, analysis_id: uuid.UUID, action: str = "imaging.analysis.read"
) -> ImagingAnalysis:
    """One analysis, for a clinician who may read the patient's imaging (403 for other roles, 404 when
    hidden or missing; audited)."""
    require(session, principal, Perm.IMAGING_ANALYSE, action)
    analysis = session.get(ImagingAnalysis, analysis_id)
    if analysis is None:
        _deny(session, principal, action, "ImagingAnalysis", analysis_id)
    assert analysis is not None
    _readable(session, principal, analysis.study, action, "ImagingAnalysis", analysis.id)
    return analysis


def heatmap(session: Session, principal: Principal, analysis_id: uuid.UUID) -> bytes:
    """The analysis's Grad-CAM heatmap (RGBA PNG at the preview's size); 409 until it is done."""
    analysis = get_analysis(session, principal, analysis_id, "imaging.analysis.view")
    if analysis.heatmap_sha256 is None:
        raise Conflict(analysis.error or "The heatmap is not ready yet.")
    return storage.get(analysis.heatmap_sha256)


def worklist(
    session: Session, principal: Principal, *, status: str | None = None, page: int = 1, per_page: int = 25
) -> Page[ImagingAnalysis]:
    """The organisation's analyses of patients the caller may see: queued and running ones first, in order
    of submission (the queue's order), then results, newest first. ``next_cursor`` is the next page
    number."""
    require(session, principal, Perm.IMAGING_ANALYSE, "imaging.analysis.list")
    if status and status not in ANALYSIS_STATUSES:
        known = ", ".join(ANALYSIS_STATUSES)
        raise ValidationFailed(f"Unknown status {status!r}; use one of {known}.", extra={"field": "status"})
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationFailed(f"Pages start at 1 and hold 1 to {MAX_PER_PAGE} analyses.")
    query = (
        select(ImagingAnalysis)
        .join(ImagingStudy, ImagingAnalysis.study_id == ImagingStudy.id)
        .where(
            ImagingStudy.organisation_id == principal.organisation_id,
            or_(
                ImagingStudy.patient_id.in_(cared_for_patient_ids(principal)),
                ImagingStudy.patient_id.in_(break_glass_patient_ids(principal)),
            ),
        )
    )
    if status:
        query = query.where(ImagingAnalysis.status == status)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    waiting = ImagingAnalysis.status.in_(ACTIVE)
    order = (
        case((waiting, 0), else_=1),
        case((waiting, ImagingAnalysis.submitted_at)).asc(),
        func.coalesce(ImagingAnalysis.completed_at, ImagingAnalysis.submitted_at).desc(),
        ImagingAnalysis.id,
    )
    rows = list(
        session.execute(query.order_by(*order).offset((page - 1) * per_page).limit(per_page + 1)).scalars()
    )
    items = rows[:per_page]
    audit.record(session, principal, "imaging.analysis.list", detail={"count": len(items), "status": status})
    return Page(items=items, next_cursor=str(page + 1) if len(rows) > per_page else None, total=total)


def jobs_of(session: Session, analyses: list[ImagingAnalysis]) -> dict[uuid.UUID, jobs.Job]:
    """The job of each analysis that has one (its live progress), by analysis id."""
    by_job = {a.job_id: a.id for a in analyses if a.job_id is not None}
    if not by_job:
        return {}
    found = session.execute(select(jobs.Job).where(jobs.Job.id.in_(by_job))).scalars()
    return {by_job[job.id]: job for job in found}


# --- feedback -----------------------------------------------------------------------------------------------


def _feedback_labels(analysis: ImagingAnalysis, verdict: str, labels: list[str]) -> list[str]:
    """The labels a verdict holds true: the findings when confirmed, the doctor's (checked) otherwise (an
    empty list: normal)."""
    if verdict not in VERDICTS:
        raise ValidationFailed(
            f"Unknown verdict {verdict!r}; use one of {', '.join(VERDICTS)}.", extra={"field": "verdict"}
        )
    task = catalog.get_task(analysis.task)
    if verdict == "confirmed":  # "No finding" is no label: confirming it holds the image normal
        return [finding for finding in analysis.findings or [] if finding in task.labels]
    unknown = [label for label in labels if label not in task.labels]
    if unknown:
        raise ValidationFailed(
            f"{', '.join(map(repr, unknown))} is not a label of {task.title}; use: {', '.join(task.labels)}.",
            extra={"field": "labels"},
        )
    chosen = list(dict.fromkeys(labels))
    if not task.multilabel and len(chosen) > 1:
        raise ValidationFailed(
            f"{task.title} gives one label per image; choose one.", extra={"field": "labels"}
        )
    return chosen


def give_feedback(
    session: Session,
    principal: Principal,
    analysis_id: uuid.UUID,
    *,
    verdict: str,
    labels: list[str],
    note: str | None,
) -> ImagingFeedback:
    """A doctor confirms the analysis's findings or corrects them to the labels they hold true (an empty
    list: normal). The latest verdict replaces an earlier one (audited with both). 409 unless done."""
    action = "imaging.analysis.review"
    require(session, principal, Perm.IMAGING_REVIEW, action)
    analysis = get_analysis(session, principal, analysis_id, action)
    authorize_patient(session, principal, analysis.study.patient_id, Perm.PATIENT_WRITE, action)
    if analysis.status != "done":
        raise Conflict("Only a finished analysis can be confirmed or corrected.")
    held = _feedback_labels(analysis, verdict, labels)
    assert principal.user_id is not None
    feedback = analysis.feedback
    before = {"verdict": feedback.verdict, "labels": feedback.labels} if feedback else None
    if feedback is None:
        feedback = ImagingFeedback(
            analysis_id=analysis.id, verdict=verdict, labels=held, given_by=principal.user_id
        )
        analysis.feedback = feedback
    feedback.verdict, feedback.labels, feedback.given_by = verdict, held, principal.user_id
    feedback.note = clean_line(note or "")[:1000] or None
    feedback.given_at = utcnow()
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=analysis.study.patient_id,
        resource_type="ImagingAnalysis",
        resource_id=analysis.id,
        detail={"before": before, "after": {"verdict": verdict, "labels": held}},
    )
    return feedback


def export_feedback(session: Session, principal: Principal, task: str) -> list[dict[str, Any]]:
    """The doctors' verdicts on the task's analyses in the administrator's organisation, for retraining:
    the study file's SHA-256 (no patient identifiers), the labels held true, the verdict and the model."""
    require(session, principal, Perm.IMAGING_MODELS, "imaging.feedback.export")
    chosen = catalog.get_task(task)
    rows = session.execute(
        select(ImagingFeedback, ImagingAnalysis, ImagingStudy)
        .join(ImagingAnalysis, ImagingFeedback.analysis_id == ImagingAnalysis.id)
        .join(ImagingStudy, ImagingAnalysis.study_id == ImagingStudy.id)
        .where(ImagingAnalysis.task == chosen.key, ImagingStudy.organisation_id == principal.organisation_id)
        .order_by(ImagingFeedback.given_at)
    ).all()
    exported = [
        {
            "file_sha256": study.file_sha256,
            "media_type": study.media_type,
            "labels": list(feedback.labels),
            "verdict": feedback.verdict,
            "model_id": str(analysis.model_id),
            "findings": list(analysis.findings or []),
        }
        for feedback, analysis, study in rows
    ]
    audit.record(
        session, principal, "imaging.feedback.export", detail={"task": chosen.key, "count": len(exported)}
    )
    return exported


# --- the analysis job ---------------------------------------------------------------------------------------


def run_analysis(analysis_id: uuid.UUID, progress: Progress) -> dict[str, Any]:
    """Job body: decode the stored image, run the pinned model with Grad-CAM, store the heatmap and the
    result. Each step has its own short transaction; any error marks the analysis failed with a message a
    person can read (the job is marked failed too). A finished analysis is left as it is."""
    from caresync.imaging import inference  # torch and matplotlib: only the worker needs them

    with transaction(session_factory()) as session:
        analysis = jobs.subject_of(session, ImagingAnalysis, analysis_id, "analysis")
        if analysis.status == "done":  # delivered twice: the result stands
            return {"analysis_id": str(analysis_id), "findings": analysis.findings, "already_done": True}
        analysis.status, analysis.started_at = "running", utcnow()
        analysis.error = analysis.completed_at = None  # a retry after a failure starts afresh
        study, model = analysis.study, analysis.model
    try:
        progress(5, "Reading the image")
        image = images.decode(storage.get(study.file_sha256))
        progress(20, f"Loading {model.architecture} v{model.version}")
        predictor = registry.predictor(model)
        x = images.to_model_input(image, channels=model.in_channels, size=model.input_size)
        progress(40, f"Running {model.architecture} v{model.version} and computing the heatmap")
        prediction = predictor.predict(x)
        progress(85, "Drawing the heatmap")
        with Image.open(io.BytesIO(storage.get(study.preview_sha256))) as shown:
            width, height = shown.size
        png = inference.heatmap_png(prediction.heatmap, width=width, height=height)
        steps = [*image.steps, *_input_steps(image, model.in_channels, model.input_size)]
        with transaction(session_factory()) as session:
            heat = storage.put(session, png, allowed_types=PREVIEW_TYPES)
            row = jobs.subject_of(session, ImagingAnalysis, analysis_id, "analysis")
            row.probabilities = {label: float(p) for label, p in prediction.probabilities.items()}
            row.findings = list(prediction.findings)
            row.heatmap_sha256 = heat.sha256
            row.preprocessing = steps
            row.seconds = round(prediction.seconds, 4)
            row.status, row.completed_at, row.error = "done", utcnow(), None
            audit.record(
                session,
                system_principal("Imaging analysis"),
                "imaging.analysis.complete",
                patient_id=study.patient_id,
                resource_type="ImagingAnalysis",
                resource_id=analysis_id,
                detail={"task": row.task, "model_id": str(model.id), "findings": row.findings},
            )
    except Exception as exc:
        jobs.mark_failed(ImagingAnalysis, analysis_id, jobs.safe_message(exc), completed_at=utcnow())
        raise
    return {
        "analysis_id": str(analysis_id),
        "findings": list(prediction.findings),
        "seconds": round(prediction.seconds, 3),
    }


def _input_steps(image: images.ImageData, channels: int, size: int) -> list[str]:
    """What :func:`images.to_model_input` does to the image, in words."""
    steps = []
    if image.channels == 3 and channels == 1:
        steps.append("Colour converted to greyscale")
    elif image.channels == 1 and channels == 3:
        steps.append("Greyscale repeated into 3 channels")
    steps.append(f"Resized from {image.width} x {image.height} to {size} x {size} (aspect not kept)")
    return steps
