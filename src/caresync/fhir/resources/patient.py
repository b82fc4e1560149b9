"""Patient: the demographic profile (``identity.patients``).

Mapping (CareSync field -> FHIR R4 Patient):

- ``health_id`` -> ``identifier`` (system ``urn:caresync:health-id``, canonical 12 digits, official use)
- ``given_name`` / ``family_name`` -> the one ``name`` (use ``official``)
- ``phone`` / ``email`` -> ``telecom`` (system ``phone`` / ``email``)
- ``sex`` -> ``gender`` (:data:`GENDERS`, AdministrativeGender)
- ``birth_date`` -> ``birthDate``
- ``address_line``, ``city``, ``postal_code``, ``country``, ``latitude``/``longitude`` -> the home
  ``address`` (coordinates as the standard ``geolocation`` extension)
- ``emergency_contact_*`` -> the one ``contact``, relationship ``C`` (Emergency Contact, v2-0131) plus the
  stated relation (text, and a v3 RoleCode when :data:`RELATIONS` knows the word)

Not on the Patient resource: the blood group (an Observation, LOINC 882-1), allergies, insurance and the
time zone (R4 has no standard Patient element or extension for it). An update (PUT) replaces every element
above and leaves those fields alone; elements CareSync cannot store are refused (422) rather than silently
dropped.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from caresync.core.errors import ValidationFailed
from caresync.fhir.context import JSON, FhirContext
from caresync.fhir.outcome import invalid
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.search import SearchQuery, SearchResult, date_range, drop_empty, instant, split_or, token
from caresync.identity import patients
from caresync.identity.models import Patient
from caresync.identity.rules import normalise_health_id
from caresync.identity.schemas import PatientFields

HEALTH_ID_SYSTEM = "urn:caresync:health-id"
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
GEOLOCATION = "http://hl7.org/fhir/StructureDefinition/geolocation"
CONTACT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0131"
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
EMERGENCY_CONTACT = {"system": CONTACT_ROLE_SYSTEM, "code": "C", "display": "Emergency Contact"}

# CareSync sex -> FHIR AdministrativeGender (http://hl7.org/fhir/R4/valueset-administrative-gender.html)
GENDERS = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
FROM_GENDER = {code: sex for sex, code in GENDERS.items()}
# The relation people type for an emergency contact -> v3 RoleCode (PersonalRelationshipRoleType)
RELATIONS = {
    "mother": ("MTH", "mother"),
    "father": ("FTH", "father"),
    "parent": ("PRN", "parent"),
    "spouse": ("SPS", "spouse"),
    "husband": ("HUSB", "husband"),
    "wife": ("WIFE", "wife"),
    "partner": ("DOMPART", "domestic partner"),
    "sister": ("SIS", "sister"),
    "brother": ("BRO", "brother"),
    "sibling": ("SIB", "sibling"),
    "child": ("CHILD", "child"),
    "daughter": ("DAUC", "daughter"),
    "son": ("SONC", "son"),
    "friend": ("FRND", "unrelated friend"),
    "neighbour": ("NBOR", "neighbor"),
    "neighbor": ("NBOR", "neighbor"),
    "grandparent": ("GRPRN", "grandparent"),
    "grandmother": ("GRMTH", "grandmother"),
    "grandfather": ("GRFTH", "grandfather"),
    "grandchild": ("GRNDCHILD", "grandchild"),
    "aunt": ("AUNT", "aunt"),
    "uncle": ("UNCLE", "uncle"),
    "cousin": ("COUSN", "cousin"),
    "relative": ("FAMMEMB", "family member"),
}
FROM_ROLE_CODE = {code: word for word, (code, _display) in reversed(RELATIONS.items())}
# where each domain field lives in the resource, for error messages
FIELD_PATHS = {
    "given_name": "Patient.name.given",
    "family_name": "Patient.name.family",
    "birth_date": "Patient.birthDate",
    "sex": "Patient.gender",
    "phone": "Patient.telecom (phone)",
    "email": "Patient.telecom (email)",
    "address_line": "Patient.address.line",
    "city": "Patient.address.city",
    "postal_code": "Patient.address.postalCode",
    "country": "Patient.address.country",
    "latitude": "Patient.address geolocation latitude",
    "longitude": "Patient.address geolocation longitude",
    "emergency_contact_name": "Patient.contact.name",
    "emergency_contact_phone": "Patient.contact.telecom (phone)",
    "emergency_contact_relation": "Patient.contact.relationship",
}
# top-level elements read from a body (the rest are refused); meta, text and language are ignored
ACCEPTED = frozenset(
    {"resourceType", "id", "meta", "text", "language", "identifier", "active", "name", "telecom"}
    | {"gender", "birthDate", "address", "contact"}
)


# --- domain -> FHIR --------------------------------------------------------------------------------------


def _address(patient: Patient) -> JSON:
    extension = []
    if patient.latitude is not None and patient.longitude is not None:
        extension.append(
            {
                "url": GEOLOCATION,
                "extension": [
                    {"url": "latitude", "valueDecimal": patient.latitude},
                    {"url": "longitude", "valueDecimal": patient.longitude},
                ],
            }
        )
    address = drop_empty(
        {
            "extension": extension,
            "line": [patient.address_line] if patient.address_line else [],
            "city": patient.city,
            "postalCode": patient.postal_code,
            "country": patient.country,
        }
    )
    return {"use": "home", **address} if address else {}


def relationship(relation: str) -> list[JSON]:
    """The contact's relationship: Emergency Contact, then the stated relation (coded when known)."""
    concepts: list[JSON] = [{"coding": [EMERGENCY_CONTACT]}]
    if relation:
        known = RELATIONS.get(relation.strip().lower())
        coding = [{"system": ROLE_CODE_SYSTEM, "code": known[0], "display": known[1]}] if known else []
        concepts.append(drop_empty({"coding": coding, "text": relation}))
    return concepts


def _contact(patient: Patient) -> JSON:
    if not (
        patient.emergency_contact_name
        or patient.emergency_contact_phone
        or patient.emergency_contact_relation
    ):
        return {}
    phone = patient.emergency_contact_phone
    return drop_empty(
        {
            "relationship": relationship(patient.emergency_contact_relation),
            "name": {"text": patient.emergency_contact_name} if patient.emergency_contact_name else {},
            "telecom": [{"system": "phone", "value": phone}] if phone else [],
        }
    )


def to_fhir(patient: Patient) -> JSON:
    """The FHIR Patient for a profile."""
    telecom = [
        {"system": system, "value": value}
        for system, value in (("phone", patient.phone), ("email", patient.email))
        if value
    ]
    contact = _contact(patient)
    address = _address(patient)
    return drop_empty(
        {
            "resourceType": "Patient",
            "id": str(patient.id),
            "meta": {"lastUpdated": instant(patient.updated_at)},
            "identifier": [{"use": "official", "system": HEALTH_ID_SYSTEM, "value": patient.health_id}],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "text": f"{patient.given_name} {patient.family_name}",
                    "family": patient.family_name,
                    "given": [patient.given_name],
                }
            ],
            "telecom": telecom,
            "gender": GENDERS.get(patient.sex, "unknown"),
            "birthDate": patient.birth_date.isoformat(),
            "address": [address] if address else [],
            "contact": [contact] if contact else [],
        }
    )


# --- FHIR -> domain --------------------------------------------------------------------------------------


def _refuse(path: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {why}")


def _only(element: JSON, allowed: set[str], path: str) -> None:
    extra = sorted(set(element) - allowed)
    if extra:
        raise _refuse(f"{path}.{extra[0]}", "CareSync does not store this element; leave it out.")


def _one(body: JSON, key: str) -> JSON | None:
    items = body.get(key) or []
    if len(items) > 1:
        raise _refuse(f"Patient.{key}", f"CareSync keeps one {key} per patient; send at most one.")
    return items[0] if items else None


def _name_fields(body: JSON) -> JSON:
    name = _one(body, "name")
    if name is None:
        raise _refuse("Patient.name", "a name (family and given) is required.")
    _only(name, {"use", "text", "family", "given"}, "Patient.name")
    family = (name.get("family") or "").strip()
    given = " ".join(g.strip() for g in name.get("given") or [] if g.strip())
    if not family:
        raise _refuse("Patient.name.family", "the family name is required.")
    if not given:
        raise _refuse("Patient.name.given", "at least one given name is required.")
    return {"family_name": family, "given_name": given}


def _telecom_fields(telecom: list[JSON], path: str, systems: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for point in telecom:
        _only(point, {"system", "value", "use", "rank"}, path)
        system = point.get("system")
        if system not in systems:
            raise _refuse(f"{path}.system", f"CareSync stores only {' and '.join(systems)} here.")
        if system in found:
            raise _refuse(path, f"CareSync keeps one {system} here; send at most one.")
        value = (point.get("value") or "").strip()
        if not value:
            raise _refuse(f"{path}.value", f"give the {system}.")
        found[system] = value
    return found


def _address_fields(body: JSON) -> JSON:
    address = _one(body, "address")
    fields: JSON = {
        "address_line": "",
        "city": "",
        "postal_code": "",
        "country": "",
        "latitude": None,
        "longitude": None,
    }
    if address is None:
        return fields
    path = "Patient.address"
    _only(address, {"use", "type", "text", "line", "city", "postalCode", "country", "extension"}, path)
    fields["address_line"] = ", ".join(line.strip() for line in address.get("line") or [] if line.strip())
    fields["city"] = address.get("city") or ""
    fields["postal_code"] = address.get("postalCode") or ""
    fields["country"] = (address.get("country") or "").strip().upper()
    for extension in address.get("extension") or []:
        if extension.get("url") != GEOLOCATION:
            raise _refuse(f"{path}.extension", f"only the {GEOLOCATION} extension is stored.")
        parts = {part.get("url"): part.get("valueDecimal") for part in extension.get("extension") or []}
        if parts.keys() != {"latitude", "longitude"} or None in parts.values():
            raise _refuse(f"{path}.extension", "geolocation needs a latitude and a longitude (valueDecimal).")
        fields["latitude"], fields["longitude"] = float(parts["latitude"]), float(parts["longitude"])
    return fields


def _relation(concepts: list[JSON]) -> str:
    for concept in concepts:
        codings = concept.get("coding") or []
        if codings and all(c.get("system") == CONTACT_ROLE_SYSTEM for c in codings):
            continue  # the contact role (Emergency Contact, Next-of-Kin ...): not a personal relation
        if concept.get("text"):
            return str(concept["text"]).strip()
        for coding in codings:
            if coding.get("system") == ROLE_CODE_SYSTEM and coding.get("code") in FROM_ROLE_CODE:
                return FROM_ROLE_CODE[coding["code"]]
            if coding.get("display"):
                return str(coding["display"]).strip()
    return ""


def _contact_fields(body: JSON) -> JSON:
    contact = _one(body, "contact")
    fields = {"emergency_contact_name": "", "emergency_contact_phone": "", "emergency_contact_relation": ""}
    if contact is None:
        return fields
    path = "Patient.contact"
    _only(contact, {"relationship", "name", "telecom"}, path)
    name = contact.get("name") or {}
    _only(name, {"use", "text", "family", "given"}, f"{path}.name")
    full = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""])
    fields["emergency_contact_name"] = " ".join(full.split())
    phones = _telecom_fields(contact.get("telecom") or [], f"{path}.telecom", ("phone",))
    fields["emergency_contact_phone"] = phones.get("phone", "")
    fields["emergency_contact_relation"] = _relation(contact.get("relationship") or [])
    return fields


def _check_identifiers(body: JSON, patient: Patient | None) -> None:
    for identifier in body.get("identifier") or []:
        if identifier.get("system") != HEALTH_ID_SYSTEM:
            raise _refuse(
                "Patient.identifier", f"CareSync stores only its Health ID (system {HEALTH_ID_SYSTEM})."
            )
        if patient is None:
            raise _refuse("Patient.identifier", "the Health ID is assigned by CareSync; leave it out.")
        if normalise_health_id(identifier.get("value") or "") != patient.health_id:
            raise _refuse("Patient.identifier", "the Health ID cannot be changed.")


def from_fhir(body: JSON) -> JSON:
    """The profile fields a Patient resource carries (all of them: a PUT replaces each one); 422 naming
    the element when something is missing, not storable or breaks the profile rules."""
    _only(body, set(ACCEPTED), "Patient")
    if body.get("active") is False:
        raise _refuse("Patient.active", "patients cannot be deactivated through FHIR.")
    if not body.get("gender"):
        raise _refuse("Patient.gender", "the gender is required.")
    if body["gender"] not in FROM_GENDER:
        raise _refuse("Patient.gender", f"use one of {', '.join(FROM_GENDER)}.")
    if not body.get("birthDate"):
        raise _refuse("Patient.birthDate", "the birth date is required.")
    try:
        birth_date = date.fromisoformat(body["birthDate"])
    except ValueError:
        raise _refuse("Patient.birthDate", "give the full date of birth (YYYY-MM-DD).") from None
    fields: JSON = {
        **_name_fields(body),
        "birth_date": birth_date,
        "sex": FROM_GENDER[body["gender"]],
        **_address_fields(body),
        **_contact_fields(body),
    }
    telecom = _telecom_fields(body.get("telecom") or [], "Patient.telecom", ("phone", "email"))
    fields["phone"], fields["email"] = telecom.get("phone", ""), telecom.get("email", "")
    try:
        checked = PatientFields.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        path = FIELD_PATHS.get(field, "Patient")
        raise ValidationFailed(f"{path}: {message}.", extra={"field": field}) from None
    return checked.model_dump(include=set(fields))


# --- interactions ----------------------------------------------------------------------------------------


def read(ctx: FhirContext, patient_id: uuid.UUID) -> JSON:
    """Read one patient (role, care relationship or consent decide; audited by the service)."""
    return to_fhir(patients.get_patient(ctx.session, ctx.principal, patient_id))


def create(ctx: FhirContext, body: JSON) -> JSON:
    """A clinician registers a patient, who joins their care list (as in the app)."""
    _check_identifiers(body, None)
    return to_fhir(patients.create_patient(ctx.session, ctx.principal, from_fhir(body)))


def update(ctx: FhirContext, patient_id: uuid.UUID, body: JSON) -> JSON:
    """Replace a profile's FHIR elements (a patient their own, a clinician a patient in their care)."""
    fields = from_fhir(body)
    patient = patients.update_patient(ctx.session, ctx.principal, patient_id, fields)
    _check_identifiers(body, patient)  # after the access check: hidden patients stay 404
    return to_fhir(patient)


# --- search ----------------------------------------------------------------------------------------------

STRING_PARAMS = ("name", "family", "given")


def _string_groups(query: SearchQuery, name: str) -> list[list[str]]:
    raws = query.params.get(name, []) + query.params.get(f"{name}:contains", [])
    return [group for group in (split_or(raw) for raw in raws) if group]  # an empty value is ignored


def _tokens(query: SearchQuery, name: str, convert: Any) -> list[str] | None:
    """AND across repetitions of a token parameter: the values every repetition allows (``None``: absent)."""
    allowed: set[str] | None = None
    for raw in query.params.get(name, []):
        alternatives = split_or(raw)
        if not alternatives:
            continue  # an empty value is ignored
        values = {v for v in (convert(*token(alt)) for alt in alternatives) if v is not None}
        allowed = values if allowed is None else allowed & values
    return None if allowed is None else sorted(allowed)


def _health_id(system: str | None, value: str) -> str | None:
    return value if system in (None, HEALTH_ID_SYSTEM) else None


def _gender(system: str | None, value: str) -> str | None:
    if system not in (None, GENDER_SYSTEM):
        return None
    if value not in FROM_GENDER:
        raise invalid(f"gender must be one of {', '.join(FROM_GENDER)} (got '{value}').")
    return FROM_GENDER[value]


def _value(_system: str | None, value: str) -> str:
    return value


def _birth_bounds(query: SearchQuery) -> tuple[date | None, date | None]:
    """``birthdate`` prefixes as [from, before) dates: a birth day overlapping the range matches."""
    values = query.params.get("birthdate", [])
    if not values:
        return None, None
    span = date_range(values)
    born_from = span.start.date() if span.start else None
    born_before = None
    if span.end is not None:
        born_before = span.end.date()
        if span.end.time() != span.end.time().min:
            born_before += timedelta(days=1)
    return born_from, born_before


def search(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Search the patients this caller may see (patients: themselves; clinicians: their care list)."""
    born_from, born_before = _birth_bounds(query)
    page = patients.list_patients(
        ctx.session,
        ctx.principal,
        health_ids=_tokens(query, "identifier", _health_id),
        names=_string_groups(query, "name"),
        families=_string_groups(query, "family"),
        givens=_string_groups(query, "given"),
        born_from=born_from,
        born_before=born_before,
        sexes=_tokens(query, "gender", _gender),
        phones=_tokens(query, "phone", _value),
        emails=_tokens(query, "email", _value),
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    return SearchResult(
        resources=[to_fhir(p) for p in page.items], next_cursor=page.next_cursor, total=page.total
    )


RESOURCES = (
    ResourceType(
        name="Patient",
        documentation="Patients' demographic profiles; a patient sees their own, clinicians their care list. "
        "Clinicians create patients (who join their care list); a patient may update their own profile.",
        read=read,
        search=search,
        create=create,
        update=update,
        modifiers=tuple(f"{name}:contains" for name in STRING_PARAMS),
        search_params=(
            SearchParam(
                "identifier", "token", f"The Health ID: '{HEALTH_ID_SYSTEM}|<digits>' or the digits alone."
            ),
            SearchParam("name", "string", "Any part of the given or family name (case-insensitive)."),
            SearchParam("family", "string", "Part of the family name (case-insensitive)."),
            SearchParam("given", "string", "Part of the given name (case-insensitive)."),
            SearchParam("birthdate", "date", "The date of birth, with eq/ge/gt/le/lt prefixes."),
            SearchParam("gender", "token", "female | male | other | unknown."),
            SearchParam("phone", "token", "The phone number (spaces, dashes and brackets ignored)."),
            SearchParam("email", "token", "The email address (case-insensitive)."),
        ),
    ),
)
