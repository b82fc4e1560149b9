"""Observation: a patient's blood group and the vital signs of their records, through FHIR."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.fhir.resources import observations as obs
from caresync.identity.rules import BLOOD_GROUPS
from caresync.records.models import RecordPolicy
from caresync.records.rules import VITAL_SIGNS
from tests.conftest import API, Cast, Factory
from tests.fhir.conftest import FhirApi, ids

Headers = dict[str, str]
SignIn = Callable[[Any], Headers]
LOINC = "http://loinc.org"


def add_vitals(
    client: TestClient,
    headers: Headers,
    patient_id: uuid.UUID,
    day: str,
    values: dict[str, float],
    supersedes: str | None = None,
) -> str:
    """Upload a vital-signs record over the platform API; returns its id."""
    form = {
        "patient_id": str(patient_id),
        "category": "vitals",
        "title": "Vital signs",
        "recorded_on": day,
        "text": "Measured at rest.",
        "measurements": json.dumps(values),
    }
    if supersedes:
        form["supersedes_id"] = supersedes
    response = client.post(f"{API}/records", data=form, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def coding(resource: dict[str, Any]) -> tuple[str, str]:
    first = resource["code"]["coding"][0]
    return first["system"], first["code"]


# --- tables -------------------------------------------------------------------------------------------------


@pytest.mark.no_db
def test_every_blood_group_has_its_snomed_finding() -> None:
    assert set(obs.BLOOD_GROUP_SNOMED) == set(BLOOD_GROUPS)
    codes = [code for code, _display in obs.BLOOD_GROUP_SNOMED.values()]
    assert len(set(codes)) == len(codes) == 8
    assert obs.BLOOD_GROUP_SNOMED["O+"][0] == "278147001"
    assert obs.BLOOD_GROUP_SNOMED["O-"][0] == "278148006"
    for group, (_code, display) in obs.BLOOD_GROUP_SNOMED.items():
        abo, rh = group[:-1], "positive" if group.endswith("+") else "negative"
        assert display == f"Blood group {abo} Rh(D) {rh}"


@pytest.mark.no_db
def test_every_recorded_vital_sign_maps_to_loinc_and_ucum() -> None:
    mapped = set(obs.VITALS) | set(obs.BP_COMPONENTS)
    assert mapped == set(VITAL_SIGNS)
    units = {"mmHg": "mm[Hg]", "/min": "/min", "°C": "Cel", "%": "%", "kg": "kg"}
    for name, vital in {**obs.VITALS, **obs.BP_COMPONENTS}.items():
        assert vital.ucum == units[VITAL_SIGNS[name][1]], name
        assert obs.KIND_BY_LOINC[vital.loinc] == vital.kind
    assert set(obs.CATEGORY_BY_KIND) == set(obs.KINDS)
    assert set(obs.CATEGORY_BY_KIND.values()) <= {"vital-signs", "laboratory"}
    assert {obs.STATUS_CURRENT, obs.STATUS_CORRECTION} <= set(obs.OBSERVATION_STATUSES)


@pytest.mark.no_db
def test_ids_parse_back() -> None:
    row = uuid.uuid4()
    for kind in obs.KINDS:
        assert obs.parse_id(str(obs.ObservationId(row, kind))) == (row, kind)
    for bad in (str(row), f"{row}-xyz", "abo", f"{str(row)[:-1]}-hr", "x" * 36 + "-hr"):
        with pytest.raises(ValueError, match="is not an Observation id"):
            obs.parse_id(bad)


# --- blood group --------------------------------------------------------------------------------------------


def test_a_patient_reads_their_blood_group(fhir: FhirApi, make: Factory, sign_in: SignIn) -> None:
    patient = make.patient_user(blood_group="A-")
    response = fhir.get(f"Observation/{patient.patient_id}-abo", sign_in(patient))
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["status"] == "final"
    assert coding(found) == (LOINC, "882-1")
    assert found["category"][0]["coding"][0]["code"] == "laboratory"
    assert found["valueCodeableConcept"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "278152006", "display": "Blood group A Rh(D) negative"}
    ]
    assert found["subject"] == {"reference": f"Patient/{patient.patient_id}"}


def test_no_blood_group_no_observation(fhir: FhirApi, make: Factory, sign_in: SignIn) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    assert fhir.get(f"Observation/{patient.patient_id}-abo", headers).status_code == 404
    assert fhir.get("Observation", headers).json()["total"] == 0


# --- vital signs --------------------------------------------------------------------------------------------


def test_vital_signs_map_to_loinc_observations(
    fhir: FhirApi, client: TestClient, make: Factory, sign_in: SignIn
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    values = {
        "systolic": 128,
        "diastolic": 82,
        "heart_rate": 71,
        "temperature": 36.8,
        "spo2": 97,
        "weight": 70.5,
    }
    values["respiratory_rate"] = 14
    record_id = add_vitals(client, headers, patient.patient_id, "2026-02-01", values)
    bundle = fhir.get("Observation?category=vital-signs", headers).json()
    by_code = {coding(r)[1]: r for r in (e["resource"] for e in bundle["entry"])}
    assert set(by_code) == {"85354-9", "8867-4", "9279-1", "8310-5", "2708-6", "29463-7"}
    assert bundle["total"] == 6
    bp = by_code["85354-9"]
    assert bp["id"] == f"{record_id}-bp"
    assert "valueQuantity" not in bp
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert components["8480-6"] == {"value": 128.0, "unit": "mmHg", "system": obs.UCUM, "code": "mm[Hg]"}
    assert components["8462-4"]["value"] == 82.0
    assert by_code["8310-5"]["valueQuantity"]["code"] == "Cel"
    assert by_code["29463-7"]["valueQuantity"] == {
        "value": 70.5,
        "unit": "kg",
        "system": obs.UCUM,
        "code": "kg",
    }
    heart = by_code["8867-4"]
    assert heart["status"] == "final"
    assert heart["effectiveDateTime"] == "2026-02-01"
    assert heart["category"][0]["coding"][0] == {
        "system": obs.CATEGORY_SYSTEM,
        "code": "vital-signs",
        "display": "Vital Signs",
    }
    assert heart["derivedFrom"] == [{"reference": f"DocumentReference/{record_id}"}]
    read = fhir.get(f"Observation/{record_id}-hr", headers).json()
    assert read == heart
    assert fhir.get(f"Observation/{record_id}-abo", headers).status_code == 404  # a record is no patient
    assert fhir.get("Observation/garbage", headers).status_code == 404


def test_a_measurement_the_record_lacks_is_not_found(
    fhir: FhirApi, client: TestClient, make: Factory, sign_in: SignIn
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    record_id = add_vitals(client, headers, patient.patient_id, "2026-02-01", {"heart_rate": 70})
    assert fhir.get(f"Observation/{record_id}-hr", headers).status_code == 200
    assert fhir.get(f"Observation/{record_id}-wt", headers).status_code == 404


def test_a_correction_replaces_the_value(
    fhir: FhirApi, client: TestClient, make: Factory, sign_in: SignIn
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    wrong = add_vitals(client, headers, patient.patient_id, "2026-02-01", {"weight": 7.0})
    fixed = add_vitals(client, headers, patient.patient_id, "2026-02-01", {"weight": 70.0}, supersedes=wrong)
    found = fhir.search_all("Observation?code=29463-7", headers)
    assert [r["id"] for r in found] == [f"{fixed}-wt"]
    assert found[0]["status"] == "corrected"
    old = fhir.get(f"Observation/{wrong}-wt", headers).json()
    assert old["valueQuantity"]["value"] == 7.0
    assert "Superseded" in old["note"][0]["text"]


def test_search_by_code_category_and_date(
    fhir: FhirApi, client: TestClient, make: Factory, sign_in: SignIn
) -> None:
    patient = make.patient_user(blood_group="O+")
    headers = sign_in(patient)
    january = add_vitals(client, headers, patient.patient_id, "2026-01-10", {"heart_rate": 60, "weight": 70})
    march = add_vitals(client, headers, patient.patient_id, "2026-03-05", {"heart_rate": 80})
    abo = f"{patient.patient_id}-abo"

    def found(query: str) -> list[str]:
        response = fhir.get(f"Observation?{query}", headers)
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert found("") == [abo, f"{march}-hr", f"{january}-hr", f"{january}-wt"]
    assert found("code=8867-4") == [f"{march}-hr", f"{january}-hr"]
    assert found(f"code={LOINC}|29463-7") == [f"{january}-wt"]
    assert found("code=29463-7,882-1") == [abo, f"{january}-wt"]
    assert found("code=1234-5") == []
    assert found("category=laboratory") == [abo]
    assert found("category=vital-signs&code=882-1") == []
    assert found("category=survey") == []
    assert found("date=2026-03") == [f"{march}-hr"]
    assert found("date=ge2026-02-01") == [f"{march}-hr"]
    assert found("date=lt2026-03-05") == [f"{january}-hr", f"{january}-wt"]
    assert found("date=le2026-03-05&date=gt2026-01-10") == [f"{march}-hr"]
    assert found("date=gt2026-03-05") == []
    assert found(f"patient=Patient/{patient.patient_id}&code=8867-4&date=2026-01-10") == [f"{january}-hr"]
    assert found(f"subject=Patient/{patient.patient_id}&category=laboratory") == [abo]
    assert fhir.get("Observation?code=http://example.org|8867-4", headers).status_code == 400
    assert fhir.get("Observation?date=March", headers).status_code == 400
    assert fhir.get("Observation?value-quantity=70", headers).status_code == 400
    modifier = fhir.get("Observation?code:text=weight", headers)
    assert modifier.status_code == 400
    assert modifier.json()["issue"][0]["code"] == "not-supported"


def test_paging_follows_next_links(fhir: FhirApi, client: TestClient, make: Factory, sign_in: SignIn) -> None:
    patient = make.patient_user(blood_group="B+")
    headers = sign_in(patient)
    for day in range(1, 8):
        add_vitals(
            client, headers, patient.patient_id, f"2026-01-{day:02d}", {"heart_rate": 60 + day, "spo2": 98}
        )
    first = fhir.get("Observation?_count=4", headers).json()
    assert len(ids(first)) == 4
    assert "total" not in first  # unknown without reading every record
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http")
    assert "_cursor=" in next_url
    everything = fhir.search_all("Observation?_count=4", headers)
    assert len(everything) == 15  # blood group + 7 x (heart rate, oxygen saturation)
    assert len({r["id"] for r in everything}) == 15
    days = [r["effectiveDateTime"] for r in everything[1:]]
    assert days == sorted(days, reverse=True)
    small = fhir.search_all("Observation?_count=1&code=8867-4", headers)
    assert [r["valueQuantity"]["value"] for r in small] == [67, 66, 65, 64, 63, 62, 61]
    assert fhir.get("Observation?_cursor=not-a-cursor", headers).status_code == 400


# --- who sees what ------------------------------------------------------------------------------------------


def test_clinicians_see_their_patients_and_must_name_one(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn
) -> None:
    patient = cast["patient"]
    record_id = add_vitals(client, sign_in(patient), patient.patient_id, "2026-02-01", {"heart_rate": 72})
    doctor = sign_in(cast["doctor"])
    assert fhir.get(f"Observation/{record_id}-hr", doctor).status_code == 200
    assert ids(fhir.get(f"Observation?patient={patient.patient_id}", doctor).json()) == [f"{record_id}-hr"]
    unnamed = fhir.get("Observation", doctor)
    assert unnamed.status_code == 400
    assert "patient=Patient/" in unnamed.json()["issue"][0]["diagnostics"]
    other = fhir.get(f"Observation?patient=Patient/{cast.other_patient.id}", doctor).json()
    assert other["total"] == 0
    assert ids(other) == []


def test_another_patients_observations_are_hidden(
    fhir: FhirApi, client: TestClient, cast: Cast, make: Factory, sign_in: SignIn
) -> None:
    owner = make.patient_user(blood_group="AB+")
    record_id = add_vitals(client, sign_in(owner), owner.patient_id, "2026-02-01", {"heart_rate": 72})
    intruder = sign_in(cast["patient"])
    for path in (f"Observation/{record_id}-hr", f"Observation/{owner.patient_id}-abo"):
        response = fhir.get(path, intruder)
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"
    assert ids(fhir.get(f"Observation?patient={owner.patient_id}", intruder).json()) == []
    # a nurse with no care relationship to the owner sees nothing either
    nurse = sign_in(cast["nurse"])
    assert fhir.get(f"Observation/{record_id}-hr", nurse).status_code == 404


def test_a_consent_only_policy_hides_vitals_but_not_the_profile(
    fhir: FhirApi, client: TestClient, cast: Cast, tx: Any, sign_in: SignIn
) -> None:
    patient = cast["patient"]
    with tx() as s:
        s.get(type(patient.patient), patient.patient_id).blood_group = "O-"
        s.add(RecordPolicy(organisation_id=cast.org.id, care_team="consent-only"))
    record_id = add_vitals(client, sign_in(patient), patient.patient_id, "2026-02-01", {"heart_rate": 72})
    doctor = sign_in(cast["doctor"])
    assert fhir.get(f"Observation/{record_id}-hr", doctor).status_code == 404
    found = ids(fhir.get(f"Observation?patient={patient.patient_id}", doctor).json())
    assert found == [f"{patient.patient_id}-abo"]


def test_patient_scoped_app_sees_only_its_patient(
    fhir: FhirApi,
    client: TestClient,
    cast: Cast,
    make: Factory,
    sign_in: SignIn,
    app_token: Callable[[Headers, str], Headers],
) -> None:
    patient = cast["patient"]
    own = add_vitals(client, sign_in(patient), patient.patient_id, "2026-02-01", {"heart_rate": 72})
    other = make.patient_user()
    theirs = add_vitals(client, sign_in(other), other.patient_id, "2026-02-01", {"heart_rate": 90})
    app = app_token(sign_in(patient), "patient/Observation.read")
    assert ids(fhir.get("Observation", app).json()) == [f"{own}-hr"]
    assert fhir.get(f"Observation/{theirs}-hr", app).status_code == 404
    assert ids(fhir.get(f"Observation?patient={other.patient_id}", app).json()) == []
    wrong_type = app_token(sign_in(patient), "patient/Patient.read")
    refused = fhir.get(f"Observation/{own}-hr", wrong_type)
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["code"] == "forbidden"


def test_staff_without_patient_access_see_nothing(
    fhir: FhirApi, cast: Cast, tx: Any, sign_in: SignIn
) -> None:
    patient = cast["patient"]
    with tx() as s:
        s.get(type(patient.patient), patient.patient_id).blood_group = "A+"
    headers = sign_in(cast["bloodbank_staff"])
    response = fhir.get(f"Observation?patient={patient.patient_id}", headers)
    assert response.status_code == 200
    assert response.json()["total"] == 0
    assert fhir.get(f"Observation/{patient.patient_id}-abo", headers).status_code == 404
    assert fhir.get(f"Observation/{patient.patient_id}-abo", sign_in(cast["doctor"])).status_code == 200


# --- $everything --------------------------------------------------------------------------------------------


def test_everything_includes_current_observations(
    fhir: FhirApi,
    client: TestClient,
    cast: Cast,
    tx: Any,
    sign_in: SignIn,
    app_token: Callable[[Headers, str], Headers],
) -> None:
    patient = cast["patient"]
    with tx() as s:
        s.get(type(patient.patient), patient.patient_id).blood_group = "B-"
    headers = sign_in(patient)
    wrong = add_vitals(client, headers, patient.patient_id, "2026-02-01", {"heart_rate": 70, "weight": 7})
    fixed = add_vitals(
        client, headers, patient.patient_id, "2026-02-01", {"heart_rate": 70, "weight": 70}, supersedes=wrong
    )
    older = add_vitals(client, headers, patient.patient_id, "2026-01-01", {"spo2": 99})
    # only Patient and Observation in scope: $everything then asks this module alone
    scope = "patient/Patient.read patient/Observation.read"
    response = fhir.get(f"Patient/{patient.patient_id}/$everything", app_token(headers, scope))
    assert response.status_code == 200, response.text
    found = [
        e["resource"] for e in response.json()["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert {r["id"] for r in found} == {
        f"{patient.patient_id}-abo",
        f"{fixed}-hr",
        f"{fixed}-wt",
        f"{older}-spo2",
    }
    assert len(found) == 4
    weight = next(r for r in found if r["id"] == f"{fixed}-wt")
    assert weight["valueQuantity"]["value"] == 70.0
    assert weight["status"] == "corrected"
    doctor = app_token(sign_in(cast["doctor"]), "user/Patient.read user/Observation.read")
    assert fhir.get(f"Patient/{cast.other_patient.id}/$everything", doctor).status_code == 404
    cared = fhir.get(f"Patient/{patient.patient_id}/$everything", doctor).json()
    assert len([e for e in cared["entry"] if e["resource"]["resourceType"] == "Observation"]) == 4


def test_capability_statement_lists_observation(fhir: FhirApi) -> None:
    statement = fhir.get("metadata").json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Observation"]
    assert {i["code"] for i in entry["interaction"]} == {"read", "search-type"}
    assert {"patient", "subject", "category", "code", "date"} <= {p["name"] for p in entry["searchParam"]}
