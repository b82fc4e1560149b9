"""Procedurally generated, labelled images for demonstrations and tests.

Each image has a plausible background for its task (a chest-like silhouette for chest tasks, a skin/stain
tone for colour tasks, smooth grey noise otherwise) and, for each non-normal label it carries, a visible,
localised "lesion" whose look is specific to the label (shape, texture and, in colour, hue), placed at a
random spot and sized 12-25 % of the side. Normal images have none. The lesion masks are returned too,
so tests can check that a heatmap points at the lesion. Everything is deterministic per seed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from caresync.core.errors import ValidationFailed
from caresync.imaging.catalog import Task
from caresync.imaging.data import LabelledImages

# A pattern maps lesion-relative coordinates (u rows, v columns, both in [-1, 1]) to (alpha, envelope):
# how much lesion colour each pixel takes, and the lesion's extent (its mask).
Pattern = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]

MIN_SIZE, MAX_SIZE = 16, 1024
EXTRA_LABEL_P = 0.15  # multi-label sets: chance that an image carries one more positive label


@dataclass(frozen=True)
class SyntheticImages:
    """Generated images with labels, and where each image's lesion(s) are (bool ``(N, H, W)``)."""

    data: LabelledImages
    lesions: np.ndarray


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.asarray(u * u + v * v <= 1.0)


def _box(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(abs(u), abs(v)) <= 1.0)


def _filled(env: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return env.astype(np.float32), env


def _textured(env: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (env & on).astype(np.float32), env


_PATTERNS: tuple[Pattern, ...] = (
    lambda u, v, r: _filled(_disc(u, v)),  # filled blob
    lambda u, v, r: _textured(_disc(u, v), u * u + v * v >= 0.3),  # ring
    lambda u, v, r: _filled(_box(u, v)),  # square
    lambda u, v, r: _textured(_disc(u, v), np.floor((u + 1) * 2.5) % 2 == 0),  # horizontal stripes
    lambda u, v, r: _textured(_disc(u, v), r.random(u.shape) < 0.45),  # speckle cluster
    lambda u, v, r: _textured(_box(u, v), (abs(u) < 0.3) | (abs(v) < 0.3)),  # cross
    lambda u, v, r: _textured(_box(u, v), np.floor((v + 1) * 2.5) % 2 == 0),  # vertical stripes
    lambda u, v, r: _textured(_box(u, v), (np.floor((u + 1) * 2) + np.floor((v + 1) * 2)) % 2 == 0),  # check
    lambda u, v, r: _filled(np.asarray(abs(u) + abs(v) <= 1.0)),  # diamond
    lambda u, v, r: _textured(_disc(u, v), (u * u + v * v < 0.1) | (u * u + v * v > 0.45)),  # target
    lambda u, v, r: _filled(np.asarray((u / 0.45) ** 2 + v * v <= 1.0)),  # wide ellipse
    lambda u, v, r: _textured(_disc(u, v), u * u + (v - 0.5) ** 2 > 0.5),  # crescent
    lambda u, v, r: _textured(_box(u, v), np.maximum(abs(u), abs(v)) >= 0.55),  # hollow square
    lambda u, v, r: _filled(np.asarray((u >= -1.0) & (u <= 1.0) & (abs(v) <= (u + 1.0) / 2.0))),  # triangle
    lambda u, v, r: _filled(np.asarray(u * u + (v / 0.45) ** 2 <= 1.0)),  # tall ellipse
    lambda u, v, r: _textured(  # grid of dots
        _box(u, v), (np.floor((u + 1) * 2.5) % 2 == 0) & (np.floor((v + 1) * 2.5) % 2 == 0)
    ),
)

# Lesion colours for colour tasks (distinct hues and brightness), and grey levels for grey tasks.
_COLOURS = np.array(
    [
        (0.30, 0.15, 0.08),
        (0.05, 0.05, 0.10),
        (0.55, 0.10, 0.55),
        (0.98, 0.95, 0.55),
        (0.15, 0.30, 0.85),
        (0.10, 0.60, 0.20),
        (0.90, 0.08, 0.08),
        (1.00, 1.00, 1.00),
        (0.20, 0.75, 0.80),
        (0.95, 0.55, 0.05),
        (0.45, 0.45, 0.45),
        (0.60, 0.85, 0.30),
        (0.35, 0.05, 0.25),
        (0.80, 0.60, 0.95),
        (0.10, 0.20, 0.35),
        (0.70, 0.35, 0.20),
    ],
    dtype=np.float32,
)
_GREY_LEVELS = (1.0, 0.9)


def _lesion_labels(task: Task) -> list[str]:
    return [label for label in task.labels if label != task.normal_label]


def _style(task: Task, label: str) -> int:
    return _lesion_labels(task).index(label) % len(_PATTERNS)


def _check(per_class: int, size: int) -> None:
    if per_class < 1:
        raise ValidationFailed("per_class must be at least 1.")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValidationFailed(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {size}.")


def _label_plan(task: Task, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (N, L) flags: ``per_class`` images per label (multi-label: plus ``per_class`` with none)."""
    n_labels = len(task.labels)
    if not task.multilabel:
        return np.repeat(np.eye(n_labels, dtype=bool), per_class, axis=0)
    flags = np.repeat(np.eye(n_labels + 1, n_labels, dtype=bool), per_class, axis=0)
    extra = (rng.random(len(flags)) < EXTRA_LABEL_P) & flags.any(axis=1)
    flags[np.flatnonzero(extra), rng.integers(0, n_labels, size=int(extra.sum()))] = True
    return flags


def _upsample_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells) bilinear interpolation weights from a coarse grid to ``size`` pixels."""
    pos = np.linspace(0, cells - 1, size)
    low = np.floor(pos).astype(int).clip(0, cells - 2)
    frac = (pos - low).astype(np.float32)
    weights = np.zeros((size, cells), dtype=np.float32)
    weights[np.arange(size), low] = 1 - frac
    weights[np.arange(size), low + 1] = frac
    return weights


def _smooth_noise(n: int, size: int, rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """(n, size, size) smooth random fields in about [-1, 1]."""
    coarse = rng.uniform(-1, 1, size=(n, cells, cells)).astype(np.float32)
    up = _upsample_matrix(size, cells)
    return np.matmul(np.matmul(up, coarse), up.T)


def _backgrounds(task: Task, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size) grey or (n, size, size, 3) colour float32 backgrounds in [0, 1]."""
    texture = rng.standard_normal(size=(n, size, size), dtype=np.float32)
    texture *= 0.02
    texture += 0.06 * _smooth_noise(n, size, rng)
    if task.channels == 3:
        colour = np.empty((n, size, size, 3), dtype=np.float32)
        colour[:] = texture[..., None]
        colour += _base_colour(task)
        return np.clip(colour, 0, 1, out=colour)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) * 2 - 1
    if "CHEST" in task.body_parts:
        lungs = (((abs(x) - 0.45) / 0.32) ** 2 + (y / 0.7) ** 2) <= 1
        base = np.where(abs(x) < 0.12, 0.7, np.where(lungs, 0.25, 0.6))
    else:
        base = 0.4 - 0.1 * (x * x + y * y)
    texture += base.astype(np.float32)
    return np.clip(texture, 0, 1, out=texture)


def _base_colour(task: Task) -> np.ndarray:
    if "OP" in task.modalities:
        return np.array((0.75, 0.35, 0.15), dtype=np.float32)  # fundus
    if "SM" in task.modalities:
        return np.array((0.92, 0.72, 0.85), dtype=np.float32)  # H&E / stained smear
    return np.array((0.88, 0.68, 0.56), dtype=np.float32)  # skin


def _draw(
    image: np.ndarray, mask: np.ndarray, task: Task, label: str, size: int, rng: np.random.Generator
) -> None:
    """Paint one lesion of ``label`` at a random place of ``image`` (in place) and mark it in ``mask``."""
    style = _style(task, label)
    radius = rng.uniform(0.06, 0.125) * size
    cy, cx = rng.uniform(radius + 1, size - radius - 1, size=2)
    y0, y1 = int(np.floor(cy - radius)), int(np.ceil(cy + radius)) + 1
    x0, x1 = int(np.floor(cx - radius)), int(np.ceil(cx + radius)) + 1
    u = (np.arange(y0, y1, dtype=np.float32)[:, None] - cy) / radius
    v = (np.arange(x0, x1, dtype=np.float32)[None, :] - cx) / radius
    u, v = np.broadcast_arrays(u, v)
    alpha, envelope = _PATTERNS[style](u, v, rng)
    mask[y0:y1, x0:x1] |= envelope
    window = image[y0:y1, x0:x1]
    if task.channels == 3:
        colour = _COLOURS[style % len(_COLOURS)]
        window[:] = window * (1 - alpha[..., None]) + colour * alpha[..., None]
    else:
        level = _GREY_LEVELS[style % len(_GREY_LEVELS)]
        window[:] = window * (1 - alpha) + level * alpha


def _render(
    task: Task, flags: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and bool lesion masks for the label flags (N, L)."""
    n = len(flags)
    images = _backgrounds(task, n, size, rng)
    masks = np.zeros((n, size, size), dtype=bool)
    for i, row in enumerate(flags):
        for index in np.flatnonzero(row):
            label = task.labels[index]
            if label != task.normal_label:
                _draw(images[i], masks[i], task, label, size, rng)
    images *= 255
    images += 0.5
    return images.astype(np.uint8), masks


def generate(task: Task, *, per_class: int, size: int = 64, seed: int = 0) -> SyntheticImages:
    """``per_class`` images per label of ``task`` (multi-label tasks: also ``per_class`` with no finding),
    ``size`` x ``size`` pixels with the task's channels, shuffled, with their lesion masks."""
    _check(per_class, size)
    rng = np.random.default_rng(seed)
    flags = _label_plan(task, per_class, rng)
    flags = flags[rng.permutation(len(flags))]
    images, masks = _render(task, flags, size, rng)
    labels = flags.astype(np.int64) if task.multilabel else flags.argmax(axis=1).astype(np.int64)
    data = LabelledImages(images=images, labels=labels, label_names=task.labels, multilabel=task.multilabel)
    return SyntheticImages(data=data, lesions=masks)


def example_png(task: Task, label: str, *, size: int = 256, seed: int = 0) -> bytes:
    """One generated image of ``label`` (only that label, for multi-label tasks) as PNG bytes."""
    if label not in task.labels:
        raise ValidationFailed(
            f"{label!r} is not a label of task {task.key!r}. Labels: {', '.join(task.labels)}."
        )
    _check(1, size)
    flags = np.array([[name == label for name in task.labels]])
    images, _ = _render(task, flags, size, np.random.default_rng(seed))
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, format="PNG")
    return buffer.getvalue()
