"""Encounter, Condition and RiskAssessment: the visits of the analytics domain, their ICD-10 diagnoses and a
patient's adverse-outcome risk, through the services that apply the access rules and audit
(``analytics.encounters.service``: the records consent rule for the ``diagnosis`` category, visits with a
mental-health diagnosis also needing ``mental-health``; ``analytics.risk.service.patient_risk``: the doctors
and nurses caring for the patient).

**Encounter** (one per visit, id = the visit's id):

- ``status`` ``finished`` (CareSync records visits once they happened; a visit has no end time, so
  ``period`` has its ``start`` only);
- ``class`` from the department (:data:`CLASS_BY_DEPARTMENT`, v3-ActCode): emergency -> ``EMER``,
  obstetrics -> ``IMP`` (the only obstetric diagnosis CareSync counts is O80, a delivery, which happens on
  the ward), every other department is an outpatient clinic -> ``AMB``;
- ``type``: the department itself (system :data:`DEPARTMENT_SYSTEM`);
- ``diagnosis``: the visit's Conditions, the principal one ``rank`` 1 (no ``use``: CareSync does not say
  whether a diagnosis was made at admission or at discharge);
- ``hospitalization.dischargeDisposition`` from the outcome (:data:`DISCHARGE_DISPOSITION`,
  http://terminology.hl7.org/CodeSystem/discharge-disposition, with the outcome as text): discharged and
  follow-up -> ``home``, died -> ``exp``; referred and admitted -> ``oth``: a referral is no transfer to
  another facility (``other-hcf``) and R4 has no code for "admitted as an inpatient here" (``hosp`` is a
  hospice);
- ``serviceProvider`` the organisation, ``appointment`` the appointment it came from.
- Not mapped here: the visit's vital signs (they would be Observations) and who recorded it (the recorder
  is not necessarily a participant).

**Condition** (one per diagnosis of a visit, id ``<visit id>-<ICD-10 code>``): ``code`` ICD-10
(http://hl7.org/fhir/sid/icd-10) with the WHO name, ``category`` ``encounter-diagnosis``, ``encounter``,
``recordedDate`` = the visit's start (a visit's diagnoses are recorded with the visit).
``verificationStatus`` is ``confirmed``: a clinician recorded it as the visit's diagnosis, and CareSync has
no provisional or differential diagnoses. ``clinicalStatus`` is left out on purpose: CareSync does not know
whether a diagnosis made at a visit is still active, resolved or in remission, and R4 requires it only for
problem-list items (con-3), not for encounter diagnoses.

**RiskAssessment** (one per patient, computed when asked, id ``<patient id>-adverse-outcome``): the
probability that the patient's next encounter ends in admission or death, from their organisation's active
model; ``method`` is the model version, ``occurrenceDateTime`` when it was computed, the drivers are
``note`` entries. ``qualitativeRisk`` carries the R4 risk-probability code whose definition fits the level's
probability band (:data:`RISK_PROBABILITY`): low (< 0.10) -> ``low``, moderate (0.10-0.25) and high
(0.25-0.50) -> ``moderate`` (``high`` is defined as "more likely than not"), critical (>= 0.50) -> ``high``;
CareSync's own level follows as a second coding (:data:`RISK_LEVEL_SYSTEM`) and as the text. No model active:
409 ``conflict``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from caresync.analytics.encounters import service as encounters
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.analytics.risk import service as risk
from caresync.analytics.risk.model import LEVEL_THRESHOLDS
from caresync.analytics.rules import CONDITION_BY_CODE, Department, Outcome, RiskLevel
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.rbac import Perm, has_perm
from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import invalid
from caresync.fhir.registry import ResourceType, SearchParam, included
from caresync.fhir.search import (
    NoMatch,
    SearchQuery,
    SearchResult,
    date_range,
    drop_empty,
    instant,
    reference_id,
    searched_patient,
    split_or,
    token,
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DEPARTMENT_SYSTEM = "urn:caresync:department"
DISCHARGE_SYSTEM = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
RISK_PROBABILITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
RISK_LEVEL_SYSTEM = "urn:caresync:risk-level"
RISK_MODEL_SYSTEM = "urn:caresync:risk-model"

# v3-ActCode encounter classes (http://terminology.hl7.org/ValueSet/v3-ActEncounterCode)
CLASSES = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}
CLASS_BY_DEPARTMENT: dict[Department, str] = {
    Department.EMERGENCY: "EMER",
    Department.GENERAL_PRACTICE: "AMB",
    Department.PAEDIATRICS: "AMB",
    Department.CARDIOLOGY: "AMB",
    Department.RESPIRATORY: "AMB",
    Department.OBSTETRICS: "IMP",
    Department.ORTHOPAEDICS: "AMB",
    Department.PSYCHIATRY: "AMB",
}
DEPARTMENT_DISPLAY: dict[Department, str] = {
    Department.EMERGENCY: "Emergency",
    Department.GENERAL_PRACTICE: "General practice",
    Department.PAEDIATRICS: "Paediatrics",
    Department.CARDIOLOGY: "Cardiology",
    Department.RESPIRATORY: "Respiratory medicine",
    Department.OBSTETRICS: "Obstetrics",
    Department.ORTHOPAEDICS: "Orthopaedics",
    Department.PSYCHIATRY: "Psychiatry",
}
# http://terminology.hl7.org/CodeSystem/discharge-disposition (R4): code -> display
DISCHARGE_CODES = {
    "home": "Home",
    "alt-home": "Alternative home",
    "other-hcf": "Other healthcare facility",
    "hosp": "Hospice",
    "long": "Long-term care",
    "aadvice": "Left against advice",
    "exp": "Expired",
    "psy": "Psychiatric hospital",
    "rehab": "Rehabilitation",
    "snf": "Skilled nursing facility",
    "oth": "Other",
}
DISCHARGE_DISPOSITION: dict[Outcome, str] = {
    Outcome.DISCHARGED: "home",
    Outcome.FOLLOW_UP: "home",
    Outcome.REFERRED: "oth",
    Outcome.ADMITTED: "oth",
    Outcome.DIED: "exp",
}
OUTCOME_TEXT: dict[Outcome, str] = {
    Outcome.DISCHARGED: "Discharged",
    Outcome.FOLLOW_UP: "Discharged with a follow-up",
    Outcome.REFERRED: "Referred",
    Outcome.ADMITTED: "Admitted as an inpatient",
    Outcome.DIED: "Died",
}
ENCOUNTER_STATUS = "finished"
# Condition: the explicit choices documented above (clinicalStatus deliberately absent)
CONDITION_CATEGORY = {
    "system": CATEGORY_SYSTEM,
    "code": "encounter-diagnosis",
    "display": "Encounter Diagnosis",
}
VERIFICATION_STATUS = {"system": VERIFICATION_SYSTEM, "code": "confirmed", "display": "Confirmed"}
# http://terminology.hl7.org/CodeSystem/risk-probability (R4): code -> display
RISK_PROBABILITY_CODES = {
    "negligible": "Negligible likelihood",
    "low": "Low likelihood",
    "moderate": "Moderate likelihood",
    "high": "High likelihood",
    "certain": "Certain",
}
RISK_PROBABILITY: dict[RiskLevel, str] = {
    RiskLevel.LOW: "low",
    RiskLevel.MODERATE: "moderate",
    RiskLevel.HIGH: "moderate",
    RiskLevel.CRITICAL: "high",
}
RISK_SUFFIX = "-adverse-outcome"
RISK_OUTCOME = "Admission or death at the next encounter"
MAX_TOKEN_VALUES = 50


# --- ids ----------------------------------------------------------------------------------------------------


class ConditionId(NamedTuple):
    """A Condition id: the visit and the ICD-10 code of one of its diagnoses."""

    encounter_id: uuid.UUID
    code: str

    def __str__(self) -> str:
        return f"{self.encounter_id}-{self.code}"


def parse_condition_id(raw: str) -> ConditionId:
    """``<visit uuid>-<ICD-10 code>`` -> :class:`ConditionId`; ``ValueError`` for anything else."""
    head, separator, code = raw[:36], raw[36:37], raw[37:]
    try:
        if separator == "-" and code in CONDITION_BY_CODE:
            return ConditionId(uuid.UUID(head), code)
    except ValueError:
        pass
    raise ValueError(f"'{raw}' is not a Condition id of this server.")


def risk_id(patient_id: uuid.UUID) -> str:
    """The id of a patient's RiskAssessment."""
    return f"{patient_id}{RISK_SUFFIX}"


def parse_risk_id(raw: str) -> uuid.UUID:
    """``<patient uuid>-adverse-outcome`` -> the patient id; ``ValueError`` for anything else."""
    try:
        if raw.endswith(RISK_SUFFIX):
            return uuid.UUID(raw.removesuffix(RISK_SUFFIX))
    except ValueError:
        pass
    raise ValueError(f"'{raw}' is not a RiskAssessment id of this server.")


# --- mapping ------------------------------------------------------------------------------------------------


def _principal_first(encounter: Encounter) -> list[EncounterDiagnosis]:
    return sorted(encounter.diagnoses, key=lambda d: (not d.principal, d.code))


def _department(value: str) -> JSON:
    department = Department(value)
    display = DEPARTMENT_DISPLAY[department]
    return {"coding": [{"system": DEPARTMENT_SYSTEM, "code": value, "display": display}], "text": display}


def encounter_to_fhir(encounter: Encounter) -> JSON:
    """The FHIR Encounter of a visit."""
    department = Department(encounter.department)
    outcome = Outcome(encounter.outcome)
    disposition = DISCHARGE_DISPOSITION[outcome]
    class_code = CLASS_BY_DEPARTMENT[department]
    return drop_empty(
        {
            "resourceType": "Encounter",
            "id": str(encounter.id),
            "meta": {"lastUpdated": instant(encounter.created_at)},
            "status": ENCOUNTER_STATUS,
            "class": {"system": ACT_CODE, "code": class_code, "display": CLASSES[class_code]},
            "type": [_department(encounter.department)],
            "subject": reference("Patient", encounter.patient_id),
            "appointment": [reference("Appointment", encounter.appointment_id)]
            if encounter.appointment_id
            else [],
            "period": {"start": instant(encounter.started_at)},
            "diagnosis": [
                {
                    "condition": reference(
                        "Condition",
                        str(ConditionId(encounter.id, d.code)),
                        CONDITION_BY_CODE[d.code].name,
                    ),
                    "rank": rank,
                }
                for rank, d in enumerate(_principal_first(encounter), start=1)
            ],
            "hospitalization": {
                "dischargeDisposition": {
                    "coding": [
                        {
                            "system": DISCHARGE_SYSTEM,
                            "code": disposition,
                            "display": DISCHARGE_CODES[disposition],
                        }
                    ],
                    "text": OUTCOME_TEXT[outcome],
                }
            },
            "serviceProvider": reference("Organization", encounter.organisation_id),
        }
    )


def condition_to_fhir(encounter: Encounter, code: str) -> JSON:
    """The FHIR Condition of one diagnosis of a visit."""
    name = CONDITION_BY_CODE[code].name
    return {
        "resourceType": "Condition",
        "id": str(ConditionId(encounter.id, code)),
        "meta": {"lastUpdated": instant(encounter.created_at)},
        "verificationStatus": {"coding": [VERIFICATION_STATUS]},
        "category": [{"coding": [CONDITION_CATEGORY]}],
        "code": {"coding": [{"system": ICD10, "code": code, "display": name}], "text": name},
        "subject": reference("Patient", encounter.patient_id),
        "encounter": reference("Encounter", encounter.id),
        "recordedDate": instant(encounter.started_at),
    }


def conditions_of(encounter: Encounter) -> list[JSON]:
    """The Conditions of a visit, the principal diagnosis first."""
    return [condition_to_fhir(encounter, d.code) for d in _principal_first(encounter)]


def _driver_note(driver: Any) -> JSON:
    sd = abs(driver.z)
    return {
        "text": f"Driver: {driver.label} = {driver.value:g} ({sd:.1f} SD {driver.direction} the average "
        f"patient; weight {driver.score:g})."
    }


def risk_to_fhir(assessment: risk.PatientRisk) -> JSON:
    """The FHIR RiskAssessment of a patient's risk now."""
    result = assessment.result
    level = RiskLevel(result.level)
    code = RISK_PROBABILITY[level]
    method_text = f"CareSync adverse-outcome model {assessment.version}"
    if assessment.label:
        method_text += f" ({assessment.label})"
    probabilities = ", ".join(f"{name} {p:.3f}" for name, p in sorted(result.probabilities.items()))
    rationale = f"Consensus of two models ({probabilities})" + (
        "; they disagreed strongly, so the higher probability was taken." if result.escalated else "."
    )
    notes = [_driver_note(driver) for driver in result.drivers]
    if assessment.label:
        notes.append({"text": f"Model label: {assessment.label}."})
    return drop_empty(
        {
            "resourceType": "RiskAssessment",
            "id": risk_id(assessment.patient_id),
            "meta": {"lastUpdated": instant(assessment.computed_at)},
            "status": "final",
            "method": {
                "coding": [{"system": RISK_MODEL_SYSTEM, "code": assessment.version}],
                "text": method_text,
            },
            "code": {"text": "Risk of an adverse outcome (admission or death)"},
            "subject": reference("Patient", assessment.patient_id),
            "occurrenceDateTime": instant(assessment.computed_at),
            "prediction": [
                {
                    "outcome": {"text": RISK_OUTCOME},
                    "probabilityDecimal": round(float(result.consensus), 4),
                    "qualitativeRisk": {
                        "coding": [
                            {
                                "system": RISK_PROBABILITY_SYSTEM,
                                "code": code,
                                "display": RISK_PROBABILITY_CODES[code],
                            },
                            {"system": RISK_LEVEL_SYSTEM, "code": level.value, "display": level.value},
                        ],
                        "text": level.value,
                    },
                    "rationale": rationale,
                }
            ],
            "note": notes,
        }
    )


def level_bands() -> dict[RiskLevel, tuple[float, float]]:
    """Each risk level's probability band [low, high) (from the model's thresholds)."""
    bands: dict[RiskLevel, tuple[float, float]] = {}
    low = 0.0
    for bound, level in LEVEL_THRESHOLDS:
        bands[level] = (low, min(bound, 1.0))
        low = bound
    return bands


# --- search helpers -----------------------------------------------------------------------------------------


def _token_sets(
    query: SearchQuery, name: str, convert: Callable[[str | None, str], set[str]]
) -> set[str] | None:
    """AND across repetitions, OR within one: the values every repetition allows (``None``: absent)."""
    allowed: set[str] | None = None
    for raw in query.params.get(name, []):
        alternatives = split_or(raw)
        if not alternatives:
            continue
        if len(alternatives) > MAX_TOKEN_VALUES:
            raise invalid(f"At most {MAX_TOKEN_VALUES} alternatives for {name}.")
        values: set[str] = set()
        for alternative in alternatives:
            values |= convert(*token(alternative))
        allowed = values if allowed is None else allowed & values
    return allowed


def _classes(system: str | None, code: str) -> set[str]:
    if system not in (None, "", ACT_CODE):
        return set()
    return {d.value for d, c in CLASS_BY_DEPARTMENT.items() if c == code}


def _departments(system: str | None, code: str) -> set[str]:
    if system not in (None, "", DEPARTMENT_SYSTEM):
        return set()
    return {code} if code in {d.value for d in Department} else set()


def _icd10(system: str | None, code: str) -> set[str]:
    if system not in (None, "", ICD10):
        return set()
    code = code.strip().upper()
    return {code} if code in CONDITION_BY_CODE else set()


def _references(query: SearchQuery, name: str, resource_type: str) -> set[uuid.UUID] | None:
    allowed: set[uuid.UUID] | None = None
    for raw in query.params.get(name, []):
        alternatives = split_or(raw)
        if not alternatives:
            continue
        values = {reference_id(alt, resource_type) for alt in alternatives}
        allowed = values if allowed is None else allowed & values
    return allowed


def _dates(query: SearchQuery, name: str) -> tuple[datetime | None, datetime | None]:
    values = query.params.get(name, [])
    if not values:
        return None, None
    span = date_range(values)
    if span.start is not None and span.end is not None and span.start >= span.end:
        raise NoMatch
    return span.start, span.end


def _nonempty(values: set[Any] | None) -> set[Any] | None:
    if values is not None and not values:
        raise NoMatch
    return values


def _include(
    ctx: FhirContext, query: SearchQuery, wanted: Mapping[str, tuple[str, Iterable[Any]]]
) -> list[JSON]:
    found: list[JSON] = []
    for include in query.includes:
        if include in wanted:
            target, ids = wanted[include]
            found += included(ctx, target, ids)
    return found


# --- Encounter ----------------------------------------------------------------------------------------------


def read_encounter(ctx: FhirContext, encounter_id: uuid.UUID) -> JSON:
    """One visit (404 when hidden or absent; audited by the service)."""
    return encounter_to_fhir(encounters.get_encounter(ctx.session, ctx.principal, encounter_id))


def search_encounters(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """One patient's visits (a patient's own by default), newest first."""
    patient_id = searched_patient(ctx, query, "encounters")
    assert patient_id is not None
    started_from, started_before = _dates(query, "date")
    classes = _token_sets(query, "class", _classes)
    departments = _token_sets(query, "type", _departments)
    if classes is not None:
        departments = classes if departments is None else departments & classes
    organisations = _references(query, "service-provider", "Organization")
    try:
        page = encounters.list_encounters(
            ctx.session,
            ctx.principal,
            patient_id,
            started_from=started_from,
            started_before=started_before,
            departments=_nonempty(departments),
            organisation_ids=_nonempty(organisations),
            limit=max(query.count, 1),
            cursor=query.cursor,
            count_total=True,
        )
    except NotFound:
        return SearchResult(resources=[], total=0)
    except ValidationFailed:  # the only input the service checks here is the cursor
        raise invalid("The _cursor is not valid; start the search again without it.") from None
    wanted = {
        "Encounter:patient": ("Patient", [patient_id] if page.items else []),
        "Encounter:subject": ("Patient", [patient_id] if page.items else []),
        "Encounter:service-provider": ("Organization", [e.organisation_id for e in page.items]),
    }
    return SearchResult(
        resources=[encounter_to_fhir(e) for e in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
        included=_include(ctx, query, wanted),
    )


def encounters_everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """All of the patient's visits the caller may see (two queries)."""
    try:
        return [
            encounter_to_fhir(e) for e in encounters.whole_history(ctx.session, ctx.principal, patient_id)
        ]
    except NotFound:
        return []


# --- Condition ----------------------------------------------------------------------------------------------


def _missing_condition(condition_id: ConditionId) -> NotFound:
    return NotFound(f"Condition/{condition_id} does not exist or is not visible to you.")


def read_condition(ctx: FhirContext, condition_id: ConditionId) -> JSON:
    """One diagnosis of a visit, under the visit's rule (404 when hidden or absent)."""
    try:
        encounter = encounters.get_encounter(ctx.session, ctx.principal, condition_id.encounter_id)
    except NotFound:
        raise _missing_condition(condition_id) from None
    if condition_id.code not in {d.code for d in encounter.diagnoses}:
        raise _missing_condition(condition_id)
    return condition_to_fhir(encounter, condition_id.code)


def search_conditions(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """The diagnoses of one patient's visits (a patient's own by default, or the patient of the visit
    named by ``encounter``), newest visit first."""
    visits = _references(query, "encounter", "Encounter")
    named = searched_patient(ctx, query, "conditions", required=visits is None)
    patient_id = named
    if patient_id is None:
        assert visits is not None
        if len(visits) != 1:
            raise invalid("Say whose conditions to search: patient=Patient/<id> (or one encounter).")
        try:
            visit = encounters.get_encounter(ctx.session, ctx.principal, next(iter(visits)))
        except NotFound:
            return SearchResult(resources=[], total=0)
        patient_id = visit.patient_id
    started_from, started_before = _dates(query, "recorded-date")
    codes = _token_sets(query, "code", _icd10)
    try:
        page = encounters.list_diagnoses(
            ctx.session,
            ctx.principal,
            patient_id,
            started_from=started_from,
            started_before=started_before,
            codes=_nonempty(codes),
            encounter_ids=_nonempty(visits),
            limit=max(query.count, 1),
            cursor=query.cursor,
            count_total=True,
        )
    except NotFound:
        return SearchResult(resources=[], total=0)
    except ValidationFailed:  # the only input the service checks here is the cursor
        raise invalid("The _cursor is not valid; start the search again without it.") from None
    wanted = {
        "Condition:patient": ("Patient", [patient_id] if page.items else []),
        "Condition:subject": ("Patient", [patient_id] if page.items else []),
        "Condition:encounter": ("Encounter", [d.encounter_id for d in page.items]),
    }
    return SearchResult(
        resources=[condition_to_fhir(d.encounter, d.code) for d in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
        included=_include(ctx, query, wanted),
    )


def conditions_everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """All diagnoses of the patient's visits the caller may see (two queries)."""
    try:
        history = encounters.whole_history(ctx.session, ctx.principal, patient_id)
    except NotFound:
        return []
    return [condition for encounter in history for condition in conditions_of(encounter)]


# --- RiskAssessment -----------------------------------------------------------------------------------------


def read_risk(ctx: FhirContext, patient_id: uuid.UUID) -> JSON:
    """A patient's risk now (the doctors and nurses caring for them; 404 for everyone else, 409 when no
    model is active)."""
    try:
        return risk_to_fhir(risk.patient_risk(ctx.session, ctx.principal, patient_id))
    except NotFound:
        raise NotFound(
            f"RiskAssessment/{risk_id(patient_id)} does not exist or is not visible to you."
        ) from None


def search_risk(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """The one RiskAssessment of a patient, if the caller may see it (else an empty result)."""
    patient_id = searched_patient(ctx, query, "risk assessment")
    assert patient_id is not None
    try:
        found = risk_to_fhir(risk.patient_risk(ctx.session, ctx.principal, patient_id))
    except (NotFound, Forbidden):
        return SearchResult(resources=[], total=0)
    wanted = {
        "RiskAssessment:patient": ("Patient", [patient_id]),
        "RiskAssessment:subject": ("Patient", [patient_id]),
    }
    return SearchResult(resources=[found], total=1, included=_include(ctx, query, wanted))


def risk_everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """The patient's risk for those who may see it; nothing for the others or when no model is active."""
    if not has_perm(ctx.principal, Perm.ANALYTICS_VIEW):
        return []
    try:
        return [risk_to_fhir(risk.patient_risk(ctx.session, ctx.principal, patient_id))]
    except (NotFound, Forbidden, Conflict):
        return []


PATIENT_PARAMS = (
    SearchParam("patient", "reference", "The patient (Patient/<id>); a patient's own by default."),
    SearchParam("subject", "reference", "Same as patient (Patient references only)."),
)

RESOURCES = (
    ResourceType(
        name="Encounter",
        documentation="A patient's visits (analytics encounters): class from the department (v3-ActCode "
        "AMB/EMER/IMP), the department as type, status finished, the diagnoses as Conditions, the outcome as "
        "hospitalization.dischargeDisposition. Under the records consent rule for diagnoses (mental-health "
        "visits need that category too). Searches cover one patient at a time (a patient's own by default).",
        read=read_encounter,
        search=search_encounters,
        everything=encounters_everything,
        includes=("Encounter:patient", "Encounter:subject", "Encounter:service-provider"),
        search_params=(
            *PATIENT_PARAMS,
            SearchParam("date", "date", "When the visit started (eq, ge, gt, le, lt)."),
            SearchParam("class", "token", "v3-ActCode class: AMB, EMER or IMP."),
            SearchParam(
                "type",
                "token",
                f"The department ({DEPARTMENT_SYSTEM}): " + ", ".join(d.value for d in Department) + ".",
            ),
            SearchParam("service-provider", "reference", "The organisation (Organization/<id>)."),
        ),
    ),
    ResourceType(
        name="Condition",
        documentation="The ICD-10 diagnoses of a patient's visits, one Condition per diagnosis (category "
        "encounter-diagnosis, verificationStatus confirmed, no clinicalStatus: CareSync does not track "
        "resolution), under the visit's access rule.",
        read=read_condition,
        search=search_conditions,
        everything=conditions_everything,
        parse_id=parse_condition_id,
        includes=("Condition:patient", "Condition:subject", "Condition:encounter"),
        search_params=(
            *PATIENT_PARAMS,
            SearchParam("code", "token", f"ICD-10 code ({ICD10}|<code>), e.g. J11 or I10."),
            SearchParam("encounter", "reference", "The visit (Encounter/<id>)."),
            SearchParam("recorded-date", "date", "When recorded: the visit's start (eq, ge, gt, le, lt)."),
        ),
    ),
    ResourceType(
        name="RiskAssessment",
        documentation="A patient's risk that their next encounter ends in admission or death, computed when "
        "asked by their organisation's active model (method = model version; drivers as notes); id "
        "<patient id>-adverse-outcome. Only for the doctors and nurses caring for the patient; 409 when no "
        "model is active.",
        read=read_risk,
        search=search_risk,
        everything=risk_everything,
        parse_id=parse_risk_id,
        includes=("RiskAssessment:patient", "RiskAssessment:subject"),
        search_params=PATIENT_PARAMS,
    ),
)
