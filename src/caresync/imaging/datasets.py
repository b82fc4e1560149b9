"""Training data from disk: a MedMNIST ``.npz`` file (its own train/val/test splits kept) or an ImageFolder
directory (``root/<label>/<image>``, PNG, JPEG or DICOM, split here), checked against a task, resized to
the training size, and fingerprinted so a model card can say exactly what it was trained on."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from caresync.core.errors import DomainError, ValidationFailed
from caresync.imaging import images
from caresync.imaging.catalog import TASKS, Task, label_of
from caresync.imaging.data import LabelledImages, Splits

SPLITS = ("train", "val", "test")
RESIZE_BATCH = 512
_MEDMNIST_FILE = re.compile(r"^([a-z]+mnist)(?:_\d+)?$")  # e.g. pneumoniamnist.npz, dermamnist_64.npz


def native_size(path: Path) -> int | None:
    """The side of a MedMNIST file's training images, read from the array's header without loading it
    (``None`` for a folder or a file that is not one: :func:`load` says what is wrong with it)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive, archive.open("train_images.npy") as member:
            major, _ = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            )
            shape = read_header(member)[0]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return int(shape[1]) if len(shape) >= 3 else None


def load(path: Path, task: Task, *, size: int, seed: int = 0) -> Splits:
    """Load ``path`` for ``task``, every image resized (squashed) to ``size`` x ``size``.

    A ``.npz`` file is read as MedMNIST (its own splits kept); a directory as an ImageFolder (split
    stratified by :func:`split` with ``seed``). Anything that does not fit the task is refused with a
    ValidationFailed saying what is wrong.
    """
    if not 16 <= size <= 1024:
        raise ValidationFailed(f"The training size must be between 16 and 1024 pixels, not {size}.")
    if path.is_dir():
        return split(_read_folder(path, task, size), seed=seed)
    if path.is_file() and path.suffix.lower() == ".npz":
        return _read_npz(path, task, size)
    if not path.exists():
        raise ValidationFailed(f"{path} does not exist.")
    raise ValidationFailed(f"{path} is neither a MedMNIST .npz file nor an ImageFolder directory.")


def split(data: LabelledImages, *, val: float = 0.15, test: float = 0.15, seed: int = 0) -> Splits:
    """Split ``data`` into train/validation/test, stratified so every class lands in every split.

    Each class (for a multi-label set: each image's rarest positive label, or "no finding") gives about
    ``val`` and ``test`` of its images, at least one each, to validation and test. Deterministic by seed.
    """
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ValidationFailed("The validation and test fractions must be above 0 and sum to less than 1.")
    rng = np.random.default_rng(seed)
    groups = _strata(data)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    too_few = []
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        n_val, n_test = max(1, round(val * len(members))), max(1, round(test * len(members)))
        if len(members) < n_val + n_test + 1:
            too_few.append(f"{_stratum_name(data, int(group))} ({len(members)})")
            continue
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test : n_test + n_val])
        parts["train"].append(members[n_test + n_val :])
    if too_few:
        raise ValidationFailed(
            "Every label needs at least 3 images (one each for training, validation and testing); too few "
            f"for: {', '.join(too_few)}."
        )
    train, val_set, test_set = (
        _subset(data, rng.permutation(np.concatenate(parts[name]))) for name in SPLITS
    )
    return Splits(train=train, val=val_set, test=test_set, fingerprint=fingerprint(train, val_set, test_set))


def fingerprint(*parts: LabelledImages) -> str:
    """SHA-256 (hex) over each part's label names, label kind, and images and labels (shape, dtype, bytes)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr((part.label_names, part.multilabel)).encode())
        for array in (part.images, part.labels):
            contiguous = np.ascontiguousarray(array)
            digest.update(repr((contiguous.shape, contiguous.dtype.str)).encode())
            digest.update(contiguous.data)
    return digest.hexdigest()


def _strata(data: LabelledImages) -> np.ndarray:
    """The class each image is stratified by (multi-label: its rarest positive label, else L = none)."""
    if not data.multilabel:
        return data.labels
    positives = data.labels.astype(bool)
    counts = positives.sum(axis=0)
    rarity = np.where(positives, counts[None, :], np.iinfo(np.int64).max)
    return np.where(positives.any(axis=1), rarity.argmin(axis=1), len(data.label_names))


def _stratum_name(data: LabelledImages, group: int) -> str:
    return data.label_names[group] if group < len(data.label_names) else "no finding"


def _subset(data: LabelledImages, index: np.ndarray) -> LabelledImages:
    return LabelledImages(data.images[index], data.labels[index], data.label_names, data.multilabel)


# --- MedMNIST .npz ---------------------------------------------------------------------------------------


def _read_npz(path: Path, task: Task, size: int) -> Splits:
    _check_file_name(path, task)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [
                f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels") if f"{s}_{kind}" not in npz
            ]
            if missing:
                raise ValidationFailed(
                    f"{path.name} is not a MedMNIST file: it lacks {', '.join(missing)} (it has "
                    f"{', '.join(sorted(npz.files)) or 'nothing'})."
                )
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValidationFailed(f"{path.name} cannot be read as a .npz file ({exc}).") from None
    parts = [
        _npz_part(arrays[f"{s}_images"], arrays[f"{s}_labels"], task, size, f"{path.name} {s}")
        for s in SPLITS
    ]
    _check_classes(parts[0], path.name, task)
    train, val, test = parts
    return Splits(train=train, val=val, test=test, fingerprint=fingerprint(train, val, test))


def _check_file_name(path: Path, task: Task) -> None:
    """A file named like another task's MedMNIST file (e.g. ``dermamnist_64.npz``) is refused."""
    match = _MEDMNIST_FILE.match(path.stem.lower())
    flags = {t.medmnist: t.key for t in TASKS.values() if t.medmnist}
    if match and match.group(1) in flags and match.group(1) != task.medmnist:
        expected = f"{task.medmnist}.npz" if task.medmnist else "an ImageFolder directory (no MedMNIST file)"
        raise ValidationFailed(
            f"{path.name} is MedMNIST's {match.group(1)}, which belongs to task {flags[match.group(1)]!r}; "
            f"task {task.key!r} needs {expected}."
        )


def _npz_part(pixels: np.ndarray, labels: np.ndarray, task: Task, size: int, where: str) -> LabelledImages:
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    channels = 1 if pixels.ndim == 3 else (pixels.shape[-1] if pixels.ndim == 4 else 0)
    if channels not in (1, 3) or pixels.dtype != np.uint8:
        raise ValidationFailed(
            f"{where}: images must be uint8 arrays (N, H, W) or (N, H, W, 3), "
            f"not {pixels.dtype} {pixels.shape}."
        )
    if channels != task.channels:
        raise ValidationFailed(
            f"{where}: the images are {_colour(channels)} but task {task.key!r} reads "
            f"{_colour(task.channels)} images ({_expected_file(task)}). Is this the right file?"
        )
    return LabelledImages(
        _resize(pixels, size), _npz_labels(labels, len(pixels), task, where), task.labels, task.multilabel
    )


def _npz_labels(labels: np.ndarray, n: int, task: Task, where: str) -> np.ndarray:
    count = len(task.labels)
    if task.multilabel:
        if labels.shape != (n, count) or not np.isin(labels, (0, 1)).all():
            raise ValidationFailed(
                f"{where}: task {task.key!r} needs {count} 0/1 flags per image (shape ({n}, {count})), the "
                f"file has labels of shape {labels.shape} ({_expected_file(task)}). Is this the right file?"
            )
        return labels.astype(np.int64)
    if labels.shape not in ((n,), (n, 1)) or not np.issubdtype(labels.dtype, np.integer):
        raise ValidationFailed(
            f"{where}: task {task.key!r} needs one class number per image (shape ({n}, 1)), the file has "
            f"labels of shape {labels.shape} ({_expected_file(task)}). Is this the right file?"
        )
    flat = labels.reshape(n).astype(np.int64)
    if n and (flat.min() < 0 or flat.max() >= count):
        raise ValidationFailed(
            f"{where}: class numbers run from {flat.min()} to {flat.max()}, but task {task.key!r} has "
            f"{count} classes (0 to {count - 1}) ({_expected_file(task)}). Is this the right file?"
        )
    return flat


def _check_classes(train: LabelledImages, name: str, task: Task) -> None:
    """The training split must hold every class: a file with fewer is another task's."""
    counts = (
        train.labels.sum(axis=0) if task.multilabel else np.bincount(train.labels, minlength=len(task.labels))
    )
    absent = [label for label, count in zip(task.labels, counts.tolist(), strict=True) if not count]
    if absent:
        raise ValidationFailed(
            f"{name}: the training split has no image of {', '.join(absent)} ({_expected_file(task)}). "
            "Is this the right file?"
        )


def _expected_file(task: Task) -> str:
    return f"expected MedMNIST {task.medmnist}" if task.medmnist else f"expected data from {task.dataset}"


def _colour(channels: int) -> str:
    return "colour" if channels == 3 else "greyscale"


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """uint8 images squashed to ``size`` x ``size`` with the resampling inference uses (antialiased
    bilinear, as :func:`caresync.imaging.images.to_model_input`)."""
    if pixels.shape[1:3] == (size, size):
        return pixels
    out = np.empty((len(pixels), size, size, *pixels.shape[3:]), dtype=np.uint8)
    for start in range(0, len(pixels), RESIZE_BATCH):
        batch = torch.from_numpy(pixels[start : start + RESIZE_BATCH]).float()
        batch = batch[:, None] if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
        resized = F.interpolate(
            batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        resized = resized.add_(0.5).clamp_(0, 255).to(torch.uint8)
        out[start : start + RESIZE_BATCH] = (
            resized[:, 0] if pixels.ndim == 3 else resized.permute(0, 2, 3, 1)
        ).numpy()
    return out


# --- ImageFolder ---------------------------------------------------------------------------------------


def _read_folder(root: Path, task: Task, size: int) -> LabelledImages:
    if task.multilabel:
        raise ValidationFailed(
            f"Task {task.key!r} is multi-label: an ImageFolder directory cannot express several labels per "
            f"image; use a MedMNIST {task.medmnist}.npz file."
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    expected = "; ".join(task.labels)
    if not folders:
        raise ValidationFailed(f"{root} has no label folders; expected one folder per label: {expected}.")
    labels = {folder: label_of(task, folder.name) for folder in folders}
    unknown = [folder.name for folder, label in labels.items() if label is None]
    if unknown:
        raise ValidationFailed(
            f"{root} has folders that are not labels of task {task.key!r}: {', '.join(unknown)}. "
            f"Expected folders named: {expected}."
        )
    pixels, classes = [], []
    for folder, label in labels.items():
        for file in _files(folder):
            pixels.append(_read_image(file, root, task, size))
            classes.append(task.labels.index(str(label)))
    if not pixels:
        raise ValidationFailed(f"{root} holds no images; put PNG, JPEG or DICOM files in its label folders.")
    absent = [label for index, label in enumerate(task.labels) if index not in classes]
    if absent:
        raise ValidationFailed(
            f"{root} has no images of {', '.join(absent)}; the model needs examples of every label of task "
            f"{task.key!r} (folders named: {expected})."
        )
    return LabelledImages(np.stack(pixels), np.array(classes, dtype=np.int64), task.labels, False)


def _files(folder: Path) -> Iterator[Path]:
    """Every non-hidden file under ``folder`` (recursively), in a stable order."""
    for file in sorted(folder.rglob("*")):
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(folder).parts):
            yield file


def _read_image(file: Path, root: Path, task: Task, size: int) -> np.ndarray:
    """One file decoded like an upload, checked against the task's contract, as uint8 at ``size``."""
    try:
        image = images.decode(file.read_bytes())
        images.check_contract(image, task)
        tensor = images.to_model_input(image, channels=task.channels, size=size)
    except DomainError as exc:
        raise ValidationFailed(f"{file.relative_to(root)}: {exc.detail}") from None
    levels = tensor[0].mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return (levels[0] if task.channels == 1 else levels.permute(1, 2, 0)).numpy()
