"""MedicationRequest and MedicationDispense: prescriptions and their dispenses (``prescriptions``).

Everything comes through the prescriptions services, so the domain's rules hold: a patient sees their own
prescriptions (never drafts), clinicians those of patients whose medications they may read (care team under
the organisation's policy, consent, or break-glass, flagged), and pharmacists never browse prescriptions:
they see the dispenses of their own pharmacy. Every read and listing is audited by the services.

Codes: statuses map through explicit tables onto the FHIR value sets; routes are SNOMED CT route codes;
dose frequencies carry the HL7 timing abbreviations where one exists; first fills and refills are HL7
ActCode ``FF``/``RF``. The formulary's drug codes are "RxNorm-style" but unverified (see
``prescriptions.formulary``), so they are published under CareSync's own code system, with the drug's label
as text, rather than claimed as RxNorm.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from caresync.core.errors import NotFound
from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import invalid
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.registry import included as included_reads
from caresync.fhir.search import (
    SearchQuery,
    SearchResult,
    date_range,
    drop_empty,
    instant,
    reference_id,
    searched_patient,
    token,
)
from caresync.prescriptions import formulary
from caresync.prescriptions import service as prescriptions
from caresync.prescriptions.dispensing import service as dispensing
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import FREQUENCIES, ROUTES, STATUSES, Status
from caresync.scheduling import directory

FORMULARY_SYSTEM = "urn:caresync:formulary"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
TIMING_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
PERFORMER_FUNCTION = "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function"

# http://hl7.org/fhir/R4/valueset-medicationrequest-status.html
FHIR_REQUEST_STATUSES = frozenset(
    {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}
)
# domain prescription status -> MedicationRequest.status
REQUEST_STATUS: dict[str, str] = {
    Status.DRAFT.value: "draft",
    Status.ACTIVE.value: "active",
    Status.ON_HOLD.value: "on-hold",
    Status.CANCELLED.value: "cancelled",
    Status.COMPLETED.value: "completed",
    Status.STOPPED.value: "stopped",
}
# statuses whose domain reason is the reason for the status (else it is a prescriber's note)
STATUS_REASON_STATUSES = frozenset({"on-hold", "cancelled", "stopped", "completed"})

# http://hl7.org/fhir/R4/valueset-medicationdispense-status.html
FHIR_DISPENSE_STATUSES = frozenset(
    {
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "declined",
        "unknown",
    }
)
# CareSync records a dispense once the pharmacist has handed the medicine over: every row is "dispensed".
DISPENSE_STATES = ("dispensed",)
DISPENSE_STATUS: dict[str, str] = {"dispensed": "completed"}

# rules.ROUTES -> SNOMED CT route of administration (http://hl7.org/fhir/ValueSet/route-codes)
ROUTE_CODES: dict[str, tuple[str, str]] = {
    "oral": ("26643006", "Oral route"),
    "sublingual": ("37839007", "Sublingual route"),
    "inhalation": ("447694001", "Respiratory tract route"),
    "nasal": ("46713006", "Nasal route"),
    "ophthalmic": ("54485002", "Ophthalmic route"),
    "topical": ("6064005", "Topical route"),
    "transdermal": ("45890007", "Transdermal route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "intravenous": ("47625008", "Intravenous route"),
    "rectal": ("37161004", "Per rectum"),
    "vaginal": ("16857009", "Per vagina"),
}
# http://hl7.org/fhir/R4/valueset-timing-abbreviation.html
TIMING_ABBREVIATIONS = frozenset(
    {
        "BID",
        "TID",
        "QID",
        "AM",
        "PM",
        "QD",
        "QOD",
        "Q1H",
        "Q2H",
        "Q3H",
        "Q4H",
        "Q6H",
        "Q8H",
        "BED",
        "WK",
        "MO",
    }
)


@dataclass(frozen=True)
class Repeat:
    """How a dose frequency repeats: ``frequency`` doses per ``period`` ``unit`` (none for as-needed), and
    its timing abbreviation when the FHIR value set has one."""

    code: str | None
    frequency: int = 0
    period: int = 0
    unit: str = ""


# rules.FREQUENCIES -> Timing (the timing abbreviation, when the value set has one)
TIMINGS: dict[str, Repeat] = {
    "QD": Repeat("QD", 1, 1, "d"),
    "QAM": Repeat("AM", 1, 1, "d"),
    "QHS": Repeat("BED", 1, 1, "d"),
    "BID": Repeat("BID", 2, 1, "d"),
    "TID": Repeat("TID", 3, 1, "d"),
    "QID": Repeat("QID", 4, 1, "d"),
    "Q8H": Repeat("Q8H", 1, 8, "h"),
    "Q12H": Repeat(None, 1, 12, "h"),
    "PRN": Repeat(None),
}
# Units a dose may be written in that UCUM names exactly.
UCUM_UNITS = {"mg": "mg", "g": "g", "mcg": "ug", "ml": "mL"}
_DOSE = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>\S.*)?$")
FILL_TYPES = {"first": ("FF", "First Fill"), "refill": ("RF", "Refill")}


# --- shared pieces ---------------------------------------------------------------------------------------


def _label(p: Prescription) -> str:
    return f"{p.medication_name} {p.strength} {p.form}"


def medication(p: Prescription) -> JSON:
    """The prescribed drug as a CodeableConcept (formulary code and label)."""
    label = _label(p)
    return {
        "coding": [{"system": FORMULARY_SYSTEM, "code": p.medication_code, "display": label}],
        "text": label,
    }


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def quantity(value: float | int, unit: str) -> JSON:
    """A Quantity, with the UCUM code when the unit is one UCUM names exactly."""
    out: JSON = {"value": value, "unit": unit}
    code = UCUM_UNITS.get(unit.lower())
    if code:
        out |= {"system": UCUM, "code": code}
    return out


def days(value: int) -> JSON:
    """A Duration in days."""
    return {"value": value, "unit": "days", "system": UCUM, "code": "d"}


def dose_quantity(dose: str) -> JSON | None:
    """The dose as a Quantity when it is written "<number> <unit>" (e.g. "1 capsule"), else ``None``."""
    match = _DOSE.match(dose.strip())
    if match is None or not match["unit"]:
        return None
    return quantity(_number(match["value"]), match["unit"])


def _unit(p: Prescription) -> str:
    drug = formulary.get(p.medication_code)
    return drug.dose_unit if drug else p.form


def timing(p: Prescription) -> JSON:
    """The dose schedule: repeat pattern, local dose times and the treatment's length."""
    repeat_of = TIMINGS[p.frequency]
    label = FREQUENCIES[p.frequency][0]
    repeat: JSON = {"boundsDuration": days(p.duration_days)}
    if repeat_of.frequency:
        repeat |= {"frequency": repeat_of.frequency, "period": repeat_of.period, "periodUnit": repeat_of.unit}
    if p.dose_times:
        repeat["timeOfDay"] = [f"{moment}:00" for moment in p.dose_times]
    code: JSON = {"text": label}
    if repeat_of.code:
        code["coding"] = [{"system": TIMING_SYSTEM, "code": repeat_of.code}]
    return {"repeat": repeat, "code": code}


def dosage(p: Prescription) -> JSON:
    """The Dosage: text, the patient's instructions, timing, route and dose."""
    route_code, route_display = ROUTE_CODES[p.route]
    how_often = FREQUENCIES[p.frequency][0].lower()
    text = f"{p.dose} {ROUTES[p.route].lower()}, {how_often}, for {p.duration_days} days"
    dose = dose_quantity(p.dose)
    return drop_empty(
        {
            "sequence": 1,
            "text": text,
            "patientInstruction": p.instructions,
            "timing": timing(p),
            "asNeededBoolean": p.frequency == "PRN",
            "route": {
                "coding": [{"system": SNOMED, "code": route_code, "display": route_display}],
                "text": ROUTES[p.route],
            },
            "doseAndRate": [{"doseQuantity": dose}] if dose else [],
        }
    )


class Lookups:
    """What mapping many resources at once looks up or builds only once: the directory's Practitioner
    profiles of users (prescribers, pharmacists; one without a profile is named by ``display`` only) and
    each prescription's Dosage (shared by its dispenses)."""

    def __init__(self, session: Session, users: Iterable[uuid.UUID] = ()) -> None:
        self.session = session
        wanted = set(users)
        found = directory.profile_ids_for_users(session, wanted)  # one query for a whole page
        self.profiles: dict[uuid.UUID, uuid.UUID | None] = {u: found.get(u) for u in wanted}
        self.dosages: dict[uuid.UUID, JSON] = {}

    def dosage(self, p: Prescription) -> JSON:
        """The prescription's Dosage, built once."""
        if p.id not in self.dosages:
            self.dosages[p.id] = dosage(p)
        return self.dosages[p.id]

    def profile_id(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """The user's directory profile id, if they have one."""
        if user_id not in self.profiles:
            profile = directory.profile_for_user(self.session, user_id)
            self.profiles[user_id] = profile.id if profile is not None else None
        return self.profiles[user_id]

    def reference(self, user_id: uuid.UUID, name: str) -> JSON:
        """A Reference to the user's Practitioner profile (or only their name)."""
        profile_id = self.profile_id(user_id)
        return reference("Practitioner", profile_id, name) if profile_id else {"display": name}


def _prescriber_user(ctx: FhirContext, value: str) -> uuid.UUID | None:
    """The user behind a ``requester`` Practitioner reference (``None``: no such listed practitioner)."""
    try:
        return directory.get_practitioner(
            ctx.session, ctx.principal, reference_id(value, "Practitioner")
        ).user_id
    except NotFound:
        return None


def _patient_ref(p: Prescription) -> JSON:
    return reference("Patient", p.patient_id, f"{p.patient.given_name} {p.patient.family_name}")


# --- MedicationRequest -----------------------------------------------------------------------------------


def request_to_fhir(p: Prescription, lookups: Lookups) -> JSON:
    """The FHIR MedicationRequest for a prescription."""
    status = REQUEST_STATUS[p.status]
    reason = p.status_reason if status in STATUS_REASON_STATUSES else ""
    note = p.status_reason if status not in STATUS_REASON_STATUSES else ""
    return drop_empty(
        {
            "resourceType": "MedicationRequest",
            "id": str(p.id),
            "meta": {"lastUpdated": instant(p.updated_at)},
            "status": status,
            "statusReason": {"text": reason} if reason else None,
            "intent": "order",
            "category": [
                {"coding": [{"system": CATEGORY_SYSTEM, "code": "community", "display": "Community"}]}
            ],
            "medicationCodeableConcept": medication(p),
            "subject": _patient_ref(p),
            "authoredOn": instant(p.created_at),
            "requester": lookups.reference(p.prescriber_id, p.prescriber.full_name),
            "note": [{"text": note}] if note else [],
            "dosageInstruction": [lookups.dosage(p)],
            "dispenseRequest": {
                "validityPeriod": {"start": p.start_date.isoformat(), "end": p.valid_until.isoformat()},
                "numberOfRepeatsAllowed": p.refills,
                "quantity": quantity(p.quantity, _unit(p)),
                "expectedSupplyDuration": days(p.days_supply),
            },
            "priorPrescription": reference("MedicationRequest", p.renewal_of_id) if p.renewal_of_id else None,
        }
    )


def read_request(ctx: FhirContext, prescription_id: uuid.UUID) -> JSON:
    """One prescription (the patient, or clinicians who may read their medications; audited)."""
    found = prescriptions.get_prescription(ctx.session, ctx.principal, prescription_id)
    return request_to_fhir(found, Lookups(ctx.session))


def _request_statuses(query: SearchQuery) -> set[str] | None:
    """The domain statuses the ``status`` parameter asks for (``None``: no filter); 400 for non-codes."""
    wanted = query.values("status")
    if not wanted:
        return None
    for value in wanted:
        if token(value)[1] not in FHIR_REQUEST_STATUSES:
            allowed = ", ".join(sorted(FHIR_REQUEST_STATUSES))
            raise invalid(f"'{value}' is not a MedicationRequest status ({allowed}).")
    codes = {token(value)[1] for value in wanted}
    return {domain for domain, fhir in REQUEST_STATUS.items() if fhir in codes}


def _codes(query: SearchQuery) -> set[str] | None:
    """Formulary codes the ``code`` parameter asks for (other code systems match nothing)."""
    wanted = query.values("code")
    if not wanted:
        return None
    found: set[str] = set()
    for value in wanted:
        system, code = token(value)
        if system in (None, FORMULARY_SYSTEM):
            found.add(code)
    return found


def search_requests(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """A patient's prescriptions, newest first, by status, authoredon, requester and code."""
    patient_id = searched_patient(ctx, query, "medications")
    assert patient_id is not None  # required
    statuses = _request_statuses(query)
    codes = _codes(query)
    requester = query.one("requester")
    authored = date_range(query.params.get("authoredon", []))
    prescriber_id = _prescriber_user(ctx, requester) if requester else None
    if statuses == set() or codes == set() or (requester and prescriber_id is None):
        return SearchResult(resources=[], total=0)
    try:
        page = prescriptions.list_prescriptions(
            ctx.session,
            ctx.principal,
            patient_id,
            limit=max(query.count, 1),
            cursor=query.cursor,
            statuses=statuses,
            prescriber_id=prescriber_id,
            medication_codes=codes,
            created_from=authored.start,
            created_before=authored.end,
            count_total=True,
        )
    except NotFound:  # a patient this caller may not see: hidden looks like absent
        return SearchResult(resources=[], total=0)
    lookups = Lookups(ctx.session, (p.prescriber_id for p in page.items))
    resources = [request_to_fhir(p, lookups) for p in page.items]
    included: list[JSON] = []
    if "MedicationRequest:patient" in query.includes and page.items:
        included += included_reads(ctx, "Patient", [patient_id])
    if "MedicationRequest:requester" in query.includes:
        profiles = [lookups.profile_id(p.prescriber_id) for p in page.items]
        included += included_reads(ctx, "Practitioner", [pid for pid in profiles if pid is not None])
    return SearchResult(
        resources=resources,
        total=page.total,
        next_cursor=page.next_cursor,
        included=included,
    )


def requests_everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """All of the patient's prescriptions this caller may read (one query, one audit entry)."""
    try:
        found = prescriptions.all_prescriptions(ctx.session, ctx.principal, patient_id)
    except NotFound:
        return []
    lookups = Lookups(ctx.session, (p.prescriber_id for p in found))
    return [request_to_fhir(p, lookups) for p in found]


# --- MedicationDispense ----------------------------------------------------------------------------------


def dispense_to_fhir(row: dispensing.DispenseRow, lookups: Lookups) -> JSON:
    """The FHIR MedicationDispense for a dispense (the drug, with its lot, as a contained Medication)."""
    d, p = row.dispense, row.prescription
    fill_code, fill_display = FILL_TYPES["first" if d.fill_number == 1 else "refill"]
    pharmacist = lookups.reference(d.pharmacist_id, row.pharmacist_name)
    pharmacy = reference("Organization", d.pharmacy_id, d.pharmacy.name)
    drug = {
        "resourceType": "Medication",
        "id": "medication",
        "code": medication(p),
        "batch": {"lotNumber": d.lot},
    }
    return drop_empty(
        {
            "resourceType": "MedicationDispense",
            "id": str(d.id),
            "meta": {"lastUpdated": instant(d.dispensed_at)},
            "contained": [drug],
            "status": DISPENSE_STATUS["dispensed"],
            "medicationReference": {"reference": "#medication", "display": _label(p)},
            "subject": _patient_ref(p),
            "performer": [
                {
                    "function": {"coding": [{"system": PERFORMER_FUNCTION, "code": "finalchecker"}]},
                    "actor": pharmacist,
                },
                {"actor": pharmacy},
            ],
            "authorizingPrescription": [reference("MedicationRequest", p.id, _label(p))],
            "type": {"coding": [{"system": ACT_CODE, "code": fill_code, "display": fill_display}]},
            "quantity": quantity(d.quantity, _unit(p)),
            "daysSupply": days(d.days_supply),
            "whenPrepared": instant(d.dispensed_at),
            "whenHandedOver": instant(d.dispensed_at),
            "dosageInstruction": [lookups.dosage(p)],
        }
    )


def read_dispense(ctx: FhirContext, dispense_id: uuid.UUID) -> JSON:
    """One dispense: the pharmacy's own for pharmacists, else one whose patient's medications the caller
    may read (audited)."""
    row = dispensing.visible_dispense(ctx.session, ctx.principal, dispense_id)
    return dispense_to_fhir(row, Lookups(ctx.session))


def _dispense_statuses_match(query: SearchQuery) -> bool:
    """Whether the ``status`` parameter lets dispenses through (they are all ``completed``); 400 for
    values that are not MedicationDispense statuses."""
    wanted = query.values("status")
    for value in wanted:
        if token(value)[1] not in FHIR_DISPENSE_STATUSES:
            allowed = ", ".join(sorted(FHIR_DISPENSE_STATUSES))
            raise invalid(f"'{value}' is not a MedicationDispense status ({allowed}).")
    return not wanted or any(token(v)[1] in DISPENSE_STATUS.values() for v in wanted)


def search_dispenses(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Dispenses, newest first: a patient's (patients, their clinicians), or the pharmacy's (pharmacists),
    by patient, prescription, status and whenhandedover."""
    pharmacist = dispensing.is_pharmacist(ctx.principal)
    patient_id = searched_patient(ctx, query, "medications", required=not pharmacist)
    raw_prescription = query.one("prescription")
    prescription_id = reference_id(raw_prescription, "MedicationRequest") if raw_prescription else None
    handed_over = date_range(query.params.get("whenhandedover", []))
    if not _dispense_statuses_match(query):
        return SearchResult(resources=[], total=0)
    filters = dispensing.DispenseFilters(
        patient_id=patient_id,
        prescription_id=prescription_id,
        dispensed_from=handed_over.start,
        dispensed_before=handed_over.end,
    )
    try:
        page = dispensing.visible_dispenses(
            ctx.session,
            ctx.principal,
            filters=filters,
            limit=max(query.count, 1),
            cursor=query.cursor,
            count_total=True,
        )
    except NotFound:
        return SearchResult(resources=[], total=0)
    lookups = Lookups(ctx.session, _dispense_people(page.items))
    resources = [dispense_to_fhir(row, lookups) for row in page.items]
    included: list[JSON] = []
    if "MedicationDispense:patient" in query.includes:
        included += included_reads(ctx, "Patient", [row.dispense.patient_id for row in page.items])
    if "MedicationDispense:prescription" in query.includes:
        included += included_reads(ctx, "MedicationRequest", [row.prescription.id for row in page.items])
    return SearchResult(
        resources=resources,
        total=page.total,
        next_cursor=page.next_cursor,
        included=included,
    )


def _dispense_people(rows: Iterable[dispensing.DispenseRow]) -> set[uuid.UUID]:
    """The pharmacists a page of dispenses names."""
    return {row.dispense.pharmacist_id for row in rows}


def dispenses_everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """All of the patient's dispenses, for callers who may read the patient's medications."""
    try:
        rows = dispensing.patient_dispenses(ctx.session, ctx.principal, patient_id)
    except NotFound:
        return []
    lookups = Lookups(ctx.session, _dispense_people(rows))
    return [dispense_to_fhir(row, lookups) for row in rows]


assert set(REQUEST_STATUS) == set(STATUSES), "every prescription status needs a MedicationRequest status"

RESOURCES = (
    ResourceType(
        name="MedicationRequest",
        documentation="Prescriptions. Patients see their own (never drafts); clinicians those of patients "
        "whose medications they may read. Search by patient (a patient's own by default).",
        read=read_request,
        search=search_requests,
        everything=requests_everything,
        search_params=(
            SearchParam("patient", "reference", "The patient (Patient/<id>); a patient's own by default."),
            SearchParam("subject", "reference", "Same as patient."),
            SearchParam("status", "token", "active | on-hold | cancelled | completed | stopped | draft …"),
            SearchParam("authoredon", "date", "When it was prescribed (eq, ge, gt, le, lt)."),
            SearchParam("requester", "reference", "The prescriber (Practitioner/<id>)."),
            SearchParam("code", "token", f"The drug's formulary code ({FORMULARY_SYSTEM}|<code>)."),
        ),
        includes=("MedicationRequest:patient", "MedicationRequest:requester"),
    ),
    ResourceType(
        name="MedicationDispense",
        documentation="Dispenses of prescriptions. Patients and their clinicians see a patient's; "
        "pharmacists see their own pharmacy's.",
        read=read_dispense,
        search=search_dispenses,
        everything=dispenses_everything,
        search_params=(
            SearchParam("patient", "reference", "The patient (Patient/<id>); a patient's own by default."),
            SearchParam("subject", "reference", "Same as patient."),
            SearchParam("prescription", "reference", "The prescription (MedicationRequest/<id>)."),
            SearchParam("status", "token", "completed (every recorded dispense was handed over)."),
            SearchParam("whenhandedover", "date", "When it was handed over (eq, ge, gt, le, lt)."),
        ),
        includes=("MedicationDispense:patient", "MedicationDispense:prescription"),
    ),
)
