"""Consultation pages: the recorder of a patient (``/patients/{id}/consultations/new``: record in the browser
or upload a file), and one consultation (``/documents/consultations/{id}``): progress while it is
transcribed, then the transcript (speakers and times; a click plays that part) beside the draft note, whose
sentences play the segments they came from; the speakers are named and their roles corrected, the note
edited and approved there."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.core import jobs
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, ValidationFailed
from caresync.core.rbac import Perm, authorize_patient
from caresync.documents.consultations import service
from caresync.documents.consultations.jobs import transcribe_job
from caresync.documents.models import SPEAKER_ROLES, Consultation
from caresync.identity import patients
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "documents/consultations"
PAGE = "/documents/consultations"
SECTIONS = (
    ("subjective", "Subjective"),
    ("objective", "Objective"),
    ("assessment", "Assessment"),
    ("plan", "Plan"),
)


@router.get("/patients/{patient_id}/consultations/new")
def recorder(request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID) -> Response:
    """Record the consultation in the browser, or upload a recording."""
    authorize_patient(db, principal, patient_id, Perm.PATIENT_WRITE, "document.consultation.record")
    context = {"patient": patients.get_patient(db, principal, patient_id), "errors": {}}
    return render_page(request, db, principal, f"{T}/record.html", context)


@router.post("/patients/{patient_id}/consultations/new")
def upload_recording(
    request: Request,
    db: Db,
    principal: PageUser,
    patient_id: uuid.UUID,
    audio: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Store the recording, start its transcription and follow it on the consultation's page (the
    recorder's script posts here too, and follows the redirect)."""
    try:
        if audio is None or not audio.filename:
            raise ValidationFailed("Record the consultation or choose a recording.", extra={"field": "audio"})
        consultation = service.record(db, principal, patient_id, audio.file.read())
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        context = {
            "patient": patients.get_patient(db, principal, patient_id),
            "errors": domain_field_errors(exc),
        }
        return render_page(request, db, principal, f"{T}/record.html", context, exc.status)
    consultation.job_id = jobs.submit(db, principal, transcribe_job, consultation_id=str(consultation.id)).id
    db.commit()
    return redirect(f"{PAGE}/{consultation.id}")


@router.get(f"{PAGE}/{{consultation_id}}")
def consultation_page(request: Request, db: Db, principal: PageUser, consultation_id: uuid.UUID) -> Response:
    """The transcript beside the draft note (or the progress while it is being transcribed)."""
    consultation = service.get(db, principal, consultation_id)
    if is_htmx(request):
        return render_page(request, db, principal, f"{T}/_status.html", {"consultation": consultation})
    return _page(request, db, principal, consultation)


@router.post(f"{PAGE}/{{consultation_id}}/speakers")
def set_speakers(
    request: Request, db: Db, principal: PageUser, consultation_id: uuid.UUID, form: FormValues
) -> Response:
    """Name the speakers and correct their roles from the form (``name:<speaker>`` and ``role:<speaker>``
    fields); a name that breaks the rules shows the page again with the error and what was typed."""
    roles = _fields(form, "role:")
    names = _fields(form, "name:")
    try:
        service.set_speakers(db, principal, consultation_id, roles, names)
    except ValidationFailed as exc:
        db.rollback()
        consultation = service.get(db, principal, consultation_id)
        typed = {"typed_names": names, "typed_roles": roles}
        return _page(request, db, principal, consultation, domain_field_errors(exc), 422, **typed)
    db.commit()
    return redirect(f"{PAGE}/{consultation_id}?speakers=1")


@router.post(f"{PAGE}/{{consultation_id}}/note")
def save_or_approve(
    request: Request, db: Db, principal: PageUser, consultation_id: uuid.UUID, form: FormValues
) -> Response:
    """Save the edited note, or (``action=approve``) approve it into the record."""
    text = form.get("text", "")
    try:
        if form.get("action") == "approve":
            service.approve(db, principal, consultation_id, text)
            done = "approved"
        else:
            service.save_note(db, principal, consultation_id, text)
            done = "saved"
    except ValidationFailed as exc:
        db.rollback()
        consultation = service.get(db, principal, consultation_id)
        return _page(request, db, principal, consultation, domain_field_errors(exc), 422, text=text)
    db.commit()
    return redirect(f"{PAGE}/{consultation_id}?{done}=1")


def _fields(form: dict[str, str], prefix: str) -> dict[str, str]:
    """The form's ``<prefix><speaker>`` fields by speaker label."""
    return {name.removeprefix(prefix): value for name, value in form.items() if name.startswith(prefix)}


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    consultation: Consultation,
    errors: dict[str, str] | None = None,
    status: int = 200,
    **typed: Any,
) -> Response:
    """The consultation page, with errors and what the clinician typed when a form was refused."""
    context = {
        "consultation": consultation,
        "patient": patients.get_patient(db, principal, consultation.patient_id),
        "sections": SECTIONS,
        "roles_allowed": SPEAKER_ROLES,
        "names": service.speaker_names(consultation),
        "mine": consultation.clinician_id == principal.user_id,
        "errors": errors or {},
        **typed,
    }
    return render_page(request, db, principal, f"{T}/consultation.html", context, status)
