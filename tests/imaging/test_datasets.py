"""Training data from disk: MedMNIST .npz files (round trip, resizing, the wrong task's file refused),
ImageFolder directories of generated PNG and DICOM files (folder names matched to labels, bad folders and
files refused), the stratified split, and the data fingerprint."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caresync.core.errors import ValidationFailed
from caresync.imaging.catalog import get_task
from caresync.imaging.data import LabelledImages
from caresync.imaging.datasets import fingerprint, load, native_size, split
from caresync.imaging.synthetic import example_png, generate
from tests.imaging.conftest import dicom_bytes, png_bytes

pytestmark = pytest.mark.no_db

SIZES = {"train": 14, "val": 4, "test": 6}


def _npz(
    path: Path, *, classes: int, multilabel: int = 0, rgb: bool = False, side: int = 28, seed: int = 0
) -> dict[str, np.ndarray]:
    """A tiny MedMNIST-like file: every class in every split, labels (N, 1) (or (N, L) 0/1 flags)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, n in SIZES.items():
        shape = (n, side, side, 3) if rgb else (n, side, side)
        arrays[f"{name}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        if multilabel:
            flags = rng.integers(0, 2, size=(n, multilabel), dtype=np.uint8)
            flags[np.arange(n) % multilabel == 0, :] = 1  # every label positive somewhere
            arrays[f"{name}_labels"] = flags
        else:
            arrays[f"{name}_labels"] = (np.arange(n) % classes).astype(np.uint8)[:, None]
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return arrays


def test_npz_round_trip_keeps_the_files_splits(tmp_path: Path) -> None:
    arrays = _npz(tmp_path / "pneumoniamnist.npz", classes=2)
    splits = load(tmp_path / "pneumoniamnist.npz", get_task("pneumonia"), size=28)
    for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        assert np.array_equal(part.images, arrays[f"{name}_images"])  # same size: untouched
        assert part.labels.tolist() == arrays[f"{name}_labels"][:, 0].tolist()
        assert part.label_names == ("normal", "pneumonia")
        assert not part.multilabel
    assert splits.fingerprint == fingerprint(splits.train, splits.val, splits.test)


@pytest.mark.parametrize(("side", "rgb"), [(28, False), (64, True)])
def test_native_size_reads_a_medmnist_files_side_without_loading_it(
    tmp_path: Path, side: int, rgb: bool
) -> None:
    _npz(tmp_path / "bloodmnist.npz", classes=8, rgb=rgb, side=side)
    assert native_size(tmp_path / "bloodmnist.npz") == side
    (tmp_path / "broken.npz").write_bytes(b"PK not a zip")
    assert native_size(tmp_path / "broken.npz") is None
    assert native_size(tmp_path) is None  # an ImageFolder directory


def test_npz_is_resized_to_the_training_size(tmp_path: Path) -> None:
    path = tmp_path / "octmnist_28.npz"
    arrays = _npz(path, classes=4)
    arrays["train_images"][:] = 0
    arrays["train_images"][:, :, 14:] = 200  # dark left half, bright right half
    np.savez(path, **arrays)  # type: ignore[arg-type]
    splits = load(path, get_task("retina_oct"), size=64)
    assert splits.train.images.shape == (14, 64, 64)
    assert splits.train.images.dtype == np.uint8
    assert (splits.train.images[:, :, :28] == 0).all()
    assert (splits.train.images[:, :, 36:] == 200).all()
    assert splits.test.images.shape == (6, 64, 64)


def test_npz_colour_and_multilabel(tmp_path: Path) -> None:
    _npz(tmp_path / "derma.npz", classes=7, rgb=True)
    derma = load(tmp_path / "derma.npz", get_task("dermatology"), size=32)
    assert derma.train.images.shape == (14, 32, 32, 3)
    assert derma.train.channels == 3
    arrays = _npz(tmp_path / "chestmnist.npz", classes=0, multilabel=14)
    chest = load(tmp_path / "chestmnist.npz", get_task("chest_xray"), size=28)
    assert chest.train.multilabel
    assert chest.train.labels.shape == (14, 14)
    assert chest.train.labels.tolist() == arrays["train_labels"].tolist()


@pytest.mark.parametrize(
    ("task", "file_kwargs", "name", "message"),
    [
        (
            "chest_xray",
            {"classes": 2},
            "x.npz",
            r"needs 14 0/1 flags per image .*expected MedMNIST chestmnist",
        ),
        (
            "pneumonia",
            {"classes": 7, "rgb": True},
            "x.npz",
            "the images are colour but task 'pneumonia' reads grey",
        ),
        (
            "dermatology",
            {"classes": 7},
            "x.npz",
            "the images are greyscale but task 'dermatology' reads colour",
        ),
        (
            "pneumonia",
            {"classes": 4},
            "x.npz",
            r"class numbers run from 0 to 3, but task 'pneumonia' has 2 classes",
        ),
        ("retina_oct", {"classes": 2}, "x.npz", "the training split has no image of drusen, normal"),
        (
            "pneumonia",
            {"classes": 0, "multilabel": 14},
            "x.npz",
            r"one class number per image .* shape \(14, 14\)",
        ),
        (
            "pneumonia",
            {"classes": 2},
            "dermamnist_64.npz",
            "is MedMNIST's dermamnist, which belongs to task 'derm",
        ),
        ("msk_radiograph", {"classes": 2}, "breastmnist.npz", "needs an ImageFolder directory"),
    ],
)
def test_wrong_tasks_npz_refused(
    tmp_path: Path, task: str, file_kwargs: dict[str, int], name: str, message: str
) -> None:
    _npz(tmp_path / name, **file_kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match=message):
        load(tmp_path / name, get_task(task), size=28)


def test_malformed_npz_refused(tmp_path: Path) -> None:
    task = get_task("pneumonia")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValidationFailed, match=r"garbage\.npz cannot be read as a \.npz file"):
        load(tmp_path / "garbage.npz", task, size=28)
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValidationFailed, match="lacks train_labels, val_images, val_labels, test_images"):
        load(tmp_path / "partial.npz", task, size=28)
    arrays = _npz(tmp_path / "float.npz", classes=2)
    arrays["val_images"] = arrays["val_images"] / 255.0
    np.savez(tmp_path / "float.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match=r"float\.npz val: images must be uint8 arrays"):
        load(tmp_path / "float.npz", task, size=28)


def test_missing_or_odd_paths_refused(tmp_path: Path) -> None:
    task = get_task("pneumonia")
    with pytest.raises(ValidationFailed, match="does not exist"):
        load(tmp_path / "nowhere.npz", task, size=28)
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ValidationFailed, match=r"neither a MedMNIST \.npz file nor an ImageFolder directory"):
        load(tmp_path / "data.csv", task, size=28)
    with pytest.raises(ValidationFailed, match="between 16 and 1024"):
        load(tmp_path, task, size=8)


def _folder(root: Path, files: dict[str, list[bytes]], suffix: str = ".png") -> Path:
    for folder, contents in files.items():
        (root / folder).mkdir(parents=True)
        for i, data in enumerate(contents):
            (root / folder / f"{i:03d}{suffix}").write_bytes(data)
    return root


def _pneumonia_pngs(n: int) -> dict[str, list[bytes]]:
    task = get_task("pneumonia")
    return {
        "NORMAL": [example_png(task, "normal", size=48, seed=i) for i in range(n)],
        "pneumonia": [example_png(task, "pneumonia", size=48, seed=100 + i) for i in range(n)],
    }


def test_image_folder_of_generated_pngs(tmp_path: Path) -> None:
    root = _folder(tmp_path / "xrays", _pneumonia_pngs(7))
    splits = load(root, get_task("pneumonia"), size=32, seed=3)
    parts = (splits.train, splits.val, splits.test)
    assert [len(p) for p in parts] == [10, 2, 2]
    for part in parts:
        assert part.images.shape[1:] == (32, 32)
        assert sorted(set(part.labels.tolist())) == [0, 1]
    # the first NORMAL picture is in there, resized (Pillow's resize here, so only about equal)
    first = np.asarray(Image.open(io.BytesIO(_pneumonia_pngs(1)["NORMAL"][0])).resize((32, 32)))
    matches = [np.abs(img.astype(int) - first.astype(int)).mean() for img in splits.train.images]
    assert min(matches) < 8
    again = load(root, get_task("pneumonia"), size=32, seed=3)
    assert again.fingerprint == splits.fingerprint
    assert load(root, get_task("pneumonia"), size=32, seed=4).fingerprint != splits.fingerprint


def test_image_folder_takes_dicom_and_dataset_folder_names(tmp_path: Path) -> None:
    grey = [dicom_bytes(size=(48, 48), seed=i) for i in range(3)]
    root = _folder(
        tmp_path / "brain", {"glioma_tumor": grey, "notumor": grey, "pituitary": grey, "Meningioma": grey}
    )
    mri = [dicom_bytes(modality="MR", body_part=None, size=(48, 48), seed=i) for i in range(3)]
    with pytest.raises(
        ValidationFailed, match=r"Meningioma/000\.png: This model \(Brain tumour on MRI\) reads"
    ):
        load(root, get_task("brain_tumour_mri"), size=32)  # CR chest files are not brain MRIs
    root = _folder(
        tmp_path / "brain2",
        {"glioma_tumor": mri, "notumor": mri, "pituitary": mri, "Meningioma": mri},
        ".dcm",
    )
    splits = load(root, get_task("brain_tumour_mri"), size=32)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 12
    assert set(splits.test.labels.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "has no label folders; expected one folder per label: normal; pneumonia"),
        ({"normal": [], "pneumonia": []}, "holds no images"),
        (
            {"normal": [], "covid": [], "tb": []},
            "not labels of task 'pneumonia': covid, tb. Expected folders named: normal; pneumonia",
        ),
        (
            {"normal": [png_bytes(rgb=True)]},
            r"normal/000\.png: This model .* this image is a colour PNG picture",
        ),
        ({"normal": [b"just some notes"]}, r"normal/000\.png: The file is not a DICOM, PNG or JPEG image"),
        (
            {"normal": [png_bytes()] * 3},
            "has no images of pneumonia; the model needs examples of every label",
        ),
        (
            {"normal": [png_bytes()] * 2, "pneumonia": [png_bytes()] * 2},
            r"at least 3 images .* too few for: normal \(2\), pneumonia \(2\)",
        ),
    ],
)
def test_bad_image_folders_refused(tmp_path: Path, files: dict[str, list[bytes]], message: str) -> None:
    root = _folder(tmp_path / "data", files)
    root.mkdir(exist_ok=True)
    with pytest.raises(ValidationFailed, match=message):
        load(root, get_task("pneumonia"), size=32)


def test_multilabel_task_cannot_use_a_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"nodule": [png_bytes()]})
    with pytest.raises(ValidationFailed, match=r"multi-label.*use a MedMNIST chestmnist\.npz file"):
        load(root, get_task("chest_xray"), size=32)


def _labelled(counts: list[int]) -> LabelledImages:
    labels = np.repeat(np.arange(len(counts)), counts)
    images = np.arange(len(labels) * 4, dtype=np.uint8).reshape(-1, 2, 2)
    return LabelledImages(images, labels, tuple(f"c{i}" for i in range(len(counts))))


@pytest.mark.parametrize(
    ("counts", "val", "test"),
    [([3, 3], 0.15, 0.15), ([100, 4, 10], 0.15, 0.15), ([50, 3, 7, 20], 0.1, 0.3), ([9] * 9, 0.2, 0.2)],
)
def test_split_is_stratified_and_complete(counts: list[int], val: float, test: float) -> None:
    data = _labelled(counts)
    splits = split(data, val=val, test=test, seed=1)
    parts = (splits.train, splits.val, splits.test)
    for part in parts:
        assert set(part.labels.tolist()) == set(range(len(counts)))  # every class in every split
    everything = np.concatenate([p.images.reshape(len(p), -1)[:, 0] for p in parts])
    assert sorted(everything.tolist()) == sorted(data.images.reshape(len(data), -1)[:, 0].tolist())  # no loss
    largest = int(np.argmax(counts))
    assert abs((splits.test.labels == largest).sum() - test * counts[largest]) <= 1  # proportional
    again = split(data, val=val, test=test, seed=1)
    assert all(
        np.array_equal(a.images, b.images)
        for a, b in zip(parts, (again.train, again.val, again.test), strict=True)
    )
    assert splits.fingerprint == fingerprint(*parts)


def test_split_of_multilabel_sets_keeps_each_label_everywhere() -> None:
    data = generate(get_task("chest_xray"), per_class=5, size=16).data
    splits = split(data, seed=0)
    for part in (splits.train, splits.val, splits.test):
        assert (part.labels.sum(axis=0) >= 1).all()
        assert (part.labels.sum(axis=1) == 0).any()  # some "no finding" images too


@pytest.mark.parametrize(
    ("counts", "val", "test", "message"),
    [
        ([5, 2], 0.15, 0.15, r"at least 3 images .* too few for: c1 \(2\)"),
        ([5, 5], 0.5, 0.5, "sum to less than 1"),
        ([5, 5], 0.0, 0.2, "above 0"),
    ],
)
def test_split_refusals(counts: list[int], val: float, test: float, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        split(_labelled(counts), val=val, test=test)


def test_fingerprint_changes_with_one_pixel_a_label_or_the_names() -> None:
    data = generate(get_task("pneumonia"), per_class=4, size=16).data
    base = fingerprint(data)
    assert len(base) == 64
    copy = LabelledImages(data.images.copy(), data.labels.copy(), data.label_names)
    assert fingerprint(copy) == base
    pixel = data.images.copy()
    pixel[3, 7, 7] ^= 1
    assert fingerprint(LabelledImages(pixel, data.labels, data.label_names)) != base
    label = data.labels.copy()
    label[0] = 1 - label[0]
    assert fingerprint(LabelledImages(data.images, label, data.label_names)) != base
    assert fingerprint(LabelledImages(data.images, data.labels, ("a", "b"))) != base
    assert fingerprint(data, data) != base
