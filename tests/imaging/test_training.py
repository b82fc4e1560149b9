"""Training on generated images: well above chance on a held-out split, calibration, early stopping, the
multi-label path; and the metrics and calibration helpers on hand-made cases."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
import torch

from caresync.core.errors import ValidationFailed
from caresync.imaging import catalog, synthetic
from caresync.imaging.data import LabelledImages, Splits
from caresync.imaging.metrics import expected_calibration_error, multiclass_metrics, multilabel_metrics
from caresync.imaging.training import (
    TEMPERATURE_RANGE,
    TrainConfig,
    TrainingResult,
    default_size,
    fit_temperature,
    train,
)

pytestmark = pytest.mark.no_db
torch.set_num_threads(1)

TASK = "retina_oct"  # 4 classes: three lesion kinds and "normal"
SIZE = 48
CONFIG = TrainConfig(arch="basic_cnn", size=SIZE, epochs=8, patience=3, batch_size=8, learning_rate=3e-3)


def _part(data: LabelledImages, start: int, stop: int) -> LabelledImages:
    return replace(data, images=data.images[start:stop], labels=data.labels[start:stop])


def split_generated(generated: synthetic.SyntheticImages) -> Splits:
    """60/15/25 % train/val/test of generated images (already shuffled), keeping their order so the test
    images' lesion masks are ``generated.lesions[-len(test):]``."""
    n = len(generated.data)
    first, second = int(n * 0.6), int(n * 0.75)
    data = generated.data
    return Splits(_part(data, 0, first), _part(data, first, second), _part(data, second, n), "generated")


@lru_cache(maxsize=1)
def trained() -> tuple[synthetic.SyntheticImages, Splits, TrainingResult, list[tuple[int, str]]]:
    """A basic CNN trained on 160 generated 48 px retina OCT images (once per test session)."""
    generated = synthetic.generate(catalog.get_task(TASK), per_class=40, size=SIZE, seed=1)
    splits = split_generated(generated)
    calls: list[tuple[int, str]] = []
    result = train(splits, CONFIG, progress=lambda percent, message: calls.append((percent, message)))
    return generated, splits, result, calls


def _tiny(task_key: str, *, per_class: int = 5, size: int = 32) -> Splits:
    return split_generated(synthetic.generate(catalog.get_task(task_key), per_class=per_class, size=size))


def test_training_reaches_well_above_chance_on_the_test_split() -> None:
    _, splits, result, _ = trained()
    metrics = result.metrics
    names = catalog.get_task(TASK).labels
    assert metrics["n_test"] == len(splits.test) == 40
    assert metrics["baseline"]["chance_accuracy"] == 0.25
    assert metrics["accuracy"] >= 2 * metrics["baseline"]["chance_accuracy"]
    assert metrics["accuracy"] > metrics["baseline"]["majority_accuracy"] + 0.25
    assert metrics["macro_auc"] >= 0.9
    assert set(metrics["per_class"]) == set(names)
    for figures in metrics["per_class"].values():
        assert 0 <= figures["sensitivity"] <= 1
        assert 0 <= figures["specificity"] <= 1
        assert 0 <= figures["auc"] <= 1
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (4, 4)
    assert confusion.sum() == metrics["n_test"]
    assert list(confusion.sum(axis=1)) == list(np.bincount(splits.test.labels, minlength=4))
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metrics["accuracy"], abs=1e-4)


def test_training_result_describes_the_model() -> None:
    _, splits, result, calls = trained()
    assert (result.arch, result.in_channels, result.input_size) == ("basic_cnn", 1, SIZE)
    assert result.label_names == catalog.get_task(TASK).labels
    assert not result.multilabel
    assert result.fingerprint == "generated"
    assert result.config.pretrained is False  # no pretrained weights for the basic CNN
    assert result.config.flip is True  # no label names a side
    assert 1 <= result.epochs_run == len(result.history) <= CONFIG.epochs
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds"}
    assert not result.model.training
    # The kept weights are the best epoch's: the model's validation loss is the best in the history.
    best = min(row["val_loss"] for row in result.history)
    x = torch.from_numpy(splits.val.images).float().div(255).unsqueeze(1)
    with torch.no_grad():
        logits = result.model(x)
    weights = torch.bincount(torch.from_numpy(splits.train.labels), minlength=4).float()
    criterion = torch.nn.CrossEntropyLoss(weight=len(splits.train) / (4 * weights))
    assert float(criterion(logits, torch.from_numpy(splits.val.labels))) == pytest.approx(best, abs=1e-3)
    # Progress: once per epoch, rising, ending at 100.
    percents = [percent for percent, _ in calls]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert sum("Epoch" in message for _, message in calls) == result.epochs_run


def test_calibration_is_fitted_and_does_not_hurt() -> None:
    _, _, result, _ = trained()
    calibration = result.metrics["calibration"]
    assert result.temperature == calibration["temperature"] > 0
    assert calibration["val_ece_after"] <= calibration["val_ece_before"] + 0.02
    assert calibration["ece_after"] <= calibration["ece_before"] + 0.05


def test_fit_temperature_recovers_a_known_overconfidence() -> None:
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=generator) * 2
    labels = torch.multinomial(torch.softmax(true_logits, dim=1), 1, generator=generator).squeeze(1)
    overconfident = true_logits * 3
    temperature = fit_temperature(overconfident, labels, multilabel=False)
    assert temperature == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(
        labels.numpy(), torch.softmax(overconfident, 1).numpy(), multilabel=False
    )
    after = expected_calibration_error(
        labels.numpy(), torch.softmax(overconfident / temperature, 1).numpy(), multilabel=False
    )
    assert before is not None
    assert after is not None
    assert after < before / 2
    # A perfectly separated validation set would drive T to 0: it is kept within the allowed range.
    separated = torch.nn.functional.one_hot(labels, 5).float() * 4
    assert fit_temperature(separated, labels, multilabel=False) == TEMPERATURE_RANGE[0]
    # Multi-label: one temperature for all labels.
    flags = (torch.rand(4000, 3, generator=generator) < torch.sigmoid(true_logits[:, :3])).float()
    assert fit_temperature(true_logits[:, :3] / 2, flags, multilabel=True) == pytest.approx(0.5, rel=0.1)


def test_early_stopping_stops_patience_epochs_after_the_best_and_the_time_guard_stops_too() -> None:
    splits = _tiny(TASK, per_class=6, size=16)
    rng = np.random.default_rng(0)
    # Random labels: nothing generalises, so the validation loss soon stops improving.
    noise = Splits(
        *(
            replace(part, labels=rng.permutation(part.labels))
            for part in (splits.train, splits.val, splits.test)
        ),
        "noise",
    )
    config = TrainConfig(arch="basic_cnn", size=16, epochs=20, patience=2, batch_size=4, learning_rate=3e-3)
    result = train(noise, config)
    losses = [row["val_loss"] for row in result.history]
    best_epoch = losses.index(min(losses)) + 1
    assert result.epochs_run < config.epochs
    assert result.epochs_run == best_epoch + config.patience
    assert train(noise, replace(config, max_minutes=1e-6)).epochs_run == 1


def test_training_is_deterministic_for_a_seed() -> None:
    splits = _tiny(TASK, per_class=4, size=16)
    config = TrainConfig(arch="basic_cnn", size=16, epochs=2, batch_size=4, pretrained=False)
    first, second = train(splits, config), train(splits, config)
    assert first.history[-1]["val_loss"] == second.history[-1]["val_loss"]
    assert first.metrics == second.metrics
    other = train(splits, replace(config, seed=1))
    assert other.history[-1]["val_loss"] != first.history[-1]["val_loss"]


def test_multilabel_training_reports_per_label_figures() -> None:
    task = catalog.get_task("chest_xray")
    splits = _tiny("chest_xray", per_class=3, size=32)
    config = TrainConfig(arch="basic_cnn", size=32, epochs=2, batch_size=16)
    result = train(splits, config)
    metrics = result.metrics
    assert result.multilabel
    assert result.label_names == task.labels
    assert set(metrics["per_class"]) == set(task.labels)
    assert metrics["confusion"] is None
    assert 0 <= metrics["subset_accuracy"] <= 1
    assert 0 <= metrics["accuracy"] <= 1
    present = splits.test.labels.any(axis=0) & ~splits.test.labels.all(axis=0)
    for name, has_both in zip(task.labels, present, strict=True):
        auc = metrics["per_class"][name]["auc"]
        assert (auc is not None) == bool(has_both), name
        assert (name in metrics["auc_skipped"]) == (not has_both)
    assert 0 <= metrics["macro_auc"] <= 1
    assert result.temperature > 0
    assert metrics["calibration"]["ece_after"] is not None


def test_training_resizes_images_to_the_configured_size() -> None:
    splits = _tiny("pneumonia", per_class=6, size=40)
    result = train(splits, TrainConfig(arch="basic_cnn", size=24, epochs=1, batch_size=8))
    assert result.input_size == 24
    with torch.no_grad():
        assert result.model(torch.rand(2, 1, 24, 24)).shape == (2, 2)


@pytest.mark.parametrize(
    ("labels", "flip", "expected"),
    [
        (("heart", "femur-left", "femur-right"), None, False),
        (("normal", "pneumonia"), None, True),
        (("heart", "femur-left"), True, True),
        (("normal", "pneumonia"), False, False),
    ],
)
def test_flips_are_off_where_a_label_names_a_side(
    labels: tuple[str, ...], flip: bool | None, expected: bool
) -> None:
    rng = np.random.default_rng(0)
    part = LabelledImages(
        rng.integers(0, 255, (6, 16, 16), dtype=np.uint8), np.arange(6) % len(labels), labels
    )
    result = train(Splits(part, part, part, "x"), TrainConfig(arch="basic_cnn", size=16, epochs=1, flip=flip))
    assert result.config.flip is expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 8}, "between 16 and 1024"),
        ({"epochs": 0}, "at least 1 epoch"),
        ({"batch_size": 1}, "batches of 2"),
        ({"arch": "vgg"}, "basic_cnn, resnet50, efficientnet"),
    ],
)
def test_bad_configurations_are_refused(change: dict[str, object], message: str) -> None:
    splits = _tiny("pneumonia", per_class=6, size=16)
    with pytest.raises(ValidationFailed, match=message):
        train(splits, replace(TrainConfig(arch="basic_cnn", size=16, epochs=1), **change))


def test_empty_or_mismatched_splits_are_refused() -> None:
    splits = _tiny("pneumonia", per_class=6, size=16)
    empty = Splits(splits.train, _part(splits.val, 0, 0), splits.test, "x")
    with pytest.raises(ValidationFailed, match="validation split is empty"):
        train(empty, TrainConfig(arch="basic_cnn", size=16))
    other = Splits(splits.train, splits.val, replace(splits.test, label_names=("a", "b")), "x")
    with pytest.raises(ValidationFailed, match="test split's labels"):
        train(other, TrainConfig(arch="basic_cnn", size=16))


@pytest.mark.parametrize(
    ("arch", "native", "expected"),
    [("basic_cnn", None, 64), ("resnet50", None, 224), ("efficientnet", 128, 128), ("efficientnet", 28, 28)],
)
def test_default_size(arch: str, native: int | None, expected: int) -> None:
    assert default_size(arch, native) == expected


def test_multiclass_metrics_on_a_hand_made_case() -> None:
    names = ("a", "b", "c")
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    probs = np.full((8, 3), 0.1)
    probs[np.arange(8), predicted] = 0.8
    metrics = multiclass_metrics(labels, probs, names)
    assert metrics["accuracy"] == pytest.approx(5 / 8, abs=1e-4)
    assert metrics["confusion"] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert metrics["per_class"]["a"] == {
        "sensitivity": pytest.approx(2 / 3, abs=1e-4),
        "specificity": pytest.approx(4 / 5, abs=1e-4),
        "auc": pytest.approx(0.7333, abs=1e-4),
        "support": 3,
    }
    assert metrics["per_class"]["b"]["sensitivity"] == 0.5
    assert metrics["baseline"] == {
        "chance_accuracy": 0.3333,
        "majority_label": "a",
        "majority_accuracy": 0.375,
    }
    assert metrics["auc_skipped"] == []
    assert metrics["auc_note"] is None
    assert metrics["n_test"] == 8


def test_multiclass_metrics_skip_the_auc_of_a_class_absent_from_the_test_split() -> None:
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    metrics = multiclass_metrics(labels, probs, ("a", "b", "c"))
    assert metrics["per_class"]["c"] == {"sensitivity": None, "specificity": 1.0, "auc": None, "support": 0}
    assert metrics["auc_skipped"] == ["c"]
    assert "c" in metrics["auc_note"]
    assert metrics["macro_auc"] == pytest.approx(0.75, abs=1e-4)  # mean of a and b only


def test_multilabel_metrics_on_a_hand_made_case() -> None:
    labels = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    probs = np.array([[0.9, 0.2], [0.6, 0.1], [0.7, 0.4], [0.1, 0.8]])
    metrics = multilabel_metrics(labels, probs, ("x", "y"))
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["subset_accuracy"] == pytest.approx(2 / 4)
    assert metrics["per_class"]["x"]["sensitivity"] == 1.0
    assert metrics["per_class"]["x"]["specificity"] == 0.5
    assert metrics["per_class"]["y"]["sensitivity"] == 0.5
    assert metrics["per_class"]["y"]["auc"] == 1.0
    assert metrics["baseline"]["majority_accuracy"] == 0.5
    assert metrics["confusion"] is None


@pytest.mark.parametrize(
    ("labels", "probs", "multilabel", "expected"),
    [
        (np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), False, 0.15),  # right, underconfident
        (np.array([1, 1]), np.array([[0.9, 0.1], [0.9, 0.1]]), False, 0.9),  # wrong and sure
        (np.array([[1], [0]]), np.array([[1.0], [0.0]]), True, 0.0),
        (np.zeros(0, dtype=int), np.zeros((0, 2)), False, None),
    ],
)
def test_expected_calibration_error(
    labels: np.ndarray, probs: np.ndarray, multilabel: bool, expected: float | None
) -> None:
    assert expected_calibration_error(labels, probs, multilabel=multilabel) == expected
