"""Separating the two speakers of a consultation by clustering voice features.

1. Each segment is cut into *pieces* at sentence ends and at pauses of :data:`PAUSE` seconds or more
   between words, so a turn change inside one recognised segment can be split off.
2. Each piece is described by the mean and spread of its MFCCs over its louder frames and its median and
   spread of log-pitch (:mod:`~caresync.documents.transcription.features`), standardised over the
   recording.
3. The pieces are clustered into two (Ward agglomerative clustering). A piece's confidence is
   ``d_other² / (d_own² + d_other²)`` of its distances to the two cluster centres: 0.5 is a coin toss.
4. Neighbouring pieces of one segment with the same speaker are joined again; speakers are named
   "speaker 1" and "speaker 2" in order of first appearance.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from caresync.documents.transcription.features import Frames, extract, frame_of
from caresync.documents.transcription.transcript import Segment, Word

PAUSE = 0.3  # seconds of silence between two words that may be a change of speaker
LOUD = 0.75  # frames within this much (30 dB) of a piece's loudest frame describe the voice
SENTENCE_END = (".", "?", "!")


def _pieces(segment: Segment) -> list[tuple[Word, ...]]:
    """The segment's words cut at sentence ends and pauses (one piece if it has no words)."""
    pieces: list[list[Word]] = [[]]
    for word in segment.words:
        previous = pieces[-1][-1] if pieces[-1] else None
        if previous and (previous.text.endswith(SENTENCE_END) or word.start - previous.end >= PAUSE):
            pieces.append([])
        pieces[-1].append(word)
    return [tuple(piece) for piece in pieces if piece] or [()]


def _span(segment: Segment, words: tuple[Word, ...]) -> tuple[float, float]:
    return (words[0].start, words[-1].end) if words else (segment.start, segment.end)


def _describe(frames: Frames, start: float, end: float) -> np.ndarray:
    """The voice of one time span: MFCC means and standard deviations, log-pitch median and spread."""
    first = min(frame_of(start), len(frames.energy) - 1)
    span = slice(first, max(frame_of(end), first + 1))
    energy = frames.energy[span]
    mfcc = frames.mfcc[span][energy >= energy.max() - LOUD]
    pitch = np.log(frames.pitch[span][~np.isnan(frames.pitch[span])])
    tone = [np.median(pitch), pitch.std()] if pitch.size else [np.nan, np.nan]
    return np.concatenate([mfcc.mean(axis=0), mfcc.std(axis=0), tone])


def _cluster(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-way cluster labels and confidences of the rows of ``features``."""
    if len(features) < 2:
        return np.zeros(len(features), dtype=int), np.ones(len(features))
    known = ~np.isnan(features)  # pitch is unknown for a piece without a voiced frame: use the mean
    means = np.where(known, features, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    features = np.where(known, features, means)
    scaled = (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-9)
    labels = AgglomerativeClustering(n_clusters=2, linkage="ward").fit_predict(scaled)
    centres = np.stack([scaled[labels == k].mean(axis=0) for k in (0, 1)])
    squared = ((scaled[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    own, other = squared[np.arange(len(labels)), labels], squared[np.arange(len(labels)), 1 - labels]
    return labels, other / np.maximum(own + other, 1e-12)


def separate_speakers(samples: np.ndarray, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """``segments`` of the recording ``samples`` with speakers and confidences, split at turn changes and
    renumbered from 0. Two speakers are always assumed (one if there is a single piece)."""
    if not segments:
        return ()
    frames = extract(samples)
    pieces = [(n, words) for n, segment in enumerate(segments) for words in _pieces(segment)]
    features = np.stack([_describe(frames, *_span(segments[n], words)) for n, words in pieces])
    labels, confidence = _cluster(features)
    names = {label: f"speaker {n}" for n, label in enumerate(dict.fromkeys(labels.tolist()), start=1)}
    rows = zip(pieces, labels.tolist(), confidence.tolist(), strict=True)
    result: list[Segment] = []
    for (n, label), run in groupby(rows, key=lambda row: (row[0][0], row[1])):
        parts = [(words, sure) for (_, words), _, sure in run]
        words = tuple(word for part, _ in parts for word in part)
        weights = [max(len(part), 1) for part, _ in parts]
        sure = float(np.average([sure for _, sure in parts], weights=weights))
        result.append(_piece(segments[n], words, len(result), names[label], sure))
    return tuple(result)


def _piece(segment: Segment, words: tuple[Word, ...], index: int, speaker: str, sure: float) -> Segment:
    """The part of ``segment`` made of ``words`` (all of it if they are all of the segment's words)."""
    whole = words == segment.words
    start, end = (segment.start, segment.end) if whole else _span(segment, words)
    text = segment.text if whole else " ".join(word.text for word in words)
    return replace(segment, index=index, start=start, end=end, text=text, words=words, speaker=speaker,
                   speaker_confidence=round(sure, 3))  # fmt: skip
