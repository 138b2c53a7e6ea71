"""The semantic layer's plumbing: embed the query (billed and recorded), search the scope's
partition, and let the matcher decide.

The matching rules (similarity threshold, same context, recency, and the guards against differing
numbers, ids, dates, negations and entities) live in :mod:`.semantic` (``SemanticMatcher``); this
module only feeds it the query and the candidates of one scope. Until that module is present a
cosine-and-context stand-in with the same call is used.
"""

from __future__ import annotations

import math
from typing import Any

from ..routing.semantic import _embedder
from ..tokens import TokenCounter
from ..usage import Usage
from .backends import CacheBackend
from .entries import CacheHit, CacheRequest

__all__ = ["SemanticLayer"]

try:
    from .semantic import SemanticCandidate, SemanticMatcher, SemanticQuery
except ImportError:  # the stand-in until the semantic matcher lands
    from ._cosine import SemanticCandidate, SemanticMatcher, SemanticQuery  # type: ignore[assignment]


def _unit(vector: Any) -> tuple[float, ...] | None:
    values = [float(x) for x in vector]
    norm = math.sqrt(math.fsum(x * x for x in values))
    if not values or norm == 0.0 or not math.isfinite(norm):
        return None
    return tuple(x / norm for x in values)


class SemanticLayer:
    """``SemanticLayer(embed, *, threshold, recorder, max_age)``: ``embed`` a LangChain
    ``Embeddings``, a LlamaIndex ``BaseEmbedding`` or a callable ``str -> vector``."""

    def __init__(self, embed: Any, *, threshold: float, recorder: Any = None, max_age: float | None = None) -> None:
        _, self._embed_query, self.kind = _embedder(embed, batch=False)
        self.matcher = SemanticMatcher(threshold=threshold, max_age=max_age)
        self.recorder = recorder
        model = getattr(embed, "model", None) or getattr(embed, "model_name", None)
        self.model = model if isinstance(model, str) else None

    def embed(self, request: CacheRequest) -> tuple[float, ...] | None:
        """The query's unit vector (kept on the request for the store that follows a miss); the
        embedding call is recorded as a model call (``extra={"cache": "embedding"}``)."""
        if request.vector is None and request.text is not None:
            vector = _unit(self._embed_query(request.text))
            self._bill(request)
            request.vector = vector
        return request.vector

    def _bill(self, request: CacheRequest) -> None:
        if self.recorder is None:
            return
        try:
            tokens = TokenCounter.for_model(self.model).count_text(request.text or "").tokens
            attribution = request.attribution.as_dict() if request.attribution is not None else {}
            self.recorder.record(
                self.model, Usage(input=tokens), estimated=True, extra={"cache": "embedding"}, **attribution
            )
        except Exception as e:  # noqa: BLE001 - our fault: counted by the recorder, never the caller's problem
            self.recorder.note_internal_error("response cache embedding", e)

    def find(self, request: CacheRequest, backend: CacheBackend, now: float) -> CacheHit | None:
        """The entry of ``request``'s scope the matcher accepts, or None."""
        vector = self.embed(request)
        if vector is None:
            return None
        entries = {e.key: e for e in backend.candidates(request.scope, now)}
        if not entries:
            return None
        query = SemanticQuery(text=request.text or "", vector=vector, context=request.context or "", ts=now)
        candidates = [SemanticCandidate(key=e.key, text=e.text or "", vector=e.vector or (), context=e.context or "",
                                        ts=e.created) for e in entries.values()]  # fmt: skip
        chosen = self.matcher.match(query, candidates)
        if chosen is None:
            return None
        similarity = math.fsum(a * b for a, b in zip(vector, chosen.vector))
        return CacheHit(entries[chosen.key], "semantic", similarity)
