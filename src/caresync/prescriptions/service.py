"""Prescribing: a doctor caring for the patient issues a prescription from the formulary, after the allergy
and duplicate-therapy checks; the prescriber changes its status along the FHIR state machine; the patient
and their clinicians read it (through ``prescriptions.access``) with what the patient needs next.

Checks warn, they do not forbid: a prescription that raises warnings is only created when the doctor
acknowledges them and gives a reason (kept in ``status_reason``); otherwise the caller gets 409 with the
warnings in the problem body. Every read and write is audited; the patient is notified when a prescription
is issued or its status changes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased, lazyload, selectinload

from caresync.core import audit, localtime
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.notify import notify
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Access, patient_access
from caresync.core.text import clean_line, clean_text
from caresync.identity.models import Patient
from caresync.prescriptions import formulary
from caresync.prescriptions.access import (
    medication_scope,
    prescription_to_change,
    readable_prescription,
    require_prescriber,
)
from caresync.prescriptions.formulary import Drug
from caresync.prescriptions.models import Dispense, Prescription, PrescriptionRequest
from caresync.prescriptions.rules import (
    FREQUENCIES,
    MAX_REFILLS,
    MAX_VALIDITY,
    OPEN_STATUSES,
    ROUTES,
    STATUSES,
    Status,
    can_transition,
    fills_left,
    next_step,
    refills_left,
)
from caresync.records.models import HealthRecord

MAX_DURATION_DAYS = 365
MAX_QUANTITY = 1000
MAX_DOSE = 60
MAX_INSTRUCTIONS = 1000
MAX_REASON = 300
MAX_START_AHEAD = timedelta(days=90)  # prescribing for later than this is a plan, not a prescription
MAX_START_BEHIND = timedelta(days=1)  # a day back, so a doctor ahead of the patient's time zone is fine
CREATABLE = (Status.DRAFT.value, Status.ACTIVE.value)
REASON_REQUIRED = frozenset({Status.ON_HOLD.value, Status.STOPPED.value, Status.CANCELLED.value})
# Status filters of a list, beyond single statuses.
STATUS_GROUPS: dict[str, frozenset[str]] = {
    "open": frozenset(s.value for s in OPEN_STATUSES),
    "closed": frozenset({Status.COMPLETED.value, Status.STOPPED.value, Status.CANCELLED.value}),
}
STATUS_VERBS = {
    Status.ACTIVE.value: "is active",
    Status.ON_HOLD.value: "is on hold",
    Status.STOPPED.value: "was stopped",
    Status.CANCELLED.value: "was cancelled",
    Status.COMPLETED.value: "is completed",
}


@dataclass(frozen=True)
class Draft:
    """What a doctor prescribes. ``route`` defaults to the drug's usual route, ``start_date`` to the
    patient's today and ``valid_until`` to ``start_date`` plus the longest validity."""

    patient_id: uuid.UUID
    medication_code: str
    dose: str
    frequency: str
    duration_days: int
    quantity: int
    days_supply: int
    refills: int = 0
    route: str | None = None
    instructions: str = ""
    start_date: date | None = None
    valid_until: date | None = None
    status: str = Status.ACTIVE.value
    reminders_enabled: bool = True
    acknowledge_warnings: bool = False
    override_reason: str = ""


@dataclass(frozen=True)
class Warning:
    """A finding of the prescribing checks: ``allergy``, ``duplicate-drug`` or ``duplicate-class``."""

    code: str
    message: str
    prescription_id: uuid.UUID | None = None  # the existing prescription a duplicate refers to

    def as_dict(self) -> dict[str, str]:
        """For a problem body or a response."""
        out = {"code": self.code, "message": self.message}
        if self.prescription_id is not None:
            out["prescription_id"] = str(self.prescription_id)
        return out


@dataclass(frozen=True)
class Prescribed:
    """A new prescription and the warnings its prescriber overrode (or, for a renewal, that were noted)."""

    prescription: Prescription
    warnings: list[Warning] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    """Where a prescription stands for the patient."""

    fills_left: int
    refills_left: int
    next_step: str  # first-fill | refill | renewal | none


def progress(prescription: Prescription) -> Progress:
    """Fills and refills left and the patient's next step, on the patient's today."""
    p = prescription
    return Progress(
        fills_left=fills_left(p.refills, p.dispense_count),
        refills_left=refills_left(p.refills, p.dispense_count),
        next_step=next_step(
            p.status, p.refills, p.dispense_count, p.valid_until, localtime.local_date(p.patient.timezone)
        ),
    )


def dose_times(frequency: str) -> list[str]:
    """The default local dose times ("HH:MM") of a frequency."""
    return [moment.strftime("%H:%M") for moment in FREQUENCIES[frequency][1]]


# --- the checks ---------------------------------------------------------------------------------------------


def check(
    session: Session, patient: Patient, drug: Drug, exclude_id: uuid.UUID | None = None
) -> list[Warning]:
    """The allergy and duplicate-therapy warnings for prescribing ``drug`` to ``patient`` (``exclude_id``:
    a prescription not to count as a duplicate, e.g. the one being renewed or activated)."""
    return allergy_warnings(session, patient, drug) + duplicate_warnings(
        session, patient.id, drug, exclude_id
    )


def recorded_allergies(session: Session, patient: Patient) -> list[tuple[str, str]]:
    """The patient's recorded allergies as ``(allergy, source)`` pairs: each entry of the profile's
    allergies (separated by commas, semicolons or lines) and the title of each current allergy record."""
    found = [(entry, "patient profile") for entry in re.split(r"[,;\n]+", patient.allergies or "")]
    newer = aliased(HealthRecord)
    records = session.execute(
        select(HealthRecord.title, HealthRecord.recorded_on)
        .where(
            HealthRecord.patient_id == patient.id,
            HealthRecord.category == "allergy",
            ~exists(select(newer.id).where(newer.supersedes_id == HealthRecord.id)),
        )
        .order_by(HealthRecord.recorded_on)
    ).all()
    found += [(title, f"allergy record of {recorded_on.isoformat()}") for title, recorded_on in records]
    return [(clean_line(entry), source) for entry, source in found if clean_line(entry)]


def _mentions(text: str, term: str) -> bool:
    """Whether ``text`` names ``term`` as a word (plural forms included)."""
    return re.search(rf"(?<![\w-]){re.escape(term)}(?:e?s)?(?![\w-])", text.lower()) is not None


def _allergen_terms(entry: str) -> set[str]:
    """The drug words an allergy entry covers: the ingredients and classes it names, widened to the
    classes of every formulary drug it names (an allergy to ibuprofen covers NSAIDs)."""
    terms: set[str] = set()
    for drug in formulary.DRUGS:
        named = {term for term in drug.allergy_terms if _mentions(entry, term)}
        if named:
            terms |= named | set(drug.allergy_classes)
    return terms


def allergy_warnings(session: Session, patient: Patient, drug: Drug) -> list[Warning]:
    """One warning per recorded allergy that covers the drug's ingredients or allergy classes."""
    warnings: list[Warning] = []
    seen: set[str] = set()
    for entry, source in recorded_allergies(session, patient):
        matched = sorted(drug.allergy_terms & _allergen_terms(entry))
        if not matched or entry.lower() in seen:
            continue
        seen.add(entry.lower())
        warnings.append(
            Warning(
                "allergy",
                f"Recorded allergy “{entry}” ({source}) covers {drug.name} ({', '.join(matched)}).",
            )
        )
    return warnings


def duplicate_warnings(
    session: Session, patient_id: uuid.UUID, drug: Drug, exclude_id: uuid.UUID | None = None
) -> list[Warning]:
    """A warning for each open prescription (draft, active, on hold) of the same drug or the same
    therapeutic class."""
    query = select(Prescription).where(
        Prescription.patient_id == patient_id,
        Prescription.status.in_(STATUS_GROUPS["open"]),
    )
    if exclude_id is not None:
        query = query.where(Prescription.id != exclude_id)
    warnings: list[Warning] = []
    for other in session.execute(query.order_by(Prescription.created_at)).scalars():
        what = (
            f"{other.medication_name} {other.strength} {other.form} ({other.status}, from {other.start_date})"
        )
        if other.medication_code == drug.code:
            warnings.append(
                Warning("duplicate-drug", f"The patient already has a prescription for {what}.", other.id)
            )
            continue
        known = formulary.get(other.medication_code)
        if known is not None and known.therapeutic_class == drug.therapeutic_class:
            warnings.append(
                Warning(
                    "duplicate-class",
                    f"Duplicate therapy: {what} is also a {drug.therapeutic_class}.",
                    other.id,
                )
            )
    return warnings


def _override_reason(warnings: list[Warning], acknowledged: bool, reason: str) -> str:
    """Nothing without warnings; with warnings, 409 unless acknowledged with a reason (returned)."""
    if not warnings:
        return ""
    if not acknowledged:
        raise Conflict(
            "Check the warnings: prescribe anyway only with a reason.",
            extra={"warnings": [w.as_dict() for w in warnings]},
        )
    reason = clean_line(reason)
    if not reason:
        raise ValidationFailed(
            "Say why you prescribe despite the warnings.",
            extra={"field": "override_reason", "warnings": [w.as_dict() for w in warnings]},
        )
    return f"Warnings overridden: {reason}"[:MAX_REASON]


# --- prescribing --------------------------------------------------------------------------------------------


def _is_break_glass(session: Session, principal: Principal, patient_id: uuid.UUID) -> bool:
    return patient_access(session, principal, patient_id) is Access.BREAK_GLASS


def _validated(draft: Draft, today: date) -> tuple[Drug, dict[str, object]]:
    """The drug and the prescription's columns, or 422 naming the first wrong field."""
    drug = formulary.get(draft.medication_code)
    if drug is None:
        raise ValidationFailed("Choose a medication from the formulary.", extra={"field": "medication_code"})

    def fail(field_name: str, message: str) -> None:
        raise ValidationFailed(message, extra={"field": field_name})

    dose = clean_line(draft.dose)
    if not dose or len(dose) > MAX_DOSE:
        fail("dose", f"Give the dose, e.g. “1 {drug.dose_unit}” (at most {MAX_DOSE} characters).")
    route = draft.route or drug.route
    if route not in ROUTES:
        fail("route", f"Choose a route: {', '.join(ROUTES)}.")
    if draft.frequency not in FREQUENCIES:
        fail("frequency", f"Choose a frequency: {', '.join(FREQUENCIES)}.")
    if not 1 <= draft.duration_days <= MAX_DURATION_DAYS:
        fail("duration_days", f"The duration is 1 to {MAX_DURATION_DAYS} days.")
    if not 1 <= draft.quantity <= MAX_QUANTITY:
        fail("quantity", f"The quantity per dispense is 1 to {MAX_QUANTITY}.")
    if not 1 <= draft.days_supply <= draft.duration_days:
        fail("days_supply", "One dispense lasts at least a day and no longer than the whole treatment.")
    if not 0 <= draft.refills <= MAX_REFILLS:
        fail("refills", f"Refills are 0 to {MAX_REFILLS}.")
    instructions = clean_text(draft.instructions)
    if len(instructions) > MAX_INSTRUCTIONS:
        fail("instructions", f"Keep the instructions under {MAX_INSTRUCTIONS} characters.")
    start = draft.start_date or today
    if start < today - MAX_START_BEHIND:
        fail("start_date", "The start date cannot be in the past.")
    if start > today + MAX_START_AHEAD:
        fail("start_date", f"The start date must be within {MAX_START_AHEAD.days} days.")
    valid_until = draft.valid_until or start + MAX_VALIDITY
    if not start <= valid_until <= start + MAX_VALIDITY:
        fail(
            "valid_until",
            f"A prescription is valid from its start date for at most {MAX_VALIDITY.days} days.",
        )
    if draft.status not in CREATABLE:
        fail("status", "A new prescription is a draft or active.")
    values: dict[str, object] = {
        "medication_code": drug.code,
        "medication_name": drug.name,
        "strength": drug.strength,
        "form": drug.form,
        "dose": dose,
        "route": route,
        "frequency": draft.frequency,
        "dose_times": dose_times(draft.frequency),
        "duration_days": draft.duration_days,
        "quantity": draft.quantity,
        "days_supply": draft.days_supply,
        "refills": draft.refills,
        "instructions": instructions,
        "start_date": start,
        "valid_until": valid_until,
        "reminders_enabled": draft.reminders_enabled,
    }
    return drug, values


def prescribe(session: Session, principal: Principal, draft: Draft) -> Prescribed:
    """Issue (or save as a draft) a prescription for a patient the doctor cares for, after the checks:
    with warnings, only when acknowledged with a reason (else 409 listing them)."""
    action = "prescription.create"
    require_prescriber(session, principal, draft.patient_id, action)
    patient = session.get(Patient, draft.patient_id)
    assert patient is not None  # require_prescriber found it
    drug, values = _validated(draft, localtime.local_date(patient.timezone))
    warnings = check(session, patient, drug)
    reason = _override_reason(warnings, draft.acknowledge_warnings, draft.override_reason)
    prescription = _issue(session, principal, patient, draft.status, values, reason)
    audit.record(
        session,
        principal,
        action,
        patient_id=patient.id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={
            "medication_code": drug.code,
            "status": prescription.status,
            "warnings": [w.code for w in warnings],
            "overridden": bool(warnings),
        },
        flagged=_is_break_glass(session, principal, patient.id),
    )
    return Prescribed(prescription, warnings)


def renew(session: Session, principal: Principal, old: Prescription) -> Prescribed:
    """A new active prescription copying ``old`` (``renewal_of_id``), starting today. The checks run but do
    not block (the prescriber has decided): their warnings are noted on the new prescription and in the
    audit log. The caller has authorised the prescriber and closes ``old``."""
    if session.execute(select(exists().where(Prescription.renewal_of_id == old.id))).scalar():
        raise Conflict("This prescription has already been renewed.")
    drug = formulary.get(old.medication_code)
    if drug is None:
        raise Conflict("This medication is no longer in the formulary: write a new prescription.")
    today = localtime.local_date(old.patient.timezone)
    warnings = check(session, old.patient, drug, exclude_id=old.id)
    values: dict[str, object] = {
        name: getattr(old, name)
        for name in (
            "medication_code",
            "medication_name",
            "strength",
            "form",
            "dose",
            "route",
            "frequency",
            "dose_times",
            "duration_days",
            "quantity",
            "days_supply",
            "refills",
            "instructions",
            "reminders_enabled",
        )
    }
    values |= {"start_date": today, "valid_until": today + MAX_VALIDITY, "renewal_of_id": old.id}
    noted = f"Renewal; warnings noted: {'; '.join(w.code for w in warnings)}" if warnings else ""
    prescription = _issue(session, principal, old.patient, Status.ACTIVE.value, values, noted)
    audit.record(
        session,
        principal,
        "prescription.renew",
        patient_id=old.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"renewal_of": str(old.id), "warnings": [w.code for w in warnings]},
        flagged=_is_break_glass(session, principal, old.patient_id),
    )
    return Prescribed(prescription, warnings)


def _issue(
    session: Session,
    principal: Principal,
    patient: Patient,
    status: str,
    values: dict[str, object],
    reason: str,
) -> Prescription:
    assert principal.user_id is not None  # a doctor, of an organisation
    assert principal.organisation_id is not None
    prescription = Prescription(
        patient_id=patient.id,
        prescriber_id=principal.user_id,
        organisation_id=principal.organisation_id,
        status=status,
        status_reason=reason,
        dispense_count=0,
        **values,
    )
    session.add(prescription)
    session.flush()
    session.refresh(prescription)
    if status == Status.ACTIVE.value:
        _tell_patient(session, prescription, f"New prescription: {_label(prescription)}", principal.full_name)
    return prescription


def _label(prescription: Prescription) -> str:
    return f"{prescription.medication_name} {prescription.strength} {prescription.form}"


def _tell_patient(session: Session, prescription: Prescription, title: str, by: str, body: str = "") -> None:
    user_id = prescription.patient.user_id
    if user_id is not None:
        notify(
            session,
            user_id,
            "prescription",
            title,
            body or f"From {by}. Open it to see how to take it and what to do next.",
            link=f"/prescriptions/{prescription.id}",
        )


# --- status changes -----------------------------------------------------------------------------------------


def prescription_for_prescriber(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str
) -> Prescription:
    """A prescription the principal may change (:func:`access.prescription_to_change`), locked for the
    change."""
    prescription = prescription_to_change(session, principal, prescription_id, action)
    lock(session, prescription)  # two prescribers at once: one after the other
    return prescription


def lock(session: Session, row: Prescription | PrescriptionRequest) -> None:
    """Lock ``row`` until the transaction ends and reload it. (A plain ``FOR UPDATE`` on the row's own
    table: PostgreSQL refuses it on the outer joins that load its relationships.)"""
    table = type(row)
    session.execute(select(table.id).where(table.id == row.id).with_for_update())
    session.refresh(row)


def transition_refusal(current: str, target: str, dispensed: int) -> str | None:
    """Why a prescriber may not move a prescription from ``current`` to ``target`` (``None``: they may)."""
    if target == current:
        return f"The prescription is already {current}."
    if target == Status.COMPLETED.value:
        return "A prescription is completed by its last dispense or by a renewal, not by hand."
    if current not in STATUS_GROUPS["open"]:
        return f"The prescription is {current}: it can no longer change."
    if target == Status.CANCELLED.value and dispensed > 0:
        return "Part of it has been dispensed: stop it instead of cancelling it."
    if not can_transition(current, target, dispensed):
        return f"A {current} prescription cannot become {target}."
    return None


def change_status(
    session: Session,
    principal: Principal,
    prescription_id: uuid.UUID,
    target: str,
    reason: str = "",
    *,
    acknowledge_warnings: bool = False,
) -> Prescription:
    """Move a prescription along the state machine (a doctor of the patient's care team). Putting on hold,
    stopping and cancelling need a reason; activating a draft runs the checks again."""
    action = "prescription.status"
    if target not in STATUSES:
        raise ValidationFailed(f"Choose a status: {', '.join(STATUSES)}.", extra={"field": "status"})
    prescription = prescription_for_prescriber(session, principal, prescription_id, action)
    current = prescription.status
    refusal = transition_refusal(current, target, prescription.dispense_count)
    if refusal:
        raise Conflict(refusal)
    reason = clean_line(reason)[:MAX_REASON]
    if target in REASON_REQUIRED and not reason:
        raise ValidationFailed("Give the reason (the patient sees it).", extra={"field": "reason"})
    warnings: list[Warning] = []
    if current == Status.DRAFT.value and target == Status.ACTIVE.value:
        drug = formulary.get(prescription.medication_code)
        warnings = check(session, prescription.patient, drug, prescription.id) if drug else []
        reason = _override_reason(warnings, acknowledge_warnings, reason) or reason
    prescription.status = target
    prescription.status_reason = reason
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"from": current, "to": target, "warnings": [w.code for w in warnings]},
        flagged=_is_break_glass(session, principal, prescription.patient_id),
    )
    if current == Status.DRAFT.value:
        if target == Status.ACTIVE.value:
            _tell_patient(
                session, prescription, f"New prescription: {_label(prescription)}", principal.full_name
            )
    else:
        body = f"Reason: {reason}" if reason else ""
        title = f"Your prescription for {prescription.medication_name} {STATUS_VERBS[target]}"
        _tell_patient(session, prescription, title, principal.full_name, body)
    return prescription


def complete(session: Session, principal: Principal, prescription: Prescription, reason: str) -> None:
    """Close a prescription the system is done with (its renewal was issued): ``completed`` when the state
    machine allows it, else stopped or cancelled (an on-hold one). Audited; no notification (the caller
    tells the patient about the renewal)."""
    current, dispensed = prescription.status, prescription.dispense_count
    if current not in STATUS_GROUPS["open"]:
        return
    closing = (Status.COMPLETED.value, Status.STOPPED.value, Status.CANCELLED.value)
    target = next(t for t in closing if can_transition(current, t, dispensed))
    prescription.status = target
    prescription.status_reason = reason[:MAX_REASON]
    session.flush()
    audit.record(
        session,
        principal,
        "prescription.status",
        patient_id=prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=prescription.id,
        detail={"from": current, "to": target, "system": True},
    )


# --- reading ------------------------------------------------------------------------------------------------


def visible_prescription(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str
) -> Prescription:
    """A prescription the principal may read (the read audited). A patient does not see drafts: they are
    not issued yet."""
    prescription = session.get(Prescription, prescription_id)
    if prescription is not None and prescription.status == Status.DRAFT and principal.role == "patient":
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=prescription.patient_id,
            resource_type="MedicationRequest",
            resource_id=prescription_id,
        )
        raise NotFound("No such prescription.")
    return readable_prescription(session, principal, prescription_id, action)


def get_prescription(session: Session, principal: Principal, prescription_id: uuid.UUID) -> Prescription:
    """One prescription, for the patient and the clinicians who may read their medications."""
    return visible_prescription(session, principal, prescription_id, "prescription.read")


def list_prescriptions(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    statuses: Collection[str] | None = None,
    prescriber_id: uuid.UUID | None = None,
    medication_codes: Collection[str] | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    count_total: bool = False,
) -> Page[Prescription]:
    """One page of the patient's prescriptions, newest first; ``status`` is one status or a group
    (``open``: draft, active, on hold; ``closed``: completed, stopped, cancelled). Patients do not see
    drafts.

    Further filters (all optional, combined with AND): ``statuses`` (any of these statuses),
    ``prescriber_id``, ``medication_codes`` (any of these formulary codes) and the creation time in
    ``[created_from, created_before)``. ``count_total`` fills ``Page.total``."""
    action = "prescription.list"
    if status is not None and status not in STATUSES and status not in STATUS_GROUPS:
        allowed = ", ".join((*STATUSES, *STATUS_GROUPS))
        raise ValidationFailed(f"Filter by one of: {allowed}.", extra={"field": "status"})
    scope = medication_scope(session, principal, patient_id, action)
    wanted = set(STATUS_GROUPS.get(status or "", {status} if status else STATUSES))
    if statuses is not None:
        wanted &= set(statuses)
    if scope.access is Access.SELF:
        wanted.discard(Status.DRAFT.value)
    query = select(Prescription).where(Prescription.patient_id == patient_id, Prescription.status.in_(wanted))
    if prescriber_id is not None:
        query = query.where(Prescription.prescriber_id == prescriber_id)
    if medication_codes is not None:
        query = query.where(Prescription.medication_code.in_(set(medication_codes)))
    if created_from is not None:
        query = query.where(Prescription.created_at >= created_from)
    if created_before is not None:
        query = query.where(Prescription.created_at < created_before)
    page = paginate(
        session,
        query,
        sort_column=Prescription.created_at,
        id_column=Prescription.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="MedicationRequest",
        detail={"status": status, "count": len(page.items), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return page


# Loading many prescriptions at once: the patient and prescribers once each (not joined into every row); the
# organisation when asked for.
BULK_LOAD = (
    selectinload(Prescription.patient),
    selectinload(Prescription.prescriber),
    lazyload(Prescription.organisation),
)


def all_prescriptions(
    session: Session, principal: Principal, patient_id: uuid.UUID, action: str = "prescription.export"
) -> list[Prescription]:
    """Every prescription of the patient the principal may read (patients do not see drafts), newest
    first, in one query and one audit entry: for exports such as FHIR ``Patient/$everything``. 404
    (audited) when the principal may not read the patient's medications."""
    scope = medication_scope(session, principal, patient_id, action)
    query = select(Prescription).where(Prescription.patient_id == patient_id).options(*BULK_LOAD)
    if scope.access is Access.SELF:
        query = query.where(Prescription.status != Status.DRAFT.value)
    found = list(
        session.execute(query.order_by(Prescription.created_at.desc(), Prescription.id.desc())).scalars()
    )
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="MedicationRequest",
        detail={"count": len(found), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return found


def dispenses(session: Session, prescription: Prescription) -> list[Dispense]:
    """The prescription's dispenses, first fill first (the caller has authorised the read)."""
    query = select(Dispense).where(Dispense.prescription_id == prescription.id).order_by(Dispense.fill_number)
    return list(session.execute(query).scalars())
