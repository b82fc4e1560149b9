"""The risk API and pages: permission matrices, a patient's risk (values, audit, CSV), no active model,
switching versions per organisation, training as a job on the organisation's own encounters, the demo
model, and the panel on the doctor's patient page."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.analytics.data import ages_at, encounter_frame
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.analytics.risk import api as risk_api
from caresync.analytics.risk import pages as risk_pages
from caresync.analytics.risk import service, store
from caresync.analytics.risk.demo import train_demo_model
from caresync.analytics.risk.features import (
    FEATURE_NAMES,
    age_at,
    encounter_table,
    features_at,
    patient_features,
    patient_history,
)
from caresync.analytics.risk.model import RiskModel, predict
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal, system_principal
from caresync.db import session_factory, transaction, utcnow
from caresync.identity import patients as patient_service
from caresync.identity.models import BreakGlassGrant, Patient
from tests.analytics.test_risk import generated_frame
from tests.conftest import API, Cast, Factory, web_login
from tests.permission_matrix import Case, assert_covered, check_api, check_pages, identities, only, pages

RISK = f"{API}/analytics/risk"
Trained = tuple[RiskModel, dict[str, Any]]
World = dict[str, str]


@pytest.fixture(autouse=True)
def _no_models() -> Iterator[None]:
    """Each test starts and ends with no stored model."""
    shutil.rmtree(store.models_root(), ignore_errors=True)
    yield
    shutil.rmtree(store.models_root(), ignore_errors=True)


@pytest.fixture(scope="module")
def trained() -> Trained:
    """A model trained once on generated synthetic data (the stored copy is removed by ``_no_models``)."""
    card = service.train_and_store(generated_frame(patients=300), organisation_id=None, synthetic=True)
    return store.load(card["version"]), card


def install(trained: Trained, version: str, *, organisation_id: uuid.UUID | None = None) -> str:
    """Store the trained model under ``version`` (for an organisation, or shared)."""
    model, card = trained
    owner = str(organisation_id) if organisation_id else None
    return store.save(model, card | {"version": version, "organisation_id": owner})


@pytest.fixture
def active(trained: Trained) -> str:
    """A shared model, active by default for every organisation."""
    version = install(trained, "20260101-000000-aaaaaa")
    store.set_active(version, store.DEFAULT_SCOPE)
    return version


def store_frame(frame: pd.DataFrame, organisation_id: uuid.UUID, source: str) -> dict[str, uuid.UUID]:
    """Write a generated frame as patients and encounters of an organisation; returns patient ids."""
    first = frame.sort_values("started_at").drop_duplicates("patient_id")
    with transaction(session_factory()) as s:
        patients = {}
        for row in first.itertuples():
            born = row.started_at.date() - timedelta(days=int(row.age * 365.25) + 30)
            patient = patient_service.new_patient(
                given_name="Gen", family_name=f"Erated{row.patient_id}", birth_date=born, sex=row.sex
            )
            s.add(patient)
            patients[row.patient_id] = patient
        s.flush()
        for _encounter_id, rows in frame.groupby("encounter_id", sort=False):
            head = rows.iloc[0]
            vitals = {
                column: (None if pd.isna(head[column]) else cast(round(float(head[column]), 1)))
                for column, cast in (
                    ("systolic_mmhg", int),
                    ("heart_rate_bpm", int),
                    ("temperature_c", float),
                    ("spo2_pct", int),
                )
            }
            s.add(
                Encounter(
                    patient_id=patients[head["patient_id"]].id,
                    organisation_id=organisation_id,
                    department="general-practice",
                    started_at=head["started_at"].to_pydatetime(),
                    outcome=head["outcome"],
                    source=source,
                    created_at=utcnow(),
                    diagnoses=[
                        EncounterDiagnosis(code=c, principal=i == 0) for i, c in enumerate(rows["code"])
                    ],
                    **vitals,
                )
            )
        return {key: p.id for key, p in patients.items()}


# --- permission matrices -----------------------------------------------------------------------------------


def _patient(world: World) -> dict[str, str]:
    return {"patient_id": world["patient"]}


def _stranger(world: World) -> dict[str, str]:
    return {"patient_id": world["other"]}


def _version(world: World) -> dict[str, str]:
    return {"version": world["version"]}


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", f"{RISK}/models"): Case(only(202, "admin")),
    ("GET", f"{RISK}/models"): Case(only(200, "admin", "doctor", "nurse")),
    ("PUT", f"{RISK}/models/active"): Case(only(200, "admin"), json=_version),
    ("GET", f"{RISK}/patients/{{patient_id}}"): Case(
        only(200, "doctor", "nurse", others=404), path=_patient, foreign=_stranger
    ),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/analytics/risk/patients/{patient_id}/panel"): Case(
        pages(only(200, "doctor", "nurse", others=404)), path=_patient, foreign=_stranger
    ),
    ("GET", "/analytics/risk/models"): Case(pages(only(200, "admin", "doctor", "nurse"))),
    ("POST", "/analytics/risk/models"): Case(pages(only(303, "admin")), data=lambda _: {}),
    ("POST", "/analytics/risk/models/active"): Case(pages(only(303, "admin")), data=_version),
}


def _world(cast: Cast, version: str) -> World:
    return {
        "patient": str(cast["patient"].patient_id),
        "other": str(cast.other_patient.id),
        "version": version,
    }


def test_matrices_cover_every_route() -> None:
    assert_covered((risk_api.router, API_CASES), (risk_pages.router, PAGE_CASES))


def test_risk_api_permission_matrix(client: TestClient, cast: Cast, active: str) -> None:
    check_api(client, cast, _world(cast, active), API_CASES, secrets=identities(cast.other_patient))


def test_risk_page_permission_matrix(app: Any, cast: Cast, active: str) -> None:
    check_pages(app, cast, _world(cast, active), PAGE_CASES, secrets=identities(cast.other_patient))


# --- a patient's risk --------------------------------------------------------------------------------------


def test_patient_risk_values_audit_and_csv(
    client: TestClient,
    cast: Cast,
    active: str,
    trained: Trained,
    encounter: Callable[..., uuid.UUID],
    sign_in: Callable[..., dict[str, str]],
) -> None:
    patient_id = cast["patient"].patient_id
    now = datetime.now(UTC)
    encounter(
        patient_id, cast.org.id, now - timedelta(days=40), ("I50.9", "E11.9"), outcome="admitted", spo2_pct=88
    )
    encounter(patient_id, cast.org.id, now - timedelta(days=10), ("J44.9",), heart_rate_bpm=112)
    response = client.get(f"{RISK}/patients/{patient_id}", headers=sign_in(cast["doctor"]))
    assert response.status_code == 200, response.text
    body = response.json()
    with transaction(session_factory()) as s:
        frame = encounter_frame(s, organisation_ids=None, patient_ids=[patient_id])
    at = pd.Timestamp(body["computed_at"])
    age = int(ages_at(pd.Series([date(1980, 5, 17)]), pd.Series([at]))[0])  # the cast patient's birth date
    refs = pd.DataFrame({"patient_id": [str(patient_id)], "at": [at], "age": [age], "sex": ["female"]})
    features = features_at(encounter_table(frame), refs).iloc[0].to_dict()  # the batch path, from a frame
    assert features["prior_adverse"] == 1
    assert features["visits_12m"] == 2
    assert features["spo2_pct"] == 88
    expected = predict(trained[0], features)
    assert body["level"] == expected.level.value
    assert body["consensus"] == pytest.approx(expected.consensus, abs=1e-4)
    assert body["mlp"] == pytest.approx(expected.probabilities["mlp"], abs=1e-4)
    assert body["forest"] == pytest.approx(expected.probabilities["forest"], abs=1e-4)
    assert [d["feature"] for d in body["drivers"]] == [d.feature for d in expected.drivers]
    assert body["model_version"] == active
    assert body["model_label"] == service.DEMO_LABEL
    with transaction(session_factory()) as s:
        entry = s.execute(
            select(AuditEntry).where(
                AuditEntry.action == "analytics.risk.patient", AuditEntry.outcome == "success"
            )
        ).scalar_one()
        assert entry.patient_id == patient_id
        assert entry.actor_id == cast["doctor"].id
    exported = client.get(
        f"{RISK}/patients/{patient_id}", params={"format": "csv"}, headers=sign_in(cast["nurse"])
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0] == "feature,label,value,z,direction,importance,score"
    assert len(lines) == 1 + len(body["drivers"])


def test_single_patient_path_equals_the_batch_path_on_the_database(
    active: str, trained: Trained, cast: Cast
) -> None:
    """For several stored patients, the per-request features (one query, no pandas) equal the batch
    features (encounter_frame + features_at), now and at a moment inside their history; and
    patient_risk gives the same risk as the batch patients_risk."""
    ids = store_frame(generated_frame(patients=8, seed=5), cast.org.id, "app")
    now = utcnow()
    middle = datetime(2024, 6, 1, tzinfo=UTC)
    system = system_principal("test")
    with transaction(session_factory()) as s:
        patients = [s.get(Patient, patient_id) for patient_id in ids.values()]
        frame = encounter_frame(s, organisation_ids=None, patient_ids=list(ids.values()))
        table = encounter_table(frame)
        for at in (now, middle):
            refs = pd.DataFrame(
                {
                    "patient_id": [str(p.id) for p in patients],
                    "at": [pd.Timestamp(at)] * len(patients),
                    "age": [age_at(p.birth_date, at) for p in patients],
                    "sex": [p.sex for p in patients],
                }
            )
            batch = features_at(table, refs).to_numpy()
            for patient, expected in zip(patients, batch, strict=True):
                rows = s.connection().execute(service.HISTORY_QUERY, {"patient_id": patient.id})
                single = patient_features(
                    patient_history(rows), at, age_at(patient.birth_date, at), patient.sex
                )
                np.testing.assert_array_equal(single, expected)
        assert batch[:, FEATURE_NAMES.index("visits_12m")].sum() > 0
        together = service.patients_risk(s, system, patients, now=now)
        for patient, risk in zip(patients, together, strict=True):
            alone = service.patient_risk(s, system, patient.id, now=now)
            assert alone.result == risk.result
            assert alone.version == risk.version == active


def test_care_list_risks_cover_exactly_the_visible_patients(active: str, cast: Cast) -> None:
    """visible_patients_risk: the patients in the caller's care (one query), those the access rule grants
    otherwise (here break-glass), not the others; every listed patient audited once."""
    doctor, nurse, admin = cast["doctor"], cast["nurse"], cast["admin"]
    stranger = cast.other_patient
    with transaction(session_factory()) as s:
        emergency = patient_service.new_patient(
            given_name="Ema", family_name="Gency", sex="male", birth_date=date(1960, 1, 2)
        )
        s.add(emergency)
        s.flush()
        s.add(
            BreakGlassGrant(
                patient_id=emergency.id,
                user_id=doctor.id,
                reason="unconscious in the emergency room",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        emergency_id = emergency.id
    principal = Principal(doctor.id, doctor.role, doctor.user.full_name, organisation_id=cast.org.id)
    with transaction(session_factory()) as s:
        listed = [s.get(Patient, pid) for pid in (cast["patient"].patient_id, stranger.id, emergency_id)]
        risks = service.visible_patients_risk(s, principal, listed)
        assert [r.patient_id for r in risks] == [cast["patient"].patient_id, emergency_id]
        assert all(r.version == active for r in risks)
        as_nurse = Principal(nurse.id, nurse.role, nurse.user.full_name, organisation_id=cast.org.id)
        assert [r.patient_id for r in service.visible_patients_risk(s, as_nurse, listed)] == [
            cast["patient"].patient_id
        ]
        as_admin = Principal(admin.id, admin.role, admin.user.full_name, organisation_id=cast.org.id)
        assert service.visible_patients_risk(s, as_admin, listed) == []
    with transaction(session_factory()) as s:
        audited = s.execute(
            select(AuditEntry.patient_id).where(AuditEntry.action == service.RISK_ACTION)
        ).scalars()
        assert sorted(map(str, audited)) == sorted(
            map(str, [cast["patient"].patient_id, emergency_id, cast["patient"].patient_id])
        )


def test_no_active_model_is_a_clear_409(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]]
) -> None:
    headers = sign_in(cast["doctor"])
    response = client.get(f"{RISK}/patients/{cast['patient'].patient_id}", headers=headers)
    assert response.status_code == 409
    assert "No risk model is active" in response.json()["detail"]
    assert client.get(f"{RISK}/patients/{cast.other_patient.id}", headers=headers).status_code == 404
    browser = TestClient(client.app)
    web_login(browser, cast["doctor"])
    panel = browser.get(f"/analytics/risk/patients/{cast['patient'].patient_id}/panel")
    assert panel.status_code == 200
    assert 'data-testid="risk-unavailable"' in panel.text
    assert "No risk model is active" in panel.text


# --- versions ----------------------------------------------------------------------------------------------


def test_activation_switches_the_organisations_model_only(
    client: TestClient,
    cast: Cast,
    active: str,
    trained: Trained,
    make: Factory,
    sign_in: Callable[..., dict[str, str]],
) -> None:
    admin = sign_in(cast["admin"])
    own = install(trained, "20260201-000000-bbbbbb", organisation_id=cast.org.id)
    foreign_org = make.org()
    theirs = install(trained, "20260301-000000-cccccc", organisation_id=foreign_org.id)
    listed = client.get(f"{RISK}/models", headers=admin).json()
    assert [m["version"] for m in listed["items"]] == [own, active]  # not the other organisation's
    assert listed["active"] == active
    assert [m["active"] for m in listed["items"]] == [False, True]
    assert listed["items"][1]["label"] == service.DEMO_LABEL
    assert listed["items"][1]["mlp"]["test"]["roc_auc"] > 0.6
    switched = client.put(f"{RISK}/models/active", json={"version": own}, headers=admin)
    assert switched.status_code == 200
    assert switched.json()["active"] is True
    assert client.get(f"{RISK}/models", headers=admin).json()["active"] == own
    risk = client.get(f"{RISK}/patients/{cast['patient'].patient_id}", headers=sign_in(cast["doctor"]))
    assert risk.json()["model_version"] == own  # at once, no restart
    assert store.active_version(foreign_org.id) == active  # other organisations keep the default
    assert client.put(f"{RISK}/models/active", json={"version": theirs}, headers=admin).status_code == 404
    missing = client.put(f"{RISK}/models/active", json={"version": "20990101-000000-dddddd"}, headers=admin)
    assert missing.status_code == 404
    bad = client.put(f"{RISK}/models/active", json={"version": "../../etc"}, headers=admin)
    assert bad.status_code == 422
    exported = client.get(f"{RISK}/models", params={"format": "csv"}, headers=admin)
    rows = exported.content.decode("utf-8-sig").strip().splitlines()
    assert rows[0] == "version,trained_at,active,synthetic,model,accuracy,precision,recall,f1,roc_auc,brier"
    assert len(rows) == 1 + 2 * 2  # two versions, two models each


def test_training_runs_as_a_job_on_the_organisations_encounters(
    client: TestClient, cast: Cast, make: Factory, sign_in: Callable[..., dict[str, str]]
) -> None:
    own = generated_frame(patients=120, seed=11)
    store_frame(own, cast.org.id, "app")
    store_frame(generated_frame(patients=30, seed=12), make.org().id, "app")  # never used
    admin = sign_in(cast["admin"])
    started = client.post(f"{RISK}/models", headers=admin)
    assert started.status_code == 202, started.text
    job = client.get(f"{API}/jobs/{started.json()['id']}", headers=admin).json()
    assert job["status"] == "succeeded", job
    version = job["result"]["version"]
    listed = client.get(f"{RISK}/models", headers=admin).json()
    assert listed["active"] is None  # stored, not activated
    (item,) = listed["items"]
    assert item["version"] == version
    assert item["organisation_id"] == str(cast.org.id)
    assert item["synthetic"] is False
    assert item["label"] is None
    assert item["data"]["encounters"] == own["encounter_id"].nunique()
    assert set(item["card"]["features"]) == set(item["features"])


def test_training_without_enough_outcomes_fails_with_a_clear_message(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]]
) -> None:
    admin = sign_in(cast["admin"])
    job = client.get(f"{API}/jobs/{client.post(f'{RISK}/models', headers=admin).json()['id']}", headers=admin)
    assert job.json()["status"] == "failed"
    assert "at least 10 encounters ending in admission or death" in job.json()["message"]


def test_demo_model_is_labelled_and_active(cast: Cast) -> None:
    store_frame(generated_frame(patients=120, seed=13), cast.org.id, "synthetic")
    with transaction(session_factory()) as s:
        version = train_demo_model(s)
    assert store.active_version(None) == version == store.active_version(cast.org.id)
    card = store.card(version)
    assert card is not None
    assert card["label"] == "demonstration only - not for clinical use"
    assert card["synthetic"] is True
    assert card["organisation_id"] is None


# --- the doctor's patient page -----------------------------------------------------------------------------


def test_patient_page_shows_the_risk_panel_to_the_doctor_only(
    app: Any, cast: Cast, active: str, encounter: Callable[..., uuid.UUID]
) -> None:
    patient_id = cast["patient"].patient_id
    encounter(patient_id, cast.org.id, datetime.now(UTC) - timedelta(days=3), ("I21.9",), spo2_pct=85)
    doctor = TestClient(app)
    web_login(doctor, cast["doctor"])
    page = doctor.get(f"/patients/{patient_id}")
    assert f'hx-get="/analytics/risk/patients/{patient_id}/panel"' in page.text
    panel = doctor.get(f"/analytics/risk/patients/{patient_id}/panel", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert 'data-testid="risk-level"' in panel.text
    assert active in panel.text
    assert "demonstration only - not for clinical use" in panel.text
    assert "Neural network" in panel.text
    assert "random forest" in panel.text
    assert 'data-testid="risk-drivers"' in panel.text
    assert doctor.get(f"/analytics/risk/patients/{cast.other_patient.id}/panel").status_code == 404
    patient = TestClient(app)
    web_login(patient, cast["patient"])
    assert "/analytics/risk/patients/" not in patient.get(f"/patients/{patient_id}").text
    assert patient.get(f"/analytics/risk/patients/{patient_id}/panel").status_code == 404
    doctor.close()
    patient.close()


def test_models_page_lists_versions_and_activates(
    app: Any, cast: Cast, active: str, trained: Trained
) -> None:
    own = install(trained, "20260201-000000-bbbbbb", organisation_id=cast.org.id)
    admin = TestClient(app)
    csrf = web_login(admin, cast["admin"])
    page = admin.get("/analytics/risk/models")
    assert page.status_code == 200
    assert page.text.count('data-testid="model-row"') == 4
    assert 'data-testid="active-badge"' in page.text
    assert "data-confirm=" in page.text
    done = admin.post(
        "/analytics/risk/models/active", data={"version": own, "csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert store.active_version(cast.org.id) == own
    refused = admin.post("/analytics/risk/models/active", data={"version": own}, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    admin.close()
