"""``caresync imaging …``: write a synthetic MedMNIST-format file, train a basic CNN on it (2 epochs, 32 px)
which is registered with its metrics and served, list and switch versions, the task list, and the one-line
errors a user can cause (no traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import select
from typer.testing import CliRunner

from caresync.cli import app
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from caresync.imaging.cli import SAMPLE_DICOM
from caresync.imaging.models import ImagingModel
from caresync.imaging.registry import service

torch.set_num_threads(1)
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["imaging", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def pneumonia_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("npz") / "synthetic-pneumonia.npz"
    code, output = run(
        "make-synthetic", "--task", "pneumonia", "--out", str(path), "--per-class", "30", "--size", "32"
    )
    assert code == 0, output
    assert f"wrote {path}" in output
    return path


@pytest.mark.no_db
def test_samples_are_images_the_upload_accepts(tmp_path: Path) -> None:
    from caresync.imaging import images

    code, output = run("samples", str(tmp_path / "samples"))
    assert code == 0, output
    written = sorted(path.name for path in (tmp_path / "samples").iterdir())
    assert written == sorted([*SAMPLE_DICOM, "skin-lesion-synthetic.png"])
    chest = images.decode((tmp_path / "samples" / "chest-xray-cr.dcm").read_bytes())
    assert (chest.modality, chest.body_part, chest.width, chest.height) == ("CR", "CHEST", 1841, 1955)
    assert images.decode((tmp_path / "samples" / "skin-lesion-synthetic.png").read_bytes()).channels == 3


def test_make_synthetic_writes_a_medmnist_file(pneumonia_npz: Path) -> None:
    with np.load(pneumonia_npz) as npz:
        assert sorted(npz.files) == sorted(
            f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")
        )
        total = sum(len(npz[f"{s}_labels"]) for s in ("train", "val", "test"))
        assert total == 60
        assert npz["train_images"].dtype == np.uint8
        assert npz["train_images"].shape[1:] == (32, 32)
        assert npz["train_labels"].shape[1] == 1  # MedMNIST keeps class numbers as (N, 1)
        assert set(np.unique(npz["test_labels"])) == {0, 1}


def test_train_registers_serves_lists_and_switches(pneumonia_npz: Path) -> None:
    code, output = run(
        "train", "--task", "pneumonia", "--arch", "basic_cnn", "--data", str(pneumonia_npz), "--size", "32",
        "--epochs", "2", "--batch-size", "16", "--serve", "--demonstration",
    )  # fmt: skip
    assert code == 0, output
    assert "Epoch 1 of 2" in output
    assert "accuracy " in output
    assert "(baseline " in output
    assert "sensitivity  specificity" in output
    assert "confusion matrix (rows: true label, columns: predicted)" in output
    assert "registered pneumonia version 1" in output
    assert "now serving" in output
    with transaction(session_factory()) as s:
        model = s.scalars(select(ImagingModel)).one()
        assert service.serving_model(s, "pneumonia").id == model.id  # type: ignore[union-attr]
        assert model.card["data"]["source"] == "synthetic-pneumonia.npz"
        assert model.card["label"] == service.DEMONSTRATION_LABEL
        assert model.card["metrics"]["n_test"] == model.card["data"]["splits"]["test"] > 0
        assert len(model.card["metrics"]["confusion"]) == 2
        assert model.card["training"]["epochs_run"] <= 2
        first_id = model.id

    code, output = run(
        "train", "--task", "pneumonia", "--arch", "basic_cnn", "--data", str(pneumonia_npz), "--size", "32",
        "--epochs", "1", "--batch-size", "16", "--intended-use", "Trying the command line.",
    )  # fmt: skip
    assert code == 0, output
    assert "registered pneumonia version 2" in output
    assert "caresync imaging serve" in output  # not served without --serve
    with transaction(session_factory()) as s:
        second = s.scalars(select(ImagingModel).where(ImagingModel.version == 2)).one()
        assert second.demonstration is False
        assert second.card["intended_use"] == "Trying the command line."
        assert service.serving_model(s, "pneumonia").id == first_id  # type: ignore[union-attr]

    code, output = run("models", "--task", "pneumonia")
    assert code == 0, output
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(str(second.id))
    assert "SERVING" not in lines[0]
    assert lines[1].startswith(str(first_id))
    assert "SERVING demonstration only" in lines[1]

    code, output = run("serve", str(second.id))
    assert code == 0, output
    assert output.strip() == f"pneumonia is now served by version 2 ({second.id})"
    with transaction(session_factory()) as s:
        assert service.serving_model(s, "pneumonia").id == second.id  # type: ignore[union-attr]
        serves = select(AuditEntry).where(AuditEntry.action == "imaging.model.serve").order_by(AuditEntry.seq)
        switch = s.scalars(serves).all()[-1]
        assert switch.actor_name == "caresync imaging CLI"
        assert '"from_version": 1' in switch.detail

    code, output = run("tasks")
    assert code == 0, output
    pneumonia = next(line for line in output.splitlines() if line.startswith("pneumonia "))
    assert "serving v2" in pneumonia
    assert "chest_xray" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("train", "--task", "xray", "--arch", "basic_cnn", "--data", "x.npz"),
            "Unknown imaging task 'xray'",
        ),
        (("train", "--task", "pneumonia", "--arch", "vgg", "--data", "x.npz"), "unknown architecture 'vgg'"),
        (
            ("train", "--task", "pneumonia", "--arch", "basic_cnn", "--data", "/nowhere/x.npz"),
            "does not exist",
        ),
        (("serve", "not-an-id"), "is not a model id"),
        (("serve", "00000000-0000-4000-8000-000000000000"), "No such imaging model"),
        (("models", "--task", "xray"), "Unknown imaging task 'xray'"),
        (("make-synthetic", "--task", "xray", "--out", "x.npz"), "Unknown imaging task 'xray'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args: tuple[str, ...], message: str) -> None:
    code, output = run(*args)
    assert code == 1
    assert message in output
    assert output.startswith("error: ")
    assert len(output.strip().splitlines()) == 1
    assert "Traceback" not in output


def test_training_on_the_wrong_file_is_refused(tmp_path: Path) -> None:
    colour = tmp_path / "skin.npz"
    assert (
        run(
            "make-synthetic",
            "--task",
            "dermatology",
            "--out",
            str(colour),
            "--per-class",
            "3",
            "--size",
            "16",
        )[0]
        == 0
    )
    code, output = run(
        "train", "--task", "pneumonia", "--arch", "basic_cnn", "--data", str(colour), "--size", "16"
    )
    assert code == 1
    assert "the images are colour but task 'pneumonia' reads greyscale images" in output
    assert len(output.strip().splitlines()) == 1
    with transaction(session_factory()) as s:
        assert s.scalars(select(ImagingModel)).all() == []
