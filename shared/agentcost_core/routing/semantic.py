"""The semantic chooser: route a request to the tier whose example prompts it is nearest to.

``SemanticPolicy(routes={"nano": [...], "frontier": [...]}, embed)`` embeds the example texts
**once** (lazily, at the first decision, under a lock; or eagerly with :meth:`~SemanticPolicy.prepare`),
L2-normalises and stores them. Each decision then costs one embedding call for the request text
plus a cosine against every example (a single matrix-vector product when numpy is importable, a
pure-Python loop otherwise); every tier is scored by the mean of its top-``k`` similarities and
the best tier wins. Below ``min_similarity`` the policy has no opinion (the next policy decides).

``embed`` is duck-typed, so the core never imports a framework:

* a LangChain ``Embeddings`` — ``embed_documents`` for the examples, ``embed_query`` for requests;
* a LlamaIndex ``BaseEmbedding`` — ``get_text_embedding_batch`` / ``get_text_embedding`` for the
  examples, ``get_query_embedding`` for requests;
* a callable ``str -> Sequence[float]``.

Embedding is usually a network call, so the policy is ``blocking``: the async adapters decide in a
worker thread, never on the event loop. Known in-process embedders (LangChain's fake embeddings,
LlamaIndex's ``MockEmbedding``) are not; ``blocking=False`` says so for another one (a local model).

``batch=False`` embeds the examples one call at a time (for embedders whose batch call is
unavailable or rate-limited). If the embedder raises while deciding, the failure is logged and the
policy has no opinion for that call (routing never fails a user's call over an embedding hiccup);
:meth:`~SemanticPolicy.prepare` lets errors propagate. Vectors of the wrong shape are a
:class:`~agentcost_core.errors.ConfigurationError`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from operator import mul
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigurationError
from ..privacy import redact_text
from .decision import RouteRequest, RoutingDecision
from .policy import Policy
from .tiers import TierSet

try:  # numpy is optional: one mat-vec per decision when present, a Python loop otherwise
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _np = None

__all__ = ["SemanticPolicy"]

logger = logging.getLogger("agentcost.routing")

Vector = Sequence[float]


def _embedder(embed: Any, batch: bool) -> tuple[Callable[[list[str]], list[Any]], Callable[[str], Any], str]:
    """(embed the examples, embed a request, kind) for a LangChain / LlamaIndex embedder or a callable."""
    if hasattr(embed, "embed_query") and callable(embed.embed_query):  # LangChain Embeddings
        query = embed.embed_query
        docs = getattr(embed, "embed_documents", None)
        if batch and callable(docs):
            return (lambda texts: list(docs(texts))), query, "langchain"
        return (lambda texts: [query(t) for t in texts]), query, "langchain"
    text_one = getattr(embed, "get_text_embedding", None)
    query_one = getattr(embed, "get_query_embedding", None)
    if callable(text_one) or callable(query_one):  # LlamaIndex BaseEmbedding
        query = query_one if callable(query_one) else text_one
        one = text_one if callable(text_one) else query_one
        many = getattr(embed, "get_text_embedding_batch", None)
        if batch and callable(many):
            return (lambda texts: list(many(texts))), query, "llamaindex"
        return (lambda texts: [one(t) for t in texts]), query, "llamaindex"
    if callable(embed):
        return (lambda texts: [embed(t) for t in texts]), embed, "callable"
    raise ConfigurationError(
        "SemanticPolicy embed= must be a LangChain Embeddings (embed_query/embed_documents), a LlamaIndex "
        "BaseEmbedding (get_query_embedding/get_text_embedding) or a callable str -> vector; "
        f"got {type(embed).__name__}"
    )


#: Embedders known to compute in-process (no I/O): deciding with them may stay on the event loop.
_IN_PROCESS = frozenset({
    "langchain_core.embeddings.fake.FakeEmbeddings",
    "langchain_core.embeddings.fake.DeterministicFakeEmbedding",
    "llama_index.core.embeddings.mock_embed_model.MockEmbedding",
})  # fmt: skip


def _in_process(embed: Any) -> bool:
    cls = type(embed)
    return f"{cls.__module__}.{cls.__qualname__}" in _IN_PROCESS


def _as_floats(vec: Any, what: str) -> list[float]:
    try:
        out = [float(x) for x in vec]
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"SemanticPolicy: the embedder returned a non-vector for {what}: {type(vec).__name__}"
        ) from None
    if not out:
        raise ConfigurationError(f"SemanticPolicy: the embedder returned an empty vector for {what}")
    return out


def _normalised(vec: list[float]) -> list[float] | None:
    norm = math.sqrt(math.fsum(x * x for x in vec))
    if norm == 0.0 or not math.isfinite(norm):
        return None
    return [x / norm for x in vec]


class SemanticPolicy(Policy):
    """``SemanticPolicy(routes={tier: [example texts]}, embed, *, k=3, min_similarity=None, batch=True,
    blocking=None)`` (``blocking``: whether embedding may block; None: yes unless ``embed`` is a
    known in-process embedder).

    Decision features: the score of every tier (mean of its top-``k`` cosine similarities) and
    ``embed_ms``, the time of the request's embedding call (``decision_s`` includes it).
    """

    name = "semantic"

    def __init__(
        self,
        routes: Mapping[str, Sequence[str]],
        embed: Any,
        *,
        k: int = 3,
        min_similarity: float | None = None,
        batch: bool = True,
        blocking: bool | None = None,
    ) -> None:
        if not isinstance(routes, Mapping) or not routes:
            raise ConfigurationError("SemanticPolicy routes= must be a non-empty mapping {tier: [example texts]}")
        self.routes: dict[str, tuple[str, ...]] = {}
        for tier, examples in routes.items():
            if not isinstance(tier, str) or not tier:
                raise ConfigurationError(f"SemanticPolicy tier names must be non-empty strings, got {tier!r}")
            if isinstance(examples, (str, bytes)) or not isinstance(examples, Iterable):
                raise ConfigurationError(
                    f"SemanticPolicy routes[{tier!r}] must be a list of example texts, not {type(examples).__name__}"
                )
            texts = tuple(examples)
            if not texts:
                raise ConfigurationError(f"SemanticPolicy tier {tier!r} has no example texts")
            bad = [t for t in texts if not isinstance(t, str) or not t.strip()]
            if bad:
                raise ConfigurationError(
                    f"SemanticPolicy tier {tier!r}: examples must be non-empty strings, got {bad[0]!r}"
                )
            self.routes[tier] = texts
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"SemanticPolicy k must be an integer >= 1, got {k!r}")
        if min_similarity is not None and not -1.0 <= float(min_similarity) <= 1.0:
            raise ConfigurationError(f"SemanticPolicy min_similarity must be within [-1, 1], got {min_similarity!r}")
        self.k = k
        self.min_similarity = None if min_similarity is None else float(min_similarity)
        self.batch = bool(batch)
        self.embed = embed
        self.blocking = not _in_process(embed) if blocking is None else bool(blocking)
        self._embed_examples, self._embed_query, self.embedder_kind = _embedder(embed, self.batch)
        self._lock = threading.Lock()
        self._ready = False
        self._dim = 0
        self._tiers = tuple(self.routes)
        self._matrix: Any = None  # numpy (n, dim) or list of rows; rows grouped by tier, in routes order
        self._spans: tuple[tuple[str, int, int], ...] = ()  # (tier, start, stop) row ranges

    # --- examples ------------------------------------------------------------------------------
    @property
    def prepared(self) -> bool:
        return self._ready

    def prepare(self) -> SemanticPolicy:
        """Embed and store the example vectors now (once; later calls are no-ops). Returns self."""
        if self._ready:
            return self
        with self._lock:
            if self._ready:
                return self
            texts = [t for examples in self.routes.values() for t in examples]
            vectors = self._embed_examples(texts)
            if len(vectors) != len(texts):
                raise ConfigurationError(
                    f"SemanticPolicy: the embedder returned {len(vectors)} vectors for {len(texts)} examples"
                )
            rows: list[list[float]] = []
            for text, vec in zip(texts, vectors):
                floats = _as_floats(vec, f"example {text!r}")
                if rows and len(floats) != len(rows[0]):
                    raise ConfigurationError(
                        f"SemanticPolicy: example vectors differ in size ({len(rows[0])} vs {len(floats)} for {text!r})"
                    )
                unit = _normalised(floats)
                if unit is None:
                    raise ConfigurationError(
                        f"SemanticPolicy: example {text!r} embedded to a zero (or non-finite) vector"
                    )
                rows.append(unit)
            spans, start = [], 0
            for tier, examples in self.routes.items():
                spans.append((tier, start, start + len(examples)))
                start += len(examples)
            self._spans = tuple(spans)
            self._dim = len(rows[0])
            self._matrix = _np.asarray(rows, dtype=_np.float64) if _np is not None else rows
            self._ready = True
        return self

    def tier_names(self) -> Iterable[str]:
        return self._tiers

    # --- deciding ------------------------------------------------------------------------------
    def scores(self, vector: Vector) -> dict[str, float]:
        """Each tier's score (mean of its top-``k`` cosine similarities) for a request vector."""
        self.prepare()
        k = self.k
        if _np is not None and not isinstance(self._matrix, list):
            q = _np.asarray(vector, dtype=_np.float64).ravel()
            if q.shape[0] != self._dim:
                raise ConfigurationError(
                    f"SemanticPolicy: request vector has {q.shape[0]} dimensions, examples {self._dim}"
                )
            norm = float(_np.sqrt(q @ q))
            if norm == 0.0 or not math.isfinite(norm):
                return {}
            sims = self._matrix @ (q / norm)
            out = {}
            for tier, a, b in self._spans:
                s = sims[a:b]
                if b - a > k:
                    s = _np.partition(s, b - a - k)[b - a - k :]
                out[tier] = float(s.mean())
            return out
        q = _as_floats(vector, "the request")
        if len(q) != self._dim:
            raise ConfigurationError(f"SemanticPolicy: request vector has {len(q)} dimensions, examples {self._dim}")
        unit = _normalised(q)
        if unit is None:
            return {}
        rows = self._matrix
        out = {}
        for tier, a, b in self._spans:
            sims = sorted((sum(map(mul, rows[i], unit)) for i in range(a, b)), reverse=True)[:k]
            out[tier] = sum(sims) / len(sims)
        return out

    def choose(self, request: RouteRequest, tiers: TierSet) -> RoutingDecision | None:
        t0 = time.perf_counter()
        text = request.text
        if not text or not text.strip():
            return None
        try:
            self.prepare()
            e0 = time.perf_counter()
            vector = self._embed_query(text)
            embed_s = time.perf_counter() - e0
        except ConfigurationError:
            raise
        except Exception as exc:  # the user's embedder failed: no opinion, the next policy decides
            logger.warning(
                "agentcost routing: SemanticPolicy embedding failed (%s: %s); no semantic opinion",
                type(exc).__name__,
                redact_text(str(exc)),
            )
            return None
        scores = self.scores(vector)
        if not scores:
            return None
        best = max(self._tiers, key=lambda t: scores[t])  # ties: the tier listed first
        score = scores[best]
        if self.min_similarity is not None and score < self.min_similarity:
            return None
        why = f"nearest examples: {best} ({score:.2f})"
        others = [t for t in self._tiers if t != best]
        if others:
            runner = max(others, key=lambda t: scores[t])
            why += f" vs {runner} ({scores[runner]:.2f})"
        features = {**scores, "embed_ms": embed_s * 1e3}
        return RoutingDecision(best, why, "semantic", score, features, time.perf_counter() - t0)

    def __repr__(self) -> str:
        sizes = {t: len(e) for t, e in self.routes.items()}
        return (
            f"SemanticPolicy(routes={sizes!r}, embed={self.embedder_kind}, k={self.k}, "
            f"min_similarity={self.min_similarity!r})"
        )
