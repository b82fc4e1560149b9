"""Prescription endpoints under ``/api/v1/prescriptions``: the formulary, prescribing (with allergy and
duplicate-therapy warnings: 409 lists them until acknowledged with a reason), a patient's prescriptions,
status changes, and refill and renewal requests with the doctor's inbox."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from caresync.core.errors import ValidationFailed
from caresync.core.pagination import Page
from caresync.prescriptions import formulary, requests, service
from caresync.prescriptions.models import PrescriptionRequest
from caresync.prescriptions.schemas import (
    DecisionIn,
    DecisionOut,
    DrugOut,
    PrescribedOut,
    PrescriptionIn,
    PrescriptionOut,
    PrescriptionPage,
    RequestIn,
    RequestOut,
    RequestPage,
    StatusIn,
    WarningOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/prescriptions", tags=["prescriptions"])
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
StatusFilter = Annotated[str | None, Query(alias="status", max_length=20)]


def _request_page(page: Page[PrescriptionRequest]) -> RequestPage:
    return RequestPage(items=[RequestOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/formulary", response_model=list[DrugOut])
def search_formulary(
    _principal: CurrentUser,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=formulary.MAX_RESULTS)] = 20,
) -> list[DrugOut]:
    """Formulary drugs matching ``q`` (code or name, prefix first), for any signed-in user."""
    return [DrugOut.of(drug) for drug in formulary.search(q, limit)]


@router.get("/requests", response_model=RequestPage)
def list_requests(
    principal: CurrentUser,
    db: Db,
    request_status: Annotated[str | None, Query(alias="status", max_length=10)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RequestPage:
    """A doctor's inbox (pending requests of the patients they care for, oldest first), or a patient's own
    requests (newest first)."""
    page = requests.list_requests(db, principal, status=request_status, limit=limit, cursor=cursor)
    out = _request_page(page)
    db.commit()
    return out


@router.post("/requests/{request_id}/decision", response_model=DecisionOut)
def decide_request(request_id: uuid.UUID, body: DecisionIn, principal: CurrentUser, db: Db) -> DecisionOut:
    """Approve or decline a pending request (a doctor of the patient's care team); an approved renewal
    returns the new prescription. The patient is notified."""
    decision = requests.decide(db, principal, request_id, body.decision, body.note)
    renewal = decision.renewal
    out = DecisionOut(
        request=RequestOut.of(decision.request),
        renewal=PrescriptionOut.of(renewal.prescription) if renewal else None,
        warnings=[WarningOut.of(w) for w in renewal.warnings] if renewal else [],
    )
    db.commit()
    return out


@router.post("/requests/{request_id}/withdraw", response_model=RequestOut)
def withdraw_request(request_id: uuid.UUID, principal: CurrentUser, db: Db) -> RequestOut:
    """The patient withdraws their pending request."""
    out = RequestOut.of(requests.withdraw(db, principal, request_id))
    db.commit()
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PrescribedOut)
def prescribe(body: PrescriptionIn, principal: CurrentUser, db: Db) -> PrescribedOut:
    """Prescribe for a patient you care for (doctors). Allergy or duplicate-therapy warnings give 409 with
    ``warnings`` until you send ``acknowledge_warnings`` and an ``override_reason``."""
    out = PrescribedOut.of_prescribed(service.prescribe(db, principal, body.draft()))
    db.commit()
    return out


@router.get("", response_model=PrescriptionPage)
def list_prescriptions(
    principal: CurrentUser,
    db: Db,
    patient_id: uuid.UUID | None = None,
    prescription_status: StatusFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PrescriptionPage:
    """A patient's prescriptions, newest first (``patient_id`` may be left out by a patient: their own);
    ``status`` is a status, ``open`` or ``closed``."""
    chosen = _patient_id(principal.patient_id if principal.role == "patient" else None, patient_id)
    page = service.list_prescriptions(
        db, principal, chosen, status=prescription_status, limit=limit, cursor=cursor
    )
    out = PrescriptionPage(items=[PrescriptionOut.of(p) for p in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


def _patient_id(own: uuid.UUID | None, given: uuid.UUID | None) -> uuid.UUID:
    if given is not None:
        return given
    if own is not None:
        return own
    raise ValidationFailed("Say whose prescriptions: patient_id.", extra={"field": "patient_id"})


@router.get("/{prescription_id}", response_model=PrescriptionOut)
def read_prescription(prescription_id: uuid.UUID, principal: CurrentUser, db: Db) -> PrescriptionOut:
    """One prescription, with fills and refills left and the patient's next step."""
    out = PrescriptionOut.of(service.get_prescription(db, principal, prescription_id))
    db.commit()
    return out


@router.post("/{prescription_id}/status", response_model=PrescriptionOut)
def change_status(
    prescription_id: uuid.UUID, body: StatusIn, principal: CurrentUser, db: Db
) -> PrescriptionOut:
    """Put on hold, reactivate, stop or cancel a prescription, or activate a draft (a doctor of the
    patient's care team). 409 names why a change is not allowed."""
    prescription = service.change_status(
        db,
        principal,
        prescription_id,
        body.status,
        body.reason,
        acknowledge_warnings=body.acknowledge_warnings,
    )
    out = PrescriptionOut.of(prescription)
    db.commit()
    return out


@router.post("/{prescription_id}/requests", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
def request_refill_or_renewal(
    prescription_id: uuid.UUID, body: RequestIn, principal: CurrentUser, db: Db
) -> RequestOut:
    """The patient asks for a refill (while fills are left) or a renewal (once none are, or it expired)."""
    out = RequestOut.of(requests.create_request(db, principal, prescription_id, body.kind, body.note))
    db.commit()
    return out
