"""The imaging studies API end to end: upload a DICOM and a PNG, list and read studies, the preview and the
original, ask for an analysis (the job runs at once), read the result with its heatmap and model card
summary, give feedback, and the clear errors on the way."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import API, Cast
from tests.imaging.conftest import dicom_bytes, png_bytes

IMG = f"{API}/imaging"


def _upload(
    client: TestClient, headers: dict[str, str], patient_id: Any, data: bytes, name: str, **form: str
) -> Any:
    media = "application/dicom" if name.endswith(".dcm") else "image/png"
    return client.post(
        f"{IMG}/studies",
        data={"patient_id": str(patient_id), **form},
        files={"file": (name, data, media)},
        headers=headers,
    )


def test_upload_analyse_and_review_a_chest_x_ray(
    client: TestClient, cast: Cast, sign_in: Any, serve_model: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    patient_id = cast["patient"].patient_id
    dicom = dicom_bytes(size=(96, 72))
    created = _upload(client, doctor, patient_id, dicom, "chest.dcm", description="  PA  view ")
    assert created.status_code == 201, created.text
    study = created.json()
    assert (study["modality"], study["body_part"], study["width"], study["height"]) == ("CR", "CHEST", 96, 72)
    assert study["description"] == "PA view"
    assert study["pixel_spacing"] == [0.5, 0.4]
    assert [t["key"] for t in study["tasks"]] == ["chest_xray", "pneumonia"]

    listed = client.get(f"{IMG}/studies", params={"patient_id": str(patient_id)}, headers=doctor).json()
    assert [s["id"] for s in listed["items"]] == [study["id"]]
    assert client.get(f"{IMG}/studies/{study['id']}", headers=doctor).json()["filename"] == "chest.dcm"
    preview = client.get(f"{IMG}/studies/{study['id']}/preview.png", headers=doctor)
    assert preview.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(preview.content)).size == (96, 72)
    original = client.get(f"{IMG}/studies/{study['id']}/original", headers=doctor)
    assert original.content == dicom
    assert original.headers["content-type"] == "application/dicom"
    assert original.headers["content-disposition"] == 'attachment; filename="chest.dcm"'

    choose = client.post(f"{IMG}/studies/{study['id']}/analyses", json={}, headers=doctor)
    assert choose.status_code == 422
    assert "choose one of: chest_xray" in choose.json()["detail"]
    assert choose.headers["content-type"].startswith("application/problem+json")
    none_served = client.post(
        f"{IMG}/studies/{study['id']}/analyses", json={"task": "pneumonia"}, headers=doctor
    )
    assert none_served.status_code == 409
    assert "No model serves pneumonia" in none_served.json()["detail"]

    model = serve_model("pneumonia")
    accepted = client.post(
        f"{IMG}/studies/{study['id']}/analyses", json={"task": "pneumonia"}, headers=doctor
    )
    assert accepted.status_code == 202, accepted.text
    analysis = accepted.json()
    assert analysis["status"] == "done"
    assert analysis["job"]["status"] == "succeeded"
    assert analysis["job"]["progress"] == 100
    shown = client.get(f"{IMG}/analyses/{analysis['id']}", headers=doctor).json()
    card = shown["model"]
    assert (card["id"], card["version"], card["architecture"], card["input_size"]) == (
        str(model.id),
        1,
        "basic_cnn",
        32,
    )
    assert card["demonstration"]
    assert card["label"] == "Demonstration only — not for clinical use"
    assert card["data_source"] == "untrained (tests)"
    assert card["intended_use"]
    assert abs(sum(shown["probabilities"].values()) - 1.0) < 1e-3  # 4 decimals each
    assert shown["findings"][0] in ("No finding", "pneumonia")
    assert shown["seconds"] > 0
    assert shown["preprocessing"][-1] == "Resized from 96 x 72 to 32 x 32 (aspect not kept)"
    heat = client.get(shown["heatmap_url"], headers=doctor)
    assert heat.status_code == 200
    assert Image.open(io.BytesIO(heat.content)).size == (96, 72)

    reviewed = client.put(
        f"{IMG}/analyses/{analysis['id']}/feedback",
        json={"verdict": "corrected", "labels": ["pneumonia"]},
        headers=doctor,
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["feedback"]["labels"] == ["pneumonia"]
    nurse = sign_in(cast["nurse"])
    refused = client.put(
        f"{IMG}/analyses/{analysis['id']}/feedback", json={"verdict": "confirmed"}, headers=nurse
    )
    assert refused.status_code == 403
    bad = client.put(f"{IMG}/analyses/{analysis['id']}/feedback", json={"verdict": "perhaps"}, headers=doctor)
    assert bad.status_code == 422
    worklist = client.get(f"{IMG}/analyses", headers=nurse).json()
    assert [a["id"] for a in worklist["items"]] == [analysis["id"]]
    assert (worklist["total"], worklist["next_page"]) == (1, None)
    exported = client.get(f"{IMG}/feedback", params={"task": "pneumonia"}, headers=sign_in(cast["admin"]))
    assert exported.status_code == 200, exported.text
    assert [(row["verdict"], row["labels"], row["model_id"]) for row in exported.json()] == [
        ("corrected", ["pneumonia"], analysis["model"]["id"])
    ]
    assert "patient_id" not in exported.json()[0]


def test_bad_uploads_get_a_clear_4xx(client: TestClient, cast: Cast, sign_in: Any) -> None:
    doctor = sign_in(cast["doctor"])
    patient_id = cast["patient"].patient_id
    cases = [
        (b"hello, not an image" * 5, "note.png", 415),
        (dicom_bytes()[:300], "cut.dcm", 422),
        (png_bytes(size=(10, 200)), "thin.png", 422),
    ]
    for data, name, status in cases:
        response = _upload(client, doctor, patient_id, data, name)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]
    assert (
        client.get(f"{IMG}/studies", params={"patient_id": str(patient_id)}, headers=doctor).json()["items"]
        == []
    )


def test_a_photo_outside_a_tasks_contract_is_refused_at_once(
    client: TestClient, cast: Cast, sign_in: Any, serve_model: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    serve_model("pneumonia")
    photo = _upload(client, doctor, cast["patient"].patient_id, png_bytes(rgb=True), "mole.png").json()
    refused = client.post(f"{IMG}/studies/{photo['id']}/analyses", json={"task": "pneumonia"}, headers=doctor)
    assert refused.status_code == 422, refused.text
    assert "colour" in refused.json()["detail"] or "channel" in refused.json()["detail"]
    assert client.get(f"{IMG}/analyses", headers=doctor).json()["items"] == []
