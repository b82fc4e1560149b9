"""Who may see and change prescriptions: the one place every prescriptions module asks.

Prescriptions are part of the patient's record in the ``medication`` category, so reading them follows the
records consent rule (``records.consent.read_scope``): the patient, their care team under the
organisation's policy, a clinician the patient consented to for medications, or break-glass (flagged in the
audit log). Prescribing and deciding requests needs the ``PRESCRIBE`` permission, a care relationship
(or break-glass) with the patient, and the right to read their medications; a consent lets a clinician
read, never prescribe. Pharmacists see a
prescription only through its signed QR code (``prescriptions.dispensing``), never by browsing.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import NotFound
from caresync.core.rbac import Perm, authorize_patient, require
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import Status
from caresync.records.consent import ReadScope, read_scope, require_patient_self

CATEGORY = "medication"  # the records category prescriptions belong to, for consent


def medication_scope(session: Session, principal: Principal, patient_id: uuid.UUID, action: str) -> ReadScope:
    """The principal's scope over the patient's medications; 404 (audited) unless it covers them."""
    scope = read_scope(session, principal, patient_id, action)
    if not scope.allows(CATEGORY):
        _deny(session, principal, action, patient_id, "Patient", patient_id)
        raise NotFound("No such patient.")
    return scope


def readable_prescription(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str
) -> Prescription:
    """One prescription the principal may read, with the read audited (flagged under break-glass); 404
    (audited) when it does not exist or the principal may not read it."""
    prescription = _existing(session, principal, prescription_id, action)
    try:
        scope = medication_scope(session, principal, prescription.patient_id, action)
    except NotFound:
        raise NotFound("No such prescription.") from None
    audit.record(
        session,
        principal,
        action,
        patient_id=prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"access": scope.access.value},
        flagged=scope.break_glass,
    )
    return prescription


def prescription_to_change(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str
) -> Prescription:
    """A prescription the principal may change as a prescriber: 403 for roles that do not prescribe
    (before looking, so nothing leaks), 404 (audited) when it is missing or not for a patient they may
    prescribe for."""
    require(session, principal, Perm.PRESCRIBE, action)
    prescription = _existing(session, principal, prescription_id, action)
    try:
        require_prescriber(session, principal, prescription.patient_id, action)
    except NotFound:
        raise NotFound("No such prescription.") from None
    return prescription


def patients_own_prescription(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str, message: str
) -> Prescription:
    """A prescription the principal acts on as its patient (requests, dose marks, reminders): 404
    (audited) when it does not exist, is a draft (patients never see drafts) or its patient is not theirs
    to see; 403 (audited, with ``message``) for the patient's clinicians."""
    prescription = _existing(session, principal, prescription_id, action, drafts=False)
    try:
        require_patient_self(session, principal, prescription.patient_id, action, message)
    except NotFound:
        raise NotFound("No such prescription.") from None
    return prescription


def _existing(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str, *, drafts: bool = True
) -> Prescription:
    prescription = session.get(Prescription, prescription_id)
    if prescription is None or (not drafts and prescription.status == Status.DRAFT):
        _deny(session, principal, action, None, "MedicationRequest", prescription_id)
        raise NotFound("No such prescription.")
    return prescription


def require_prescriber(session: Session, principal: Principal, patient_id: uuid.UUID, action: str) -> None:
    """Let through a prescriber who cares for the patient (or broke the glass) and may read their
    medications (nobody prescribes blind: under a "consent-only" policy that takes the patient's consent):
    403 for roles that may not prescribe, 404 for patients they may not change or whose medications they
    may not read (all audited)."""
    require(session, principal, Perm.PRESCRIBE, action)
    authorize_patient(session, principal, patient_id, Perm.PATIENT_WRITE, action)
    medication_scope(session, principal, patient_id, action)


def _deny(
    session: Session,
    principal: Principal,
    action: str,
    patient_id: uuid.UUID | None,
    resource_type: str,
    resource_id: uuid.UUID,
) -> None:
    audit.record_and_commit(
        session,
        principal,
        action,
        outcome="denied",
        patient_id=patient_id,
        resource_type=resource_type,
        resource_id=resource_id,
    )
