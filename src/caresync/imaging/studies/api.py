"""Imaging studies and AI analyses under ``/api/v1/imaging``: upload (multipart), a patient's studies, one
study, its preview and original, asking for an analysis (a job), the worklist, one analysis with its
heatmap, and the doctor's feedback."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Query, UploadFile, status
from fastapi.responses import Response

from caresync.imaging.studies import service
from caresync.imaging.studies.schemas import (
    AnalyseIn,
    AnalysisOut,
    AnalysisPage,
    FeedbackExport,
    FeedbackIn,
    StudyList,
    StudyOut,
)
from caresync.records.api import stored_file_response
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/imaging", tags=["imaging"])


@router.post("/studies", status_code=status.HTTP_201_CREATED, response_model=StudyOut)
def upload(
    principal: CurrentUser,
    db: Db,
    patient_id: Annotated[uuid.UUID, Form()],
    file: Annotated[UploadFile, File(description="DICOM, PNG or JPEG image")],
    appointment_id: Annotated[uuid.UUID | None, Form()] = None,
    description: Annotated[str | None, Form(max_length=200)] = None,
) -> StudyOut:
    """Upload an image of a patient in your care; its DICOM header facts are read and kept."""
    data = file.file.read()  # already spooled by the framework
    study = service.upload(
        db,
        principal,
        patient_id=patient_id,
        data=data,
        filename=file.filename or "",
        appointment_id=appointment_id,
        description=description,
    )
    out = StudyOut.of(study, service.tasks_of(study))
    db.commit()
    return out


@router.get("/studies", response_model=StudyList)
def patient_studies(principal: CurrentUser, db: Db, patient_id: uuid.UUID) -> StudyList:
    """A patient's imaging studies, newest first."""
    out = StudyList(
        items=[StudyOut.of(s, service.tasks_of(s)) for s in service.of_patient(db, principal, patient_id)]
    )
    db.commit()
    return out


@router.get("/studies/{study_id}", response_model=StudyOut)
def get_study(study_id: uuid.UUID, principal: CurrentUser, db: Db) -> StudyOut:
    """One study with the analyses it fits."""
    study = service.get(db, principal, study_id)
    out = StudyOut.of(study, service.tasks_of(study))
    db.commit()
    return out


@router.get("/studies/{study_id}/preview.png", response_class=Response)
def preview(study_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """The windowed 8-bit PNG preview of the image."""
    response = stored_file_response(
        f"{study_id}.png", "image/png", service.preview(db, principal, study_id), False
    )
    db.commit()
    return response


@router.get("/studies/{study_id}/original", response_class=Response)
def original(study_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """The file as uploaded (a download)."""
    name, media_type, data = service.original(db, principal, study_id)
    response = stored_file_response(name, media_type, data, True)
    db.commit()
    return response


@router.post("/studies/{study_id}/analyses", status_code=status.HTTP_202_ACCEPTED, response_model=AnalysisOut)
def analyse(
    study_id: uuid.UUID, principal: CurrentUser, db: Db, body: Annotated[AnalyseIn | None, Body()] = None
) -> AnalysisOut:
    """Ask for an AI analysis of the study (a job: follow ``job`` or poll the analysis)."""
    analysis = service.analyse(db, principal, study_id, task=body.task if body else None)
    db.commit()  # the job starts once this commits
    db.refresh(analysis)
    out = AnalysisOut.of(analysis, service.jobs_of(db, [analysis]).get(analysis.id))
    db.commit()
    return out


@router.get("/analyses", response_model=AnalysisPage)
def worklist(
    principal: CurrentUser,
    db: Db,
    status_: Annotated[str | None, Query(alias="status", max_length=12)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=service.MAX_PER_PAGE)] = 25,
) -> AnalysisPage:
    """Your organisation's analyses of patients you may see: the queue first, then recent results."""
    found = service.worklist(db, principal, status=status_, page=page, per_page=per_page)
    job_of = service.jobs_of(db, found.items)
    out = AnalysisPage(
        items=[AnalysisOut.of(a, job_of.get(a.id)) for a in found.items],
        page=page,
        next_page=int(found.next_cursor) if found.next_cursor else None,
        total=found.total,
    )
    db.commit()
    return out


@router.get("/analyses/{analysis_id}", response_model=AnalysisOut)
def get_analysis(analysis_id: uuid.UUID, principal: CurrentUser, db: Db) -> AnalysisOut:
    """One analysis: status and progress, probabilities, findings, model version, preprocessing, time."""
    analysis = service.get_analysis(db, principal, analysis_id)
    out = AnalysisOut.of(analysis, service.jobs_of(db, [analysis]).get(analysis.id))
    db.commit()
    return out


@router.get("/analyses/{analysis_id}/heatmap.png", response_class=Response)
def heatmap(analysis_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """The Grad-CAM heatmap (RGBA PNG, the preview's size: lay it over the preview); 409 until done."""
    data = service.heatmap(db, principal, analysis_id)
    response = stored_file_response(f"{analysis_id}-heatmap.png", "image/png", data, False)
    db.commit()
    return response


@router.put("/analyses/{analysis_id}/feedback", response_model=AnalysisOut)
def feedback(analysis_id: uuid.UUID, body: FeedbackIn, principal: CurrentUser, db: Db) -> AnalysisOut:
    """Confirm the findings or correct them (doctors); the latest verdict replaces an earlier one."""
    given = service.give_feedback(
        db, principal, analysis_id, verdict=body.verdict, labels=body.labels, note=body.note
    )
    analysis = given.analysis
    out = AnalysisOut.of(analysis, service.jobs_of(db, [analysis]).get(analysis.id))
    db.commit()
    return out


@router.get("/feedback", response_model=list[FeedbackExport])
def export_feedback(
    principal: CurrentUser, db: Db, task: Annotated[str, Query(max_length=40)]
) -> list[FeedbackExport]:
    """The doctors' verdicts on a task's analyses in your organisation, for retraining (admins)."""
    out = [FeedbackExport.model_validate(row) for row in service.export_feedback(db, principal, task)]
    db.commit()
    return out
