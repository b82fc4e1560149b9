"""Verifying a prescription's QR code and dispensing it, for pharmacists.

A code is checked in two steps. First the code itself: well formed, signed by a key of the prescriber it
names (``kid``; revoked keys still verify what they signed), and the signature covers exactly the payload.
Then the prescription's current state in the database: it exists and matches the code (patient, drug,
prescriber), is active, is still valid, has fills left, and has not been dispensed since the code was
issued (a code carries the number of fills used when it was made). Each refusal has a stable machine code
(:class:`Reason`), a message a pharmacist can act on, and an audit entry (outcome ``denied``).

A dispense verifies again inside its transaction, then takes the fill with one conditional ``UPDATE``
(``dispense_count = :seen AND dispense_count < refills + 1``): when two pharmacists scan the same code at
once, exactly one update matches a row, the other gets a 409 (on PostgreSQL the loser waits for the
winner's row lock and then matches nothing; SQLite runs writers one at a time, so the loser sees the new
count). The table's CHECK and unique fill number are the last word. ``dispensed_on`` is the UTC date of
the dispense (pharmacies have no time zone of their own yet).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from caresync.core import audit, notify, signing
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, has_perm, require
from caresync.db import utcnow
from caresync.identity.credentials import service as credentials
from caresync.identity.models import Patient, User
from caresync.prescriptions.access import medication_scope, readable_prescription
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Dispense, Prescription
from caresync.prescriptions.rules import Status, fills_allowed, fills_left, refills_left
from caresync.prescriptions.service import BULK_LOAD

VERIFY = "prescription.verify"
DISPENSE = "prescription.dispense"
MAX_LOT_LENGTH = 40
MAX_DAYS_SUPPLY = 365
TAKE_FILL_COLUMNS = ("dispense_count", "updated_at")


class Reason(StrEnum):
    """Why a code was refused: a stable machine code for clients, next to the human message."""

    MALFORMED = "malformed"
    FORGED = "forged"
    ALTERED = "altered"
    NOT_FOUND = "not_found"
    DRAFT = "draft"
    CANCELLED = "cancelled"
    STOPPED = "stopped"
    ON_HOLD = "on_hold"
    EXPIRED = "expired"
    USED_UP = "used_up"
    COMPLETED = "completed"
    SUPERSEDED = "superseded"
    ALREADY_DISPENSED = "already_dispensed"  # lost the race to another pharmacist


MESSAGES: dict[Reason, str] = {
    Reason.MALFORMED: qr.MALFORMED,
    Reason.FORGED: "This code was not signed by the prescriber it names: it is forged. Do not dispense.",
    Reason.ALTERED: "This code was changed after the prescriber signed it. Do not dispense.",
    Reason.NOT_FOUND: "This prescription no longer exists in CareSync. Do not dispense.",
    Reason.DRAFT: "This prescription is still a draft (status draft): the prescriber has not issued it.",
    Reason.CANCELLED: "This prescription was cancelled by the prescriber (status cancelled).",
    Reason.STOPPED: "This prescription was stopped by the prescriber (status stopped).",
    Reason.ON_HOLD: "This prescription is on hold (status on-hold): ask the prescriber before dispensing.",
    Reason.EXPIRED: "This prescription has expired: the patient needs a renewal.",
    Reason.USED_UP: "Every fill of this prescription was dispensed: the patient needs a renewal.",
    Reason.COMPLETED: "This prescription is completed (replaced by a renewal or ended): ask the patient for "
    "their current prescription.",
    Reason.SUPERSEDED: "This code is out of date: a newer code was issued after the last dispense. "
    "Ask the patient to refresh it.",
    Reason.ALREADY_DISPENSED: "This fill was already dispensed by another pharmacist just now.",
}
CODE_PROBLEMS = frozenset({Reason.MALFORMED, Reason.FORGED, Reason.ALTERED})  # 422; state refusals are 409
STATUS_REASONS: dict[str, Reason] = {
    Status.DRAFT: Reason.DRAFT,
    Status.CANCELLED: Reason.CANCELLED,
    Status.STOPPED: Reason.STOPPED,
    Status.ON_HOLD: Reason.ON_HOLD,
    Status.COMPLETED: Reason.COMPLETED,
}


@dataclass(frozen=True)
class Verification:
    """A code that passed every check: what the pharmacist needs to see before dispensing."""

    code: str
    prescription: Prescription

    @property
    def patient(self) -> Patient:
        """The patient the prescription is for."""
        return self.prescription.patient

    @property
    def fill_number(self) -> int:
        """The fill a dispense now would be (1 is the first fill, later ones are refills)."""
        return self.prescription.dispense_count + 1

    @property
    def fills_allowed(self) -> int:
        """Dispenses the prescription allows in all."""
        return fills_allowed(self.prescription.refills)

    @property
    def refills_left(self) -> int:
        """Refills still available now."""
        return refills_left(self.prescription.refills, self.prescription.dispense_count)


@dataclass(frozen=True)
class DispenseRow:
    """A dispense with its prescription (and, through it, the patient)."""

    dispense: Dispense
    prescription: Prescription
    pharmacist_name: str = ""  # filled by the listings that name who dispensed

    @property
    def patient(self) -> Patient:
        """The patient it was dispensed for."""
        return self.prescription.patient

    @property
    def refills_left(self) -> int:
        """Refills that were left after this dispense."""
        return refills_left(self.prescription.refills, self.dispense.fill_number)

    @property
    def fills_left(self) -> int:
        """Dispenses that were still allowed after this one."""
        return fills_left(self.prescription.refills, self.dispense.fill_number)


@dataclass(frozen=True)
class IssuedCode:
    """A prescription's code as just signed, for its QR code or printout."""

    prescription: Prescription
    code: str
    issued_at: datetime

    @property
    def refills_left(self) -> int:
        """Refills left when the code was issued."""
        return refills_left(self.prescription.refills, self.prescription.dispense_count)


def issue_code(
    session: Session, principal: Principal, prescription_id: uuid.UUID, action: str = "prescription.qr"
) -> IssuedCode:
    """A fresh signed code for a prescription the principal may read (the patient, or a reader under the
    consent rules: 404 otherwise), audited as a read. Only a prescription that can be dispensed now gets
    one (409 naming why not); 409 too when the prescriber signs on their own device."""
    prescription = readable_prescription(session, principal, prescription_id, action)
    reason = state_refusal(prescription)
    if reason is not None:
        message = f"This prescription cannot be dispensed now, so it has no QR code. {MESSAGES[reason]}"
        raise Conflict(message, extra={"reason": reason.value})
    now = utcnow().replace(microsecond=0)
    return IssuedCode(prescription, qr.encode(session, prescription, now), now)


def state_refusal(prescription: Prescription) -> Reason | None:
    """Why the prescription cannot be dispensed now (status, validity, fills left), or ``None``."""
    if prescription.status != Status.ACTIVE:
        return STATUS_REASONS[prescription.status]
    if utcnow().date() > prescription.valid_until:
        return Reason.EXPIRED
    if fills_left(prescription.refills, prescription.dispense_count) == 0:
        return Reason.USED_UP
    return None


def refusal_error(reason: Reason) -> DomainError:
    """The error a refusal raises: 422 when the code itself is bad, 404 when its prescription is gone,
    409 for the prescription's state; ``reason`` carries the machine code."""
    extra = {"reason": reason.value}
    if reason in CODE_PROBLEMS:
        return ValidationFailed(MESSAGES[reason], extra=extra)
    if reason is Reason.NOT_FOUND:
        return NotFound(MESSAGES[reason], extra=extra)
    return Conflict(MESSAGES[reason], extra=extra)


def require_licensed_pharmacist(session: Session, principal: Principal, action: str) -> None:
    """Let through pharmacists holding an approved, unexpired licence: 403 (audited) for other roles and
    for pharmacists whose licence is not approved yet, has lapsed or was suspended."""
    require(session, principal, Perm.DISPENSE, action)
    assert principal.user_id is not None  # a signed-in pharmacist
    if not credentials.is_verified(session, principal.user_id):
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"reason": "unlicensed"})
        raise Forbidden(
            "Dispensing needs an approved pharmacist licence: yours is not approved yet, has lapsed or was "
            "suspended. See My licence."
        )


def verify(session: Session, principal: Principal, code_text: str) -> Verification:
    """Check a scanned or typed code (pharmacists only). Success is audited as the pharmacist reading the
    patient's prescription; every refusal is audited as denied and raised (see :func:`refusal_error`)."""
    require_licensed_pharmacist(session, principal, VERIFY)
    checked = _check(session, principal, code_text, VERIFY)
    audit.record(
        session,
        principal,
        VERIFY,
        patient_id=checked.prescription.patient_id,
        resource_type="MedicationRequest",
        resource_id=checked.prescription.id,
        detail={"fill": checked.fill_number},
    )
    return checked


def verify_image(session: Session, principal: Principal, image: bytes | None) -> Verification:
    """Read the QR code in a photo or screenshot (``qr.read_image``), then :func:`verify` it (pharmacists
    only: checked before the picture is looked at). 422 when no picture was sent."""
    require_licensed_pharmacist(session, principal, VERIFY)
    if not image:
        raise ValidationFailed("Choose a photo or screenshot of the QR code.", extra={"field": "image"})
    return verify(session, principal, qr.read_image(image))


def dispense(
    session: Session,
    principal: Principal,
    code_text: str,
    quantity: int,
    lot: str,
    days_supply: int | None = None,
) -> DispenseRow:
    """Dispense the next fill of the prescription a code names, at the pharmacist's pharmacy. Verifies the
    code again, then takes the fill race-proof (409 ``already_dispensed`` when another pharmacist took it
    first). ``quantity`` is 1 to the prescribed quantity, ``lot`` 1 to 40 printable characters,
    ``days_supply`` 1 to 365 (default: the prescription's). The patient is notified (told to ask for a
    renewal after the last fill); the dispense is audited."""
    require_licensed_pharmacist(session, principal, DISPENSE)
    lot = lot.strip()
    if not 1 <= len(lot) <= MAX_LOT_LENGTH or not lot.isprintable():
        raise ValidationFailed(
            f"Enter the lot number printed on the pack (1 to {MAX_LOT_LENGTH} characters).",
            extra={"field": "lot"},
        )
    if days_supply is not None and not 1 <= days_supply <= MAX_DAYS_SUPPLY:
        raise ValidationFailed(
            f"Days of supply must be between 1 and {MAX_DAYS_SUPPLY}.", extra={"field": "days_supply"}
        )
    if principal.organisation_id is None:
        raise Conflict("Your account is not attached to a pharmacy. Ask an administrator to add it to one.")
    prescription = _check(session, principal, code_text, DISPENSE).prescription
    if not 1 <= quantity <= prescription.quantity:
        raise ValidationFailed(
            f"Dispense between 1 and {prescription.quantity} units (the quantity prescribed per fill).",
            extra={"field": "quantity"},
        )
    fill = _take_fill(session, principal, prescription)
    assert principal.user_id is not None  # a signed-in pharmacist
    now = utcnow()
    record = Dispense(
        prescription_id=prescription.id,
        patient_id=prescription.patient_id,
        fill_number=fill,
        pharmacist_id=principal.user_id,
        pharmacy_id=principal.organisation_id,
        quantity=quantity,
        days_supply=days_supply or prescription.days_supply,
        lot=lot,
        dispensed_on=now.date(),
        dispensed_at=now,
    )
    session.add(record)
    session.flush()
    row = DispenseRow(record, prescription)
    audit.record(
        session,
        principal,
        DISPENSE,
        patient_id=prescription.patient_id,
        resource_type="MedicationDispense",
        resource_id=record.id,
        detail={"prescription_id": str(prescription.id), "fill": fill, "quantity": quantity},
    )
    _tell_patient(session, row)
    return row


@dataclass(frozen=True)
class DispenseFilters:
    """Optional filters of a dispense listing (AND): one prescription, one patient, and the moment of the
    dispense in ``[dispensed_from, dispensed_before)``."""

    patient_id: uuid.UUID | None = None
    prescription_id: uuid.UUID | None = None
    dispensed_from: datetime | None = None
    dispensed_before: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        """``query`` (over :class:`Dispense`) narrowed by these filters."""
        if self.patient_id is not None:
            query = query.where(Dispense.patient_id == self.patient_id)
        if self.prescription_id is not None:
            query = query.where(Dispense.prescription_id == self.prescription_id)
        if self.dispensed_from is not None:
            query = query.where(Dispense.dispensed_at >= self.dispensed_from)
        if self.dispensed_before is not None:
            query = query.where(Dispense.dispensed_at < self.dispensed_before)
        return query


def pharmacy_dispenses(
    session: Session,
    principal: Principal,
    cursor: str | None = None,
    limit: int = 20,
    *,
    filters: DispenseFilters | None = None,
    count_total: bool = False,
) -> Page[DispenseRow]:
    """The pharmacist's pharmacy's dispenses, newest first (audited as one listing), optionally narrowed
    by ``filters``; ``count_total`` fills ``Page.total``."""
    require_licensed_pharmacist(session, principal, "dispense.list")
    query = (filters or DispenseFilters()).apply(
        select(Dispense).where(Dispense.pharmacy_id == principal.organisation_id)
    )
    page = paginate(
        session,
        query,
        sort_column=Dispense.dispensed_at,
        id_column=Dispense.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    ids = {d.prescription_id for d in page.items}
    audit.record(
        session, principal, "dispense.list", resource_type="MedicationDispense", detail={"count": len(ids)}
    )
    return Page(_rows(session, page.items), page.next_cursor, page.total)


def _rows(
    session: Session, found: Sequence[Dispense], patient_id: uuid.UUID | None = None
) -> list[DispenseRow]:
    """Dispenses with their prescriptions and pharmacists' names (two queries, whatever the number; with
    ``patient_id``, all of whose dispenses ``found`` are, the prescriptions are loaded by patient)."""
    if patient_id is not None:
        where = Prescription.patient_id == patient_id
    else:
        where = Prescription.id.in_({d.prescription_id for d in found})
    query = select(Prescription).where(where).options(*BULK_LOAD)
    prescriptions = {p.id: p for p in session.execute(query).scalars()}
    pharmacist_ids = {d.pharmacist_id for d in found}
    names: dict[uuid.UUID, str] = {
        row.id: row.full_name
        for row in session.execute(select(User.id, User.full_name).where(User.id.in_(pharmacist_ids)))
    }
    return [DispenseRow(d, prescriptions[d.prescription_id], names.get(d.pharmacist_id, "")) for d in found]


def is_pharmacist(principal: Principal) -> bool:
    """Whether the principal dispenses (sees dispenses through their pharmacy, not the patient's record)."""
    return has_perm(principal, Perm.DISPENSE)


def visible_dispenses(
    session: Session,
    principal: Principal,
    *,
    filters: DispenseFilters,
    limit: int = 20,
    cursor: str | None = None,
    count_total: bool = False,
) -> Page[DispenseRow]:
    """Dispenses the principal may see, newest first. Pharmacists see their pharmacy's dispenses
    (:func:`pharmacy_dispenses`); anyone else sees one patient's (``filters.patient_id`` is required), when
    they may read that patient's medications (the patient, their care team under consent, break-glass
    flagged): 404 (audited) otherwise. Audited as one listing."""
    if is_pharmacist(principal):
        return pharmacy_dispenses(session, principal, cursor, limit, filters=filters, count_total=count_total)
    if filters.patient_id is None:
        raise ValidationFailed("Say whose dispenses: patient_id.", extra={"field": "patient_id"})
    action = "dispense.list"
    scope = medication_scope(session, principal, filters.patient_id, action)
    page = paginate(
        session,
        filters.apply(select(Dispense)),
        sort_column=Dispense.dispensed_at,
        id_column=Dispense.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    audit.record(
        session,
        principal,
        action,
        patient_id=filters.patient_id,
        resource_type="MedicationDispense",
        detail={"count": len(page.items), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return Page(_rows(session, page.items), page.next_cursor, page.total)


def patient_dispenses(
    session: Session, principal: Principal, patient_id: uuid.UUID, action: str = "dispense.export"
) -> list[DispenseRow]:
    """Every dispense of the patient, newest first, for a principal who may read the patient's medications
    (404, audited, otherwise): for exports such as FHIR ``Patient/$everything``. Three queries and one
    audit entry, however many dispenses there are."""
    scope = medication_scope(session, principal, patient_id, action)
    found = list(
        session.execute(
            select(Dispense)
            .where(Dispense.patient_id == patient_id)
            .order_by(Dispense.dispensed_at.desc(), Dispense.id.desc())
        ).scalars()
    )
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="MedicationDispense",
        detail={"count": len(found), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return _rows(session, found, patient_id)


def visible_dispense(session: Session, principal: Principal, dispense_id: uuid.UUID) -> DispenseRow:
    """One dispense: for pharmacists, one of their pharmacy's (:func:`pharmacy_dispense`); for anyone
    else, one of a patient whose medications they may read. 404 (audited) otherwise; the read is
    audited (flagged under break-glass)."""
    if is_pharmacist(principal):
        row = pharmacy_dispense(session, principal, dispense_id)
        return _rows(session, [row.dispense])[0]
    action = "dispense.read"
    found = session.get(Dispense, dispense_id)
    scope = None
    if found is not None:
        try:
            scope = medication_scope(session, principal, found.patient_id, action)
        except NotFound:
            scope = None
    if found is None or scope is None:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            resource_type="MedicationDispense",
            resource_id=dispense_id,
        )
        raise NotFound("No such dispense.")
    audit.record(
        session,
        principal,
        action,
        patient_id=found.patient_id,
        resource_type="MedicationDispense",
        resource_id=found.id,
        detail={"access": scope.access.value},
        flagged=scope.break_glass,
    )
    return _rows(session, [found])[0]


def pharmacy_dispense(session: Session, principal: Principal, dispense_id: uuid.UUID) -> DispenseRow:
    """One dispense of the pharmacist's pharmacy (404, audited, for any other)."""
    require_licensed_pharmacist(session, principal, "dispense.read")
    found = session.get(Dispense, dispense_id)
    if found is None or found.pharmacy_id != principal.organisation_id:
        audit.record_and_commit(
            session,
            principal,
            "dispense.read",
            outcome="denied",
            resource_type="MedicationDispense",
            resource_id=dispense_id,
        )
        raise NotFound("No such dispense at your pharmacy.")
    prescription = session.get(Prescription, found.prescription_id)
    assert prescription is not None  # dispenses are deleted with their prescription
    audit.record(
        session,
        principal,
        "dispense.read",
        patient_id=found.patient_id,
        resource_type="MedicationDispense",
        resource_id=found.id,
    )
    return DispenseRow(found, prescription)


# --- the checks ---------------------------------------------------------------------------------------------


def _check(session: Session, principal: Principal, code_text: str, action: str) -> Verification:
    """Every check of a code, writing nothing unless it refuses (then: audited and raised)."""
    try:
        payload = qr.decode(code_text)
    except ValidationFailed:
        _refuse(session, principal, action, Reason.MALFORMED)
    keys = session.execute(
        select(signing.SigningKey).where(
            signing.SigningKey.user_id == payload.prescriber_id,
            signing.SigningKey.fingerprint.startswith(payload.kid),
        )
    ).scalars()
    key_found = False
    for key in keys:
        key_found = True
        if signing.verify(key.public_key_pem, payload.message, payload.signature):
            break
    else:
        _refuse(session, principal, action, Reason.ALTERED if key_found else Reason.FORGED)
    prescription = session.get(Prescription, payload.prescription_id)
    if prescription is None:
        _refuse(session, principal, action, Reason.NOT_FOUND, resource_id=payload.prescription_id)
    if (
        prescription.prescriber_id != payload.prescriber_id
        or prescription.patient.health_id != payload.health_id
        or prescription.medication_code != payload.drug_code
    ):
        _refuse(session, principal, action, Reason.FORGED, prescription)
    reason = state_refusal(prescription)
    if reason is None and payload.fills_used != prescription.dispense_count:
        reason = Reason.SUPERSEDED
    if reason is not None:
        _refuse(session, principal, action, reason, prescription)
    return Verification(code=qr.compact(code_text), prescription=prescription)


def _take_fill(session: Session, principal: Principal, prescription: Prescription) -> int:
    """Count one more dispense, only if nobody else did since we looked. Returns the new fill number (409,
    audited, when another pharmacist was first). The last fill leaves the prescription active: the patient
    is still taking that supply (its dose schedule and adherence go on), and it now needs a renewal."""
    seen = prescription.dispense_count
    taken = session.execute(
        update(Prescription)
        .where(
            Prescription.id == prescription.id,
            Prescription.status == Status.ACTIVE.value,
            Prescription.dispense_count == seen,
            Prescription.dispense_count < Prescription.refills + 1,
        )
        .values(
            dispense_count=Prescription.dispense_count + 1,
            updated_at=utcnow(),
        )
        .returning(*(getattr(Prescription, name) for name in TAKE_FILL_COLUMNS))
        .execution_options(synchronize_session=False)
    ).first()
    if taken is None:
        _refuse(session, principal, DISPENSE, Reason.ALREADY_DISPENSED, prescription)
    for name, value in zip(TAKE_FILL_COLUMNS, taken, strict=True):
        set_committed_value(prescription, name, value)  # as stored, without reading the row again
    return prescription.dispense_count


def _refuse(
    session: Session,
    principal: Principal,
    action: str,
    reason: Reason,
    prescription: Prescription | None = None,
    resource_id: uuid.UUID | None = None,
) -> NoReturn:
    """Audit a refused code (denied; the patient named only once the signature held) and raise."""
    patient_id = prescription.patient_id if prescription is not None else None
    target = prescription.id if prescription is not None else resource_id
    audit.record_and_commit(
        session,
        principal,
        action,
        outcome="denied",
        patient_id=patient_id,
        resource_type="MedicationRequest",
        resource_id=target or "",
        detail={"reason": reason.value},
    )
    raise refusal_error(reason)


def _tell_patient(session: Session, row: DispenseRow) -> None:
    """Tell the patient (in the app) where their medicine was dispensed and what they need next."""
    user_id = row.patient.user_id
    if user_id is None:
        return  # a patient without a portal account
    left = row.refills_left
    prescription = row.prescription
    if row.fills_left == 0:
        after = "no refills left: ask for a renewal before you run out"
    else:
        after = f"{left} refill{'s' if left != 1 else ''} left"
    drug = f"{prescription.medication_name} {prescription.strength}"
    notify.notify(
        session,
        user_id,
        "prescription",
        "Prescription dispensed",
        f"Your prescription for {drug} was dispensed at {row.dispense.pharmacy.name}; {after}.",
        link="/me/medications",
    )
