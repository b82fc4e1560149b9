"""Risk pages: the panel on the doctor's patient view (``/analytics/risk/patients/{id}/panel``, an HTMX
fragment loaded by the patient page) and the administrators' model page (``/analytics/risk/models``): the
versions with their metrics, "Train a new version" (a job with progress) and "Activate" (with
confirmation)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.analytics.risk import service
from caresync.analytics.risk.jobs import start_training
from caresync.analytics.risk.model import LEVEL_THRESHOLDS
from caresync.analytics.risk.schemas import ModelCardOut, RiskOut
from caresync.core import jobs
from caresync.core.errors import Conflict, NotFound
from caresync.core.rbac import Perm, has_perm
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, redirect, render_page

router = APIRouter(include_in_schema=False)
PAGE = "/analytics/risk/models"


@router.get("/analytics/risk/patients/{patient_id}/panel")
def risk_panel(request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID) -> Response:
    """The patient's risk as a card (level, probabilities, drivers, model version and its label); 404 for a
    patient the user may not see, and a plain note when no model is active."""
    risk, problem = None, ""
    try:
        risk = RiskOut.of(service.patient_risk(db, principal, patient_id))
    except Conflict as exc:
        db.rollback()
        problem = exc.detail
    context = {"risk": risk, "problem": problem, "thresholds": LEVEL_THRESHOLDS}
    return render_page(request, db, principal, "analytics/risk/_panel.html", context)


@router.get(PAGE)
def models_page(
    request: Request, db: Db, principal: PageUser, job: uuid.UUID | None = None, activated: int = 0
) -> Response:
    """The model versions the user may see, with their metrics and the one in use."""
    cards, active = service.list_models(db, principal)
    running = None
    if job is not None:
        try:
            running = jobs.job_view(jobs.get_job(db, principal, job))
        except NotFound:
            running = None
    context = {
        "items": [ModelCardOut.of(card, active) for card in cards],
        "active": active,
        "job": running,
        "activated": activated,
        "can_manage": has_perm(principal, Perm.ANALYTICS_MANAGE),
    }
    return render_page(request, db, principal, "analytics/risk/models.html", context)


@router.post(PAGE)
def train_model(db: Db, principal: PageUser) -> Response:
    """Start training a new version on the organisation's encounters and follow it on the page."""
    job = start_training(db, principal)
    db.commit()
    return redirect(f"{PAGE}?job={job.id}")


@router.post(f"{PAGE}/active")
def activate_model(db: Db, principal: PageUser, form: FormValues) -> Response:
    """Make the chosen version the organisation's (the form's ``version``)."""
    service.activate(db, principal, form.get("version", "").strip())
    db.commit()
    return redirect(f"{PAGE}?activated=1")
