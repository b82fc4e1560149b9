"""The provider directory over FHIR: Practitioner, PractitionerRole, Organization and Location.

Mappings and their code tables, every search parameter (a match and a non-match), ``_include`` entries in
``include`` mode, paging with ``total`` and absolute ``next`` links, and who may read the directory (every
signed-in role; anonymous callers get 401, a token whose scopes do not cover the type 403)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from typing import Any

import pytest

from caresync.db import session_factory, transaction
from caresync.fhir.resources import directory as fhir_directory
from caresync.identity.models import Organisation
from caresync.identity.rules import OrganisationKind, Role
from caresync.scheduling.models import Location
from caresync.scheduling.rules import LANGUAGES, SPECIALTIES
from tests.conftest import ROLES, Cast, Factory, Person
from tests.fhir.conftest import FhirApi, ids
from tests.scheduling.conftest import Clinician, SchedulingFactory

SNOMED = "http://snomed.info/sct"
# The codes of the HL7 code systems we map to (R4: terminology.hl7.org practitioner-role and
# organization-type).
HL7_PRACTITIONER_ROLES = {"doctor", "nurse", "pharmacist", "researcher", "teacher", "ict"}
HL7_ORGANIZATION_TYPES = {
    "prov",
    "dept",
    "team",
    "govt",
    "ins",
    "pay",
    "edu",
    "reli",
    "crs",
    "cg",
    "bus",
    "other",
}


@pytest.fixture
def sched(make: Factory) -> SchedulingFactory:
    """Scheduling row factories."""
    return SchedulingFactory(make)


def organisation(name: str, kind: str, city: str, **fields: Any) -> Organisation:
    with transaction(session_factory()) as s:
        org = Organisation(name=name, kind=kind, city=city, country="PT", **fields)
        s.add(org)
        s.flush()
        s.expunge(org)
    return org


def location(org: Organisation, name: str, city: str, **fields: Any) -> Location:
    with transaction(session_factory()) as s:
        place = Location(organisation_id=org.id, name=name, city=city, timezone="Europe/Lisbon", **fields)
        s.add(place)
        s.flush()
        s.expunge(place)
    return place


@dataclass
class World:
    """Three organisations, three locations, two listed practitioners and two that are not listed."""

    hospital: Organisation
    clinic: Organisation
    pharmacy: Organisation
    wing: Location  # hospital, Lisbon, with a position
    harbour: Location  # clinic, Porto
    outpatients: Location  # hospital, nobody works there
    heart: Clinician  # doctor, cardiology, pt+en, at the wing Mon-Fri 9-17 with a lunch break
    skin: Clinician  # nurse, dermatology+oncology, fr, at the harbour Tue/Thu and the wing Wed, 8-12
    unlisted: Clinician  # licensed, no working hours
    unlicensed: Clinician  # working hours, no licence
    reader: dict[str, str]  # a signed-in patient's headers


@pytest.fixture
def world(make: Factory, sched: SchedulingFactory, sign_in: Callable[[Person], dict[str, str]]) -> World:
    hospital = organisation(
        "Saint Aurelia Hospital", "hospital", "Lisbon", phone="+351 210 000 001", address="Rua das Flores 1"
    )
    clinic = organisation("Harbour Family Clinic", "clinic", "Porto")
    pharmacy = organisation("Corner Pharmacy", "pharmacy", "Porto")
    wing = location(
        hospital,
        "Aurelia Cardiology Wing",
        "Lisbon",
        address="Rua das Flores 1",
        latitude=38.7369,
        longitude=-9.1427,
    )
    harbour = location(clinic, "Harbour Clinic Main", "Porto")
    outpatients = location(hospital, "Aurelia Outpatients", "Lisbon")
    heart = sched.practitioner(
        org=hospital, specialties=("cardiology",), languages=("pt", "en"), full_name="Ana Marques"
    )
    sched.hours(heart, wing)  # Monday to Friday, 9-17, lunch 12-13
    skin = sched.practitioner(
        role="nurse",
        org=clinic,
        specialties=("dermatology", "oncology"),
        languages=("fr",),
        full_name="Bruno Costa",
    )
    sched.hours(skin, harbour, weekdays=(1, 3), start=time(8), end=time(12), breaks=())
    sched.hours(skin, wing, weekdays=(2,), start=time(8), end=time(12), breaks=())
    unlisted = sched.practitioner(org=hospital, full_name="Carla Unlisted")
    unlicensed = sched.practitioner(
        org=hospital, person=make.staff("doctor", hospital, verified=False, full_name="Dora Nolicence")
    )
    sched.hours(unlicensed, wing)
    reader = sign_in(make.patient_user())
    return World(
        hospital, clinic, pharmacy, wing, harbour, outpatients, heart, skin, unlisted, unlicensed, reader
    )


def search(fhir: FhirApi, path: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = fhir.get(path, headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def found(fhir: FhirApi, path: str, headers: dict[str, str], **params: Any) -> set[str]:
    """The ids of every match (all pages)."""
    bundle = search(fhir, path, headers, **params)
    return set(ids(bundle))


def sid(*rows: Any) -> set[str]:
    return {str(row.id) for row in rows}


# --- code tables --------------------------------------------------------------------------------------------


def test_every_specialty_maps_to_a_snomed_code_or_text() -> None:
    assert set(fhir_directory.SPECIALTY_SNOMED) == set(SPECIALTIES)
    mapped = [m for m in fhir_directory.SPECIALTY_SNOMED.values() if m is not None]
    assert len(mapped) >= 14
    for code, display in mapped:
        assert re.fullmatch(r"[1-9][0-9]{5,17}", code), code  # a SNOMED CT concept id
        assert display
    assert len({code for code, _ in mapped}) == len(mapped)  # no two specialties share a code
    for code in SPECIALTIES:
        concept = fhir_directory.specialty_concept(code)
        assert concept["text"] == SPECIALTIES[code]
        assert ("coding" in concept) == (fhir_directory.SPECIALTY_SNOMED[code] is not None)


def test_roles_kinds_and_languages_map_to_allowed_codes() -> None:
    assert set(fhir_directory.ROLE_CODES) == {r.value for r in Role}
    assert {c[0] for c in fhir_directory.ROLE_CODES.values() if c} <= HL7_PRACTITIONER_ROLES
    assert fhir_directory.ROLE_CODES["doctor"] == ("doctor", "Doctor")
    assert set(fhir_directory.ORG_TYPES) == {k.value for k in OrganisationKind}
    assert set(fhir_directory.ORG_TYPES.values()) <= HL7_ORGANIZATION_TYPES
    assert set(fhir_directory.ORG_KIND_LABELS) == set(fhir_directory.ORG_TYPES)
    for lang in LANGUAGES:
        assert re.fullmatch(r"[a-z]{2}", lang)  # BCP 47 primary language subtags


# --- Practitioner -------------------------------------------------------------------------------------------


def test_a_practitioner_shows_the_public_profile_only(fhir: FhirApi, world: World) -> None:
    response = fhir.get(f"Practitioner/{world.heart.id}", world.reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(world.heart.id)
    assert body["active"] is True
    assert body["name"] == [{"use": "official", "text": "Dr Ana Marques", "prefix": ["Dr"]}]
    assert [c["coding"][0] for c in body["communication"]] == [
        {"system": "urn:ietf:bcp:47", "code": "en", "display": "English"},
        {"system": "urn:ietf:bcp:47", "code": "pt", "display": "Portuguese"},
    ]
    assert body["meta"]["lastUpdated"]
    for private in ("identifier", "telecom", "qualification", "address", "birthDate"):
        assert private not in body  # the licence number and contact details are not public
    nurse = fhir.get(f"Practitioner/{world.skin.id}", world.reader).json()
    assert nurse["name"] == [{"use": "official", "text": "Bruno Costa"}]  # no title, no prefix


def test_unlicensed_and_unknown_practitioners_look_missing(fhir: FhirApi, world: World) -> None:
    for missing in (world.unlicensed.id, uuid.uuid4(), "not-a-uuid"):
        response = fhir.get(f"Practitioner/{missing}", world.reader)
        assert response.status_code == 404, response.text
        assert response.json()["issue"][0]["code"] == "not-found"


def test_practitioner_search_by_name_and_language(fhir: FhirApi, world: World) -> None:
    h = world.reader
    listed = sid(world.heart, world.skin)
    assert found(fhir, "Practitioner", h) == listed  # neither the unlisted nor the unlicensed one
    assert found(fhir, "Practitioner", h, name="ana") == sid(world.heart)
    assert found(fhir, "Practitioner", h, name="MARQ") == sid(world.heart)  # word prefix, any case
    assert found(fhir, "Practitioner", h, name="costa bru") == sid(world.skin)
    assert found(fhir, "Practitioner", h, name="arques") == set()  # not the middle of a word
    assert found(fhir, "Practitioner", h, name="ana costa") == set()
    assert found(fhir, "Practitioner", h, name="carla") == set()  # not listed: no working hours
    assert found(fhir, "Practitioner", h, communication="pt") == sid(world.heart)
    assert found(fhir, "Practitioner", h, communication="urn:ietf:bcp:47|fr") == sid(world.skin)
    assert found(fhir, "Practitioner", h, communication="fr,en") == listed
    assert found(fhir, "Practitioner", h, communication="de") == set()
    assert found(fhir, "Practitioner", h, communication="http://example.org|pt") == set()
    assert search(fhir, "Practitioner", h, name="ana")["total"] == 1


# --- PractitionerRole ---------------------------------------------------------------------------------------


def test_a_role_carries_organisation_specialties_locations_and_hours(fhir: FhirApi, world: World) -> None:
    response = fhir.get(f"PractitionerRole/{world.heart.id}", world.reader)
    assert response.status_code == 200, response.text
    role = response.json()
    assert role["practitioner"] == {
        "reference": f"Practitioner/{world.heart.id}",
        "display": "Dr Ana Marques",
    }
    assert role["organization"] == {
        "reference": f"Organization/{world.hospital.id}",
        "display": "Saint Aurelia Hospital",
    }
    assert role["code"] == [
        {"coding": [{"system": fhir_directory.ROLE_SYSTEM, "code": "doctor", "display": "Doctor"}]}
    ]
    assert role["specialty"] == [
        {"coding": [{"system": SNOMED, "code": "394579002", "display": "Cardiology"}], "text": "Cardiology"}
    ]
    assert role["location"] == [
        {"reference": f"Location/{world.wing.id}", "display": "Aurelia Cardiology Wing"}
    ]
    assert role["telecom"] == [{"system": "phone", "value": "+351 210 000 001", "use": "work"}]
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    assert role["availableTime"] == [
        {"daysOfWeek": weekdays, "availableStartTime": "09:00:00", "availableEndTime": "12:00:00"},
        {"daysOfWeek": weekdays, "availableStartTime": "13:00:00", "availableEndTime": "17:00:00"},
    ]

    nurse = fhir.get(f"PractitionerRole/{world.skin.id}", world.reader).json()
    assert nurse["code"][0]["coding"][0]["code"] == "nurse"
    assert nurse["specialty"] == [
        {
            "coding": [{"system": SNOMED, "code": "394582007", "display": "Dermatology"}],
            "text": "Dermatology",
        },
        {"text": "Oncology"},  # no certain SNOMED CT equivalent: text only
    ]
    assert [loc["reference"] for loc in nurse["location"]] == [
        f"Location/{world.wing.id}",  # "Aurelia …" sorts before "Harbour …"
        f"Location/{world.harbour.id}",
    ]
    assert nurse["availableTime"] == [
        {
            "daysOfWeek": ["tue", "wed", "thu"],
            "availableStartTime": "08:00:00",
            "availableEndTime": "12:00:00",
        }
    ]
    assert "telecom" not in nurse  # the clinic has no phone number
    assert fhir.get(f"PractitionerRole/{world.unlicensed.id}", world.reader).status_code == 404


def test_role_search_by_specialty(fhir: FhirApi, world: World) -> None:
    h, path = world.reader, "PractitionerRole"
    assert found(fhir, path, h, specialty="394579002") == sid(world.heart)
    assert found(fhir, path, h, specialty=f"{SNOMED}|394582007") == sid(world.skin)
    assert found(fhir, path, h, specialty="cardiology") == sid(world.heart)  # our own code
    assert found(fhir, path, h, specialty="394579002,394582007") == sid(world.heart, world.skin)
    assert found(fhir, path, h, specialty="http://loinc.org|394579002") == set()
    assert found(fhir, path, h, specialty="394591006") == set()  # neurology: nobody
    assert found(fhir, path, h, **{"specialty:text": "onco"}) == sid(world.skin)
    assert found(fhir, path, h, **{"specialty:text": "Cardio"}) == sid(world.heart)
    assert found(fhir, path, h, **{"specialty:text": "neuro"}) == set()


def test_role_search_by_location_practitioner_organisation_and_role(fhir: FhirApi, world: World) -> None:
    h, path = world.reader, "PractitionerRole"
    assert found(fhir, path, h, location=f"Location/{world.harbour.id}") == sid(world.skin)
    assert found(fhir, path, h, location=str(world.wing.id)) == sid(world.heart, world.skin)
    assert found(fhir, path, h, location=f"Location/{world.outpatients.id}") == set()
    assert found(fhir, path, h, practitioner=f"Practitioner/{world.heart.id}") == sid(world.heart)
    assert found(fhir, path, h, practitioner=f"Practitioner/{world.unlisted.id}") == set()
    assert found(fhir, path, h, organization=f"Organization/{world.clinic.id}") == sid(world.skin)
    assert found(fhir, path, h, organization=f"Organization/{world.pharmacy.id}") == set()
    assert found(fhir, path, h, role="nurse") == sid(world.skin)
    assert found(fhir, path, h, role=f"{fhir_directory.ROLE_SYSTEM}|doctor") == sid(world.heart)
    assert found(fhir, path, h, role="pharmacist") == set()
    both = found(
        fhir,
        path,
        h,
        specialty="394582007",
        location=f"Location/{world.wing.id}",
        organization=str(world.clinic.id),
    )
    assert both == sid(world.skin)
    assert found(fhir, path, h, specialty="394579002", organization=str(world.clinic.id)) == set()


def test_role_search_includes_practitioners_locations_and_organisations(fhir: FhirApi, world: World) -> None:
    params = [
        ("_include", "PractitionerRole:practitioner"),
        ("_include", "PractitionerRole:location"),
        ("_include", "PractitionerRole:organization"),
    ]
    response = fhir.get("PractitionerRole", world.reader, params=params)
    assert response.status_code == 200, response.text
    bundle = response.json()
    modes: dict[tuple[str, str], str] = {}
    for entry in bundle["entry"]:
        key = (entry["resource"]["resourceType"], entry["resource"]["id"])
        assert key not in modes  # no duplicates (the wing is shared by both)
        modes[key] = entry["search"]["mode"]
        assert entry["fullUrl"].endswith(f"/fhir/R4/{key[0]}/{key[1]}")
    assert modes == {
        ("PractitionerRole", str(world.heart.id)): "match",
        ("PractitionerRole", str(world.skin.id)): "match",
        ("Practitioner", str(world.heart.id)): "include",
        ("Practitioner", str(world.skin.id)): "include",
        ("Location", str(world.wing.id)): "include",
        ("Location", str(world.harbour.id)): "include",
        ("Organization", str(world.hospital.id)): "include",
        ("Organization", str(world.clinic.id)): "include",
    }
    assert bundle["total"] == 2
    only = fhir.get("PractitionerRole", world.reader, params={"_include": "PractitionerRole:location"}).json()
    assert {e["resource"]["resourceType"] for e in only["entry"] if e["search"]["mode"] == "include"} == {
        "Location"
    }
    plain = search(fhir, "PractitionerRole", world.reader)
    assert all(e["search"]["mode"] == "match" for e in plain["entry"])
    refused = fhir.get("PractitionerRole", world.reader, params={"_include": "PractitionerRole:service"})
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "not-supported"


def test_role_and_practitioner_paging(fhir: FhirApi, world: World, sched: SchedulingFactory) -> None:
    for n in range(3):
        extra = sched.practitioner(org=world.hospital, specialties=("cardiology",), full_name=f"Zed Page{n}")
        sched.hours(extra, world.outpatients, weekdays=(5,))
    first = search(fhir, "PractitionerRole", world.reader, specialty="394579002", _count=2)
    assert first["total"] == 4
    assert len(ids(first)) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http://testserver/fhir/R4/PractitionerRole?")
    assert "specialty=394579002" in next_url
    assert "_count=2" in next_url
    pages = fhir.search_all("PractitionerRole?specialty=394579002&_count=2", world.reader)
    assert len(pages) == 4
    assert len({r["id"] for r in pages}) == 4
    everyone = fhir.search_all("Practitioner?_count=1", world.reader)
    assert len(everyone) == 5
    summary = search(fhir, "Practitioner", world.reader, _summary="count")
    assert summary["total"] == 5
    assert "entry" not in summary


# --- Organization -------------------------------------------------------------------------------------------


def test_an_organisation_is_typed_and_addressed(fhir: FhirApi, world: World) -> None:
    response = fhir.get(f"Organization/{world.hospital.id}", world.reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Saint Aurelia Hospital"
    assert body["active"] is True
    assert body["type"] == [
        {
            "coding": [
                {"system": fhir_directory.ORG_TYPE_SYSTEM, "code": "prov", "display": "Healthcare Provider"},
                {"system": fhir_directory.ORG_KIND_SYSTEM, "code": "hospital", "display": "Hospital"},
            ],
            "text": "Hospital",
        }
    ]
    assert body["telecom"] == [{"system": "phone", "value": "+351 210 000 001", "use": "work"}]
    assert body["address"] == [
        {"use": "work", "line": ["Rua das Flores 1"], "city": "Lisbon", "country": "PT"}
    ]
    pharmacy = fhir.get(f"Organization/{world.pharmacy.id}", world.reader).json()
    assert pharmacy["type"][0]["coding"][1]["code"] == "pharmacy"
    assert "telecom" not in pharmacy
    assert pharmacy["address"] == [{"use": "work", "city": "Porto", "country": "PT"}]
    assert fhir.get(f"Organization/{uuid.uuid4()}", world.reader).status_code == 404


def test_organisation_search(fhir: FhirApi, world: World) -> None:
    h, path = world.reader, "Organization"
    everyone = sid(world.hospital, world.clinic, world.pharmacy)
    assert found(fhir, path, h) == everyone
    assert found(fhir, path, h, name="harbour") == sid(world.clinic)
    assert found(fhir, path, h, name="aur hosp") == sid(world.hospital)
    assert found(fhir, path, h, name="arbour") == set()
    assert found(fhir, path, h, type="prov") == everyone
    assert found(fhir, path, h, type=f"{fhir_directory.ORG_TYPE_SYSTEM}|prov") == everyone
    assert found(fhir, path, h, type="pharmacy") == sid(world.pharmacy)
    assert found(fhir, path, h, type=f"{fhir_directory.ORG_KIND_SYSTEM}|clinic,hospital") == sid(
        world.clinic, world.hospital
    )
    assert found(fhir, path, h, type="ins") == set()
    assert found(fhir, path, h, type=f"{fhir_directory.ORG_KIND_SYSTEM}|prov") == set()
    assert found(fhir, path, h, **{"address-city": "por"}) == sid(world.clinic, world.pharmacy)
    assert found(fhir, path, h, **{"address-city": "Madrid"}) == set()
    assert found(fhir, path, h, name="corner", **{"address-city": "lisbon"}) == set()
    first = search(fhir, path, h, _count=2)
    assert first["total"] == 3
    assert len(ids(first)) == 2
    assert [r["name"] for r in fhir.search_all("Organization?_count=1", h)] == [
        "Corner Pharmacy",
        "Harbour Family Clinic",
        "Saint Aurelia Hospital",
    ]


# --- Location -----------------------------------------------------------------------------------------------


def test_a_location_has_position_address_and_managing_organisation(fhir: FhirApi, world: World) -> None:
    response = fhir.get(f"Location/{world.wing.id}", world.reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Aurelia Cardiology Wing"
    assert body["status"] == "active"
    assert body["mode"] == "instance"
    assert body["position"] == {"latitude": 38.7369, "longitude": -9.1427}
    assert body["address"] == {"use": "work", "line": ["Rua das Flores 1"], "city": "Lisbon", "country": "PT"}
    assert body["managingOrganization"] == {
        "reference": f"Organization/{world.hospital.id}",
        "display": "Saint Aurelia Hospital",
    }
    harbour = fhir.get(f"Location/{world.harbour.id}", world.reader).json()
    assert "position" not in harbour
    assert fhir.get(f"Location/{uuid.uuid4()}", world.reader).status_code == 404


def test_location_search_and_include(fhir: FhirApi, world: World) -> None:
    h, path = world.reader, "Location"
    assert found(fhir, path, h) == sid(world.wing, world.harbour, world.outpatients)
    assert found(fhir, path, h, name="cardio") == sid(world.wing)
    assert found(fhir, path, h, name="aurelia") == sid(world.wing, world.outpatients)
    assert found(fhir, path, h, name="surgery") == set()
    assert found(fhir, path, h, **{"address-city": "porto"}) == sid(world.harbour)
    assert found(fhir, path, h, **{"address-city": "faro"}) == set()
    hospital = f"Organization/{world.hospital.id}"
    assert found(fhir, path, h, organization=hospital) == sid(world.wing, world.outpatients)
    assert found(fhir, path, h, organization=f"Organization/{world.pharmacy.id}") == set()
    bundle = search(fhir, path, h, organization=hospital, _include="Location:organization")
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [(e["resource"]["resourceType"], e["resource"]["id"]) for e in included] == [
        ("Organization", str(world.hospital.id))
    ]
    assert bundle["total"] == 2
    paged = fhir.search_all("Location?_count=1", h)
    assert [r["name"] for r in paged] == [
        "Aurelia Cardiology Wing",
        "Aurelia Outpatients",
        "Harbour Clinic Main",
    ]


# --- errors and permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("Practitioner", {"name:exact": "Ana"}),
        ("Practitioner", {"family": "Marques"}),  # not offered
        ("PractitionerRole", {"location": "Patient/" + str(uuid.UUID(int=1))}),
        ("PractitionerRole", {"organization": "not-an-id"}),
        ("PractitionerRole", [("specialty", "394579002"), ("specialty", "394582007")]),
        ("Organization", {"name": "a,b"}),
        ("Location", {"address-city:contains": "isb"}),
    ],
)
def test_bad_searches_are_refused_with_an_outcome(
    fhir: FhirApi, make: Factory, sign_in: Callable[[Person], dict[str, str]], path: str, params: Any
) -> None:
    response = fhir.get(path, sign_in(make.patient_user()), params=params)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] in ("invalid", "not-supported")


def test_every_signed_in_role_reads_the_directory_and_anonymous_callers_do_not(
    fhir: FhirApi, world: World, cast: Cast, sign_in: Callable[[Person], dict[str, str]]
) -> None:
    for role in ROLES:
        headers = sign_in(cast[role])
        assert found(fhir, "PractitionerRole", headers, specialty="394579002") == sid(world.heart), role
        assert fhir.get(f"Location/{world.wing.id}", headers).status_code == 200, role
    for path in (
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        f"Organization/{world.clinic.id}",
    ):
        response = fhir.get(path)
        assert response.status_code == 401, path
        assert response.json()["issue"][0]["code"] == "login"


def test_app_tokens_see_the_directory_only_with_a_covering_scope(
    fhir: FhirApi,
    world: World,
    make: Factory,
    sign_in: Callable[[Person], dict[str, str]],
    app_token: Callable[[dict[str, str], str], dict[str, str]],
) -> None:
    patient = sign_in(make.patient_user())
    everything = app_token(patient, "patient/*.read")
    assert found(fhir, "Practitioner", everything) == sid(world.heart, world.skin)
    locations_only = app_token(patient, "user/Location.read")
    assert fhir.get(f"Location/{world.wing.id}", locations_only).status_code == 200
    for path in ("PractitionerRole", f"Organization/{world.hospital.id}", "Practitioner"):
        refused = fhir.get(path, locations_only)
        assert refused.status_code == 403, path
        assert refused.json()["issue"][0]["code"] == "forbidden"
    patients_only = app_token(patient, "patient/Patient.read")
    assert fhir.get("Organization", patients_only).status_code == 403
