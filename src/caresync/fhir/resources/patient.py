"""Patient: the demographic profile (``identity.patients``)."""

from __future__ import annotations

import uuid

from caresync.fhir.context import JSON, FhirContext
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.search import SearchQuery, SearchResult, drop_empty, instant
from caresync.identity import patients
from caresync.identity.models import Patient

HEALTH_ID_SYSTEM = "urn:caresync:health-id"
GENDERS = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


def to_fhir(patient: Patient) -> JSON:
    """The FHIR Patient for a profile."""
    return drop_empty(
        {
            "resourceType": "Patient",
            "id": str(patient.id),
            "meta": {"lastUpdated": instant(patient.updated_at)},
            "identifier": [{"system": HEALTH_ID_SYSTEM, "value": patient.health_id}],
            "active": True,
            "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
            "gender": GENDERS.get(patient.sex, "unknown"),
            "birthDate": patient.birth_date.isoformat(),
        }
    )


def read(ctx: FhirContext, patient_id: uuid.UUID) -> JSON:
    """Read one patient (role, care relationship or consent decide; audited by the service)."""
    return to_fhir(patients.get_patient(ctx.session, ctx.principal, patient_id))


def search(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Search the patients this caller may see."""
    page = patients.list_patients(
        ctx.session, ctx.principal, q=query.one("name") or "", limit=max(query.count, 1), cursor=query.cursor
    )
    return SearchResult(
        resources=[to_fhir(p) for p in page.items], next_cursor=page.next_cursor, total=page.total
    )


RESOURCES = (
    ResourceType(
        name="Patient",
        documentation="Patients' demographic profiles; a patient sees their own, clinicians their care list.",
        read=read,
        search=search,
        search_params=(SearchParam("name", "string", "Any part of the given or family name."),),
    ),
)
