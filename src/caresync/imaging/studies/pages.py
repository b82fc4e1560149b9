"""Imaging pages: the worklist of analyses (``/imaging/studies``) with each one's live progress, a patient's
studies with the upload form (``/patients/{id}/imaging``), and the result viewer (``/imaging/analyses/{id}``):
the image under its Grad-CAM heatmap, the calibrated probabilities, the findings with their conditions, the
model version and the study's DICOM facts, and the doctor's feedback form."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, ValidationFailed
from caresync.core.rbac import Access, Perm, authorize_patient, has_perm, require
from caresync.identity import patients
from caresync.imaging import catalog
from caresync.imaging.models import ImagingAnalysis, ImagingStudy
from caresync.imaging.registry import service as registry
from caresync.imaging.studies import service
from caresync.records.careteam.team import patient_names
from caresync.records.pages import ATTACHABLE_APPOINTMENTS
from caresync.scheduling import booking
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "imaging/studies"
WORKLIST = "/imaging/studies"
ANALYSES = "/imaging/analyses"
PER_PAGE = 25
STATUS_LABELS = {"queued": "Waiting", "running": "Analysing", "done": "Done", "failed": "Failed"}
TITLES = {key: task.title for key, task in catalog.TASKS.items()}
UPLOAD_FIELDS = ("description", "appointment_id", "task", "analyse")


@router.get(WORKLIST)
def worklist_page(request: Request, db: Db, principal: PageUser, status: str = "", page: int = 1) -> Response:
    """Analyses of your patients' studies: those waiting or running with live progress, then the results."""
    found = service.worklist(db, principal, status=status or None, page=page, per_page=PER_PAGE)
    analyses = found.items
    base = f"{WORKLIST}?status={status}"
    context = {
        "analyses": analyses,
        "names": patient_names(db, {a.study.patient_id for a in analyses}),
        "jobs": service.jobs_of(db, analyses),
        "total": found.total,
        "status": status,
        "statuses": STATUS_LABELS,
        "titles": TITLES,
        "next_url": f"{base}&page={page + 1}" if found.next_cursor else "",
        "first_url": base if page > 1 else "",
    }
    return render_page(request, db, principal, f"{T}/worklist.html", context)


@router.get("/patients/{patient_id}/imaging")
def patient_page(request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID) -> Response:
    """A patient's imaging studies with their analyses, and the form to upload a new one."""
    return _patient_page(request, db, principal, patient_id, {"analyse": "1"}, {})


@router.post("/patients/{patient_id}/imaging")
def upload_submit(
    request: Request,
    db: Db,
    principal: PageUser,
    patient_id: uuid.UUID,
    form: FormValues,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Store the image as a study; with "Analyse" ticked, submit its analysis and open the result viewer."""
    values = {k: v.strip() for k, v in form.items() if k in UPLOAD_FIELDS}
    if file is None or not file.filename:
        errors = {"file": "Choose an image file (DICOM, PNG or JPEG)."}
        return _patient_page(request, db, principal, patient_id, values, errors, 422)
    try:
        study = service.upload(
            db,
            principal,
            patient_id=patient_id,
            data=file.file.read(),
            filename=file.filename,
            appointment_id=_uuid_or_none(values.get("appointment_id"), "appointment_id"),
            description=values.get("description") or None,
        )
        if not values.get("analyse"):
            db.commit()
            return redirect(f"/patients/{patient_id}/imaging#study-{study.id}")
        fitting = service.tasks_of(study)
        if not values.get("task") and len(fitting) > 1:  # the clinician chooses: keep the study, ask
            db.commit()
            return redirect(f"/patients/{patient_id}/imaging?choose={study.id}#study-{study.id}")
        analysis = service.analyse(db, principal, study.id, task=values.get("task") or None)
    except DomainError as exc:
        db.rollback()  # nothing half-written: no study without the analysis asked for
        if exc.status in (403, 404) and exc.extra.get("field") is None:
            raise
        return _patient_page(request, db, principal, patient_id, values, _upload_errors(exc), exc.status)
    db.commit()
    return redirect(f"{ANALYSES}/{analysis.id}")


@router.post(f"{WORKLIST}/{{study_id}}/analyse")
def analyse_submit(
    request: Request, db: Db, principal: PageUser, study_id: uuid.UUID, form: FormValues
) -> Response:
    """Submit an analysis of a stored study (with the task chosen, when several fit) and follow it."""
    try:
        analysis = service.analyse(db, principal, study_id, task=form.get("task") or None)
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        patient_id = service.get(db, principal, study_id).patient_id
        errors = {f"study-{study_id}": exc.detail}
        return _patient_page(request, db, principal, patient_id, {"analyse": "1"}, errors, exc.status)
    db.commit()
    return redirect(f"{ANALYSES}/{analysis.id}")


@router.get(f"{ANALYSES}/{{analysis_id}}")
def analysis_page(request: Request, db: Db, principal: PageUser, analysis_id: uuid.UUID) -> Response:
    """The result viewer: live progress while the analysis runs, then the heatmap, chart and findings."""
    analysis = service.get_analysis(db, principal, analysis_id)
    return _analysis_page(request, db, principal, analysis, "viewer.html", {}, {})


@router.get(f"{ANALYSES}/{{analysis_id}}/live")
def analysis_live(request: Request, db: Db, principal: PageUser, analysis_id: uuid.UUID) -> Response:
    """The viewer's live part (an HTMX fragment polling itself until the analysis ends, then the result)."""
    analysis = service.get_analysis(db, principal, analysis_id, "imaging.analysis.progress")
    return _analysis_page(request, db, principal, analysis, "_analysis.html", {}, {})


@router.get(f"{ANALYSES}/{{analysis_id}}/progress")
def analysis_progress(request: Request, db: Db, principal: PageUser, analysis_id: uuid.UUID) -> Response:
    """One worklist row's progress (an HTMX fragment polling itself until the analysis ends)."""
    analysis = service.get_analysis(db, principal, analysis_id, "imaging.analysis.progress")
    context = {"analysis": analysis, "jobs": service.jobs_of(db, [analysis]), "statuses": STATUS_LABELS}
    return render_page(request, db, principal, f"{T}/_progress.html", context)


@router.post(f"{ANALYSES}/{{analysis_id}}/feedback")
def feedback_submit(
    request: Request, db: Db, principal: PageUser, analysis_id: uuid.UUID, form: FormValues
) -> Response:
    """A doctor confirms the findings or corrects them to the right labels (kept for retraining)."""
    verdict = form.get("verdict", "")
    labels = [value for key, value in form.items() if key == "label" or key.startswith("label_")]
    note = form.get("note", "").strip() or None
    try:
        service.give_feedback(db, principal, analysis_id, verdict=verdict, labels=labels, note=note)
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        analysis = service.get_analysis(db, principal, analysis_id)
        values = {"verdict": verdict, "note": note or "", "labels": labels}
        errors = {"feedback": exc.detail}
        return _analysis_page(request, db, principal, analysis, "viewer.html", values, errors, exc.status)
    db.commit()
    return redirect(f"{ANALYSES}/{analysis_id}#feedback")


def _patient_page(
    request: Request,
    db: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    require(db, principal, Perm.IMAGING_ANALYSE, "imaging.study.list")
    access = authorize_patient(db, principal, patient_id, Perm.PATIENT_READ, "imaging.study.list")
    studies = service.of_patient(db, principal, patient_id)
    analyses = [analysis for study in studies for analysis in study.analyses]
    served = registry.served_tasks(db)
    choose = request.query_params.get("choose", "")
    context = {
        "patient": patients.get_patient(db, principal, patient_id),
        "studies": studies,
        "fitting": {study.id: _task_choices(study, served) for study in studies},
        "choose": choose,
        "can_upload": access is not Access.CONSENT,  # a consent lets a clinician read, never add
        "jobs": service.jobs_of(db, analyses),
        "statuses": STATUS_LABELS,
        "titles": TITLES,
        "tasks": sorted(catalog.TASKS.values(), key=lambda task: task.title),
        "appointments": booking.list_appointments(
            db, principal, patient_id=patient_id, status=ATTACHABLE_APPOINTMENTS, descending=True, limit=30
        ).items,
        "values": values,
        "errors": errors,
        "max_bytes": get_settings().max_upload_bytes,
    }
    return render_page(request, db, principal, f"{T}/patient.html", context, status_code)


def _analysis_page(
    request: Request,
    db: Session,
    principal: Principal,
    analysis: ImagingAnalysis,
    template: str,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    task = catalog.get_task(analysis.task)
    probabilities = sorted((analysis.probabilities or {}).items(), key=lambda item: -item[1])
    conditions: dict[str, list[catalog.Condition]] = {}
    for condition in catalog.conditions_of(task.key):
        conditions.setdefault(condition.label, []).append(condition)
    context = {
        "analysis": analysis,
        "study": analysis.study,
        "model": analysis.model,
        "task": task,
        "probabilities": probabilities,
        "conditions": conditions,
        "names": patient_names(db, {analysis.study.patient_id}),
        "jobs": service.jobs_of(db, [analysis]),
        "statuses": STATUS_LABELS,
        "can_review": has_perm(principal, Perm.IMAGING_REVIEW),
        "demonstration_label": registry.DEMONSTRATION_LABEL,
        "values": values,
        "errors": errors,
    }
    return render_page(request, db, principal, f"{T}/{template}", context, status_code)


def _task_choices(study: ImagingStudy, served: set[str]) -> list[tuple[catalog.Task, bool]]:
    """The tasks whose contract the study fits, each with whether a model serves it now (``served``)."""
    return [(task, task.key in served) for task in service.tasks_of(study)]


def _uuid_or_none(value: str | None, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed("Choose an appointment from the list.", extra={"field": field}) from None


def _upload_errors(exc: DomainError) -> dict[str, str]:
    errors = domain_field_errors(exc)
    if "form" in errors:  # the file itself: too big, not an image, outside every model's contract
        errors["file"] = errors.pop("form")
    return errors
