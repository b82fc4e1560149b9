"""Refill and renewal requests: the patient asks, a doctor of their care team decides.

A **refill** is another dispense the prescription already allows: the patient may ask while it is active,
valid and has fills left, and an approval tells them the pharmacy may dispense it. A **renewal** is a new
prescription once the old one has no fills left (or is no longer valid): an approval issues a new active
prescription copying the old one (its checks run without blocking, their warnings noted) and closes the
old one. One request may be pending per prescription (the database enforces it); the patient may withdraw
it. The prescriber hears of new requests, the patient of every decision; all of it is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.notify import notify
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, cared_for_patient_ids, require
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.prescriptions import service
from caresync.prescriptions.access import patients_own_prescription
from caresync.prescriptions.models import Prescription, PrescriptionRequest
from caresync.prescriptions.rules import REQUEST_KINDS, REQUEST_STATUSES, Status
from caresync.records.consent import require_patient_self

MAX_NOTE = 500
DECISIONS = ("approve", "decline")


@dataclass(frozen=True)
class Decision:
    """What became of a decided request; ``renewal`` is the new prescription an approved renewal issued."""

    request: PrescriptionRequest
    renewal: service.Prescribed | None = None


def request_refusal(prescription: Prescription, kind: str) -> str | None:
    """Why the patient may not ask for ``kind`` now (``None``: they may)."""
    step = service.progress(prescription).next_step
    if kind == "refill":
        if prescription.status != Status.ACTIVE:
            return f"This prescription is {prescription.status}: there is nothing to refill."
        if step == "renewal":
            return "No refills are left on this prescription, or it has expired: ask for a renewal."
        return None
    if step != "renewal":
        if prescription.status in (Status.ACTIVE, Status.ON_HOLD) and step != "none":
            return "This prescription still has fills left: ask for a refill instead."
        return f"This prescription is {prescription.status}: it cannot be renewed."
    return None


def create_request(
    session: Session, principal: Principal, prescription_id: uuid.UUID, kind: str, note: str = ""
) -> PrescriptionRequest:
    """The patient asks for a refill or a renewal of one of their prescriptions; its prescriber is told.
    409 if the rules do not allow that kind now or a request is already pending."""
    action = "prescription.request"
    if kind not in REQUEST_KINDS:
        raise ValidationFailed("Ask for a refill or a renewal.", extra={"field": "kind"})
    message = "Only the patient asks for a refill or a renewal."
    prescription = patients_own_prescription(session, principal, prescription_id, action, message)
    refusal = request_refusal(prescription, kind)
    if refusal:
        raise Conflict(refusal)
    note = clean_line(note)
    if len(note) > MAX_NOTE:
        raise ValidationFailed(f"Keep the note under {MAX_NOTE} characters.", extra={"field": "note"})
    assert principal.user_id is not None  # the patient's account
    request = PrescriptionRequest(
        prescription_id=prescription.id,
        patient_id=prescription.patient_id,
        kind=kind,
        status="pending",
        note=note,
        requested_by=principal.user_id,
        requested_at=utcnow(),
    )
    try:
        with session.begin_nested():  # the unique index on pending requests settles a race
            session.add(request)
            session.flush()
    except IntegrityError:
        raise Conflict("You already have a pending request for this prescription.") from None
    audit.record(
        session,
        principal,
        action,
        patient_id=prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"request_id": str(request.id), "kind": kind},
    )
    patient = prescription.patient
    notify(
        session,
        prescription.prescriber_id,
        "prescription-request",
        f"{kind.capitalize()} request from {patient.given_name} {patient.family_name}",
        f"{prescription.medication_name} {prescription.strength}. Decide it in your prescription requests.",
        link="/prescriptions/requests",
    )
    return request


def _request(
    session: Session, principal: Principal, request_id: uuid.UUID, action: str
) -> PrescriptionRequest:
    request = session.get(PrescriptionRequest, request_id)
    if request is None:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            resource_type="PrescriptionRequest",
            resource_id=request_id,
        )
        raise NotFound("No such request.")
    return request


def withdraw(session: Session, principal: Principal, request_id: uuid.UUID) -> PrescriptionRequest:
    """The patient withdraws their pending request."""
    action = "prescription.request_withdraw"
    request = _request(session, principal, request_id, action)
    try:
        require_patient_self(
            session, principal, request.patient_id, action, "Only the patient withdraws their request."
        )
    except NotFound:
        raise NotFound("No such request.") from None
    service.lock(session, request)
    if request.status != "pending":
        raise Conflict(f"This request is already {request.status}.")
    request.status = "withdrawn"
    request.decided_at = utcnow()
    request.decided_by = principal.user_id
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=request.patient_id,
        resource_type="PrescriptionRequest",
        resource_id=request.id,
        detail={"kind": request.kind},
    )
    return request


def decide(
    session: Session, principal: Principal, request_id: uuid.UUID, decision: str, note: str = ""
) -> Decision:
    """A doctor of the patient's care team approves or declines a pending request (a decline needs a note
    for the patient). Approving a renewal issues the new prescription and closes the old one; approving
    a refill tells the patient the pharmacy may dispense it."""
    action = "prescription.request_decide"
    if decision not in DECISIONS:
        raise ValidationFailed("Approve or decline the request.", extra={"field": "decision"})
    require(session, principal, Perm.PRESCRIBE, action)
    request = _request(session, principal, request_id, action)
    try:
        prescription = service.prescription_for_prescriber(
            session, principal, request.prescription_id, action
        )
    except NotFound:
        raise NotFound("No such request.") from None
    service.lock(session, request)  # two doctors deciding at once: the second is told
    if request.status != "pending":
        raise Conflict(f"This request is already {request.status}.")
    note = clean_line(note)
    if len(note) > MAX_NOTE:
        raise ValidationFailed(f"Keep the note under {MAX_NOTE} characters.", extra={"field": "note"})
    if decision == "decline" and not note:
        raise ValidationFailed("Tell the patient why you decline.", extra={"field": "note"})
    renewal = None
    if decision == "approve":
        refusal = request_refusal(prescription, request.kind)
        if refusal:
            raise Conflict(f"This request can no longer be approved ({refusal}) Decline it with a note.")
        if request.kind == "renewal":
            renewal = service.renew(session, principal, prescription)
            request.renewal_id = renewal.prescription.id
            service.complete(session, principal, prescription, "Replaced by a renewal.")
    request.status = "approved" if decision == "approve" else "declined"
    request.decision_note = note
    request.decided_by = principal.user_id
    request.decided_at = utcnow()
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=request.patient_id,
        resource_type="PrescriptionRequest",
        resource_id=request.id,
        detail={"kind": request.kind, "decision": request.status, "renewal_id": request.renewal_id},
    )
    _tell_patient(session, request, prescription, renewal)
    return Decision(request, renewal)


def _tell_patient(
    session: Session,
    request: PrescriptionRequest,
    prescription: Prescription,
    renewal: service.Prescribed | None,
) -> None:
    user_id = prescription.patient.user_id
    if user_id is None:
        return
    drug = prescription.medication_name
    if request.status == "declined":
        title, body = f"Your {request.kind} request for {drug} was declined", request.decision_note
        link = f"/prescriptions/{prescription.id}"
    elif renewal is not None:
        title, body = f"Your prescription for {drug} was renewed", "Your new prescription is ready."
        link = f"/prescriptions/{renewal.prescription.id}"
    else:
        title = f"Your refill of {drug} was approved"
        body, link = "The pharmacy may dispense your next refill.", f"/prescriptions/{prescription.id}"
    if request.decision_note and request.status == "approved":
        body = f"{body} Note: {request.decision_note}"
    notify(session, user_id, "prescription-request", title, body, link=link)


def list_requests(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[PrescriptionRequest]:
    """A doctor's inbox (requests of the patients they care for; pending by default, oldest first), or a
    patient's own requests (all by default, newest first). Audited per patient listed."""
    action = "prescription.request_list"
    if status is not None and status not in REQUEST_STATUSES:
        raise ValidationFailed(f"Filter by one of: {', '.join(REQUEST_STATUSES)}.", extra={"field": "status"})
    query = select(PrescriptionRequest)
    if principal.role == "patient" and principal.patient_id is not None:
        query = query.where(PrescriptionRequest.patient_id == principal.patient_id)
        descending = True
    else:
        require(session, principal, Perm.PRESCRIBE, action)
        query = query.where(PrescriptionRequest.patient_id.in_(cared_for_patient_ids(principal)))
        status = status or "pending"
        descending = status != "pending"
    if status is not None:
        query = query.where(PrescriptionRequest.status == status)
    page = paginate(
        session,
        query,
        sort_column=PrescriptionRequest.requested_at,
        id_column=PrescriptionRequest.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )
    for patient_id in sorted({request.patient_id for request in page.items}):
        audit.record(
            session,
            principal,
            action,
            patient_id=patient_id,
            resource_type="PrescriptionRequest",
            detail={"status": status},
        )
    return page


def requests_for(session: Session, prescription: Prescription) -> list[PrescriptionRequest]:
    """A prescription's requests, newest first (the caller has authorised the read)."""
    query = (
        select(PrescriptionRequest)
        .where(PrescriptionRequest.prescription_id == prescription.id)
        .order_by(PrescriptionRequest.requested_at.desc())
    )
    return list(session.execute(query).scalars())


def pending_request(session: Session, prescription: Prescription) -> PrescriptionRequest | None:
    """The prescription's pending request, if any."""
    query = select(PrescriptionRequest).where(
        PrescriptionRequest.prescription_id == prescription.id, PrescriptionRequest.status == "pending"
    )
    return session.execute(query).scalar_one_or_none()
