"""Ranking metrics over binary relevance, and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence


def recall_at(rels: Sequence[bool], k: int) -> float:
    """1 when a relevant passage is in the top k (one relevant source per question)."""
    return float(any(rels[:k]))


def mrr_at(rels: Sequence[bool], k: int) -> float:
    return next((1.0 / (i + 1) for i, r in enumerate(rels[:k]) if r), 0.0)


def ndcg_at(rels: Sequence[bool], k: int, total_relevant: int) -> float:
    """nDCG@k; the ideal ranks every relevant passage of the collection first."""
    dcg = sum(1.0 / math.log2(i + 2) for i, r in enumerate(rels[:k]) if r)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(total_relevant, k)))
    return dcg / ideal if ideal else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
