"""Labelled image sets as plain arrays: what dataset loaders and the synthetic generator produce and what
training consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelledImages:
    """Images with their labels.

    ``images`` is ``uint8``, ``(N, H, W)`` for greyscale or ``(N, H, W, 3)`` for colour. ``labels`` is
    ``(N,)`` class indexes for a multi-class task, or ``(N, L)`` 0/1 flags for a multi-label one, both in
    the order of ``label_names``.
    """

    images: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    multilabel: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        """1 for greyscale images, 3 for colour."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])


@dataclass(frozen=True)
class Splits:
    """Train, validation and test sets of one dataset, and a fingerprint of all of it (SHA-256 hex)."""

    train: LabelledImages
    val: LabelledImages
    test: LabelledImages
    fingerprint: str
