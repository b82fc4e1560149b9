"""FHIR Patient: the mapping of the profile, every search parameter, paging, create, update and who may
see or change what."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.fhir.resources import patient as fhir_patient
from caresync.identity.models import CareRelationship, Patient
from caresync.identity.rules import SEXES, format_health_id
from tests.conftest import Cast, Factory, Person
from tests.fhir.conftest import FhirApi, ids

SignIn = Callable[[Person], dict[str, str]]
ADMINISTRATIVE_GENDER = {"male", "female", "other", "unknown"}  # the R4 required value set
CONTACT_ROLE = {"BP", "CP", "EP", "PR", "E", "C", "F", "I", "N", "S", "U"}  # v2-0131 codes


def full_profile(**overrides: Any) -> dict[str, Any]:
    """Every mapped profile field, with distinct values."""
    fields: dict[str, Any] = {
        "given_name": "Ana Maria",
        "family_name": "Ferreira",
        "birth_date": date(1984, 3, 9),
        "sex": "female",
        "phone": "+351 912 345 678",
        "email": "ana.ferreira@example.org",
        "address_line": "Rua das Flores 12",
        "city": "Porto",
        "postal_code": "4050-262",
        "country": "PT",
        "latitude": 41.1496,
        "longitude": -8.611,
        "emergency_contact_name": "Rui Ferreira",
        "emergency_contact_phone": "+351 913 000 111",
        "emergency_contact_relation": "Brother",
        "blood_group": "A+",
        "timezone": "Europe/Lisbon",
    }
    fields.update(overrides)
    return fields


def new_resource(**overrides: Any) -> dict[str, Any]:
    """A Patient a client would POST."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": "Okafor", "given": ["Chidi", "Emeka"]}],
        "gender": "male",
        "birthDate": "1990-07-21",
        "telecom": [
            {"system": "phone", "value": "+44 20 7946 0018", "use": "mobile"},
            {"system": "email", "value": "chidi@example.org"},
        ],
        "address": [{"line": ["1 Long Lane", "Flat 2"], "city": "London", "country": "gb"}],
        "contact": [
            {
                "relationship": [{"coding": [{"system": fhir_patient.CONTACT_ROLE_SYSTEM, "code": "C"}]}],
                "name": {"given": ["Ngozi"], "family": "Okafor"},
                "telecom": [{"system": "phone", "value": "+44 20 7946 0999"}],
            }
        ],
    }
    resource.update(overrides)
    return resource


def audit_actions(tx: Any, action: str) -> list[AuditEntry]:
    with tx() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


# --- the tables ------------------------------------------------------------------------------------------


@pytest.mark.no_db
def test_every_sex_maps_to_an_administrative_gender_and_back() -> None:
    assert set(fhir_patient.GENDERS) == set(SEXES)
    for sex in SEXES:
        code = fhir_patient.GENDERS[sex]
        assert code in ADMINISTRATIVE_GENDER
        assert fhir_patient.FROM_GENDER[code] == sex


@pytest.mark.no_db
def test_relation_table_gives_role_codes_and_reads_back() -> None:
    for word, (code, display) in fhir_patient.RELATIONS.items():
        assert code.isupper()
        assert code.isalpha()
        assert display
        concepts = fhir_patient.relationship(word.title())
        assert concepts[0]["coding"][0]["code"] in CONTACT_ROLE
        assert concepts[1]["coding"][0] == {
            "system": fhir_patient.ROLE_CODE_SYSTEM,
            "code": code,
            "display": display,
        }
        # a code alone (no text) reads back as a word of the same code
        coded_only = [{"coding": [{"system": fhir_patient.ROLE_CODE_SYSTEM, "code": code}]}]
        assert fhir_patient.RELATIONS[fhir_patient._relation(coded_only)][0] == code
    assert fhir_patient.relationship("godmother")[1] == {"text": "godmother"}


# --- read --------------------------------------------------------------------------------------------------


def test_read_maps_every_profile_field(fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn) -> None:
    profile = make.patient(**full_profile())
    make.care(cast["doctor"], profile)
    response = fhir.get(f"Patient/{profile.id}", sign_in(cast["doctor"]))
    assert response.status_code == 200, response.text
    resource = response.json()
    assert resource["id"] == str(profile.id)
    assert resource["meta"]["lastUpdated"].startswith(str(date.today().year))
    assert resource["identifier"] == [
        {"use": "official", "system": "urn:caresync:health-id", "value": profile.health_id}
    ]
    assert resource["active"] is True
    assert resource["name"] == [
        {"use": "official", "text": "Ana Maria Ferreira", "family": "Ferreira", "given": ["Ana Maria"]}
    ]
    assert resource["telecom"] == [
        {"system": "phone", "value": "+351 912 345 678"},
        {"system": "email", "value": "ana.ferreira@example.org"},
    ]
    assert resource["gender"] == "female"
    assert resource["birthDate"] == "1984-03-09"
    (address,) = resource["address"]
    assert address["use"] == "home"
    assert address["line"] == ["Rua das Flores 12"]
    assert (address["city"], address["postalCode"], address["country"]) == ("Porto", "4050-262", "PT")
    (geo,) = address["extension"]
    assert geo["url"] == "http://hl7.org/fhir/StructureDefinition/geolocation"
    assert {e["url"]: e["valueDecimal"] for e in geo["extension"]} == {
        "latitude": pytest.approx(41.1496),
        "longitude": pytest.approx(-8.611),
    }
    (contact,) = resource["contact"]
    assert contact["name"] == {"text": "Rui Ferreira"}
    assert contact["telecom"] == [{"system": "phone", "value": "+351 913 000 111"}]
    role, relation = contact["relationship"]
    assert role["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0131",
            "code": "C",
            "display": "Emergency Contact",
        }
    ]
    assert relation["text"] == "Brother"
    assert relation["coding"][0]["code"] == "BRO"
    # clinical and private fields are not on the Patient resource
    text = json.dumps(resource)
    assert "A+" not in text
    assert "Europe/Lisbon" not in text


def test_minimal_profile_has_no_empty_elements(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn
) -> None:
    profile = make.patient(given_name="Bo", family_name="Lind", sex="unknown")
    make.care(cast["nurse"], profile)
    resource = fhir.get(f"Patient/{profile.id}", sign_in(cast["nurse"])).json()
    assert resource["gender"] == "unknown"
    for absent in ("telecom", "address", "contact"):
        assert absent not in resource


def test_read_is_audited(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    patient = cast["patient"]
    assert fhir.get(f"Patient/{patient.patient_id}", sign_in(cast["doctor"])).status_code == 200
    reads = audit_actions(tx, "patient.read")
    assert [(e.actor_id, e.patient_id) for e in reads] == [(cast["doctor"].id, patient.patient_id)]


# --- permissions -------------------------------------------------------------------------------------------


def test_clinicians_see_their_care_list_only(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    other = cast.other_patient.id
    mine = str(cast["patient"].patient_id)
    for role in ("doctor", "nurse"):
        headers = sign_in(cast[role])
        assert fhir.get(f"Patient/{mine}", headers).status_code == 200
        hidden = fhir.get(f"Patient/{other}", headers)
        assert hidden.status_code == 404
        assert hidden.json()["issue"][0]["code"] == "not-found"
        bundle = fhir.get("Patient", headers).json()
        assert ids(bundle) == [mine]
        assert bundle["total"] == 1


def test_a_patient_sees_only_themselves(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    me = cast["patient"]
    headers = sign_in(me)
    assert fhir.get(f"Patient/{me.patient_id}", headers).status_code == 200
    assert fhir.get(f"Patient/{cast.other_patient.id}", headers).status_code == 404
    bundle = fhir.get("Patient", headers).json()
    assert ids(bundle) == [str(me.patient_id)]
    assert fhir.get("Patient?family=Zwartkopf", headers).json()["total"] == 0


def test_staff_without_patient_access(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    response = fhir.get(f"Patient/{cast['patient'].patient_id}", sign_in(cast["pharmacist"]))
    assert response.status_code in (403, 404)
    assert response.json()["resourceType"] == "OperationOutcome"


def test_patient_scoped_app_sees_only_its_patient(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: Callable[..., dict[str, str]]
) -> None:
    me = cast["patient"]
    headers = app_token(sign_in(me), "patient/Patient.read")
    assert ids(fhir.get("Patient", headers).json()) == [str(me.patient_id)]
    assert fhir.get(f"Patient/{me.patient_id}", headers).status_code == 200
    assert fhir.get(f"Patient/{cast.other_patient.id}", headers).status_code == 404


# --- search ------------------------------------------------------------------------------------------------


@pytest.fixture
def ward(cast: Cast, make: Factory) -> dict[str, Patient]:
    """Three more patients in the doctor's care, with distinct names, births, sexes, phones and emails."""
    people = {
        "ana": make.patient(**full_profile()),
        "bruno": make.patient(
            given_name="Bruno",
            family_name="Alves",
            birth_date=date(1990, 12, 31),
            sex="male",
            phone="(021) 555-0101",
            email="Bruno.Alves@Example.org",
        ),
        "carla": make.patient(
            given_name="Carla", family_name="Anaya", birth_date=date(2001, 6, 15), sex="other"
        ),
    }
    for person in people.values():
        make.care(cast["doctor"], person)
    assert cast["patient"].patient is not None  # also in the doctor's care: born 1980-05-17, female
    return {**people, "cast": cast["patient"].patient}


SEARCHES = [
    ("name=ana", {"ana", "carla"}),  # "Ana Maria" and "Anaya"
    ("name=MARIA FERR", {"ana"}),  # across given and family, any case
    ("name=nobody", set()),
    ("name=bruno,carla", {"bruno", "carla"}),  # comma: OR
    ("name=an&name=alves", set()),  # repetition: AND
    ("name:contains=lve", {"bruno"}),
    ("family=ferr", {"ana"}),
    ("family=bruno", set()),
    ("given=arl", {"carla"}),
    ("given=alves", set()),
    ("birthdate=1990-12-31", {"bruno"}),
    ("birthdate=1990-12-30", set()),
    ("birthdate=1984", {"ana"}),
    ("birthdate=2001-06", {"carla"}),
    ("birthdate=ge1990-12-31", {"bruno", "carla"}),
    ("birthdate=gt1990-12-31", {"carla"}),
    ("birthdate=lt1990-12-31", {"ana", "cast"}),
    ("birthdate=le1990-12-31", {"ana", "bruno", "cast"}),
    ("birthdate=ge1985&birthdate=lt2000", {"bruno"}),
    ("birthdate=lt1900-01-01", set()),
    ("gender=female", {"ana", "cast"}),
    ("gender=male,other", {"bruno", "carla"}),
    ("gender=http://hl7.org/fhir/administrative-gender|other", {"carla"}),
    ("gender=unknown", set()),
    ("gender=male&gender=female", set()),
    ("phone=%2B351912345678", {"ana"}),  # separators ignored
    ("phone=021-555-0101", {"bruno"}),
    ("phone=0215550102", set()),
    ("email=bruno.alves@example.org", {"bruno"}),  # any case
    ("email=ana.ferreira@EXAMPLE.org", {"ana"}),
    ("email=someone@example.org", set()),
    ("name=&gender=&family=ferreira", {"ana"}),  # empty values are ignored
]


@pytest.mark.parametrize(("params", "expected"), SEARCHES)
def test_search_parameters(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, ward: dict[str, Patient], params: str, expected: set[str]
) -> None:
    bundle = fhir.get(f"Patient?{params}", sign_in(cast["doctor"])).json()
    names = {key for key, p in ward.items() if str(p.id) in ids(bundle)}
    assert names == expected
    assert bundle["total"] == len(expected) == len(ids(bundle))


def test_search_by_identifier(fhir: FhirApi, cast: Cast, sign_in: SignIn, ward: dict[str, Patient]) -> None:
    headers = sign_in(cast["doctor"])
    bruno = ward["bruno"]
    for value in (
        bruno.health_id,
        format_health_id(bruno.health_id),
        f"urn:caresync:health-id|{bruno.health_id}",
    ):
        assert ids(fhir.get("Patient", headers, params={"identifier": value}).json()) == [str(bruno.id)]
    both = f"{bruno.health_id},{ward['carla'].health_id}"
    assert len(ids(fhir.get("Patient", headers, params={"identifier": both}).json())) == 2
    wrong_digit = bruno.health_id[:-1] + str((int(bruno.health_id[-1]) + 1) % 10)
    for miss in (
        f"http://other.example/ids|{bruno.health_id}",
        f"|{bruno.health_id}",
        wrong_digit,
        "not-an-id",
        cast.other_patient.health_id,  # exists, but not in this doctor's care
    ):
        bundle = fhir.get("Patient", headers, params={"identifier": miss}).json()
        assert bundle["total"] == 0, miss
        assert "entry" not in bundle


def test_search_refuses_bad_values(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    for params, words in (
        ("gender=woman", "gender must be one of"),
        ("birthdate=31-12-1990", "is not a FHIR date"),
        ("family:exact=Alves", "is not supported here (supported: family:contains"),
        ("gender:not=male", "is not supported here"),
    ):
        response = fhir.get(f"Patient?{params}", headers)
        assert response.status_code == 400, params
        assert words in response.json()["issue"][0]["diagnostics"]


def test_paging_with_count_one(fhir: FhirApi, cast: Cast, sign_in: SignIn, ward: dict[str, Patient]) -> None:
    headers = sign_in(cast["doctor"])
    first = fhir.get("Patient?_count=1&name=a", headers).json()
    assert first["total"] == 4  # ana, bruno (Alves), carla and the cast's patient ("Patient…")
    assert len(ids(first)) == 1
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http://testserver/fhir/R4/Patient?")
    assert "name=a" in next_url
    assert "_count=1" in next_url
    assert "_cursor=" in next_url
    everyone = fhir.search_all("Patient?_count=1&name=a", headers)
    found = [p["id"] for p in everyone]
    assert len(found) == len(set(found)) == 4
    assert {str(p.id) for p in ward.values()} == set(found)
    # sorted by family name across pages
    families = [p["name"][0]["family"] for p in everyone]
    assert families == sorted(families)
    # the last page has no next link
    last = fhir.get("Patient?_count=4&name=a", headers).json()
    assert [link["relation"] for link in last["link"]] == ["self"]


# --- create ------------------------------------------------------------------------------------------------


def test_doctor_creates_a_patient_who_joins_their_care(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any
) -> None:
    headers = sign_in(cast["doctor"])
    response = fhir.post("Patient", new_resource(id="client-chosen"), headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] != "client-chosen"
    assert response.headers["location"] == f"http://testserver/fhir/R4/Patient/{created['id']}"
    health_id = created["identifier"][0]["value"]
    assert len(health_id) == 12
    assert health_id.isdigit()
    read = fhir.get(f"Patient/{created['id']}", headers).json()
    assert read == {**created, "meta": read["meta"]}
    assert read["name"][0]["given"] == ["Chidi Emeka"]
    assert read["address"][0]["line"] == ["1 Long Lane, Flat 2"]
    assert read["address"][0]["country"] == "GB"
    assert read["contact"][0]["name"] == {"text": "Ngozi Okafor"}
    with tx() as s:
        row = s.get(Patient, uuid.UUID(created["id"]))
        assert row is not None
        assert (row.phone, row.email, row.sex) == ("+44 20 7946 0018", "chidi@example.org", "male")
        assert row.emergency_contact_relation == ""
        link = s.execute(select(CareRelationship).where(CareRelationship.patient_id == row.id)).scalar_one()
        assert link.practitioner_id == cast["doctor"].id
    assert created["id"] in ids(fhir.get("Patient?family=okafor", headers).json())
    assert [e.resource_id for e in audit_actions(tx, "patient.create")] == [created["id"]]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": []}, "Patient.name: a name (family and given) is required"),
        ({"name": [{"given": ["Chidi"]}]}, "Patient.name.family"),
        ({"name": [{"family": "Okafor"}]}, "Patient.name.given"),
        ({"name": [{"family": "A", "given": ["B"]}, {"family": "C", "given": ["D"]}]}, "one name"),
        ({"gender": None}, "Patient.gender: the gender is required"),
        ({"gender": "woman"}, "Patient.gender: use one of"),
        ({"birthDate": None}, "Patient.birthDate: the birth date is required"),
        ({"birthDate": "1990"}, "full date of birth"),
        ({"birthDate": "2999-01-01"}, "Patient.birthDate: birth date must be between"),
        ({"telecom": [{"system": "phone", "value": "call me maybe"}]}, "Patient.telecom (phone)"),
        ({"telecom": [{"system": "email", "value": "not-an-email"}]}, "Patient.telecom (email)"),
        ({"telecom": [{"system": "fax", "value": "123"}]}, "Patient.telecom.system"),
        (
            {"telecom": [{"system": "phone", "value": "1"}, {"system": "phone", "value": "2"}]},
            "one phone",
        ),
        ({"address": [{"country": "Portugal"}]}, "Patient.address.country"),
        ({"address": [{"state": "Lisboa"}]}, "Patient.address.state"),
        ({"maritalStatus": {"text": "married"}}, "Patient.maritalStatus"),
        ({"active": False}, "Patient.active"),
        ({"identifier": [{"system": "urn:caresync:health-id", "value": "1"}]}, "assigned by CareSync"),
        ({"identifier": [{"system": "http://example.org/mrn", "value": "1"}]}, "only its Health ID"),
    ],
)
def test_create_refuses_bad_bodies_with_clear_messages(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any, change: dict[str, Any], words: str
) -> None:
    body = new_resource(**change)
    body = {k: v for k, v in body.items() if v is not None}
    response = fhir.post("Patient", body, sign_in(cast["doctor"]))
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "business-rule"
    assert words in issue["diagnostics"]
    assert audit_actions(tx, "patient.create") == []


def test_patients_and_other_staff_cannot_create(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    for role in ("patient", "pharmacist", "admin"):
        response = fhir.post("Patient", new_resource(), sign_in(cast[role]))
        assert response.status_code == 403, role
        assert response.json()["issue"][0]["code"] == "forbidden"


# --- update ------------------------------------------------------------------------------------------------


def test_doctor_updates_a_patient_in_care(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn, tx: Any
) -> None:
    profile = make.patient(**full_profile())
    make.care(cast["doctor"], profile)
    headers = sign_in(cast["doctor"])
    resource = fhir.get(f"Patient/{profile.id}", headers).json()
    resource["telecom"] = [{"system": "phone", "value": "+351 999 888 777"}]  # the email is dropped
    resource["contact"][0]["relationship"] = [{"text": "sister"}]
    del resource["address"]
    response = fhir.put(f"Patient/{profile.id}", resource, headers)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["telecom"] == [{"system": "phone", "value": "+351 999 888 777"}]
    assert "address" not in updated
    assert updated["contact"][0]["relationship"][1]["coding"][0]["code"] == "SIS"
    with tx() as s:
        row = s.get(Patient, profile.id)
        assert row is not None
        assert (row.email, row.city, row.latitude) == ("", "", None)
        assert row.emergency_contact_relation == "sister"
        assert (row.blood_group, row.timezone) == ("A+", "Europe/Lisbon")  # not on the resource: kept
    (entry,) = audit_actions(tx, "patient.update")
    assert set(json.loads(entry.detail)["fields"]) >= {"email", "phone", "city", "latitude"}


def test_a_patient_updates_their_own_profile(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    me = cast["patient"]
    with tx() as s:
        row = s.get(Patient, me.patient_id)
        assert row is not None
        row.blood_group = "O-"  # set by the care team
    headers = sign_in(me)
    resource = fhir.get(f"Patient/{me.patient_id}", headers).json()
    resource["address"] = [{"line": ["Avenida 5"], "city": "Faro", "postalCode": "8000-001"}]
    response = fhir.put(f"Patient/{me.patient_id}", resource, headers)
    assert response.status_code == 200, response.text
    assert response.json()["address"][0]["city"] == "Faro"
    with tx() as s:
        row = s.get(Patient, me.patient_id)
        assert row is not None
        assert (row.city, row.blood_group) == ("Faro", "O-")


def test_update_rules(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    me = cast["patient"]
    headers = sign_in(me)
    resource = fhir.get(f"Patient/{me.patient_id}", headers).json()
    # the Health ID cannot change
    changed = {**resource, "identifier": [{"system": "urn:caresync:health-id", "value": "1" * 12}]}
    response = fhir.put(f"Patient/{me.patient_id}", changed, headers)
    assert response.status_code == 422
    assert "Health ID cannot be changed" in response.json()["issue"][0]["diagnostics"]
    # a required element cannot be removed
    no_gender = {k: v for k, v in resource.items() if k != "gender"}
    response = fhir.put(f"Patient/{me.patient_id}", no_gender, headers)
    assert response.status_code == 422
    assert "Patient.gender" in response.json()["issue"][0]["diagnostics"]
    # another patient's record is invisible
    other = {**resource, "id": str(cast.other_patient.id)}
    del other["identifier"]
    assert fhir.put(f"Patient/{cast.other_patient.id}", other, headers).status_code == 404
    # nothing was changed; only the denied attempt is on record
    attempts = audit_actions(tx, "patient.update")
    assert [(e.outcome, e.patient_id) for e in attempts] == [("denied", cast.other_patient.id)]
    with tx() as s:
        other_row = s.get(Patient, cast.other_patient.id)
        assert other_row is not None
        assert other_row.family_name == "Zwartkopf"


def test_read_only_app_token_cannot_update(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: Callable[..., dict[str, str]]
) -> None:
    me = cast["patient"]
    headers = app_token(sign_in(me), "patient/*.read")
    resource = fhir.get(f"Patient/{me.patient_id}", headers).json()
    response = fhir.put(f"Patient/{me.patient_id}", resource, headers)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    writer = app_token(sign_in(me), "patient/Patient.rus")
    assert fhir.put(f"Patient/{me.patient_id}", resource, writer).status_code == 200
