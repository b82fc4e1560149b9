"""Pure ranking: fusing the full-text and the embedding rankings of documents, then ordering by what the
documents say about the query's concepts.

Full-text scores of a large scope's candidates (:func:`pool_bm25`): BM25 over the matched terms FTS5 marks
in each passage, with document frequencies taken from the candidate pool itself (SQLite's own ``bm25()``
reads every match in the whole index to count them: most of a common symptom's search time).

Fusion (both measured on the labelled set, see ``bench/document_ai/search.py``):

* ``rrf``: reciprocal rank fusion, ``sum 1 / (60 + rank)`` over the two rankings;
* ``weighted``: ``0.5 * full-text score / best full-text score + 0.5 * cosine similarity``.

Then, for a query naming lexicon concepts, documents are ordered first by how many of those concepts they
affirm, then by how many they mention only negated ("denies chest pain"), then by the fused score: a
document whose only mention of a concept is negated always ranks below one that affirms it. The score
reported is ``100 * affirmed - negated_only + fused`` (fused in [0, 1)), monotonic in that order.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

MARK_OPEN, MARK_CLOSE = "\x01", "\x02"  # around each match in a marked passage (FTS5 ``highlight()``)
_MARKED = re.compile(f"{MARK_OPEN}([^{MARK_CLOSE}]*){MARK_CLOSE}")
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's
RRF_K = 60
LEXICAL_WEIGHT = 0.5
_BELOW_ONE = 0.999


class Fusion(StrEnum):
    """How the two rankings are combined."""

    RRF = "rrf"
    WEIGHTED = "weighted"


@dataclass(frozen=True)
class Ranked:
    """A document's place in the final order."""

    key: uuid.UUID
    score: float
    affirmed: tuple[str, ...]  # query concepts the document affirms
    negated: tuple[str, ...]  # query concepts it mentions only negated


def pool_bm25(marked: Sequence[str]) -> list[float]:
    """A BM25 score per passage of a candidate pool, each passage with its matches marked (between
    ``MARK_OPEN`` and ``MARK_CLOSE``): a term is a match's text in lower case, its document frequency the
    number of the pool's passages that contain it, and a passage's length its number of spaces plus one."""
    terms = [Counter(m.lower() for m in _MARKED.findall(text)) for text in marked]
    lengths = [text.count(" ") + 1 for text in marked]
    frequency = Counter(term for counts in terms for term in counts)
    size, average = len(marked), sum(lengths) / len(marked) if marked else 1.0
    idf = {t: math.log(1 + (size - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
    scores = []
    for counts, length in zip(terms, lengths, strict=True):
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        scores.append(sum(idf[t] * tf * (BM25_K1 + 1) / (tf + norm) for t, tf in counts.items()))
    return scores


def _ranks(scores: Mapping[uuid.UUID, float]) -> dict[uuid.UUID, int]:
    ordered = sorted(scores.items(), key=lambda item: -item[1])
    return {key: rank for rank, (key, _) in enumerate(ordered, start=1)}


def fuse(
    lexical: Mapping[uuid.UUID, float], semantic: Mapping[uuid.UUID, float], fusion: Fusion
) -> dict[uuid.UUID, float]:
    """A score in [0, 1) per document from full-text scores (higher is better) and cosine similarities;
    a document missing from one side gets nothing from it."""
    keys = list(dict.fromkeys([*lexical, *semantic]))
    if fusion is Fusion.RRF:
        sides = [s for s in (lexical, semantic) if s]
        ranks = [_ranks(s) for s in sides]
        best = len(sides) / (RRF_K + 1) if sides else 1.0
        return {k: _BELOW_ONE * sum(1 / (RRF_K + r[k]) for r in ranks if k in r) / best for k in keys}
    top = max(lexical.values(), default=0.0) or 1.0
    lexical_weight = LEXICAL_WEIGHT if semantic else 1.0
    return {
        k: _BELOW_ONE
        * (
            lexical_weight * max(lexical.get(k, 0.0), 0.0) / top
            + (1 - lexical_weight) * max(semantic.get(k, 0.0), 0.0)
        )
        for k in keys
    }


def order(
    fused: Mapping[uuid.UUID, float],
    concepts: Sequence[str],
    statuses: Mapping[uuid.UUID, Mapping[str, bool]],
    *,
    preference: Sequence[uuid.UUID] = (),
    negation: bool = True,
) -> list[Ranked]:
    """Documents best first. ``statuses[key]`` maps each concept the document mentions to whether any
    mention is affirmed; equal scores follow ``preference`` (e.g. newest first), then the key. With
    ``negation=False`` (for comparison) a negated mention counts as affirmed."""
    ranked = []
    for key, value in fused.items():
        status = statuses.get(key, {})
        affirmed = tuple(c for c in concepts if c in status and (status[c] or not negation))
        negated = tuple(c for c in concepts if c in status and not status[c] and negation)
        ranked.append(Ranked(key, 100 * len(affirmed) - len(negated) + value, affirmed, negated))
    place = {key: i for i, key in enumerate(preference)}
    ranked.sort(key=lambda r: (-r.score, place.get(r.key, len(place)), str(r.key)))
    return ranked
