"""The response cache's engine: exact layer, opt-in semantic layer, scopes, TTL, tags, stats.

Framework-free: an adapter (``agentcost_langchain.ResponseCache``, ``agentcost_llamaindex.CachedLLM``)
builds a :class:`CacheRequest` with :meth:`CacheEngine.request`, asks :meth:`CacheEngine.lookup`,
stores the framework's serialized response with :meth:`CacheEngine.store`, and records a hit with
:meth:`CacheEngine.record_hit` — through the one call path (the recorder and its accountant), so a
hit is a ledger event with ``cache_hit=True``, cost $0 and ``saved`` = what the original call cost,
and budgets settle it at $0.

A cache failure (a backend down, a corrupt entry, an embedder that raises) is a miss: it is counted
in :attr:`CacheEngine.stats` and logged, never raised into the user's call. Bad configuration fails
at construction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..attribution import NO_ATTRIBUTION, Attribution
from ..call import ModelCall
from ..errors import ConfigurationError
from ..events import CostEvent
from ..usage import Usage
from .backends import CacheBackend, open_cache_backend
from .entries import CacheEntry, CacheHit, CacheRequest
from .keys import context_fingerprint, exact_key, scope_fields, scope_of
from .served import hit_outcome
from .stats import CacheStats

__all__ = ["CacheEngine"]

logger = logging.getLogger("agentcost.cache")


def _check_ttl(ttl: Any) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"ttl must be a number of seconds > 0 or None (no expiry), got {ttl!r}")
    return float(ttl)


def _check_tags(tags: Any) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = (tags,)
    tags = tuple(tags or ())
    if not all(isinstance(t, str) and t for t in tags):
        raise ConfigurationError(f"tags must be non-empty strings, got {list(tags)!r}")
    return tags


class CacheEngine:
    """``CacheEngine(store=None, *, semantic=None, threshold=0.95, scope=("user_id",), ttl=None,
    tags=(), recorder=None)``.

    ``store``: a URL (``memory://``, ``sqlite:///path``, ``redis://…``) or a backend; None = SQLite
    beside the default ledger. ``semantic``: an embedder (LangChain ``Embeddings``, LlamaIndex
    ``BaseEmbedding`` or a callable ``str -> vector``); None = exact matching only. ``scope``: the
    attribution fields that partition entries. ``ttl``: seconds an entry lives (None = until
    invalidated or evicted). ``tags``: stored with every entry, for :meth:`invalidate`.
    ``recorder``: the :class:`~agentcost_core.recorder.CostRecorder` hits and embedding calls are
    recorded through (the adapters pass one on their ledger). ``clock``: wall-clock seconds.
    ``bill_embeddings``: False (or a callable answering False) when the embedder's calls are
    recorded elsewhere already (an adapter's cost-tracked embedder): never billed twice.
    """

    def __init__(
        self,
        store: str | CacheBackend | None = None,
        *,
        semantic: Any = None,
        threshold: float = 0.95,
        scope: Sequence[str] | str | None = ("user_id",),
        ttl: float | None = None,
        tags: Sequence[str] | str = (),
        recorder: Any = None,
        clock: Callable[[], float] = time.time,
        bill_embeddings: bool | Callable[[], bool] = True,
    ) -> None:
        self.clock = clock  # wall-clock seconds: entries' creation and expiry
        self.scope = scope_fields(scope)
        self.ttl = _check_ttl(ttl)
        self.tags = _check_tags(tags)
        self.recorder = recorder
        self.semantic = None
        if semantic is not None:
            from .semantic_layer import SemanticLayer

            self.semantic = SemanticLayer(semantic, threshold=threshold, recorder=recorder, max_age=self.ttl,
                                          bill=bill_embeddings)  # fmt: skip
        elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise ConfigurationError(f"threshold must be a similarity in (0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.backend = open_cache_backend(store)
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return f"CacheEngine(store={self.backend.url!r}, scope={self.scope}, semantic={self.semantic is not None})"

    # --- building a lookup ---------------------------------------------------------------------
    def request(
        self,
        *,
        model: str | None,
        messages: str,
        params: str,
        attribution: Attribution = NO_ATTRIBUTION,
        text: str | None = None,
        system: str = "",
        tools: str = "",
        history: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> CacheRequest:
        """The lookup of one call. ``messages`` / ``params``: the canonical text of the full message
        list and of every output-changing parameter (tools included); ``text``, ``system``, ``tools``,
        ``history``: the last user message and its context, for the semantic layer."""
        request = CacheRequest(key=exact_key(model, messages, params), scope=scope_of(attribution, self.scope),
                               model=model, tags=self.tags + _check_tags(tags))  # fmt: skip
        if self.semantic is not None and text:
            request.text = text
            request.context = context_fingerprint(model=model, system=system, tools=tools, history=history)
            request.attribution = attribution
        return request

    # --- lookup and store ----------------------------------------------------------------------
    def lookup(self, request: CacheRequest, *, decode: Callable[[Any], Any] | None = None) -> CacheHit | None:
        """The exact entry of ``request``'s key in its scope, else (semantic on) the closest entry
        the matcher accepts; None on a miss. ``decode`` reads an entry's payload back (the hit's
        ``value``) before the hit is counted: an entry it cannot read is a counted error and miss
        of its layer. Never raises."""
        now = self.clock()
        try:
            entry = self.backend.get(request.scope, request.key, now)
        except Exception as e:  # noqa: BLE001 - a cache failure is a miss
            self._failed("exact", "lookup", e)
        else:
            hit = self._decoded("exact", CacheHit(entry, "exact") if entry is not None else None, decode)
            if hit is not None:
                return hit
        if self.semantic is None or request.text is None:
            return None
        try:
            found = self.semantic.find(request, self.backend, now)
        except Exception as e:  # noqa: BLE001 - a cache failure is a miss
            self._failed("semantic", "lookup", e)
            return None
        return self._decoded("semantic", found, decode)

    def _decoded(self, layer: str, hit: CacheHit | None, decode: Callable[[Any], Any] | None) -> CacheHit | None:
        """``hit`` with its value read back, counted as a hit of ``layer``; else None, counted as a miss
        (an entry ``decode`` cannot read: also an error)."""
        if hit is None:
            self.stats.count(layer, "misses")
            return None
        try:
            hit.value = decode(hit.entry.payload) if decode is not None else hit.entry.payload
        except Exception as e:  # noqa: BLE001 - a corrupt entry is a miss
            self._failed(layer, "lookup", e)
            return None
        self.stats.count(layer, "hits")
        return hit

    @property
    def serializes(self) -> bool:
        """Whether ``store`` needs a text payload (False for the memory backend, which keeps objects)."""
        return self.backend.serializes

    def store(self, request: CacheRequest, payload: Any, *, model: str | None, usage: Usage | None) -> bool:
        """Keep a response for ``request`` (its vector too, when the semantic layer embedded the
        query). False when the backend failed (counted, logged, never raised)."""
        now = self.clock()
        entry = CacheEntry(scope=request.scope, key=request.key, payload=payload, model=model, usage=usage,
                           created=now, expires=None if self.ttl is None else now + self.ttl, tags=request.tags)  # fmt: skip
        if self.semantic is not None and request.text is not None:
            try:  # the lookup's embedding when it asked (once per call); a failing embedder leaves the exact entry
                vector = self.semantic.embed(request)
            except Exception as e:  # noqa: BLE001 - a failing embedder never disables the exact layer
                self._failed("semantic", "store", e)
                vector = None
            if vector is not None:
                entry.text, entry.context, entry.vector = request.text, request.context, vector
        try:
            self.backend.put(entry)
            return True
        except Exception as e:  # noqa: BLE001 - a cache failure never breaks the call
            self._failed("exact", "store", e)
            return False

    def record_hit(self, hit: CacheHit, call: ModelCall) -> CostEvent | None:
        """The hit as a ledger event through the recorder: ``cache_hit=True``, cost $0, ``saved`` =
        the stored call's price, ``extra={"cache": layer}``. None without a recorder or on our fault."""
        if self.recorder is None:
            return None
        try:
            event, _ = self.recorder.record_outcome(
                call, hit_outcome(hit), event_id=call.span_id if isinstance(call.span_id, str) else None
            )
            return event
        except Exception as e:  # noqa: BLE001 - our fault: logged and counted by the recorder
            self.recorder.note_internal_error("response cache hit", e)
            return None

    # --- maintenance ---------------------------------------------------------------------------
    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag`` (in every scope); how many were dropped."""
        return self.backend.invalidate(_check_tags(tag)[0])

    def clear(self) -> None:
        self.backend.clear()

    def __len__(self) -> int:
        """How many entries are live now (by :attr:`clock`): stored and not expired, in every backend."""
        return self.backend.count(self.clock())

    def close(self) -> None:
        self.backend.close()

    def _failed(self, layer: str, what: str, error: BaseException) -> None:
        self.stats.count(layer, "errors")
        if what == "lookup":
            self.stats.count(layer, "misses")
        logger.warning(
            "agentcost: response cache %s failed (%s: %s); treated as a miss", what, type(error).__name__, error
        )
