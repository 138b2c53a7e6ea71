"""``ResponseCache``: pay once for the same answer, as a LangChain ``BaseCache``.

    from langchain_core.globals import set_llm_cache
    set_llm_cache(ResponseCache("sqlite:///.agentcost/response_cache.db"))   # every model
    llm = ChatOpenAI(model="gpt-4o-mini", cache=ResponseCache("memory://"))  # one model

The key is LangChain's own: the full message list (ids dropped) and the model's ``llm_string``
(model, every parameter, bound tools, stop). Entries are partitioned by the run's attribution
(``scope``, default ``("user_id",)``, read from run ``metadata``); ``metadata={"cache_tags": [...]}``
stores a response under tags for :meth:`ResponseCache.invalidate`.

A hit is recorded as a ledger event with ``cache_hit=True``, cost $0 and ``saved`` (what the
original call cost), ``extra={"cache": "exact" | "semantic"}``; a :class:`CostCallbackHandler` on
the run records it instead (one event, never two), and its budgets settle a hit at $0.
LangChain's ``stream()`` does not consult caches; ``invoke`` on a streaming model does. A
completion model (``BaseLLM``) asks its cache before its run starts, when its attribution is not
known yet: it is cached only with ``scope=()``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from agentcost_core.attribution import NO_ATTRIBUTION
from agentcost_core.call import ModelCall
from agentcost_core.ledger import Ledger
from agentcost_core.recorder import CostRecorder
from agentcost_core.response_cache import CacheEngine, CacheHit, CacheRequest

from . import run_context
from .response import outcome_of_message

__all__ = ["ResponseCache"]

logger = logging.getLogger("agentcost.cache")

#: Where a hit says which layer served it (read by the cost handlers).
MARKER = "agentcost_cache"
#: The lookup that missed, so the update that follows reuses its query embedding (one embedding per call).
_missed: ContextVar[CacheRequest | None] = ContextVar("agentcost_cache_missed", default=None)


def _pack(generations: Sequence[Generation]) -> str:
    rows = []
    for g in generations:
        if isinstance(g, ChatGeneration):
            rows.append({"message": message_to_dict(g.message), "info": g.generation_info})
        else:
            rows.append({"text": g.text, "info": g.generation_info})
    return json.dumps(rows, separators=(",", ":"), default=str)


def _unpack(payload: str) -> list[Generation]:
    out: list[Generation] = []
    for row in json.loads(payload):
        if "message" in row:
            out.append(ChatGeneration(message=messages_from_dict([row["message"]])[0], generation_info=row["info"]))
        else:
            out.append(Generation(text=row["text"], generation_info=row["info"]))
    return out


def _copies(generations: Sequence[Generation]) -> list[Generation]:
    """Copies a caller may change without changing the stored entry (the memory backend keeps objects)."""
    out: list[Generation] = []
    for g in generations:
        if isinstance(g, ChatGeneration):
            message = g.message.model_copy(update={"response_metadata": dict(g.message.response_metadata)})
            out.append(g.model_copy(update={"message": message}))
        else:
            out.append(g.model_copy())
    return out


def _semantic_parts(prompt: str) -> tuple[str | None, str, list[str]]:
    """(last user message, system prompt, the conversation before it) from LangChain's cache prompt
    (the serialized message list; a completion model's prompt is plain text)."""
    try:
        rows = json.loads(prompt)
    except ValueError:
        return prompt, "", []
    if not isinstance(rows, list):
        return prompt, "", []
    texts = []
    for row in rows:
        kw = row.get("kwargs", {}) if isinstance(row, dict) else {}
        content = kw.get("content")
        texts.append(
            (kw.get("type") or "", content if isinstance(content, str) else json.dumps(content, sort_keys=True))
        )
    if not texts or texts[-1][0] != "human":
        return None, "", []
    system = "\n".join(t for role, t in texts if role == "system")
    history = [f"{role}:{t}" for role, t in texts[:-1] if role != "system"]
    return texts[-1][1], system, history


class ResponseCache(BaseCache):
    """``ResponseCache(store=None, *, semantic=None, threshold=0.95, scope=("user_id",), ttl=None,
    coalesce=True)``.

    ``store``: ``memory://``, ``sqlite:///path``, ``redis://…``; None = ``response_cache.db`` beside
    the default ledger. ``semantic``: a LangChain ``Embeddings`` (or LlamaIndex ``BaseEmbedding``,
    or a callable ``str -> vector``) to also serve similar questions in the same context; None =
    exact only. ``threshold``: the similarity a semantic hit needs. ``scope``: the attribution
    fields that partition entries (``()`` shares them between everyone). ``ttl``: seconds an entry
    lives. ``coalesce``: identical calls in flight at once make one provider call.
    Also: ``ledger`` (where hits and embedding calls are recorded; default the default ledger),
    ``catalog``, ``tags`` (stored with every entry).
    """

    def __init__(
        self,
        store: str | None = None,
        *,
        semantic: Any = None,
        threshold: float = 0.95,
        scope: Sequence[str] | str | None = ("user_id",),
        ttl: float | None = None,
        coalesce: bool = True,
        ledger: Ledger | str | None = None,
        catalog: Any = None,
        tags: Sequence[str] | str = (),
    ) -> None:
        if not isinstance(coalesce, bool):
            raise TypeError(f"coalesce must be True or False, got {coalesce!r}")
        self.recorder = CostRecorder(ledger, catalog=catalog, framework="langchain", keep_events=False)
        self.engine = CacheEngine(store, semantic=semantic, threshold=threshold, scope=scope, ttl=ttl, tags=tags,
                                  recorder=self.recorder)  # fmt: skip
        self.coalesce = coalesce
        run_context.install()

    def __repr__(self) -> str:
        return f"ResponseCache({self.engine!r})"

    @property
    def stats(self) -> Any:
        """Hits, misses and errors per layer (:class:`~agentcost_core.response_cache.CacheStats`)."""
        return self.engine.stats

    def _request(self, prompt: str, llm_string: str, run: run_context.ModelRun | None) -> CacheRequest | None:
        """The lookup of a call, or None when its scope cannot be known: a completion model (``BaseLLM``)
        asks its cache before its run starts, so with a scope it is never cached (never a guess)."""
        if run is None and self.engine.scope:
            return None
        attribution = run.attribution if run is not None else NO_ATTRIBUTION
        text = system = None
        history: list[str] = []
        if self.engine.semantic is not None:
            text, system, history = _semantic_parts(prompt)
        return self.engine.request(
            model=run.model if run is not None else None, messages=prompt, params=llm_string, attribution=attribution,
            text=text, system=system or "", tools=llm_string, history=history, tags=run.tags if run is not None else (),
        )  # fmt: skip

    # --- BaseCache ------------------------------------------------------------------------------
    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        try:
            run = run_context.current_run()
            request = self._request(prompt, llm_string, run)
            if request is None:
                return None
            hit = self.engine.lookup(request)
            if hit is None:
                if request.vector is not None:
                    _missed.set(request)
                return None
            payload = hit.entry.payload
            generations = _unpack(payload) if isinstance(payload, str) else _copies(payload)
        except Exception as e:  # noqa: BLE001 - a cache failure is a miss, never the caller's problem
            self.recorder.note_internal_error("response cache lookup", e)
            return None
        self._served(hit, generations, run)
        return generations

    def _served(self, hit: CacheHit, generations: list[Generation], run: run_context.ModelRun | None) -> None:
        """Record the hit (unless a cost handler records this run) and mark it for the handlers."""
        recorded = False
        if not run_context.handled(run):
            call = ModelCall(run.model if run else hit.entry.model, framework="langchain")
            if run is not None:
                call.attribution, call.span_id, call.step = run.attribution, str(run.run_id), run.step
                call.trace_id = str(run.parent_id or run.run_id)
                call.parent_id = None if run.parent_id is None else str(run.parent_id)
                call.provider = run.provider
            recorded = self.engine.record_hit(hit, call) is not None
        for g in generations:
            if isinstance(g, ChatGeneration):
                g.message.response_metadata = {**g.message.response_metadata,
                                               MARKER: {"layer": hit.layer, "recorded": recorded}}  # fmt: skip

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        try:
            run = run_context.current_run()
            request = self._request(prompt, llm_string, run)
            if request is None:
                return
            missed = _missed.get()
            if missed is not None:
                _missed.set(None)
                if missed.key == request.key and missed.scope == request.scope:
                    request.vector = missed.vector
            first = return_val[0] if return_val else None
            outcome = outcome_of_message(getattr(first, "message", None), None, first)
            payload = _pack(return_val) if self.engine.serializes else _copies(return_val)
            self.engine.store(request, payload, model=outcome.model or request.model, usage=outcome.usage)
        except Exception as e:  # noqa: BLE001 - a cache failure never breaks the call
            self.recorder.note_internal_error("response cache update", e)

    def clear(self, **kwargs: Any) -> None:
        """Drop every entry (every scope)."""
        self.engine.clear()

    # --- ours -----------------------------------------------------------------------------------
    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag``; how many were dropped."""
        return self.engine.invalidate(tag)

    def __len__(self) -> int:
        return len(self.engine)

    def close(self) -> None:
        self.engine.close()
        self.recorder.ledger.flush()
