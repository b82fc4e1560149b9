"""The provider directory: Practitioner, PractitionerRole, Organization and Location.

Mapped from the directory services (``scheduling.directory``: listed, licensed practitioners and the
places they work; ``identity.service``: organisations), which every signed-in role may read
(``directory:read``). Only what the directory shows publicly is exposed: names, title, languages,
specialties, workplaces and working hours; never licence numbers, contact details of people or anything
about patients.

**PractitionerRole**: one per directory profile, with the profile's id. A profile is one practitioner
working for one organisation with one set of specialties, at the locations of their weekly schedules; the
role's ``location`` lists those places and ``availableTime`` the current weekly hours (breaks cut out, in
each location's local time). One role per practitioner and location would repeat the same specialties and
hours for every place and give ids that change when a schedule moves; one per profile keeps the id
stable and lets ``location=`` search find the practitioners working at a place.

Codes: specialties as SNOMED CT practice-setting codes (``c80-practice-codes``) where the mapping is
certain, else text only (:data:`SPECIALTY_SNOMED`); the practitioner role from HL7 ``practitioner-role``;
organisation types from HL7 ``organization-type`` (all our kinds are healthcare providers, ``prov``) plus
our own kind (:data:`ORG_KIND_SYSTEM`); languages as BCP 47 tags.
"""

from __future__ import annotations

import json
import uuid
from datetime import time

from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import not_supported
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.search import (
    SearchQuery,
    SearchResult,
    drop_empty,
    instant,
    reference_id,
    split_or,
    token,
)
from caresync.identity import service as accounts
from caresync.identity.models import Organisation
from caresync.identity.rules import OrganisationKind, Role
from caresync.scheduling import directory
from caresync.scheduling.models import Location, Practitioner, Schedule
from caresync.scheduling.rules import LANGUAGES, SPECIALTIES

SNOMED = "http://snomed.info/sct"
# Our specialty codes -> SNOMED CT practice setting (code, display); None: no certain equivalent, text only.
SPECIALTY_SNOMED: dict[str, tuple[str, str] | None] = {
    "general-practice": ("408443003", "General medical practice"),
    "cardiology": ("394579002", "Cardiology"),
    "dermatology": ("394582007", "Dermatology"),
    "endocrinology": ("394583002", "Endocrinology"),
    "gastroenterology": ("394584008", "Gastroenterology"),
    "neurology": ("394591006", "Neurology"),
    "obstetrics-gynaecology": ("394585009", "Obstetrics and gynecology"),
    "oncology": None,  # clinical (394592004) or medical (394593009) oncology: the profile does not say
    "ophthalmology": ("394594003", "Ophthalmology"),
    "orthopaedics": ("394801008", "Trauma and orthopedics"),
    "paediatrics": ("394537008", "Pediatric specialty"),
    "psychiatry": ("394587001", "Psychiatry"),
    "pulmonology": ("418112009", "Pulmonary medicine"),
    "rheumatology": ("394810000", "Rheumatology"),
    "urology": ("394612005", "Urology"),
    "emergency-medicine": ("773568002", "Emergency medicine"),
}
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
# Our user roles -> HL7 practitioner-role (code, display); None: no code (the role has no clinical title).
ROLE_CODES: dict[str, tuple[str, str] | None] = {
    Role.DOCTOR.value: ("doctor", "Doctor"),
    Role.NURSE.value: ("nurse", "Nurse"),
    Role.PHARMACIST.value: ("pharmacist", "Pharmacist"),
    Role.ADMIN.value: None,
    Role.BLOODBANK_STAFF.value: None,
    Role.PATIENT.value: None,
    Role.DONOR.value: None,
}
ORG_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
ORG_TYPE_DISPLAY = {"prov": "Healthcare Provider"}
# Our organisation kinds -> HL7 organization-type code (each kind is also given in our own code system).
ORG_TYPES: dict[str, str] = {
    OrganisationKind.HOSPITAL.value: "prov",
    OrganisationKind.CLINIC.value: "prov",
    OrganisationKind.BLOOD_BANK.value: "prov",
    OrganisationKind.PHARMACY.value: "prov",
}
ORG_KIND_SYSTEM = "urn:caresync:organisation-kind"
ORG_KIND_LABELS = {
    OrganisationKind.HOSPITAL.value: "Hospital",
    OrganisationKind.CLINIC.value: "Clinic",
    OrganisationKind.BLOOD_BANK.value: "Blood bank",
    OrganisationKind.PHARMACY.value: "Pharmacy",
}
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # FHIR days-of-week, Monday = weekday 0


# --- search parameter helpers -------------------------------------------------------------------------------


def _alternatives(query: SearchQuery, name: str) -> list[str]:
    """The comma-separated alternatives (OR) of a parameter given once; repeating it (AND) is refused."""
    raw = query.params.get(name, [])
    if len(raw) > 1:
        raise not_supported(f"Give '{name}' once; separate alternatives with commas.")
    return split_or(raw[0]) if raw else []


def _codes(query: SearchQuery, name: str, system: str, table: dict[str, str]) -> set[str] | None:
    """Domain values matching a token parameter: ``table`` maps a token code (in ``system``) to a domain
    value. ``None`` when the parameter is absent; an empty set when nothing can match."""
    values = _alternatives(query, name)
    if not values:
        return None
    found: set[str] = set()
    for value in values:
        wanted_system, code = token(value)
        if wanted_system in (None, system) and code in table:
            found.add(table[code])
    return found


def _ids(query: SearchQuery, name: str, resource_type: str) -> tuple[uuid.UUID, ...]:
    return tuple(reference_id(value, resource_type) for value in _alternatives(query, name))


def _nothing() -> SearchResult:
    return SearchResult(resources=[], total=0)


def _address(line: str, city: str, country: str) -> JSON | None:
    address = drop_empty({"use": "work", "line": [line] if line else [], "city": city, "country": country})
    return address if len(address) > 1 else None


def _phone(number: str) -> list[JSON]:
    return [{"system": "phone", "value": number, "use": "work"}] if number else []


# --- Practitioner -------------------------------------------------------------------------------------------


def practitioner_name(practitioner: Practitioner) -> str:
    """The name as the directory shows it, with the title (e.g. "Dr Ana Silva")."""
    title, name = practitioner.title.strip(), practitioner.display_name
    return f"{title} {name}" if title and not name.startswith(title) else name


def practitioner_to_fhir(practitioner: Practitioner) -> JSON:
    """The FHIR Practitioner for a directory profile (public information only)."""
    name: JSON = {"use": "official", "text": practitioner_name(practitioner)}
    if practitioner.title.strip():
        name["prefix"] = [practitioner.title.strip()]
    communication = [
        {
            "coding": [drop_empty({"system": LANGUAGE_SYSTEM, "code": code, "display": LANGUAGES.get(code)})],
            "text": LANGUAGES.get(code, code),
        }
        for code in sorted(lang.code for lang in practitioner.languages)
    ]
    return drop_empty(
        {
            "resourceType": "Practitioner",
            "id": str(practitioner.id),
            "meta": {"lastUpdated": instant(practitioner.updated_at)},
            "active": True,
            "name": [name],
            "communication": communication,
        }
    )


def read_practitioner(ctx: FhirContext, practitioner_id: uuid.UUID) -> JSON:
    """A licensed practitioner's public profile."""
    return practitioner_to_fhir(directory.get_practitioner(ctx.session, ctx.principal, practitioner_id))


def _language_codes(query: SearchQuery) -> set[str] | None:
    return _codes(query, "communication", LANGUAGE_SYSTEM, {code: code for code in LANGUAGES})


def _directory_search(
    ctx: FhirContext, query: SearchQuery, criteria: directory.SearchQuery
) -> directory.Results:
    return directory.search(
        ctx.session, ctx.principal, criteria, limit=max(query.count, 1), cursor=query.cursor
    )


def search_practitioners(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Listed practitioners by name and language, by name."""
    languages = _language_codes(query)
    if languages is not None and not languages:
        return _nothing()
    criteria = directory.SearchQuery(
        name=query.one("name") or "", languages=tuple(sorted(languages or ())), sort="name"
    )
    results = _directory_search(ctx, query, criteria)
    return SearchResult(
        resources=[practitioner_to_fhir(hit.practitioner) for hit in results.hits],
        total=results.total,
        next_cursor=results.next_cursor,
    )


# --- PractitionerRole ---------------------------------------------------------------------------------------


def specialty_concept(code: str) -> JSON:
    """A specialty as a CodeableConcept: SNOMED CT when the mapping is certain, always the text."""
    concept: JSON = {"text": SPECIALTIES.get(code, code)}
    snomed = SPECIALTY_SNOMED.get(code)
    if snomed:
        concept["coding"] = [{"system": SNOMED, "code": snomed[0], "display": snomed[1]}]
    return concept


def _blocks(row: Schedule) -> list[tuple[time, time]]:
    """A schedule's working hours with its breaks cut out."""
    try:
        breaks = sorted(
            (time.fromisoformat(a), time.fromisoformat(b)) for a, b in json.loads(row.breaks or "[]")
        )
    except (ValueError, TypeError):
        breaks = []
    blocks, start = [], row.start_time
    for pause_start, pause_end in breaks:
        if pause_end <= start or pause_start >= row.end_time:
            continue
        if pause_start > start:
            blocks.append((start, pause_start))
        start = max(start, pause_end)
    if start < row.end_time:
        blocks.append((start, row.end_time))
    return blocks


def available_times(schedules: list[Schedule]) -> list[JSON]:
    """``availableTime`` from weekly schedules: one entry per distinct block of hours, with its days."""
    days: dict[tuple[time, time], set[int]] = {}
    for row in schedules:
        for block in _blocks(row):
            days.setdefault(block, set()).add(row.weekday)
    ordered = sorted(days.items(), key=lambda item: (min(item[1]), item[0]))
    return [
        {
            "daysOfWeek": [DAYS[day] for day in sorted(weekdays)],
            "availableStartTime": start.isoformat(timespec="seconds"),
            "availableEndTime": end.isoformat(timespec="seconds"),
        }
        for (start, end), weekdays in ordered
    ]


def _places(schedules: list[Schedule]) -> list[Location]:
    unique = {row.location_id: row.location for row in schedules}
    return sorted(unique.values(), key=lambda loc: (loc.name.lower(), str(loc.id)))


def role_to_fhir(practitioner: Practitioner, schedules: list[Schedule]) -> JSON:
    """The FHIR PractitionerRole of a directory profile and its current weekly schedules."""
    role = ROLE_CODES.get(practitioner.user.role)
    codes = [{"coding": [{"system": ROLE_SYSTEM, "code": role[0], "display": role[1]}]}] if role else []
    return drop_empty(
        {
            "resourceType": "PractitionerRole",
            "id": str(practitioner.id),
            "meta": {"lastUpdated": instant(practitioner.updated_at)},
            "active": True,
            "practitioner": reference("Practitioner", practitioner.id, practitioner_name(practitioner)),
            "organization": reference(
                "Organization", practitioner.organisation_id, practitioner.organisation.name
            ),
            "code": codes,
            "specialty": [
                specialty_concept(s.code) for s in sorted(practitioner.specialties, key=lambda s: s.code)
            ],
            "location": [reference("Location", loc.id, loc.name) for loc in _places(schedules)],
            "telecom": _phone(practitioner.organisation.phone),
            "availableTime": available_times(schedules),
        }
    )


def read_role(ctx: FhirContext, practitioner_id: uuid.UUID) -> JSON:
    """The role of one directory profile."""
    practitioner = directory.get_practitioner(ctx.session, ctx.principal, practitioner_id)
    hours = directory.working_hours(ctx.session, [practitioner.id])
    return role_to_fhir(practitioner, hours[practitioner.id])


def _specialty_codes(query: SearchQuery) -> set[str] | None:
    """Our specialty codes matching ``specialty`` (SNOMED code, with or without its system, or our code)
    and ``specialty:text`` (a word starting the specialty's name); ``None`` when neither is given."""
    found: set[str] | None = None
    by_snomed = {snomed[0]: code for code, snomed in SPECIALTY_SNOMED.items() if snomed}
    values = _alternatives(query, "specialty")
    if values:
        found = set()
        for value in values:
            system, code = token(value)
            if system in (None, SNOMED) and code in by_snomed:
                found.add(by_snomed[code])
            elif system is None and code.lower() in SPECIALTIES:
                found.add(code.lower())
    texts = _alternatives(query, "specialty:text")
    if texts:
        matching = {
            code
            for code, label in SPECIALTIES.items()
            for text in texts
            if any(word.startswith(text.lower()) for word in label.lower().split())
            or label.lower().startswith(text.lower())
        }
        found = matching if found is None else found & matching
    return found


def search_roles(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Roles of listed practitioners by specialty, location, practitioner, organization and role."""
    specialties = _specialty_codes(query)
    roles = _codes(
        query, "role", ROLE_SYSTEM, {code[0]: role for role, code in ROLE_CODES.items() if code is not None}
    )
    if (specialties is not None and not specialties) or (roles is not None and not roles):
        return _nothing()
    criteria = directory.SearchQuery(
        specialties=tuple(sorted(specialties or ())),
        roles=tuple(sorted(roles or ())),
        practitioner_ids=_ids(query, "practitioner", "Practitioner"),
        organisation_ids=_ids(query, "organization", "Organization"),
        location_ids=_ids(query, "location", "Location"),
        sort="name",
    )
    results = _directory_search(ctx, query, criteria)
    practitioners = [hit.practitioner for hit in results.hits]
    hours = directory.working_hours(ctx.session, [p.id for p in practitioners])
    included: list[JSON] = []
    for practitioner in practitioners:
        if "PractitionerRole:practitioner" in query.includes:
            included.append(practitioner_to_fhir(practitioner))
        if "PractitionerRole:organization" in query.includes:
            included.append(organisation_to_fhir(practitioner.organisation))
        if "PractitionerRole:location" in query.includes:
            included += [location_to_fhir(loc) for loc in _places(hours[practitioner.id])]
    return SearchResult(
        resources=[role_to_fhir(p, hours[p.id]) for p in practitioners],
        total=results.total,
        next_cursor=results.next_cursor,
        included=included,
    )


# --- Organization -------------------------------------------------------------------------------------------


def organisation_type(kind: str) -> JSON:
    """An organisation's type: HL7 organization-type and our own kind."""
    code = ORG_TYPES[kind]
    label = ORG_KIND_LABELS.get(kind, kind)
    return {
        "coding": [
            {"system": ORG_TYPE_SYSTEM, "code": code, "display": ORG_TYPE_DISPLAY[code]},
            {"system": ORG_KIND_SYSTEM, "code": kind, "display": label},
        ],
        "text": label,
    }


def organisation_to_fhir(organisation: Organisation) -> JSON:
    """The FHIR Organization for an organisation (public directory information)."""
    address = _address(organisation.address, organisation.city, organisation.country)
    return drop_empty(
        {
            "resourceType": "Organization",
            "id": str(organisation.id),
            "meta": {"lastUpdated": instant(organisation.updated_at)},
            "active": True,
            "type": [organisation_type(organisation.kind)],
            "name": organisation.name,
            "telecom": _phone(organisation.phone),
            "address": [address] if address else [],
        }
    )


def read_organisation(ctx: FhirContext, organisation_id: uuid.UUID) -> JSON:
    """One organisation."""
    return organisation_to_fhir(accounts.get_organisation(ctx.session, ctx.principal, organisation_id))


def _organisation_kinds(query: SearchQuery) -> set[str] | None:
    """Our kinds matching ``type``: an HL7 organization-type code (every kind of that type) or our kind."""
    values = _alternatives(query, "type")
    if not values:
        return None
    kinds: set[str] = set()
    for value in values:
        system, code = token(value)
        if system in (None, ORG_TYPE_SYSTEM):
            kinds |= {kind for kind, org_type in ORG_TYPES.items() if org_type == code}
        if system in (None, ORG_KIND_SYSTEM) and code in ORG_TYPES:
            kinds.add(code)
    return kinds


def search_organisations(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Organisations by name, type and city, by name."""
    kinds = _organisation_kinds(query)
    if kinds is not None and not kinds:
        return _nothing()
    page = accounts.search_organisations(
        ctx.session,
        ctx.principal,
        name=query.one("name") or "",
        kinds=tuple(sorted(kinds or ())),
        city=query.one("address-city") or "",
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    return SearchResult(
        resources=[organisation_to_fhir(o) for o in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
    )


# --- Location -----------------------------------------------------------------------------------------------


def location_to_fhir(location: Location) -> JSON:
    """The FHIR Location for a place where an organisation sees patients."""
    organisation = location.organisation
    address = _address(location.address, location.city, organisation.country)
    position = None
    if location.latitude is not None and location.longitude is not None:
        position = {"latitude": location.latitude, "longitude": location.longitude}
    return drop_empty(
        {
            "resourceType": "Location",
            "id": str(location.id),
            "meta": {"lastUpdated": instant(location.updated_at)},
            "status": "active",
            "name": location.name,
            "mode": "instance",
            "address": address,
            "position": position,
            "managingOrganization": reference("Organization", organisation.id, organisation.name),
        }
    )


def read_location(ctx: FhirContext, location_id: uuid.UUID) -> JSON:
    """One location."""
    return location_to_fhir(directory.get_location(ctx.session, ctx.principal, location_id))


def search_locations(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Locations by name, city and organisation, by name."""
    page = directory.search_locations(
        ctx.session,
        ctx.principal,
        name=query.one("name") or "",
        city=query.one("address-city") or "",
        organisation_ids=_ids(query, "organization", "Organization"),
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    included = (
        [organisation_to_fhir(loc.organisation) for loc in page.items]
        if "Location:organization" in query.includes
        else []
    )
    return SearchResult(
        resources=[location_to_fhir(loc) for loc in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
        included=included,
    )


NAME = "Every word starts a word of the name (case-insensitive)."
RESOURCES = (
    ResourceType(
        name="Practitioner",
        documentation="Licensed practitioners listed in the provider directory (public profile only); "
        "readable by every signed-in role.",
        read=read_practitioner,
        search=search_practitioners,
        search_params=(
            SearchParam("name", "string", NAME),
            SearchParam("communication", "token", f"A language spoken ({LANGUAGE_SYSTEM}, e.g. 'pt')."),
        ),
    ),
    ResourceType(
        name="PractitionerRole",
        documentation="One per directory profile (same id as the Practitioner): organisation, specialties "
        "(SNOMED CT where certain), the locations of the weekly schedule and its hours.",
        read=read_role,
        search=search_roles,
        search_params=(
            SearchParam(
                "specialty",
                "token",
                f"A specialty: SNOMED CT code ({SNOMED}|394579002) or our code (cardiology); "
                "specialty:text matches the name.",
            ),
            SearchParam("location", "reference", "Works at this Location."),
            SearchParam("practitioner", "reference", "The role of this Practitioner."),
            SearchParam("organization", "reference", "Works for this Organization."),
            SearchParam(
                "role", "token", f"The practitioner role ({ROLE_SYSTEM}: doctor, nurse, pharmacist)."
            ),
        ),
        modifiers=("specialty:text",),
        includes=(
            "PractitionerRole:practitioner",
            "PractitionerRole:location",
            "PractitionerRole:organization",
        ),
    ),
    ResourceType(
        name="Organization",
        documentation="Hospitals, clinics, blood banks and pharmacies (public directory information).",
        read=read_organisation,
        search=search_organisations,
        search_params=(
            SearchParam("name", "string", NAME),
            SearchParam(
                "type",
                "token",
                f"{ORG_TYPE_SYSTEM} (prov) or our kind ({ORG_KIND_SYSTEM}: hospital, clinic, blood_bank, "
                "pharmacy).",
            ),
            SearchParam("address-city", "string", "The city starts with this (case-insensitive)."),
        ),
    ),
    ResourceType(
        name="Location",
        documentation="Places where an organisation sees patients, with their position.",
        read=read_location,
        search=search_locations,
        search_params=(
            SearchParam("name", "string", NAME),
            SearchParam("address-city", "string", "The city starts with this (case-insensitive)."),
            SearchParam("organization", "reference", "Managed by this Organization."),
        ),
        includes=("Location:organization",),
    ),
)
