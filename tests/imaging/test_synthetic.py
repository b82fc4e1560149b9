"""Generated images: shapes and channels per task, determinism, class-specific localised lesions with
masks that cover them, empty masks on normal images, speed, and the example PNGs."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from caresync.core.errors import ValidationFailed
from caresync.imaging.catalog import TASKS, get_task
from caresync.imaging.synthetic import SyntheticImages, example_png, generate

pytestmark = pytest.mark.no_db


@pytest.mark.parametrize(
    ("key", "per_class", "size", "n", "image_shape", "label_shape"),
    [
        ("pneumonia", 3, 32, 6, (32, 32), ()),
        ("dermatology", 2, 48, 14, (48, 48, 3), ()),
        ("diabetic_retinopathy", 1, 16, 5, (16, 16, 3), ()),
        ("chest_xray", 2, 40, 30, (40, 40), (14,)),  # 14 labels + "no finding", 2 each
        ("abdominal_organs_axial", 1, 64, 11, (64, 64), ()),
    ],
)
def test_shapes_dtypes_and_labels(
    key: str, per_class: int, size: int, n: int, image_shape: tuple[int, ...], label_shape: tuple[int, ...]
) -> None:
    task = get_task(key)
    result = generate(task, per_class=per_class, size=size)
    data = result.data
    assert data.images.shape == (n, *image_shape)
    assert data.images.dtype == np.uint8
    assert data.labels.shape == (n, *label_shape)
    assert data.channels == task.channels
    assert data.label_names == task.labels
    assert data.multilabel == task.multilabel
    assert result.lesions.shape == (n, size, size)
    assert result.lesions.dtype == bool
    if task.multilabel:
        assert set(np.unique(data.labels)) == {0, 1}
        assert (data.labels.sum(axis=0) >= per_class).all()  # every label positive at least per_class times
        assert (data.labels.sum(axis=1) == 0).sum() == per_class  # the "no finding" images
    else:
        assert np.bincount(data.labels, minlength=len(task.labels)).tolist() == [per_class] * len(task.labels)


def test_deterministic_per_seed() -> None:
    task = get_task("dermatology")
    first, again, other = (generate(task, per_class=3, size=32, seed=s) for s in (7, 7, 8))
    assert np.array_equal(first.data.images, again.data.images)
    assert np.array_equal(first.data.labels, again.data.labels)
    assert np.array_equal(first.lesions, again.lesions)
    assert not np.array_equal(first.data.images, other.data.images)


@pytest.mark.parametrize(("per_class", "size"), [(0, 64), (1, 8), (1, 2048)])
def test_bad_arguments_refused(per_class: int, size: int) -> None:
    with pytest.raises(ValidationFailed):
        generate(get_task("pneumonia"), per_class=per_class, size=size)


def _normal_and_lesioned(result: SyntheticImages, key: str) -> tuple[np.ndarray, np.ndarray]:
    task = get_task(key)
    if task.multilabel:
        normal = result.data.labels.sum(axis=1) == 0
    elif task.normal_label is None:
        normal = np.zeros(len(result.data), dtype=bool)
    else:
        normal = result.data.labels == task.labels.index(task.normal_label)
    return normal, ~normal


@pytest.mark.parametrize(
    "key",
    ["pneumonia", "chest_xray", "dermatology", "breast_ultrasound", "blood_cells", "abdominal_organs_axial"],
)
def test_masks_cover_visible_lesions_and_normals_have_none(key: str) -> None:
    size = 64
    result = generate(get_task(key), per_class=6, size=size, seed=3)
    normal, lesioned = _normal_and_lesioned(result, key)
    assert not result.lesions[normal].any()
    labels = result.data.labels
    single = labels.sum(axis=1) == 1 if result.data.multilabel else np.ones(len(labels), dtype=bool)
    for image, mask, one_lesion in zip(
        result.data.images[lesioned], result.lesions[lesioned], single[lesioned], strict=True
    ):
        assert mask.any()
        pixels = image.astype(np.float32).reshape(size, size, -1)
        ring = ndimage.binary_dilation(mask, iterations=3) & ~mask
        background = np.median(pixels[ring], axis=0)
        difference = np.abs(pixels[mask] - background).max(axis=1)
        # hollow shapes (ring, target, stripes) leave part of their extent untouched
        assert (difference > 40).mean() >= 0.3, "the lesion must stand out from the background around it"
        if one_lesion:
            rows, cols = np.nonzero(mask)
            extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
            assert 0.1 * size <= extent <= 0.27 * size  # about 12-25 % of the side


def _position_free_features(images: np.ndarray) -> np.ndarray:
    """Log magnitudes of the low 2-D Fourier frequencies of each channel: blind to where the lesion is."""
    x = images.astype(np.float32) / 255
    x = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x[:, None]
    spectrum = np.abs(np.fft.rfft2(x - x.mean(axis=(-2, -1), keepdims=True)))[..., :10, :10]
    return np.log1p(spectrum).reshape(len(x), -1)


@pytest.mark.parametrize(("key", "floor"), [("dermatology", 0.85), ("brain_tumour_mri", 0.85)])
def test_each_class_is_distinguishable(key: str, floor: float) -> None:
    """A linear classifier on position-free features, trained on one seed, recognises another's images."""
    task = get_task(key)
    train = generate(task, per_class=40, size=32, seed=1).data
    test = generate(task, per_class=15, size=32, seed=2).data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.1))
    model.fit(_position_free_features(train.images), train.labels)
    accuracy = model.score(_position_free_features(test.images), test.labels)
    assert accuracy >= floor > 2 / len(task.labels)


def test_lesions_are_placed_at_random() -> None:
    result = generate(get_task("pneumonia"), per_class=30, size=64, seed=5)
    centres = np.array([np.argwhere(mask).mean(axis=0) for mask in result.lesions if mask.any()])
    assert centres.std(axis=0).min() > 6  # spread over the image, not one fixed spot


def test_thousand_images_at_64_px_are_fast() -> None:
    task = get_task("dermatology")
    generate(task, per_class=2, size=64)  # warm up
    start = time.process_time()  # CPU time: what other processes on a shared machine do not inflate
    result = generate(task, per_class=143, size=64)
    assert len(result.data) == 1001
    assert time.process_time() - start < 1.0  # ~0.3 s


@pytest.mark.parametrize(
    ("key", "label", "mode"), [("pneumonia", "pneumonia", "L"), ("dermatology", "melanoma", "RGB")]
)
def test_example_png(key: str, label: str, mode: str) -> None:
    data = example_png(TASKS[key], label, size=96, seed=4)
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG"
    assert picture.mode == mode
    assert picture.size == (96, 96)
    assert data == example_png(TASKS[key], label, size=96, seed=4)
    normal = example_png(TASKS["pneumonia"], "normal", size=96, seed=4)
    assert data != normal


def test_example_png_of_a_normal_image_has_no_lesion() -> None:
    lesion = np.asarray(Image.open(io.BytesIO(example_png(TASKS["pneumonia"], "pneumonia", size=64, seed=1))))
    normal = np.asarray(Image.open(io.BytesIO(example_png(TASKS["pneumonia"], "normal", size=64, seed=1))))
    # same seed, same background: they differ only where the lesion is
    differs = np.abs(lesion.astype(int) - normal.astype(int)) > 30
    assert 0 < differs.mean() < 0.07


def test_example_png_unknown_label() -> None:
    with pytest.raises(
        ValidationFailed,
        match=re.escape("'tumour' is not a label of task 'pneumonia'. Labels: normal, pneumonia."),
    ):
        example_png(TASKS["pneumonia"], "tumour")
