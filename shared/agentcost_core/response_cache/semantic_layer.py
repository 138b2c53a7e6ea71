"""The semantic layer's plumbing: embed the query (billed and recorded), search the partition of
the scope and context fingerprint, and let the matcher decide.

The matching rules (similarity threshold, same context, recency, and the guards against differing
numbers, ids, dates, negations and entities) live in :mod:`.semantic` (``SemanticMatcher``); this
module only feeds it the query and the candidates of one scope.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..routing.semantic import _embedder
from ..tokens import TokenCounter
from ..usage import Usage
from .backends import CacheBackend
from .entries import CacheHit, CacheRequest
from .semantic import STRICT_GUARDS, SemanticCandidate, SemanticMatcher, SemanticQuery
from .vector_index import SLACK

__all__ = ["SemanticLayer"]


def _unit(vector: Any) -> tuple[float, ...] | None:
    values = [float(x) for x in vector]
    norm = math.sqrt(math.fsum(x * x for x in values))
    if not values or norm == 0.0 or not math.isfinite(norm):
        return None
    return tuple(x / norm for x in values)


class SemanticLayer:
    """``SemanticLayer(embed, *, threshold, recorder, max_age, bill=True)``: ``embed`` a LangChain
    ``Embeddings``, a LlamaIndex ``BaseEmbedding`` or a callable ``str -> vector``."""

    def __init__(self, embed: Any, *, threshold: float, recorder: Any = None, max_age: float | None = None,
                 bill: bool | Callable[[], bool] = True) -> None:  # fmt: skip
        _, self._embed_query, self.kind = _embedder(embed, batch=False)
        self.matcher = SemanticMatcher(threshold=threshold, max_age=max_age)
        self.recorder = recorder
        #: Whether this layer records its embedding calls (False, or a callable answering False, when
        #: the embedder's calls are recorded elsewhere already: never twice).
        self.bill = bill
        model = getattr(embed, "model", None) or getattr(embed, "model_name", None)
        self.model = model if isinstance(model, str) else None

    def embed(self, request: CacheRequest) -> tuple[float, ...] | None:
        """The query's unit vector (kept on the request for the store that follows a miss); the
        embedding call is recorded as a model call (``extra={"cache": "embedding"}``)."""
        if not request.embedded and request.vector is None and request.text is not None:
            request.embedded = True  # asked once per call: an embedder that failed is not asked again
            vector = _unit(self._embed_query(request.text))
            self._bill(request)
            request.vector = vector
        return request.vector

    def _bill(self, request: CacheRequest) -> None:
        if self.recorder is None or self.bill is False or (callable(self.bill) and not self.bill()):
            return
        try:
            tokens = TokenCounter.for_model(self.model).count_text(request.text or "").tokens
            attribution = request.attribution.as_dict() if request.attribution is not None else {}
            self.recorder.record(self.model, Usage(input=tokens), kind="embedding", estimated=True,
                                 extra={"cache": "embedding"}, **attribution)  # fmt: skip
        except Exception as e:  # noqa: BLE001 - our fault: counted by the recorder, never the caller's problem
            self.recorder.note_internal_error("response cache embedding", e)

    def find(self, request: CacheRequest, backend: CacheBackend, now: float) -> CacheHit | None:
        """The entry of ``request``'s partition (scope and context) the matcher accepts, or None.

        The backend's index narrows the partition to the entries within ``SLACK`` of the threshold
        (and, while the strict guards are on, with the query's strict facts); the matcher decides
        among them exactly as it would among all the scope's entries: the others could not pass."""
        vector = self.embed(request)
        if vector is None:
            return None
        strict = set(STRICT_GUARDS) <= set(self.matcher.guards)
        entries = backend.similar(request.scope, request.context or "", vector, floor=self.matcher.threshold - SLACK,
                                  now=now, text=request.text if strict else None)  # fmt: skip
        if not entries:
            return None
        query = SemanticQuery(text=request.text or "", vector=vector, context=request.context or "", ts=now)
        candidates = [SemanticCandidate(key=e.key, text=e.text or "", vector=e.vector or (), context=e.context or "",
                                        ts=e.created) for e in entries]  # fmt: skip
        chosen = self.matcher.match(query, candidates)
        if chosen is None:
            return None
        similarity = math.fsum(a * b for a, b in zip(vector, chosen.vector))
        return CacheHit(next(e for e in entries if e.key == chosen.key), "semantic", similarity)
