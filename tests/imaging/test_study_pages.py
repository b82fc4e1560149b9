"""The imaging web pages: a patient's studies with the upload form (DICOM uploaded and analysed in one go, the
server's 4xx message shown for a bad file, the task chooser when several analyses fit), the result viewer
(finding, probabilities, conditions with ICD-10 codes, model version, demonstration banner, preprocessing,
DICOM facts), its live fragments while an analysis waits or runs, the worklist with its status filter and
pages, the doctor's feedback form, and who may see each page.

Models are untrained basic CNNs at 32 px (``serve_model``): the pages show what the analysis stored, whatever
the model concluded; jobs run in-process, so an analysis is done when the upload's redirect arrives."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.core.jobs import Job
from caresync.db import utcnow
from caresync.imaging.models import ImagingAnalysis, ImagingModel
from caresync.imaging.studies import pages
from tests.conftest import Cast, Factory, web_login
from tests.imaging.conftest import dicom_bytes, png_bytes

X = "\N{MULTIPLICATION SIGN}"
TASK = "pneumonia"  # multi-class (normal / pneumonia): one top finding, conditions with ICD-10 codes


@pytest.fixture
def served(serve_model: Callable[..., ImagingModel]) -> ImagingModel:
    """An untrained demonstration model serving the pneumonia task."""
    return serve_model(TASK)


def _upload(client: TestClient, csrf: str, patient_id: uuid.UUID, data: bytes, name: str, **form: str) -> Any:
    return client.post(
        f"/patients/{patient_id}/imaging",
        data={"csrf_token": csrf, **form},
        files={"file": (name, data, "application/octet-stream")},
        follow_redirects=False,
    )


def _analysis_id(response: Any) -> uuid.UUID:
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/imaging/analyses/([0-9a-f-]{36})", response.headers["location"])
    assert found, response.headers["location"]
    return uuid.UUID(found.group(1))


def _analysed(client: TestClient, cast: Cast, **form: str) -> uuid.UUID:
    """A chest CR uploaded and analysed (pneumonia task) through the patient page, as the cast's doctor."""
    csrf = web_login(client, cast["doctor"])
    data = dicom_bytes()
    response = _upload(
        client, csrf, cast["patient"].patient_id, data, "chest.dcm", analyse="1", task=TASK, **form
    )
    return _analysis_id(response)


def test_a_dicom_is_uploaded_analysed_and_shown_with_heatmap_chart_and_findings(
    client: TestClient, cast: Cast, served: ImagingModel, tx: Any
) -> None:
    csrf = web_login(client, cast["doctor"])
    patient_id = cast["patient"].patient_id
    assert "/imaging" in client.get(f"/patients/{patient_id}").text  # the "Imaging" button on the profile
    empty = client.get(f"/patients/{patient_id}/imaging")
    assert empty.status_code == 200
    assert "No imaging studies yet" in empty.text
    assert 'name="file"' in empty.text
    assert 'name="task"' in empty.text

    response = _upload(
        client, csrf, patient_id, dicom_bytes(), "chest.dcm", analyse="1", task=TASK, description="Chest PA"
    )
    analysis_id = _analysis_id(response)
    with tx() as session:
        analysis = session.get(ImagingAnalysis, analysis_id)
        assert analysis is not None
        assert analysis.status == "done", analysis.error
        top = analysis.findings[0]
        probabilities = dict(analysis.probabilities)
    page = client.get(f"/imaging/analyses/{analysis_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    findings = text.split('data-testid="findings"')[1].split("</ol>")[0]
    assert f"<strong>{top}</strong>" in findings
    if top == "pneumonia":
        assert f"{probabilities[top] * 100:.1f} %" in findings
        assert "Pneumonia (paediatric)" in findings
        assert "J18.9" in findings
    else:  # "No finding": the normal label leads
        assert f"No abnormality found by the model (normal {probabilities['normal'] * 100:.1f} %)" in findings
    chart = text.split('data-testid="probabilities"')[1].split("</dl>")[0]
    order = re.findall(r'data-label="([^"]+)"', chart)
    assert order == sorted(
        probabilities, key=lambda label: -probabilities[label]
    )  # sorted, most likely first
    assert "Demonstration only — not for clinical use" in text
    assert f"/imaging/models/{served.id}" in text
    assert f"v{served.version}" in text
    assert "basic_cnn" in text
    assert f"/api/v1/imaging/analyses/{analysis_id}/heatmap.png" in text
    assert 'id="heatmap-opacity"' in text
    assert "Heatmap opacity" in text
    steps = text.split('data-testid="preprocessing"')[1].split("</ol>")[0]
    assert "MONOCHROME1" in steps, steps  # the inversion
    assert re.search(r"Resized from 64\D+48 to 32\D+32", steps), steps  # the model's input size
    facts = text.split('data-testid="study-facts"')[1]
    assert "CR" in facts
    assert "CHEST" in facts
    assert f"0.5 {X} 0.4 mm" in facts
    assert f"64 {X} 48 px" in facts
    assert 'data-testid="feedback-form"' in text
    assert client.get(f"/api/v1/imaging/analyses/{analysis_id}/heatmap.png").content.startswith(b"\x89PNG")

    studies = client.get(f"/patients/{patient_id}/imaging").text
    assert "Chest PA" in studies
    assert f"CR · CHEST · 64{X}48 px" in studies
    assert f"/imaging/analyses/{analysis_id}" in studies


def test_a_nurse_sees_the_result_and_the_worklist_but_no_feedback_form(
    client: TestClient, cast: Cast, served: ImagingModel, tx: Any
) -> None:
    analysis_id = _analysed(client, cast)
    client.cookies.clear()
    web_login(client, cast["nurse"])
    viewer = html.unescape(client.get(f"/imaging/analyses/{analysis_id}").text)
    assert "Demonstration only — not for clinical use" in viewer
    assert 'data-testid="feedback-form"' not in viewer
    assert "No doctor has reviewed this finding yet" in viewer
    with tx() as session:
        top = session.get(ImagingAnalysis, analysis_id).findings[0]
    worklist = html.unescape(client.get("/imaging/studies").text)
    row = worklist.split('data-testid="worklist-row"')[1]
    assert f'data-testid="top-finding">{top}<' in row
    assert f"v{served.version} · basic_cnn" in row
    assert "Demonstration only" in row
    assert cast["patient"].full_name in row
    assert "Pneumonia" in row
    assert 'data-status="done"' in row


def test_a_doctor_confirms_or_corrects_the_finding_and_bad_feedback_is_shown_inline(
    client: TestClient, cast: Cast, served: ImagingModel
) -> None:
    analysis_id = _analysed(client, cast)
    csrf = web_login(client, cast["doctor"])
    url = f"/imaging/analyses/{analysis_id}/feedback"
    bad = client.post(url, data={"csrf_token": csrf, "verdict": "maybe"})
    assert bad.status_code == 422
    assert "Unknown verdict 'maybe'" in html.unescape(bad.text)
    assert 'data-testid="feedback-error"' in bad.text
    corrected = client.post(
        url,
        data={"csrf_token": csrf, "verdict": "corrected", "label": "pneumonia", "note": "Left lower lobe"},
    )
    assert corrected.status_code == 200  # the redirect to the viewer, followed
    saved = corrected.text.split('data-testid="saved-verdict"')[1].split("</div>")[0]
    assert "Corrected to: pneumonia" in saved
    assert "Left lower lobe" in corrected.text
    confirmed = client.post(url, data={"csrf_token": csrf, "verdict": "confirmed"})
    assert "Finding confirmed" in confirmed.text


def test_a_bad_file_shows_the_servers_message_and_stores_nothing(
    client: TestClient, cast: Cast, served: ImagingModel
) -> None:
    csrf = web_login(client, cast["doctor"])
    patient_id = cast["patient"].patient_id
    url = f"/patients/{patient_id}/imaging"
    missing = client.post(url, data={"csrf_token": csrf, "analyse": "1"})
    assert missing.status_code == 422
    assert "Choose an image file (DICOM, PNG or JPEG)." in missing.text
    for data, status in ((b"%PDF-1.4 not an image", 415), (b"\x89PNG\r\n\x1a\n broken", 422), (b"", 422)):
        refused = _upload(client, csrf, patient_id, data, "scan.png", analyse="1")
        assert refused.status_code == status, (data, refused.text[:300])
        message = refused.text.split('data-testid="file-error"')[1].split("</div>")[0]
        assert len(html.unescape(message).split(">", 1)[1].strip()) > 10, message  # the server's own words
    wrong = _upload(client, csrf, patient_id, png_bytes(rgb=True), "photo.png", analyse="1", task=TASK)
    assert wrong.status_code == 422  # a colour photo is outside the pneumonia model's contract
    message = html.unescape(wrong.text.split('data-testid="file-error"')[1].split("</div>")[0])
    assert "reads greyscale" in message
    assert "this image is a colour PNG picture" in message
    assert "No imaging studies yet" in client.get(url).text  # nothing half-written


def test_when_several_analyses_fit_the_doctor_chooses_one(
    client: TestClient, cast: Cast, served: ImagingModel
) -> None:
    csrf = web_login(client, cast["doctor"])
    patient_id = cast["patient"].patient_id
    response = _upload(client, csrf, patient_id, dicom_bytes(), "chest.dcm", analyse="1")
    assert response.status_code == 303
    assert "?choose=" in response.headers["location"]  # chest_xray and pneumonia both read a chest CR
    page = client.get(response.headers["location"])
    assert "Several models can read this image: choose the analysis." in page.text
    form = page.text.split('data-testid="analyse-form"')[1].split("</form>")[0]
    assert f'value="{TASK}"' in form
    assert 'value="chest_xray" disabled' in form
    assert "(no model in service)" in form
    action = re.search(r'action="(/imaging/studies/[0-9a-f-]{36}/analyse)"', page.text)
    assert action
    unserved = client.post(action.group(1), data={"csrf_token": csrf, "task": "chest_xray"})
    assert unserved.status_code == 409
    assert "No model serves chest_xray" in unserved.text
    analysed = client.post(action.group(1), data={"csrf_token": csrf, "task": TASK}, follow_redirects=False)
    _analysis_id(analysed)


def test_live_fragments_show_progress_then_the_result(
    client: TestClient, cast: Cast, served: ImagingModel, tx: Any
) -> None:
    analysis_id = _analysed(client, cast)
    with tx() as session:  # as the worker sees it midway
        analysis = session.get(ImagingAnalysis, analysis_id)
        assert analysis is not None
        analysis.status, analysis.probabilities, analysis.completed_at = "running", None, None
        job = session.get(Job, analysis.job_id)
        assert job is not None
        job.status, job.progress, job.message = "running", 40, "Running basic_cnn v1"
    live = client.get(f"/imaging/analyses/{analysis_id}/live")
    assert live.status_code == 200
    assert f'hx-get="/imaging/analyses/{analysis_id}/live"' in live.text
    assert 'hx-trigger="job-update, every 2s"' in live.text  # app.js fires job-update on the job's events
    assert f'data-job-id="{job.id}"' in live.text
    assert 'aria-valuenow="40"' in live.text
    assert "Analysing: Running basic_cnn v1 (40 %)" in live.text
    assert "<html" not in live.text  # a fragment
    row = client.get(f"/imaging/analyses/{analysis_id}/progress")
    assert f'hx-get="/imaging/analyses/{analysis_id}/progress"' in row.text
    assert 'data-status="running"' in row.text
    assert "Analysing" in client.get("/imaging/studies?status=running").text
    with tx() as session:
        analysis = session.get(ImagingAnalysis, analysis_id)
        assert analysis is not None
        analysis.status, analysis.completed_at = "done", utcnow()
        analysis.probabilities, analysis.findings = {"normal": 0.3, "pneumonia": 0.7}, ["pneumonia"]
    done = client.get(f"/imaging/analyses/{analysis_id}/live").text
    assert "hx-trigger" not in done
    assert 'data-status="done"' in done
    assert "J18.9" in done
    assert "70.0 %" in done
    assert 'id="heatmap-opacity"' in done
    assert "Open the result" in client.get(f"/imaging/analyses/{analysis_id}/progress").text


def test_the_worklist_filters_by_status_and_pages(
    client: TestClient, cast: Cast, served: ImagingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    web_login(client, cast["doctor"])
    assert "No imaging analyses" in client.get("/imaging/studies").text
    _analysed(client, cast)
    _analysed(client, cast)
    assert "No analyses with this status" in client.get("/imaging/studies?status=failed").text
    assert client.get("/imaging/studies?status=nonsense").status_code == 422
    monkeypatch.setattr(pages, "PER_PAGE", 1)
    first = client.get("/imaging/studies")
    assert first.text.count('data-testid="worklist-row"') == 1
    assert "2 analyses" in first.text
    assert 'href="/imaging/studies?status=&amp;page=2"' in first.text
    second = client.get("/imaging/studies?page=2")
    assert second.text.count('data-testid="worklist-row"') == 1
    assert "page=3" not in second.text
    assert "First page" in second.text


@pytest.mark.parametrize("role", ["patient", "pharmacist", "admin"])
def test_roles_without_imaging_get_403(
    client: TestClient, cast: Cast, served: ImagingModel, role: str
) -> None:
    analysis_id = _analysed(client, cast)
    client.cookies.clear()
    web_login(client, cast[role])
    patient_id = cast["patient"].patient_id
    for url in ("/imaging/studies", f"/patients/{patient_id}/imaging", f"/imaging/analyses/{analysis_id}"):
        assert client.get(url).status_code == 403, (role, url)


def test_a_doctor_of_another_hospital_sees_nothing(
    client: TestClient, cast: Cast, served: ImagingModel, make: Factory
) -> None:
    analysis_id = _analysed(client, cast)
    client.cookies.clear()
    csrf = web_login(client, make.staff("doctor", make.org()))
    patient_id = cast["patient"].patient_id
    assert client.get(f"/patients/{patient_id}/imaging").status_code == 404
    assert client.get(f"/imaging/analyses/{analysis_id}").status_code == 404
    assert client.get(f"/imaging/analyses/{analysis_id}/live").status_code == 404
    assert "No imaging analyses" in client.get("/imaging/studies").text
    upload = _upload(client, csrf, patient_id, dicom_bytes(), "chest.dcm")
    assert upload.status_code == 404
