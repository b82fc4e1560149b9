"""The permission matrix of the imaging studies API: every role and a signed-out caller on every route, on
the cast's patient (in the doctor's and nurse's care) and, signed in, on the study and analysis of a patient
cared for by a doctor of another organisation (404 like a missing id). Doctors and nurses upload and
analyse; the patient reads their own studies but not the AI's results; only doctors give feedback."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.db import session_factory, transaction
from caresync.imaging.studies import api as studies_api
from caresync.imaging.studies import service
from tests.conftest import API, Cast, Factory
from tests.imaging.conftest import dicom_bytes, principal_of, upload_study
from tests.permission_matrix import Case, Expect, assert_covered, check_api, identities, only

IMG = f"{API}/imaging"
CARERS = ("doctor", "nurse")
READERS = (*CARERS, "patient")  # the patient reads their own studies


@dataclass
class World:
    """A served pneumonia model; a study and a finished analysis of the cast's patient, and of a patient in
    another organisation's care."""

    patient_id: uuid.UUID
    study_id: uuid.UUID
    analysis_id: uuid.UUID
    foreign_study_id: uuid.UUID
    foreign_analysis_id: uuid.UUID
    dicom: bytes


def _analysed(person: Any, study_id: uuid.UUID) -> uuid.UUID:
    with transaction(session_factory()) as session:
        return service.analyse(session, principal_of(person), study_id, task="pneumonia").id


@pytest.fixture
def world(cast: Cast, make: Factory, serve_model: Any) -> World:
    serve_model("pneumonia")
    stranger = make.staff("doctor", make.org())
    make.care(stranger, cast.other_patient)
    dicom = dicom_bytes()
    study_id = upload_study(cast["doctor"], cast["patient"].patient_id, dicom)
    foreign_study_id = upload_study(stranger, cast.other_patient.id, dicom_bytes(seed=1))
    return World(
        patient_id=cast["patient"].patient_id,
        study_id=study_id,
        analysis_id=_analysed(cast["doctor"], study_id),
        foreign_study_id=foreign_study_id,
        foreign_analysis_id=_analysed(stranger, foreign_study_id),
        dicom=dicom,
    )


def _study(w: World) -> dict[str, str]:
    return {"study_id": str(w.study_id)}


def _foreign_study(w: World) -> dict[str, str]:
    return {"study_id": str(w.foreign_study_id)}


def _analysis(w: World) -> dict[str, str]:
    return {"analysis_id": str(w.analysis_id)}


def _foreign_analysis(w: World) -> dict[str, str]:
    return {"analysis_id": str(w.foreign_analysis_id)}


def _upload(w: World) -> dict[str, Any]:
    return {"patient_id": (None, str(w.patient_id)), "file": ("chest.dcm", w.dicom, "application/dicom")}


def readers(code: int) -> Expect:
    """``code`` for the patient's carers and the patient; roles that never read patients get 404 from the
    object rule (audited), exactly like a patient they do not know."""
    return only(code, *READERS, others=404)


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", f"{IMG}/studies"): Case(only(201, *CARERS), files=_upload),
    ("GET", f"{IMG}/studies"): Case(readers(200), query=lambda w: {"patient_id": str(w.patient_id)}),
    ("GET", f"{IMG}/studies/{{study_id}}"): Case(readers(200), path=_study, foreign=_foreign_study),
    ("GET", f"{IMG}/studies/{{study_id}}/preview.png"): Case(
        readers(200), path=_study, foreign=_foreign_study
    ),
    ("GET", f"{IMG}/studies/{{study_id}}/original"): Case(readers(200), path=_study, foreign=_foreign_study),
    ("POST", f"{IMG}/studies/{{study_id}}/analyses"): Case(
        only(202, *CARERS), path=_study, json=lambda _w: {"task": "pneumonia"}, foreign=_foreign_study
    ),
    ("GET", f"{IMG}/analyses"): Case(only(200, *CARERS), query=lambda _w: {"status": "done"}),
    ("GET", f"{IMG}/analyses/{{analysis_id}}"): Case(
        only(200, *CARERS), path=_analysis, foreign=_foreign_analysis
    ),
    ("GET", f"{IMG}/analyses/{{analysis_id}}/heatmap.png"): Case(
        only(200, *CARERS), path=_analysis, foreign=_foreign_analysis
    ),
    ("PUT", f"{IMG}/analyses/{{analysis_id}}/feedback"): Case(
        only(200, "doctor"),
        path=_analysis,
        json=lambda _w: {"verdict": "corrected", "labels": ["pneumonia"]},
        foreign=_foreign_analysis,
    ),
    ("GET", f"{IMG}/feedback"): Case(only(200, "admin"), query=lambda _w: {"task": "pneumonia"}),
}


def test_the_matrix_covers_every_route() -> None:
    assert_covered((studies_api.router, API_CASES))


def test_imaging_api_permission_matrix(client: TestClient, cast: Cast, world: World) -> None:
    check_api(client, cast, world, API_CASES, secrets=identities(cast.other_patient))
