"""Encounter, Condition and RiskAssessment: the analytics visits, their ICD-10 diagnoses and a patient's risk,
through FHIR (mapping and code tables, every search parameter, paging, permissions, scopes, $everything)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.analytics.risk import service as risk_service
from caresync.analytics.risk import store
from caresync.analytics.risk.model import RiskModel
from caresync.analytics.rules import CONDITION_BY_CODE, Department, Outcome, RiskLevel
from caresync.core.audit import AuditEntry
from caresync.fhir.resources import encounters as enc
from caresync.records.models import RecordPolicy
from tests.analytics.conftest import add_encounter
from tests.analytics.test_risk import generated_frame
from tests.conftest import API, Cast, Factory
from tests.fhir.conftest import FhirApi, ids

Headers = dict[str, str]
SignIn = Callable[[Any], Headers]
AppToken = Callable[[Headers, str], Headers]
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISCHARGE = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
# The R4 code systems, as published (hl7.org/fhir/R4/codesystem-*.html)
R4_DISCHARGE_CODES = {
    "home",
    "alt-home",
    "other-hcf",
    "hosp",
    "long",
    "aadvice",
    "exp",
    "psy",
    "rehab",
    "snf",
}
R4_DISCHARGE_CODES |= {"oth"}
R4_RISK_PROBABILITY = {"negligible", "low", "moderate", "high", "certain"}
R4_ENCOUNTER_CLASSES = {"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def visits(cast: Cast) -> dict[str, uuid.UUID]:
    """Three visits of the cast's patient at the cast's hospital and one of the other patient."""
    patient, org = cast["patient"].patient_id, cast.org.id
    return {
        "flu": add_encounter(patient, org, at("2026-01-10T09:30:00"), ("J11", "I10"), department="emergency"),
        "delivery": add_encounter(
            patient, org, at("2025-06-02T14:00:00"), ("O80",), department="obstetrics", outcome="admitted"
        ),
        "back": add_encounter(patient, org, at("2024-03-05T11:00:00"), ("M54.5",), department="orthopaedics"),
        "other": add_encounter(cast.other_patient.id, org, at("2026-01-11T08:00:00"), ("J11",)),
    }


def found(fhir: FhirApi, path: str, headers: Headers) -> dict[str, Any]:
    response = fhir.get(path, headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- tables -------------------------------------------------------------------------------------------------


@pytest.mark.no_db
def test_every_department_has_an_explicit_encounter_class() -> None:
    assert enc.CLASS_BY_DEPARTMENT == {
        Department.EMERGENCY: "EMER",
        Department.GENERAL_PRACTICE: "AMB",
        Department.PAEDIATRICS: "AMB",
        Department.CARDIOLOGY: "AMB",
        Department.RESPIRATORY: "AMB",
        Department.OBSTETRICS: "IMP",
        Department.ORTHOPAEDICS: "AMB",
        Department.PSYCHIATRY: "AMB",
    }
    assert set(enc.CLASS_BY_DEPARTMENT) == set(Department) == set(enc.DEPARTMENT_DISPLAY)
    assert set(enc.CLASSES) <= R4_ENCOUNTER_CLASSES
    assert set(enc.CLASS_BY_DEPARTMENT.values()) == set(enc.CLASSES)


@pytest.mark.no_db
def test_every_outcome_has_a_discharge_disposition_of_the_r4_code_system() -> None:
    assert set(enc.DISCHARGE_CODES) == R4_DISCHARGE_CODES
    assert enc.DISCHARGE_DISPOSITION == {
        Outcome.DISCHARGED: "home",
        Outcome.FOLLOW_UP: "home",
        Outcome.REFERRED: "oth",
        Outcome.ADMITTED: "oth",
        Outcome.DIED: "exp",
    }
    assert set(enc.DISCHARGE_DISPOSITION) == set(Outcome) == set(enc.OUTCOME_TEXT)


@pytest.mark.no_db
def test_every_risk_level_has_the_risk_probability_code_its_band_fits() -> None:
    assert set(enc.RISK_PROBABILITY_CODES) == R4_RISK_PROBABILITY
    assert set(enc.RISK_PROBABILITY) == set(RiskLevel)
    assert set(enc.RISK_PROBABILITY.values()) <= R4_RISK_PROBABILITY
    bands = enc.level_bands()
    for level, code in enc.RISK_PROBABILITY.items():
        low, high = bands[level]
        # "high" is defined as "more likely to occur than not": only for bands at or above 50 %
        assert (code == "high") == (low >= 0.5), level
        assert code not in ("negligible", "certain"), level
        if code == "low":
            assert high <= 0.10
    assert enc.RISK_PROBABILITY[RiskLevel.CRITICAL] == "high"
    assert enc.RISK_PROBABILITY[RiskLevel.HIGH] == "moderate"


@pytest.mark.no_db
def test_ids_parse_back() -> None:
    visit, patient = uuid.uuid4(), uuid.uuid4()
    for code in CONDITION_BY_CODE:
        assert enc.parse_condition_id(str(enc.ConditionId(visit, code))) == (visit, code)
    assert enc.parse_risk_id(enc.risk_id(patient)) == patient
    for bad in (str(visit), f"{visit}-XYZ", f"{visit}J11", f"{str(visit)[:-1]}-J11", "J11"):
        with pytest.raises(ValueError, match="is not a Condition id"):
            enc.parse_condition_id(bad)
    for bad in (str(patient), f"{patient}-risk", "x-adverse-outcome"):
        with pytest.raises(ValueError, match="is not a RiskAssessment id"):
            enc.parse_risk_id(bad)


# --- Encounter and Condition mapping ------------------------------------------------------------------------


def test_a_visit_maps_to_an_encounter(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["doctor"])
    encounter = found(fhir, f"Encounter/{visits['flu']}", headers)
    assert encounter["status"] == "finished"
    assert encounter["class"] == {"system": ACT_CODE, "code": "EMER", "display": "emergency"}
    assert encounter["type"][0]["coding"] == [
        {"system": enc.DEPARTMENT_SYSTEM, "code": "emergency", "display": "Emergency"}
    ]
    assert encounter["subject"] == {"reference": f"Patient/{cast['patient'].patient_id}"}
    assert encounter["period"] == {"start": "2026-01-10T09:30:00+00:00"}
    assert encounter["serviceProvider"] == {"reference": f"Organization/{cast.org.id}"}
    assert [(d["condition"]["reference"], d["rank"]) for d in encounter["diagnosis"]] == [
        (f"Condition/{visits['flu']}-J11", 1),
        (f"Condition/{visits['flu']}-I10", 2),
    ]
    disposition = encounter["hospitalization"]["dischargeDisposition"]
    assert disposition["coding"] == [{"system": DISCHARGE, "code": "home", "display": "Home"}]
    assert "appointment" not in encounter
    delivery = found(fhir, f"Encounter/{visits['delivery']}", headers)
    assert delivery["class"]["code"] == "IMP"
    assert delivery["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "oth"
    assert delivery["hospitalization"]["dischargeDisposition"]["text"] == "Admitted as an inpatient"


def test_a_diagnosis_maps_to_a_condition(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["doctor"])
    condition = found(fhir, f"Condition/{visits['flu']}-I10", headers)
    assert condition["code"]["coding"] == [
        {"system": ICD10, "code": "I10", "display": "Essential (primary) hypertension"}
    ]
    assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert "clinicalStatus" not in condition  # the documented choice: CareSync does not track resolution
    assert condition["subject"] == {"reference": f"Patient/{cast['patient'].patient_id}"}
    assert condition["encounter"] == {"reference": f"Encounter/{visits['flu']}"}
    assert condition["recordedDate"] == "2026-01-10T09:30:00+00:00"
    # a code the visit does not have, a visit that does not exist, an id of the wrong shape
    for missing in (f"{visits['flu']}-J18.9", f"{uuid.uuid4()}-J11", "nonsense"):
        response = fhir.get(f"Condition/{missing}", headers)
        assert response.status_code == 404, missing
        assert response.json()["issue"][0]["code"] == "not-found"


# --- searches -----------------------------------------------------------------------------------------------


def test_encounter_search_parameters_match_and_do_not_match(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["doctor"])
    patient = f"Patient/{cast['patient'].patient_id}"

    def search(query: str) -> list[str]:
        return ids(found(fhir, f"Encounter?patient={patient}&{query}", headers))

    everything = [str(visits["flu"]), str(visits["delivery"]), str(visits["back"])]
    assert search("") == everything  # newest first
    assert ids(found(fhir, f"Encounter?subject={patient}", headers)) == everything
    assert search("date=2026-01") == [str(visits["flu"])]
    assert search("date=ge2025-01-01&date=lt2026") == [str(visits["delivery"])]
    assert search("date=2023") == []
    assert search("class=EMER") == [str(visits["flu"])]
    assert search(f"class={ACT_CODE}|AMB") == [str(visits["back"])]
    assert search("class=AMB,IMP") == [str(visits["delivery"]), str(visits["back"])]
    assert search("class=HH") == []
    assert search("class=http://other|EMER") == []
    assert search("type=obstetrics") == [str(visits["delivery"])]
    assert search(f"type={enc.DEPARTMENT_SYSTEM}|cardiology") == []
    assert search("type=emergency&class=AMB") == []
    assert search(f"service-provider=Organization/{cast.org.id}") == everything
    assert search(f"service-provider=Organization/{make.org().id}") == []
    # another patient's visits are not in this patient's search; a patient the doctor does not care for: empty
    assert str(visits["other"]) not in search("")
    assert ids(found(fhir, f"Encounter?patient=Patient/{cast.other_patient.id}", headers)) == []
    # a staff search must name the patient; a malformed date is refused
    assert fhir.get("Encounter", headers).status_code == 400
    assert fhir.get(f"Encounter?patient={patient}&date=yesterday", headers).status_code == 400


def test_encounter_paging_and_includes(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["doctor"])
    patient = f"Patient/{cast['patient'].patient_id}"
    first = found(fhir, f"Encounter?patient={patient}&_count=2", headers)
    assert first["total"] == 3
    assert len(ids(first)) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http")
    assert fhir.search_all(f"Encounter?patient={patient}&_count=1", headers)[2]["id"] == str(visits["back"])
    bundle = found(fhir, f"Encounter?patient={patient}&_include=Encounter:patient", headers)
    assert ids(bundle) == [str(visits["flu"]), str(visits["delivery"]), str(visits["back"])]
    assert [
        (e["resource"]["resourceType"], e["search"]["mode"])
        for e in bundle["entry"]
        if e["search"]["mode"] != "match"
    ] == [("Patient", "include")]
    assert fhir.get(f"Encounter?patient={patient}&_include=Encounter:location", headers).status_code == 400


def test_condition_search_parameters_match_and_do_not_match(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["doctor"])
    patient = f"Patient/{cast['patient'].patient_id}"
    flu = str(visits["flu"])

    def search(query: str) -> list[str]:
        return ids(found(fhir, f"Condition?patient={patient}&{query}", headers))

    every = [f"{flu}-I10", f"{flu}-J11", f"{visits['delivery']}-O80", f"{visits['back']}-M54.5"]
    assert search("") == every
    assert ids(found(fhir, f"Condition?subject={patient}", headers)) == every
    assert search("code=J11") == [f"{flu}-J11"]
    assert search(f"code={ICD10}|M54.5,O80") == [f"{visits['delivery']}-O80", f"{visits['back']}-M54.5"]
    assert search("code=J18.9") == []
    assert search("code=http://snomed.info/sct|J11") == []
    assert search(f"encounter=Encounter/{flu}") == [f"{flu}-I10", f"{flu}-J11"]
    assert search(f"encounter=Encounter/{visits['other']}") == []
    assert search("recorded-date=2025-06-02") == [f"{visits['delivery']}-O80"]
    assert search("recorded-date=lt2025") == [f"{visits['back']}-M54.5"]
    assert search("recorded-date=2020") == []
    # the encounter alone names the patient; another patient's visit is not visible to this doctor
    assert ids(found(fhir, f"Condition?encounter=Encounter/{flu}", headers)) == [f"{flu}-I10", f"{flu}-J11"]
    assert ids(found(fhir, f"Condition?encounter=Encounter/{visits['other']}", headers)) == []
    assert fhir.get("Condition", headers).status_code == 400


def test_condition_paging_walks_through_the_diagnoses_of_one_visit(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["doctor"])
    patient = f"Patient/{cast['patient'].patient_id}"
    first = found(fhir, f"Condition?patient={patient}&_count=1", headers)
    assert first["total"] == 4
    walked = fhir.search_all(f"Condition?patient={patient}&_count=1", headers)
    assert [c["id"] for c in walked] == ids(found(fhir, f"Condition?patient={patient}", headers))
    assert len(walked) == 4
    bad_cursor = fhir.get(f"Condition?patient={patient}&_cursor=garbage", headers)
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["issue"][0]["code"] == "invalid"
    assert fhir.get(f"Encounter?patient={patient}&_cursor=garbage", headers).status_code == 400
    bundle = found(fhir, f"Condition?patient={patient}&code=J11&_include=Condition:encounter", headers)
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [(r["resourceType"], r["id"]) for r in included] == [("Encounter", str(visits["flu"]))]


# --- permissions and scopes ---------------------------------------------------------------------------------


def test_a_nurse_without_a_care_relationship_sees_nothing(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn, visits: dict[str, uuid.UUID]
) -> None:
    stranger = make.staff("nurse")
    headers = sign_in(stranger)
    patient = f"Patient/{cast['patient'].patient_id}"
    assert fhir.get(f"Encounter/{visits['flu']}", headers).status_code == 404
    assert fhir.get(f"Condition/{visits['flu']}-J11", headers).status_code == 404
    assert found(fhir, f"Encounter?patient={patient}", headers)["total"] == 0
    assert found(fhir, f"Condition?patient={patient}", headers)["total"] == 0
    assert found(fhir, f"Condition?encounter=Encounter/{visits['flu']}", headers)["total"] == 0
    # the caring nurse does see them
    assert fhir.get(f"Encounter/{visits['flu']}", sign_in(cast["nurse"])).status_code == 200


def test_a_patient_sees_their_own_visits_only(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: AppToken, visits: dict[str, uuid.UUID]
) -> None:
    headers = sign_in(cast["patient"])
    assert found(fhir, "Encounter", headers)["total"] == 3  # their own by default
    assert found(fhir, "Condition", headers)["total"] == 4
    assert fhir.get(f"Encounter/{visits['other']}", headers).status_code == 404
    assert fhir.get(f"Condition/{visits['other']}-J11", headers).status_code == 404
    assert found(fhir, f"Encounter?patient=Patient/{cast.other_patient.id}", headers)["total"] == 0
    app = app_token(headers, "patient/Encounter.read patient/Condition.rs")
    assert fhir.get(f"Encounter/{visits['flu']}", app).status_code == 200
    assert found(fhir, "Condition?code=J11", app)["total"] == 1
    assert fhir.get(f"Encounter/{visits['other']}", app).status_code == 404
    only_observations = app_token(headers, "patient/Observation.read")
    denied = fhir.get(f"Encounter/{visits['flu']}", only_observations)
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["code"] == "forbidden"
    assert fhir.get("Condition", only_observations).status_code == 403


def test_a_visit_with_a_mental_health_diagnosis_needs_that_category(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any, visits: dict[str, uuid.UUID]
) -> None:
    sensitive = add_encounter(
        cast["patient"].patient_id, cast.org.id, at("2026-01-20T10:00:00"), ("F32.9", "R51")
    )
    doctor = sign_in(cast["doctor"])
    patient = f"Patient/{cast['patient'].patient_id}"
    # the standard care-team policy does not open mental-health records: the whole visit is hidden,
    # its headache included
    assert fhir.get(f"Encounter/{sensitive}", doctor).status_code == 404
    assert fhir.get(f"Condition/{sensitive}-R51", doctor).status_code == 404
    assert str(sensitive) not in ids(found(fhir, f"Encounter?patient={patient}", doctor))
    conditions = ids(found(fhir, f"Condition?patient={patient}", doctor))
    assert not [c for c in conditions if c.startswith(str(sensitive))]
    assert found(fhir, f"Condition?patient={patient}&code=R51", doctor)["total"] == 0
    # the patient sees it, and so does the doctor once the organisation opens every category
    own = ids(found(fhir, "Condition", sign_in(cast["patient"])))
    assert {f"{sensitive}-F32.9", f"{sensitive}-R51"} <= set(own)
    with tx() as s:
        s.add(RecordPolicy(organisation_id=cast.org.id, care_team="full"))
    assert fhir.get(f"Condition/{sensitive}-R51", doctor).status_code == 200


def test_reads_and_searches_are_audited(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any, visits: dict[str, uuid.UUID]
) -> None:
    from sqlalchemy import select

    headers = sign_in(cast["doctor"])
    fhir.get(f"Encounter/{visits['flu']}", headers)
    fhir.get(f"Condition?patient=Patient/{cast['patient'].patient_id}", headers)
    with tx() as s:
        rows = s.execute(select(AuditEntry).where(AuditEntry.actor_id == cast["doctor"].id)).scalars().all()
        actions = [(r.action, r.outcome, r.resource_type) for r in rows]
    assert ("encounter.read", "success", "Encounter") in actions
    assert ("encounter.list", "success", "Condition") in actions


# --- $everything and the CapabilityStatement ----------------------------------------------------------------


def test_everything_includes_encounters_and_conditions(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: AppToken, visits: dict[str, uuid.UUID]
) -> None:
    patient_id = cast["patient"].patient_id
    for headers in (sign_in(cast["doctor"]), sign_in(cast["patient"])):
        bundle = found(fhir, f"Patient/{patient_id}/$everything", headers)
        kinds = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
        assert [i for t, i in kinds if t == "Encounter"] == [
            str(visits["flu"]),
            str(visits["delivery"]),
            str(visits["back"]),
        ]
        assert {i for t, i in kinds if t == "Condition"} == {
            f"{visits['flu']}-J11",
            f"{visits['flu']}-I10",
            f"{visits['delivery']}-O80",
            f"{visits['back']}-M54.5",
        }
        assert str(visits["other"]) not in {i for _t, i in kinds}
        assert "RiskAssessment" not in {t for t, _i in kinds}  # no model active
    limited = app_token(sign_in(cast["patient"]), "patient/Patient.read patient/Encounter.read")
    bundle = found(fhir, f"Patient/{patient_id}/$everything", limited)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient", "Encounter"}


def test_the_capability_statement_lists_the_three_types(fhir: FhirApi) -> None:
    statement = found(fhir, "metadata", {})
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}

    def names(resource_type: str) -> set[str]:
        return {p["name"] for p in resources[resource_type]["searchParam"]} - {"_id"}

    assert names("Encounter") == {
        "patient",
        "subject",
        "date",
        "class",
        "type",
        "service-provider",
    }
    assert names("Condition") == {
        "patient",
        "subject",
        "code",
        "encounter",
        "recorded-date",
    }
    assert names("RiskAssessment") == {"patient", "subject"}


# --- RiskAssessment -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> tuple[RiskModel, dict[str, Any]]:
    """A model trained once on generated synthetic data."""
    shutil.rmtree(store.models_root(), ignore_errors=True)
    card = risk_service.train_and_store(generated_frame(patients=300), organisation_id=None, synthetic=True)
    model = store.load(card["version"])
    shutil.rmtree(store.models_root(), ignore_errors=True)
    return model, card


@pytest.fixture
def active_model(trained: tuple[RiskModel, dict[str, Any]]) -> Iterator[str]:
    """The trained model stored and active for every organisation (removed afterwards)."""
    model, card = trained
    shutil.rmtree(store.models_root(), ignore_errors=True)
    version = store.save(model, card | {"version": "20260101-000000-eeeeee", "organisation_id": None})
    store.set_active(version, store.DEFAULT_SCOPE)
    yield version
    shutil.rmtree(store.models_root(), ignore_errors=True)


def test_a_doctor_reads_a_patients_risk_assessment(
    fhir: FhirApi,
    client: TestClient,
    cast: Cast,
    sign_in: SignIn,
    active_model: str,
    visits: dict[str, uuid.UUID],
) -> None:
    patient_id = cast["patient"].patient_id
    headers = sign_in(cast["doctor"])
    assessment = found(fhir, f"RiskAssessment/{patient_id}-adverse-outcome", headers)
    assert assessment["id"] == f"{patient_id}-adverse-outcome"
    assert assessment["status"] == "final"
    assert assessment["subject"] == {"reference": f"Patient/{patient_id}"}
    assert assessment["method"]["coding"] == [{"system": enc.RISK_MODEL_SYSTEM, "code": active_model}]
    assert "demonstration only" in assessment["method"]["text"]
    prediction = assessment["prediction"][0]
    probability = prediction["probabilityDecimal"]
    assert 0 <= probability <= 1
    level = next(lvl for lvl, (low, high) in enc.level_bands().items() if low <= probability < high)
    probability_coding, level_coding = prediction["qualitativeRisk"]["coding"]
    assert probability_coding["system"] == RISK_PROBABILITY
    assert probability_coding["code"] == enc.RISK_PROBABILITY[level]
    assert level_coding == {"system": enc.RISK_LEVEL_SYSTEM, "code": level.value, "display": level.value}
    # the same figures as the platform's risk API gives
    platform = client.get(f"{API}/analytics/risk/patients/{patient_id}", headers=headers).json()
    assert probability == platform["consensus"]
    assert level.value == platform["level"]
    assert active_model == platform["model_version"]
    drivers = [n["text"] for n in assessment.get("note", []) if n["text"].startswith("Driver:")]
    assert drivers, assessment
    bundle = found(fhir, f"RiskAssessment?patient=Patient/{patient_id}", headers)
    assert ids(bundle) == [f"{patient_id}-adverse-outcome"]
    assert bundle["total"] == 1
    everything = found(fhir, f"Patient/{patient_id}/$everything", headers)
    assert f"{patient_id}-adverse-outcome" in ids(everything, "RiskAssessment")


def test_only_carers_see_a_risk_assessment(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn, app_token: AppToken, active_model: str
) -> None:
    patient_id = cast["patient"].patient_id
    path = f"RiskAssessment/{patient_id}-adverse-outcome"
    assert fhir.get(path, sign_in(cast["nurse"])).status_code == 200
    for person in (make.staff("nurse"), cast["patient"], cast["admin"]):
        headers = sign_in(person)
        assert fhir.get(path, headers).status_code == 404, person.role
        assert found(fhir, f"RiskAssessment?patient=Patient/{patient_id}", headers)["total"] == 0
    patient_headers = sign_in(cast["patient"])
    assert found(fhir, "RiskAssessment", patient_headers)["total"] == 0  # their own: not shown to patients
    everything = found(fhir, f"Patient/{patient_id}/$everything", patient_headers)
    assert ids(everything, "RiskAssessment") == []
    doctor = sign_in(cast["doctor"])
    assert fhir.get(f"RiskAssessment/{cast.other_patient.id}-adverse-outcome", doctor).status_code == 404
    assert fhir.get(f"RiskAssessment/{patient_id}", doctor).status_code == 404  # not an id of this server
    scoped = app_token(doctor, "user/Encounter.read")
    assert fhir.get(path, scoped).status_code == 403
    assert fhir.get(path, app_token(doctor, "user/RiskAssessment.read")).status_code == 200


def test_no_active_model_is_a_conflict(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    shutil.rmtree(store.models_root(), ignore_errors=True)
    response = fhir.get(
        f"RiskAssessment/{cast['patient'].patient_id}-adverse-outcome", sign_in(cast["doctor"])
    )
    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "conflict"
    # a stranger still gets 404, not a hint that the patient exists
    stranger = sign_in(cast["pharmacist"])
    assert (
        fhir.get(f"RiskAssessment/{cast['patient'].patient_id}-adverse-outcome", stranger).status_code == 404
    )
