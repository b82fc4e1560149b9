"""Inference: Grad-CAM points at the synthetic lesions, calibrated probabilities and findings, thread safety,
the heatmap PNG, and Grad-CAM on ResNet50 and EfficientNet."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from caresync.core.errors import ValidationFailed
from caresync.imaging import catalog
from caresync.imaging.inference import NO_FINDING, Predictor, findings_of, heatmap_png
from tests.imaging.test_networks import untrained
from tests.imaging.test_training import SIZE, TASK, trained

pytestmark = pytest.mark.no_db
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """A predictor of the basic CNN trained on generated retina OCT images."""
    _, _, result, _ = trained()
    return Predictor(
        result.model,
        arch=result.arch,
        label_names=result.label_names,
        multilabel=False,
        temperature=result.temperature,
        input_size=SIZE,
        in_channels=1,
        normal_label=catalog.get_task(TASK).normal_label,
    )


def _input(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).float().div(255)[None, None]


def test_gradcam_peaks_inside_the_synthetic_lesion(predictor: Predictor) -> None:
    generated, splits, _, _ = trained()
    n_test = len(splits.test)
    images, lesions = generated.data.images[-n_test:], generated.lesions[-n_test:]
    normal = catalog.get_task(TASK).labels.index("normal")
    hits = total = 0
    for image, lesion, label in zip(images, lesions, splits.test.labels, strict=True):
        if label == normal:
            assert not lesion.any()
            continue
        prediction = predictor.predict(_input(image))
        assert prediction.heatmap.shape == (SIZE, SIZE)
        assert prediction.heatmap.dtype == np.float32
        assert prediction.heatmap.min() == 0.0
        assert prediction.heatmap.max() == pytest.approx(1.0)
        peak = np.unravel_index(prediction.heatmap.argmax(), prediction.heatmap.shape)
        hits += bool(ndimage.binary_dilation(lesion, iterations=2)[peak])
        total += 1
    assert total == 30
    assert hits / total >= 0.7, f"Grad-CAM peak inside the lesion for {hits} of {total} images"


def test_prediction_is_calibrated_and_explains_the_top_label(predictor: Predictor) -> None:
    _, splits, result, _ = trained()
    x = _input(splits.test.images[0])
    prediction = predictor.predict(x)
    with torch.no_grad():
        logits = result.model(x)[0]
    expected = torch.softmax(logits / result.temperature, dim=0)
    assert list(prediction.probabilities) == list(result.label_names)
    assert list(prediction.probabilities.values()) == pytest.approx(expected.tolist(), abs=1e-4)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert prediction.target == result.label_names[int(expected.argmax())]
    assert prediction.findings[0] in (prediction.target, NO_FINDING)
    assert 0 < prediction.seconds < 10


def test_predict_is_thread_safe(predictor: Predictor) -> None:
    _, splits, _, _ = trained()
    inputs = [_input(image) for image in splits.test.images[:8]]
    alone = [predictor.predict(x) for x in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(predictor.predict, inputs))
    for one, other in zip(alone, together, strict=True):
        assert one.probabilities == other.probabilities
        assert one.target == other.target
        np.testing.assert_allclose(one.heatmap, other.heatmap, atol=1e-5)
    assert len({a.heatmap.argmax() for a in alone}) > 1  # different images, different heatmaps


def test_predict_refuses_an_input_of_the_wrong_shape(predictor: Predictor) -> None:
    with pytest.raises(ValidationFailed, match=r"\(1, 1, 48, 48\)"):
        predictor.predict(torch.rand(1, 3, SIZE, SIZE))
    with pytest.raises(ValidationFailed, match="not"):
        predictor.predict(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize(
    ("probabilities", "multilabel", "expected"),
    [
        ({"normal": 0.7, "cnv": 0.25, "dme": 0.05}, False, [NO_FINDING, "cnv"]),
        ({"normal": 0.9, "cnv": 0.06, "dme": 0.04}, False, [NO_FINDING]),
        ({"normal": 0.45, "cnv": 0.35, "dme": 0.2}, False, ["cnv", "dme"]),
        ({"normal": 0.4, "cnv": 0.3, "dme": 0.3}, False, ["cnv", "dme"]),
        ({"normal": 0.1, "cnv": 0.6, "dme": 0.3}, False, ["cnv", "dme"]),
        ({"normal": 0.25, "cnv": 0.6, "dme": 0.15}, False, ["cnv"]),
        ({"a": 0.5, "b": 0.3, "c": 0.2}, False, ["a", "b", "c"]),
        ({"a": 0.7, "b": 0.9, "c": 0.1}, True, ["b", "a"]),
        ({"a": 0.2, "b": 0.49, "c": 0.1}, True, [NO_FINDING]),
        ({"a": 0.5, "b": 0.1, "c": 0.1}, True, ["a"]),
    ],
)
def test_findings(probabilities: dict[str, float], multilabel: bool, expected: list[str]) -> None:
    normal = "normal" if "normal" in probabilities else None
    assert findings_of(probabilities, multilabel=multilabel, normal_label=normal) == expected


def test_a_normal_label_leading_without_a_majority_and_no_other_candidate_means_no_finding() -> None:
    assert findings_of(
        {"normal": 0.5, "a": 0.19, "b": 0.19, "c": 0.12}, multilabel=False, normal_label="normal"
    ) == [NO_FINDING]


def test_heatmap_png_is_a_transparent_where_cold_colour_map() -> None:
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:4, :4] = 1.0
    png = heatmap_png(heat, width=64, height=48)
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (64, 48))
    rgba = np.asarray(image)
    assert rgba[5, 5, 3] == 255
    assert rgba[45, 60, 3] == 0
    red, green, blue = (int(value) for value in rgba[5, 5, :3])
    assert red > 100
    assert red > blue
    assert green < 50
    assert rgba[45, 60, 2] > rgba[45, 60, 0]  # the cold end is blue
    alpha = rgba[..., 3]
    assert ((alpha > 0) & (alpha < 255)).any()  # a smooth edge, not a step


def test_heatmap_png_of_a_flat_or_broken_map_is_fully_transparent() -> None:
    rgba = np.asarray(Image.open(io.BytesIO(heatmap_png(np.full((4, 4), np.nan), width=10, height=10))))
    assert rgba.shape == (10, 10, 4)
    assert not rgba[..., 3].any()


@pytest.mark.parametrize(("arch", "channels"), [("resnet50", 1), ("efficientnet", 3)])
def test_gradcam_runs_on_the_deep_networks(arch: str, channels: int) -> None:
    model = untrained(arch, channels, 3)
    predictor = Predictor(
        model,
        arch=arch,
        label_names=("a", "b", "c"),
        multilabel=True,
        temperature=2.0,
        input_size=64,
        in_channels=channels,
    )
    x = torch.rand(1, channels, 64, 64, generator=torch.Generator().manual_seed(0))
    prediction = predictor.predict(x)
    assert prediction.heatmap.shape == (64, 64)
    assert np.isfinite(prediction.heatmap).all()
    assert prediction.heatmap.min() >= 0
    assert prediction.heatmap.max() <= 1
    with torch.no_grad():
        expected = torch.sigmoid(model(x)[0] / 2.0)
    assert list(prediction.probabilities.values()) == pytest.approx(expected.tolist(), abs=1e-4)
    assert prediction.target == "abc"[int(expected.argmax())]
