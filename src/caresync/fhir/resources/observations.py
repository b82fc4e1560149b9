"""Observation: the clinical measurements CareSync holds for patients, through the services that apply the
patient access rules (role, care relationship, consent by record category, break-glass) and audit.

Two sources:

- the patient's ABO/Rh blood group on their profile (``identity.patients.get_patient``): LOINC 882-1
  with the SNOMED CT blood group finding as the answer, category ``laboratory``; id ``<patient id>-abo``;
- the vital signs of vital-sign records (``records.service``, category ``vitals``; each record's
  ``measurements``): one Observation per measurement, LOINC codes and UCUM units of the FHIR vital signs
  profiles, blood pressure as the 85354-9 panel with systolic/diastolic components; id
  ``<record id>-<kind>`` (kind ``bp``, ``hr``, ``rr``, ``temp``, ``spo2``, ``wt``). A record that corrects
  another is ``corrected``; the versions a correction replaced are left out of searches and
  ``$everything`` (a read still finds them, with a note saying they were superseded).

Not mapped: the clinic queue keeps a triage priority level but no measurement; donor screening vitals
(weight, haemoglobin, blood pressure, pulse, temperature of a donation) belong to donors, who are not
linked to patient profiles, so they are not patient Observations.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from caresync.core.errors import NotFound
from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import invalid
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.search import (
    DateRange,
    SearchQuery,
    SearchResult,
    date_range,
    drop_empty,
    instant,
    searched_patient,
    token,
)
from caresync.identity import patients
from caresync.identity.models import Patient
from caresync.records import service as records
from caresync.records.models import HealthRecord

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
VITALS_CATEGORY = "vitals"  # the records category holding vital signs
RECORDS_PAGE = 100  # vital-sign records fetched per query while filling a page of Observations

# The patient's ABO/Rh group -> SNOMED CT blood group finding (the IPS ABO+Rh value set).
BLOOD_GROUP_SNOMED: dict[str, tuple[str, str]] = {
    "O-": ("278148006", "Blood group O Rh(D) negative"),
    "O+": ("278147001", "Blood group O Rh(D) positive"),
    "A-": ("278152006", "Blood group A Rh(D) negative"),
    "A+": ("278149003", "Blood group A Rh(D) positive"),
    "B-": ("278153001", "Blood group B Rh(D) negative"),
    "B+": ("278150003", "Blood group B Rh(D) positive"),
    "AB-": ("278154007", "Blood group AB Rh(D) negative"),
    "AB+": ("278151004", "Blood group AB Rh(D) positive"),
}
BLOOD_GROUP_LOINC = ("882-1", "ABO and Rh group [Type] in Blood")


class Vital(NamedTuple):
    """How one measurement maps: id suffix, LOINC code and display, UCUM code and the unit shown."""

    kind: str
    loinc: str
    display: str
    ucum: str
    unit: str


# records.rules.VITAL_SIGNS code -> FHIR R4 vital signs profile code (UCUM units as the profiles bind).
VITALS: dict[str, Vital] = {
    "heart_rate": Vital("hr", "8867-4", "Heart rate", "/min", "beats/minute"),
    "respiratory_rate": Vital("rr", "9279-1", "Respiratory rate", "/min", "breaths/minute"),
    "temperature": Vital("temp", "8310-5", "Body temperature", "Cel", "°C"),
    "spo2": Vital("spo2", "2708-6", "Oxygen saturation in Arterial blood", "%", "%"),
    "weight": Vital("wt", "29463-7", "Body weight", "kg", "kg"),
}
BP_PANEL = Vital("bp", "85354-9", "Blood pressure panel with all children optional", "", "")
BP_COMPONENTS: dict[str, Vital] = {
    "systolic": Vital("bp", "8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg"),
    "diastolic": Vital("bp", "8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg"),
}
ABO_KIND = "abo"
VITAL_KINDS = (BP_PANEL.kind, *(v.kind for v in VITALS.values()))
KINDS = (ABO_KIND, *VITAL_KINDS)
# Observation.category per kind (http://terminology.hl7.org/CodeSystem/observation-category)
CATEGORY_BY_KIND: dict[str, str] = {ABO_KIND: "laboratory", **dict.fromkeys(VITAL_KINDS, "vital-signs")}
CATEGORY_DISPLAY = {"laboratory": "Laboratory", "vital-signs": "Vital Signs"}
# LOINC code -> kind (the panel's components find their panel too)
KIND_BY_LOINC: dict[str, str] = {
    BLOOD_GROUP_LOINC[0]: ABO_KIND,
    BP_PANEL.loinc: BP_PANEL.kind,
    **{v.loinc: v.kind for v in (*VITALS.values(), *BP_COMPONENTS.values())},
}
# Observation.status of a vital-signs record (a correction of another record is "corrected").
STATUS_CURRENT, STATUS_CORRECTION = "final", "corrected"
OBSERVATION_STATUSES = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)


class ObservationId(NamedTuple):
    """An Observation id: the row it comes from (a patient or a record) and the kind of measurement."""

    row_id: uuid.UUID
    kind: str

    def __str__(self) -> str:
        return f"{self.row_id}-{self.kind}"


def parse_id(raw: str) -> ObservationId:
    """``<uuid>-<kind>`` -> :class:`ObservationId`; ``ValueError`` for anything else."""
    row, _, kind = raw.rpartition("-")
    try:
        if kind in KINDS and len(row) == 36:
            return ObservationId(uuid.UUID(row), kind)
    except ValueError:
        pass
    raise ValueError(f"'{raw}' is not an Observation id of this server.")


# --- mapping ------------------------------------------------------------------------------------------------


def _category(kind: str) -> list[JSON]:
    code = CATEGORY_BY_KIND[kind]
    return [{"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": CATEGORY_DISPLAY[code]}]}]


def _quantity(value: float, vital: Vital) -> JSON:
    return {"value": value, "unit": vital.unit, "system": UCUM, "code": vital.ucum}


def _code(vital: Vital) -> JSON:
    return {
        "coding": [{"system": LOINC, "code": vital.loinc, "display": vital.display}],
        "text": vital.display,
    }


def blood_group(patient: Patient) -> JSON:
    """The Observation of a patient's ABO/Rh group (the profile must have one)."""
    assert patient.blood_group is not None
    snomed, display = BLOOD_GROUP_SNOMED[patient.blood_group]
    loinc, loinc_display = BLOOD_GROUP_LOINC
    return drop_empty(
        {
            "resourceType": "Observation",
            "id": str(ObservationId(patient.id, ABO_KIND)),
            "meta": {"lastUpdated": instant(patient.updated_at)},
            "status": "final",
            "category": _category(ABO_KIND),
            "code": {
                "coding": [{"system": LOINC, "code": loinc, "display": loinc_display}],
                "text": "Blood group",
            },
            "subject": reference("Patient", patient.id),
            "valueCodeableConcept": {
                "coding": [{"system": SNOMED, "code": snomed, "display": display}],
                "text": patient.blood_group,
            },
        }
    )


def vital_signs(record: HealthRecord | records.RecordSummary, *, superseded: bool = False) -> list[JSON]:
    """The Observations of one vital-signs record, in a fixed order (blood pressure first)."""
    values: dict[str, float] = dict(record.measurements or {})
    status = STATUS_CORRECTION if record.supersedes_id is not None else STATUS_CURRENT
    found: list[JSON] = []

    def observation(kind: str, body: JSON) -> JSON:
        note = [{"text": "Superseded by a later correction of this record."}] if superseded else []
        return drop_empty(
            {
                "resourceType": "Observation",
                "id": str(ObservationId(record.id, kind)),
                "meta": {"lastUpdated": instant(record.created_at)},
                "status": status,
                "category": _category(kind),
                **body,
                "subject": reference("Patient", record.patient_id),
                "effectiveDateTime": record.recorded_on.isoformat(),
                "issued": instant(record.created_at),
                "derivedFrom": [reference("DocumentReference", record.id)],
                "note": note,
            }
        )

    components = [
        {"code": _code(vital), "valueQuantity": _quantity(values[name], vital)}
        for name, vital in BP_COMPONENTS.items()
        if name in values
    ]
    if components:
        found.append(observation(BP_PANEL.kind, {"code": _code(BP_PANEL), "component": components}))
    for name, vital in VITALS.items():
        if name in values:
            found.append(
                observation(
                    vital.kind, {"code": _code(vital), "valueQuantity": _quantity(values[name], vital)}
                )
            )
    return found


# --- read ---------------------------------------------------------------------------------------------------


def _missing(observation_id: ObservationId) -> NotFound:
    return NotFound(f"Observation/{observation_id} does not exist or is not visible to you.")


def read(ctx: FhirContext, observation_id: ObservationId) -> JSON:
    """Read one Observation through the service that owns its row (404 when hidden or absent)."""
    if observation_id.kind == ABO_KIND:
        patient = patients.get_patient(ctx.session, ctx.principal, observation_id.row_id)
        if patient.blood_group is None:
            raise _missing(observation_id)
        return blood_group(patient)
    record = records.get(ctx.session, ctx.principal, observation_id.row_id)
    if record.category != VITALS_CATEGORY:
        raise _missing(observation_id)
    superseded = record.id in records.superseded_ids(ctx.session, [record])
    for found in vital_signs(record, superseded=superseded):
        if found["id"] == str(observation_id):
            return found
    raise _missing(observation_id)


# --- search -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """What a search asks for: the kinds of observation, and a date range (vital signs only)."""

    kinds: frozenset[str]
    dates: DateRange | None

    def matches_day(self, day: date) -> bool:
        """Whether a measurement taken on ``day`` (its midnight UTC) is in the range."""
        return self.dates is None or self.dates.contains(datetime.combine(day, time(), tzinfo=UTC))


def _kinds(query: SearchQuery) -> frozenset[str]:
    kinds = set(KINDS)
    for name in ("category", "code"):
        for raw in query.params.get(name, []):  # repetitions AND, commas OR
            allowed: set[str] = set()
            for value in raw.split(","):
                system, code = token(value.strip())
                if name == "category":
                    if system not in (None, "", CATEGORY_SYSTEM):
                        raise invalid(f"Search category with codes of {CATEGORY_SYSTEM}.")
                    allowed |= {k for k, c in CATEGORY_BY_KIND.items() if c == code}
                else:
                    if system not in (None, "", LOINC):
                        raise invalid(f"Search code with LOINC codes ({LOINC}|<code>).")
                    if code in KIND_BY_LOINC:
                        allowed.add(KIND_BY_LOINC[code])
            kinds &= allowed
    return frozenset(kinds)


def _wanted(query: SearchQuery) -> Wanted:
    dates = date_range(query.params["date"]) if query.params.get("date") else None
    kinds = _kinds(query)
    if dates is not None:
        kinds -= {ABO_KIND}  # the blood group on the profile has no date
    return Wanted(kinds, dates)


@dataclass(frozen=True)
class Position:
    """Where a page starts: whether the blood group was passed, the records cursor and how many of the
    Observations of the records page at that cursor were already returned."""

    blood_group_done: bool = False
    records_cursor: str | None = None
    skip: int = 0

    def encode(self) -> str:
        raw = json.dumps([self.blood_group_done, self.records_cursor, self.skip], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> Position:
        if not cursor:
            return cls()
        try:
            done, records_cursor, skip = json.loads(
                base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            )
        except (ValueError, TypeError, binascii.Error):
            raise invalid("The _cursor is not valid; start the search again without it.") from None
        if not isinstance(done, bool) or not isinstance(skip, int) or skip < 0:
            raise invalid("The _cursor is not valid; start the search again without it.")
        if records_cursor is not None and not isinstance(records_cursor, str):
            raise invalid("The _cursor is not valid; start the search again without it.")
        return cls(done, records_cursor, skip)


def _date_bounds(dates: DateRange | None) -> tuple[date | None, date | None]:
    """The inclusive days whose midnight falls in ``dates`` (to narrow the records query)."""
    if dates is None:
        return None, None
    first = last = None
    if dates.start is not None:
        start = dates.start.astimezone(UTC)
        first = start.date() if start.time() == time() else start.date() + timedelta(days=1)
    if dates.end is not None:
        end = dates.end.astimezone(UTC)
        last = end.date() - timedelta(days=1) if end.time() == time() else end.date()
    return first, last


def _stream(
    ctx: FhirContext, patient_id: uuid.UUID, wanted: Wanted, start: Position
) -> Iterator[tuple[JSON, Position]]:
    """The matching Observations from ``start`` on, each with the position it sits at."""
    if not start.blood_group_done and ABO_KIND in wanted.kinds:
        patient = patients.get_patient(ctx.session, ctx.principal, patient_id)
        if patient.blood_group is not None:
            yield blood_group(patient), Position(False, None, 0)
    if not wanted.kinds & set(VITAL_KINDS):
        return
    date_from, date_to = _date_bounds(wanted.dates)
    if date_from and date_to and date_from > date_to:
        return
    filters = records.TimelineFilter(
        categories=(VITALS_CATEGORY,), date_from=date_from, date_to=date_to, superseded=False
    )
    cursor, skip = start.records_cursor, start.skip
    while True:
        timeline = records.timeline(
            ctx.session, ctx.principal, patient_id, filters, limit=RECORDS_PAGE, cursor=cursor
        )
        found = [
            observation
            for record in timeline.page.items
            if wanted.matches_day(record.recorded_on)
            for observation in vital_signs(record)
            if parse_id(observation["id"]).kind in wanted.kinds
        ]
        for index in range(skip, len(found)):
            yield found[index], Position(True, cursor, index)
        if timeline.page.next_cursor is None:
            return
        cursor, skip = timeline.page.next_cursor, 0


def search(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """One patient's observations (the caller's own for a patient), blood group first, then vital signs
    newest first. Another patient's, or one the caller may not see, gives an empty result."""
    patient_id = searched_patient(ctx, query, "observations")
    assert patient_id is not None  # required
    wanted = _wanted(query)
    resources: list[JSON] = []
    next_cursor = None
    try:
        for observation, position in _stream(ctx, patient_id, wanted, Position.decode(query.cursor)):
            if len(resources) == query.count:
                next_cursor = position.encode()
                break
            resources.append(observation)
    except NotFound:
        return SearchResult(resources=[], total=0)
    total = len(resources) if next_cursor is None and query.cursor is None else None
    return SearchResult(resources=resources, total=total, next_cursor=next_cursor)


def everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """All of the patient's current observations the caller may see (a few queries, however long the
    record)."""
    found: list[JSON] = []
    try:
        patient = patients.get_patient(ctx.session, ctx.principal, patient_id)
    except NotFound:
        return []
    if patient.blood_group is not None:
        found.append(blood_group(patient))
    whole = records.whole_record(ctx.session, ctx.principal, patient_id)
    for record in whole.records:
        if record.category == VITALS_CATEGORY and record.id not in whole.superseded:
            found.extend(vital_signs(record))
    return found


RESOURCES = (
    ResourceType(
        name="Observation",
        documentation="A patient's ABO/Rh blood group (LOINC 882-1, SNOMED CT answer) and the vital signs of "
        "their vital-sign records (LOINC, UCUM; blood pressure as the 85354-9 panel), under the same "
        "access rules as the record (consent by category). Searches cover one patient at a time (a "
        "patient's own by default). Donor screening vitals are not patient data and are not offered.",
        read=read,
        search=search,
        everything=everything,
        parse_id=parse_id,
        search_params=(
            SearchParam("patient", "reference", "The patient (Patient/<id>); a patient's own by default."),
            SearchParam("subject", "reference", "Same as patient (Patient references only)."),
            SearchParam("category", "token", "vital-signs or laboratory (observation-category codes)."),
            SearchParam(
                "code",
                "token",
                "LOINC code, e.g. 8867-4 heart rate, 85354-9 or 8480-6 blood pressure, "
                "29463-7 body weight, 882-1 ABO/Rh group.",
            ),
            SearchParam("date", "date", "When measured (eq, ge, gt, le, lt); the blood group has no date."),
        ),
    ),
)
