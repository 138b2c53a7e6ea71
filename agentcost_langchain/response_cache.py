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

The broad ``except`` blocks wrap only our own work (lookups, stores, waiting for another call's
flight): the model call itself runs in LangChain between ``lookup`` and ``update``, outside them, so a
LangGraph interrupt from user code never reaches them. A waiter whose owner's run ended without an
answer (an interrupt included) is not interrupted by it: it calls the model on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables.config import run_in_executor

from agentcost_core.attribution import NO_ATTRIBUTION
from agentcost_core.call import ModelCall
from agentcost_core.ledger import Ledger
from agentcost_core.response_cache import CacheHit, CacheParts, CacheRequest, SharedResponse, flight_key

from . import run_context
from .embeddings import CostTrackedEmbeddings
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


def _decode(payload: Any) -> list[Generation]:
    """A stored entry's generations: read back from text, or copies of the objects the memory backend keeps."""
    return _unpack(payload) if isinstance(payload, str) else _copies(payload)


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


def _shared_response(
    request: CacheRequest, generations: Sequence[Generation], packed: str | None, llm_output: dict[str, Any] | None
) -> SharedResponse:
    """What a flight shares of a call's response (``packed``: its generations serialized, or None). A chat
    model's message says its model and usage; a completion model's run says them in ``llm_output``."""
    first = generations[0] if generations else None
    outcome = outcome_of_message(getattr(first, "message", None), llm_output, first)
    return SharedResponse(packed, model=outcome.model or request.model, usage=outcome.usage)


class _Owned:
    """The flight a call owns, kept in its context until the update shares the response (or the run
    ends); ended once (a later end must not touch a newer flight of the same key).

    ``call`` is the cache call it was taken off for, (prompt, llm_string): a completion model's run
    ends before its update, so the run's end finds the flight by it and shares the run's response
    through :meth:`respond` (see :mod:`.run_context`)."""

    __slots__ = ("call", "ended", "flight", "key", "request")

    def __init__(self, flight: Any, request: CacheRequest, call: tuple[str, str]) -> None:
        self.flight, self.key, self.ended = flight, flight.key, False
        self.request, self.call = request, call

    def _ending(self) -> bool:
        if self.ended:
            return False
        self.ended = True
        return True

    def resolve(self, value: Any) -> None:
        if self._ending():
            self.flight.resolve(value)

    def fail(self, error: BaseException) -> None:
        if self._ending():
            self.flight.fail(error)

    def abandon(self, _task: Any = None) -> None:
        if self._ending():
            self.flight.abandon()

    def respond(self, generations: Sequence[Generation], llm_output: dict[str, Any] | None) -> None:
        """Share a completion run's response (its generations, as the update would get them, and the
        run's ``llm_output``: its model and usage)."""
        try:
            shared = _shared_response(self.request, generations, _pack(generations), llm_output)
        except Exception:  # noqa: BLE001 - nothing to share: the waiters call on their own
            self.abandon()
            return
        self.resolve(shared)


class ResponseCache(BaseCache):
    """``ResponseCache(store=None, *, semantic=None, threshold=0.95, scope=("user_id",), ttl=None,
    coalesce=True)``.

    ``store``: ``memory://``, ``sqlite:///path``, ``redis://…``; None = ``response_cache.db`` beside
    the default ledger. ``semantic``: a LangChain ``Embeddings`` (or LlamaIndex ``BaseEmbedding``,
    or a callable ``str -> vector``) to also serve similar questions in the same context; None =
    exact only. ``threshold``: the similarity a semantic hit needs. ``scope``: the attribution
    fields that partition entries (``()`` shares them between everyone). ``ttl``: seconds an entry
    lives. ``coalesce``: identical calls in flight at once make one provider call (across processes
    too with a ``redis://`` store).
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
        self.parts = CacheParts(store, semantic=semantic, threshold=threshold, scope=scope, ttl=ttl, tags=tags,
                                coalesce=coalesce, ledger=ledger, catalog=catalog, framework="langchain",
                                bill_embeddings=not isinstance(semantic, CostTrackedEmbeddings))  # records itself  # fmt: skip
        self.recorder, self.engine = self.parts.recorder, self.parts.engine
        #: Identical calls in flight at once share one provider call (across processes with a Redis store).
        self.coalescer = self.parts.coalescer
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
    def _find(self, prompt: str, llm_string: str) -> tuple[CacheRequest | None, CacheHit | None, list[Generation]]:
        """(the lookup, the hit or None, its generations): the store's part, which may do I/O (async
        callers run it off the event loop) and writes no context variable."""
        request = self._request(prompt, llm_string, run_context.current_run())
        if request is None:
            return None, None, []
        hit = self.engine.lookup(request, decode=_decode)
        return request, hit, hit.value if hit is not None else []

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        try:
            request, hit, generations = self._find(prompt, llm_string)
            if request is None:
                return None
            if hit is not None:
                return self._served(hit, generations)
            call = (prompt, llm_string)
            flight = self._take_off(request, call, self._join if self.coalescer is not None else None)
            if flight is None:
                return None
            try:
                return self._landed(request, flight.wait(self.coalescer.timeout))  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - no result to share (timeout, the owner failed): call on our own
                return None
        except Exception as e:  # noqa: BLE001 - a cache failure is a miss, never the caller's problem
            self.recorder.note_internal_error("response cache lookup", e)
            return None

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        try:
            if self.engine.serializes:  # a store with I/O: off the event loop (the context is copied)
                request, hit, generations = await run_in_executor(None, self._find, prompt, llm_string)
            else:
                request, hit, generations = self._find(prompt, llm_string)
            if request is None:
                return None
            if hit is not None:
                return self._served(hit, generations)
            call = (prompt, llm_string)
            if self.coalescer is None:
                self._take_off(request, call, None)
                return None
            join = self._join if self.coalescer.remote is None or run_context.owns_any() else None
            flight = self._take_off(request, call, join)
            if flight is None and join is None and not run_context.owns(flight_key(request)):
                # across processes joining may block: off the loop
                flight = self._take_off(
                    request, call, None, await run_in_executor(None, self.coalescer.join, flight_key(request))
                )
            if flight is None:
                return None
            try:
                return self._landed(request, await flight.wait_async(self.coalescer.timeout))
            except Exception:  # noqa: BLE001 - no result to share (timeout, the owner failed): call on our own
                return None
        except Exception as e:  # noqa: BLE001 - a cache failure is a miss, never the caller's problem
            self.recorder.note_internal_error("response cache lookup", e)
            return None

    def _join(self, key: str) -> Any:
        """The call's part in the flight of ``key``. A context that owns a flight already (a completion
        model looks every prompt of its batch up before any run starts) only takes ``key`` when nobody
        has it in flight, and else calls on its own: waiting, it could wait on a batch that waits on it."""
        if run_context.owns_any():
            return self.coalescer.claim(key)  # type: ignore[union-attr]
        return self.coalescer.join(key)  # type: ignore[union-attr]

    def _take_off(self, request: CacheRequest, call: tuple[str, str], join: Any, flight: Any = None) -> Any:
        """After a miss (in the caller's own context): remember the lookup for the update that follows
        and, coalescing, join the call's flight. The owner's flight is kept for the update (which shares
        the response) or the run's end (which releases the waiters; a completion run's end shares its
        response, found by ``call``, the (prompt, llm_string) asked); a waiter's flight is returned.
        A run never waits for a flight it owns (a batch repeating a prompt): that call is a plain miss."""
        _missed.set(request)
        if run_context.current_run() is None:  # a completion model's: its run's end keeps its llm_output
            run_context.expect_output(call)
        if flight is None and join is not None and not run_context.owns(flight_key(request)):
            flight = join(flight_key(request))
        if flight is None:
            return None
        if flight.owner:
            owned = _Owned(flight, request, call)
            run_context.own_flight(owned)
            try:  # a cancelled task never reports its end to LangChain: its flight ends with the task
                asyncio.current_task().add_done_callback(owned.abandon)  # type: ignore[union-attr]
            except RuntimeError:  # no event loop running here: a sync call ends through the callbacks
                pass
            return None
        return flight

    def _landed(self, request: CacheRequest, shared: SharedResponse) -> list[Generation]:
        """A waiter's result: the owner's response, recorded as a hit of the coalescing layer."""
        return self._served(self.parts.landed(request, shared), _unpack(shared.payload))  # type: ignore[arg-type]

    def _served(self, hit: CacheHit, generations: list[Generation]) -> list[Generation]:
        """Record the hit (unless a cost handler records this run) and mark it for the handlers."""
        run = run_context.current_run()
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
                marker = {"layer": hit.layer, "recorded": recorded}
                g.message.response_metadata = {**g.message.response_metadata, MARKER: marker}
        return generations

    def _prepare(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> tuple[CacheRequest, Any, SharedResponse] | None:
        """(the lookup, what to store, what a flight shares), in the caller's context: the query's
        embedding of the lookup is reused."""
        missed = _missed.get()
        _missed.set(None)
        request = self._request(prompt, llm_string, run_context.current_run())
        if request is None:
            return None
        if missed is not None and missed.key == request.key and missed.scope == request.scope:
            request.vector = missed.vector
            request.embedded = missed.embedded
        sharing = run_context.owns(flight_key(request))
        packed = _pack(return_val) if self.engine.serializes or sharing else None
        shared = _shared_response(request, return_val, packed, run_context.take_output((prompt, llm_string)))
        return request, packed if self.engine.serializes else _copies(return_val), shared

    @staticmethod
    def _share(prepared: tuple[CacheRequest, Any, SharedResponse] | None) -> None:
        """The flight this run owns for the call's key gets the response, once it is stored (a caller
        arriving later finds it there). Flights of other calls are left to their own updates, and
        whatever is left (nothing to share) to the run's end, which abandons it. A completion model's
        run ended before this update and its end shared the response already: nothing is left here
        (a caller arriving between that end and this store misses and calls on its own)."""
        flight = run_context.take_flight(flight_key(prepared[0])) if prepared is not None else None
        if flight is not None:
            flight.resolve(prepared[2])  # type: ignore[index]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        prepared = None
        try:
            prepared = self._prepare(prompt, llm_string, return_val)
            if prepared is not None:
                request, payload, shared = prepared
                self.engine.store(request, payload, model=shared.model, usage=shared.usage)
        except Exception as e:  # noqa: BLE001 - a cache failure never breaks the call
            self.recorder.note_internal_error("response cache update", e)
        finally:
            self._share(prepared)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        prepared = None
        try:
            prepared = self._prepare(prompt, llm_string, return_val)
            if prepared is not None:
                request, payload, shared = prepared
                if self.engine.serializes:
                    await run_in_executor(None, self.engine.store, request, payload, model=shared.model,
                                          usage=shared.usage)  # fmt: skip
                else:
                    self.engine.store(request, payload, model=shared.model, usage=shared.usage)
        except Exception as e:  # noqa: BLE001 - a cache failure never breaks the call
            self.recorder.note_internal_error("response cache update", e)
        finally:
            self._share(prepared)

    def clear(self, **kwargs: Any) -> None:
        """Drop every entry (every scope)."""
        self.engine.clear()

    # --- ours -----------------------------------------------------------------------------------
    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag``; how many were dropped."""
        return self.engine.invalidate(tag)

    def __len__(self) -> int:
        return len(self.engine)

    def waiting(self) -> int:
        """How many calls are waiting for an identical call in flight: in this process, and with a
        Redis store in the other processes sharing it."""
        return self.parts.waiting()

    def close(self) -> None:
        self.parts.close()
