"""Pure ranking: fusing the full-text and the embedding rankings of documents, then ordering by what the
documents say about the query's concepts.

Fusion (both measured on the labelled set, see ``bench/document_ai/search.py``):

* ``rrf``: reciprocal rank fusion, ``sum 1 / (60 + rank)`` over the two rankings;
* ``weighted``: ``0.5 * full-text score / best full-text score + 0.5 * cosine similarity``.

Then, for a query naming lexicon concepts, documents are ordered first by how many of those concepts they
affirm, then by how many they mention only negated ("denies chest pain"), then by the fused score: a
document whose only mention of a concept is negated always ranks below one that affirms it. The score
reported is ``100 * affirmed - negated_only + fused`` (fused in [0, 1)), monotonic in that order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

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
