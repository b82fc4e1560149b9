"""Retrieval quality on a labelled set: nDCG@k (graded relevance) and recall@k, averaged over queries."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain with the ``2^grade - 1`` gain and a ``log2(rank + 1)`` discount."""
    return sum((2**g - 1) / math.log2(rank + 2) for rank, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG of the first ``k`` results against the ideal order of ``grades`` (1.0 = perfect)."""
    ideal = dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:k])
    return dcg([grades.get(key, 0) for key in ranked[:k]]) / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """The share of the relevant documents (grade > 0) found in the first ``k`` results."""
    relevant = {key for key, g in grades.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


@dataclass(frozen=True)
class Quality:
    """Mean nDCG@k and recall@k over a set of queries, and each query's nDCG."""

    ndcg: float
    recall: float
    per_query: dict[str, float]


def evaluate(
    run: Callable[[str], Sequence[str]], queries: Mapping[str, Mapping[str, int]], k: int = 10
) -> Quality:
    """Run every query and average the metrics."""
    ndcgs, recalls = {}, []
    for query, grades in queries.items():
        ranked = run(query)
        ndcgs[query] = ndcg_at_k(ranked, grades, k)
        recalls.append(recall_at_k(ranked, grades, k))
    return Quality(ndcg=sum(ndcgs.values()) / len(ndcgs), recall=sum(recalls) / len(recalls), per_query=ndcgs)
