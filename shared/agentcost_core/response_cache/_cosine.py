"""A stand-in semantic matcher (cosine similarity, same context, recency) with the call of
:mod:`.semantic`'s ``SemanticMatcher``, used only while that module is absent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = ["SemanticCandidate", "SemanticMatcher", "SemanticQuery"]


@dataclass(frozen=True, slots=True)
class SemanticQuery:
    text: str
    vector: Sequence[float]
    context: str
    ts: float


@dataclass(frozen=True, slots=True)
class SemanticCandidate:
    key: str
    text: str
    vector: Sequence[float]
    context: str
    ts: float


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(x * x for x in b))
    if not na or not nb or len(a) != len(b):
        return 0.0
    return math.fsum(x * y for x, y in zip(a, b)) / (na * nb)


class SemanticMatcher:
    def __init__(self, *, threshold: float = 0.95, max_age: float | None = None) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise ConfigurationError(f"threshold must be a similarity in (0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.max_age = max_age

    def match(self, query: SemanticQuery, candidates: Sequence[SemanticCandidate]) -> SemanticCandidate | None:
        best, best_score = None, self.threshold
        for c in candidates:
            if c.context != query.context or (self.max_age is not None and query.ts - c.ts > self.max_age):
                continue
            score = _cosine(query.vector, c.vector)
            if score >= best_score:
                best, best_score = c, score
        return best
