"""The CapabilityStatement at ``/fhir/R4/metadata``, built from the registry so it never drifts."""

from __future__ import annotations

from caresync import __version__
from caresync.fhir.context import JSON
from caresync.fhir.registry import ResourceType, resource_types

FHIR_VERSION = "4.0.1"
RELEASE_DATE = "2026-11-26"
COMMON_SEARCH = [
    {
        "name": "_id",
        "type": "token",
        "documentation": "The resource's id (alone, or a comma-separated list).",
    },
    {"name": "_count", "type": "number", "documentation": "Page size, 0 to 200 (default 20)."},
]
SMART_SERVICE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}
    ],
    "text": "Bearer tokens issued by CareSync",
}


def _interactions(resource: ResourceType) -> list[JSON]:
    offered = (
        ("read", resource.read),
        ("search-type", resource.search),
        ("create", resource.create),
        ("update", resource.update),
    )
    return [{"code": code} for code, handler in offered if handler is not None]


def _resource(resource: ResourceType) -> JSON:
    entry: JSON = {
        "type": resource.name,
        "documentation": resource.documentation,
        "interaction": _interactions(resource),
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
    }
    if resource.search is not None:
        declared = [
            {"name": p.name, "type": p.type, "documentation": p.documentation} for p in resource.search_params
        ]
        entry["searchParam"] = COMMON_SEARCH[:1] + declared
        if resource.includes:
            entry["searchInclude"] = list(resource.includes)
    if resource.name == "Patient":
        entry["operation"] = [
            {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
        ]
    return entry


def statement(base_url: str) -> JSON:
    """The server's CapabilityStatement (``kind: instance``), listing every resource, interaction and
    search parameter offered, and the SMART-style bearer token security."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "caresync",
        "url": f"{base_url}/metadata",
        "version": __version__,
        "name": "CareSyncFHIRServer",
        "title": "CareSync FHIR R4 API",
        "status": "active",
        "experimental": False,
        "date": RELEASE_DATE,
        "publisher": "CareSync",
        "kind": "instance",
        "software": {"name": "CareSync", "version": __version__},
        "implementation": {"description": "CareSync FHIR R4 API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Every request needs a bearer token. App tokens carry SMART scopes "
                "(patient/*.read, user/*.read, user/Appointment.write …); a user's own token acts with the "
                "user's permissions. Role rules, consent and care relationships apply to every result.",
                "security": {
                    "cors": False,
                    "service": [SMART_SERVICE],
                    "description": "Issue an app token with POST /api/v1/auth/app-tokens.",
                },
                "resource": [_resource(r) for r in resource_types().values()],
                "operation": [
                    {
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    }
                ],
            }
        ],
    }
