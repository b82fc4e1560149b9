"""The generic behaviour of the FHIR API, driven through Patient: the CapabilityStatement, authentication,
format and body errors as OperationOutcome, unknown routes and methods, the search controls, ``_id``,
``Patient/$everything``, app tokens kept off the platform API, and the audit of every request."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.fhir import registry
from tests.conftest import API, Cast, Person, bearer
from tests.fhir.conftest import BASE, FhirApi, ids

SignIn = Callable[[Person], dict[str, str]]
AppToken = Callable[[dict[str, str], str], dict[str, str]]
INTERACTIONS = {"read": "read", "search": "search-type", "create": "create", "update": "update"}


def outcome(response: Any, status: int, code: str) -> str:
    """Check an OperationOutcome's status and issue code; return its diagnostics."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["code"] == code, issue
    assert issue["severity"] == "error"
    return str(issue["diagnostics"])


def a_patient(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": "Mensah", "given": ["Kofi"]}],
        "gender": "male",
        "birthDate": "1975-02-14",
    }
    resource.update(overrides)
    return resource


# --- CapabilityStatement ----------------------------------------------------------------------------------


def test_metadata_lists_every_resource_without_a_token(fhir: FhirApi) -> None:
    response = fhir.get("metadata")  # validated as a CapabilityStatement by the fixture
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    (rest,) = statement["rest"]
    assert rest["mode"] == "server"
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    listed = {entry["type"]: entry for entry in rest["resource"]}
    offered = registry.resource_types()
    assert set(listed) == set(offered)
    assert "Patient" in listed
    for name, resource in offered.items():
        entry = listed[name]
        expected = {code for attr, code in INTERACTIONS.items() if getattr(resource, attr) is not None}
        assert {i["code"] for i in entry["interaction"]} == expected, name
        if resource.search is not None:
            params = {p["name"]: p["type"] for p in entry["searchParam"]}
            assert params == {"_id": "token"} | {p.name: p.type for p in resource.search_params}, name
        assert set(entry.get("searchInclude", [])) == set(resource.includes), name
    patient = listed["Patient"]
    assert {i["code"] for i in patient["interaction"]} == {"read", "search-type", "create", "update"}
    assert {"identifier", "name", "family", "given", "birthdate", "gender", "phone", "email"} <= {
        p["name"] for p in patient["searchParam"]
    }
    assert patient["operation"][0]["name"] == "everything"


def test_metadata_answers_json_only(fhir: FhirApi) -> None:
    outcome(fhir.get("metadata?_format=xml"), 406, "not-supported")
    assert fhir.get("metadata?_format=json").status_code == 200


# --- authentication ---------------------------------------------------------------------------------------


def test_requests_without_a_valid_token_get_401(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn
) -> None:
    path = f"Patient/{cast['patient'].patient_id}"
    for headers in (None, {"Authorization": "Basic abc"}, bearer("not-a-real-token")):
        response = fhir.get(path, headers)
        outcome(response, 401, "login")
        assert response.headers["www-authenticate"] == "Bearer"
    headers = sign_in(cast["doctor"])
    assert fhir.get(path, headers).status_code == 200
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    assert "revoked" in outcome(fhir.get(path, headers), 401, "login")
    outcome(fhir.get("Patient", headers), 401, "login")


def test_a_half_signed_in_session_is_refused(fhir: FhirApi, client: TestClient, cast: Cast) -> None:
    doctor = cast["doctor"]
    login = client.post(f"{API}/auth/login", json={"email": doctor.email, "password": doctor.password})
    assert login.json()["stage"] == "mfa"
    detail = outcome(fhir.get("Patient", bearer(login.json()["access_token"])), 401, "login")
    assert "second factor" in detail


# --- formats and bodies -----------------------------------------------------------------------------------


def test_xml_is_not_acceptable(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    outcome(fhir.get("Patient?_format=xml", headers), 406, "not-supported")
    outcome(fhir.get("Patient?_format=application/fhir%2Bxml", headers), 406, "not-supported")
    outcome(fhir.get("Patient", {**headers, "Accept": "application/fhir+xml"}), 406, "not-supported")
    for accept in ("application/fhir+json", "application/json", "*/*"):
        assert fhir.get("Patient", {**headers, "Accept": accept}).status_code == 200
    assert fhir.get("Patient?_format=json", headers).status_code == 200


def test_bad_bodies(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    xml = fhir.request(
        "POST", "Patient", {**headers, "Content-Type": "application/fhir+xml"}, content=b"<Patient/>"
    )
    assert "application/fhir+json" in outcome(xml, 415, "not-supported")
    text = fhir.request("POST", "Patient", {**headers, "Content-Type": "text/plain"}, content=b"hello")
    outcome(text, 415, "not-supported")
    broken = fhir.request(
        "POST", "Patient", {**headers, "Content-Type": "application/fhir+json"}, content=b"{not json"
    )
    assert "not valid JSON" in outcome(broken, 400, "invalid")
    # invalid FHIR: the message names the element
    detail = outcome(fhir.post("Patient", a_patient(birthDate="14/02/1975"), headers), 400, "invalid")
    assert "birthDate" in detail
    detail = outcome(fhir.post("Patient", a_patient(name="Kofi Mensah"), headers), 400, "invalid")
    assert "name" in detail
    # the wrong resource type, or none
    wrong = {**a_patient(), "resourceType": "Practitioner"}
    assert "must be a Patient" in outcome(fhir.post("Patient", wrong, headers), 400, "invalid")
    untyped = {k: v for k, v in a_patient().items() if k != "resourceType"}
    outcome(fhir.post("Patient", untyped, headers), 400, "invalid")
    # nothing was created
    assert fhir.get("Patient?family=mensah", headers).json()["total"] == 0
    assert fhir.post("Patient", a_patient(), headers).status_code == 201


def test_put_id_must_match_the_url(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    me = cast["patient"]
    headers = sign_in(me)
    resource = fhir.get(f"Patient/{me.patient_id}", headers).json()
    other_id = str(uuid.uuid4())
    detail = outcome(fhir.put(f"Patient/{other_id}", resource, headers), 400, "invalid")
    assert other_id in detail
    no_id = {k: v for k, v in resource.items() if k != "id"}
    outcome(fhir.put(f"Patient/{me.patient_id}", no_id, headers), 400, "invalid")
    assert fhir.put(f"Patient/{me.patient_id}", resource, headers).status_code == 200


# --- routes -----------------------------------------------------------------------------------------------


def test_unknown_paths_and_methods(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    detail = outcome(fhir.get("Spaceship", headers), 404, "not-found")
    assert "metadata" in detail
    outcome(fhir.get("Patient/a/b/c", headers), 404, "not-found")
    patient_id = cast["patient"].patient_id
    outcome(fhir.request("DELETE", f"Patient/{patient_id}", headers), 405, "not-supported")
    outcome(fhir.request("PATCH", f"Patient/{patient_id}", headers), 405, "not-supported")
    # an id that cannot exist is simply not found
    outcome(fhir.get("Patient/not-a-uuid", headers), 404, "not-found")
    outcome(fhir.get(f"Patient/{uuid.uuid4()}", headers), 404, "not-found")


# --- search controls --------------------------------------------------------------------------------------


def test_unknown_search_parameters(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    detail = outcome(fhir.get("Patient?colour=blue", headers), 400, "invalid")
    assert "colour" in detail
    assert "birthdate" in detail
    lenient = fhir.get("Patient?colour=blue", {**headers, "Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    assert ids(lenient.json()) == [str(cast["patient"].patient_id)]
    assert "colour" not in lenient.json()["link"][0]["url"]


def test_count_bounds(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    outcome(fhir.get("Patient?_count=201", headers), 400, "invalid")
    outcome(fhir.get("Patient?_count=-1", headers), 400, "invalid")
    outcome(fhir.get("Patient?_count=ten", headers), 400, "invalid")
    outcome(fhir.get("Patient?_summary=text", headers), 400, "not-supported")


@pytest.mark.parametrize("params", ["_summary=count", "_count=0", "_summary=count&_count=5"])
def test_count_only(fhir: FhirApi, cast: Cast, make: Any, sign_in: SignIn, params: str) -> None:
    for _ in range(3):
        make.care(cast["doctor"], make.patient())
    bundle = fhir.get(f"Patient?{params}", sign_in(cast["doctor"])).json()
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 4
    assert "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_search_by_post_form(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    response = fhir.request(
        "POST", "Patient/_search", headers, data={"gender": "female", "birthdate": "1980-05-17"}
    )
    assert response.status_code == 200, response.text
    assert ids(response.json()) == [str(cast["patient"].patient_id)]
    response = fhir.request("POST", "Patient/_search", headers, data={"gender": "male"})
    assert response.json()["total"] == 0
    outcome(fhir.request("POST", "Patient/_search", headers, data={"colour": "blue"}), 400, "invalid")


def test_search_by_id(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["doctor"])
    mine = str(cast["patient"].patient_id)
    bundle = fhir.get(f"Patient?_id={mine}", headers).json()
    assert ids(bundle) == [mine]
    assert bundle["total"] == 1
    # hidden, missing and malformed ids are simply absent
    both = f"{mine},{cast.other_patient.id},{uuid.uuid4()}"
    assert ids(fhir.get(f"Patient?_id={both}", headers).json()) == [mine]
    assert fhir.get(f"Patient?_id={cast.other_patient.id}", headers).json()["total"] == 0
    assert fhir.get("Patient?_id=nonsense", headers).json()["total"] == 0
    outcome(fhir.get(f"Patient?_id={mine}&gender=female", headers), 400, "not-supported")


# --- $everything ------------------------------------------------------------------------------------------


def test_everything_starts_with_the_patient(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    me = cast["patient"]
    for person in (me, cast["doctor"]):
        response = fhir.get(f"Patient/{me.patient_id}/$everything", sign_in(person))
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        first = bundle["entry"][0]
        assert first["resource"]["resourceType"] == "Patient"
        assert first["resource"]["id"] == str(me.patient_id)
        assert first["fullUrl"] == f"http://testserver{BASE}/Patient/{me.patient_id}"
        assert bundle["total"] == len(bundle["entry"])
        patients = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == 1


def test_everything_hides_other_patients(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    other = cast.other_patient.id
    for role in ("doctor", "patient"):
        outcome(fhir.get(f"Patient/{other}/$everything", sign_in(cast[role])), 404, "not-found")
    outcome(fhir.get(f"Patient/{uuid.uuid4()}/$everything", sign_in(cast["doctor"])), 404, "not-found")
    outcome(fhir.get(f"Patient/{other}/$everything"), 401, "login")


# --- app tokens stay on the FHIR API ----------------------------------------------------------------------


def test_app_tokens_are_refused_on_the_platform_api(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn, app_token: AppToken
) -> None:
    me = cast["patient"]
    headers = app_token(sign_in(me), "patient/*.read")
    assert fhir.get(f"Patient/{me.patient_id}", headers).status_code == 200
    for path in (f"{API}/auth/me", f"{API}/patients/{me.patient_id}", f"{API}/auth/sessions"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert "FHIR API" in response.json()["detail"]


# --- audit ------------------------------------------------------------------------------------------------


def test_requests_are_audited(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    doctor, patient_id = cast["doctor"], cast["patient"].patient_id
    headers = sign_in(doctor)
    assert fhir.get(f"Patient/{patient_id}", headers).status_code == 200
    assert fhir.get("Patient?gender=female", headers).status_code == 200
    assert fhir.get(f"Patient/{cast.other_patient.id}", headers).status_code == 404
    with tx() as s:
        entries = s.execute(select(AuditEntry).where(AuditEntry.actor_id == doctor.id)).scalars().all()
        found = {(e.action, e.outcome, e.patient_id) for e in entries}
    assert ("patient.read", "success", patient_id) in found
    assert ("patient.list", "success", None) in found
    assert ("patient.read", "denied", cast.other_patient.id) in found
