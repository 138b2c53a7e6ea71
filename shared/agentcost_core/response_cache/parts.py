"""What a framework face of the response cache runs on, opened from the contract's arguments.

``agentcost_langchain.ResponseCache`` and ``agentcost_llamaindex.CachedLLM`` take the same arguments
(``store, *, semantic, threshold, scope, ttl, coalesce, ledger, catalog, tags``); :class:`CacheParts`
opens from them the three parts both run on: the recorder hits are recorded through, the
:class:`CacheEngine` and, with ``coalesce=True``, the :class:`~agentcost_core.coalesce.Coalescer`
(across processes through the store's Redis when the store is ``redis://…``: the flights live under
the store's namespace, ``<namespace>-flight``, beside its entries). A face only translates its
framework's objects.

What an owner's flight shares with its waiters is a :class:`SharedResponse`: the serialized response
(the face's own format, the same text the store keeps), the served model and usage (so a waiter's
event says what it saved), and in the owner's process the owner's response object itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..coalesce import Coalescer
from ..errors import ConfigurationError
from ..recorder import CostRecorder
from ..usage import Usage
from .engine import CacheEngine
from .entries import CacheEntry, CacheHit, CacheRequest

__all__ = ["CacheParts", "SharedResponse", "flight_key"]


@dataclass(slots=True)
class SharedResponse:
    """An owner's response as its flight shares it. ``payload``: the serialized response (None when it
    cannot be kept, e.g. a LlamaIndex response carrying tool calls: waiters in other processes then
    call on their own); ``response``: the owner's object, for waiters in its process only (never
    crosses processes). Treat it as read-only."""

    payload: str | None
    model: str | None = None
    usage: Usage | None = None
    response: Any = None

    def encode(self) -> str:
        usage = self.usage.as_dict() if self.usage is not None else None
        return json.dumps({"payload": self.payload, "model": self.model, "usage": usage}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> SharedResponse:
        data = json.loads(raw)
        usage = data.get("usage")
        return cls(payload=data.get("payload"), model=data.get("model"), usage=Usage(**usage) if usage else None)


def flight_key(request: CacheRequest) -> str:
    """The coalescing key of a lookup: its exact key within its scope (never shared across scopes)."""
    return f"{request.scope}\x00{request.key}"


class CacheParts:
    """``CacheParts(store=None, *, semantic=None, threshold=0.95, scope=("user_id",), ttl=None,
    coalesce=True, ledger=None, catalog=None, tags=(), framework, bill_embeddings=True)``: the
    ``recorder``, ``engine`` and ``coalescer`` (None without coalescing) of one face, opened from its
    arguments (see :class:`agentcost_langchain.ResponseCache` for them). ``framework`` names the face
    on its events; ``bill_embeddings`` as :class:`CacheEngine`'s. Bad arguments fail here, loudly."""

    def __init__(
        self,
        store: Any = None,
        *,
        semantic: Any = None,
        threshold: float = 0.95,
        scope: Sequence[str] | str | None = ("user_id",),
        ttl: float | None = None,
        coalesce: bool = True,
        ledger: Any = None,
        catalog: Any = None,
        tags: Sequence[str] | str = (),
        framework: str,
        bill_embeddings: bool | Callable[[], bool] = True,
    ) -> None:
        if not isinstance(coalesce, bool):
            raise ConfigurationError(f"coalesce must be True or False, got {coalesce!r}")
        self.recorder = CostRecorder(ledger, catalog=catalog, framework=framework, keep_events=False)
        self.engine = CacheEngine(store, semantic=semantic, threshold=threshold, scope=scope, ttl=ttl, tags=tags,
                                  recorder=self.recorder, bill_embeddings=bill_embeddings)  # fmt: skip
        self.coalescer: Coalescer | None = _coalescer(self.engine) if coalesce else None

    def __repr__(self) -> str:
        return f"CacheParts({self.engine!r}, coalescer={self.coalescer!r})"

    def landed(self, request: CacheRequest, shared: SharedResponse) -> CacheHit:
        """A waiter's result as a hit of the ``coalesced`` layer (counted), for :meth:`CacheEngine.record_hit`."""
        entry = CacheEntry(scope=request.scope, key=request.key, payload=shared.payload,
                           model=shared.model or request.model, usage=shared.usage)  # fmt: skip
        self.engine.stats.count("coalesced", "hits")
        return CacheHit(entry, "coalesced")

    def waiting(self) -> int:
        """How many calls wait for an identical call in flight: in this process, and (Redis store) in
        the other processes sharing the store."""
        return self.coalescer.waiting() if self.coalescer is not None else 0

    def close(self) -> None:
        self.engine.close()
        self.recorder.ledger.flush()


def _coalescer(engine: CacheEngine) -> Coalescer:
    """In-process flights; with a Redis store, shared by the processes using it (through its client)."""
    from .backends.redis import RedisBackend

    backend = engine.backend
    if not isinstance(backend, RedisBackend):
        return Coalescer()
    return Coalescer(redis=backend.client, namespace=f"{backend.namespace}-flight",
                     encode=SharedResponse.encode, decode=SharedResponse.decode)  # fmt: skip
