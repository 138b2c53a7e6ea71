"""``CachedLLM``: pay once for the same answer, for any LlamaIndex LLM.

    from agentcost_llamaindex import CachedLLM
    llm = CachedLLM(OpenAI(model="gpt-4o-mini"), "sqlite:///.agentcost/response_cache.db")
    with instrument_tags({"user_id": "u1"}):
        llm.chat([ChatMessage(role="user", content="...")])   # the provider once, then the cache

The key covers the wrapped LLM's class, model and settings (temperature, max tokens, extra
arguments), the full message list and the call's keyword arguments (tools included). Entries are
partitioned by the ``instrument_tags`` attribution (``scope``, default ``("user_id",)``); a tag
``cache_tags`` stores a response under tags for :meth:`CachedLLM.invalidate`. A hit calls nothing:
it is reported to LlamaIndex's instrumentation as an LLM call of its own (a span, start and end
events, the served response marked in its ``additional_kwargs["agentcost_cache"]``): an attached
``instrument()`` handler records it, with the call's attribution, trace and step; with none the
cache records it in its own ledger. Either way it is one ledger event with ``cache_hit=True``,
cost $0, ``saved`` and ``extra["cache"]`` (see :mod:`agentcost_llamaindex.served`). Responses that
carry tool calls are not stored (providers' tool-call objects do not survive a round trip), and
streams pass through uncached. With ``coalesce=True`` identical calls in flight at once (``chat``
and ``complete``, sync and async: threads, asyncio tasks, and with a ``redis://`` store the
processes sharing it) make one provider call; the others get its response, hits of the
``coalesced`` layer with ``saved``, reported and recorded the same way (a response carrying tool
calls reaches the waiters of the owner's process only: those in other processes call on their own).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.instrumentation import DISPATCHER_SPAN_DECORATED_ATTR, get_dispatcher
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import Field, PrivateAttr

from agentcost_core.attribution import read_attribution
from agentcost_core.call import ModelCall
from agentcost_core.errors import ConfigurationError
from agentcost_core.parsers.llamaindex import from_chat_response
from agentcost_core.recorder import CostRecorder
from agentcost_core.response_cache import (
    CacheEngine,
    CacheHit,
    CacheParts,
    CacheRequest,
    SharedResponse,
    flight_key,
    hit_marker,
)

from .handler import CostEventHandler
from .messages import message_text, tools_text
from .served import MARKER, handled

__all__ = ["CachedLLM"]

_dispatcher = get_dispatcher(__name__)
_SETTINGS = ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort", "additional_kwargs", "system_prompt")


def _no_span(fn: Any) -> Any:
    """The wrapped LLM's own call is the one instrumented (and measured): no span of ours around it
    (a hit, which calls nothing, opens its own: :meth:`CachedLLM._answer`)."""
    setattr(fn, DISPATCHER_SPAN_DECORATED_ATTR, True)
    return fn


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)


class CachedLLM(FunctionCallingLLM):
    """``CachedLLM(llm, store=None, *, semantic=None, threshold=0.95, scope=("user_id",), ttl=None,
    coalesce=True)`` — the arguments of :class:`agentcost_langchain.ResponseCache` (plus ``ledger``,
    ``catalog``, ``tags``)."""

    inner: Any = Field(exclude=True)
    _parts: CacheParts = PrivateAttr()

    def __init__(
        self,
        llm: LLM,
        store: str | None = None,
        *,
        semantic: Any = None,
        threshold: float = 0.95,
        scope: Sequence[str] | str | None = ("user_id",),
        ttl: float | None = None,
        coalesce: bool = True,
        ledger: Any = None,
        catalog: Any = None,
        tags: Sequence[str] | str = (),
    ) -> None:
        if not isinstance(llm, LLM):
            raise ConfigurationError(f"CachedLLM wraps a LlamaIndex LLM, got {type(llm).__name__}")
        super().__init__(inner=llm)
        self._parts = CacheParts(store, semantic=semantic, threshold=threshold, scope=scope, ttl=ttl, tags=tags,
                                 coalesce=coalesce, ledger=ledger, catalog=catalog, framework="llamaindex",
                                 bill_embeddings=_bill_embeddings(semantic))  # fmt: skip

    @classmethod
    def class_name(cls) -> str:
        return "AgentcostCachedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.inner.metadata

    @property
    def engine(self) -> CacheEngine:
        return self._parts.engine

    @property
    def stats(self) -> Any:
        """Hits, misses and errors per layer."""
        return self._parts.engine.stats

    @property
    def recorder(self) -> CostRecorder:
        """Where hits are recorded; its ``internal_errors`` counts calls the cache could not serve or keep."""
        return self._parts.recorder

    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag``; how many were dropped."""
        return self._parts.engine.invalidate(tag)

    def waiting(self) -> int:
        """How many calls are waiting for an identical call in flight: in this process, and with a
        Redis store in the other processes sharing it."""
        return self._parts.waiting()

    # --- keys -------------------------------------------------------------------------------------
    def _model(self) -> str | None:
        name = getattr(self.inner, "model", None) or self.inner.metadata.model_name
        return name if isinstance(name, str) else None

    def _request(
        self, messages: Sequence[ChatMessage] | None, prompt: str | None, kwargs: dict[str, Any]
    ) -> CacheRequest | None:
        """The lookup of a call, or None when it cannot be built (a bad ``cache_tags`` tag, say): that
        call is not cached (counted and logged), never broken."""
        try:
            return self._build_request(messages, prompt, kwargs)
        except Exception as e:  # noqa: BLE001 - our failure (or a bad tag) never breaks the user's call
            self._parts.recorder.note_internal_error("response cache request", e)
            return None

    def _build_request(
        self, messages: Sequence[ChatMessage] | None, prompt: str | None, kwargs: dict[str, Any]
    ) -> CacheRequest:
        tags = active_instrument_tags.get() or {}
        settings = {k: getattr(self.inner, k, None) for k in _SETTINGS}
        params = _dumps({"class": self.inner.class_name(), "settings": settings, "tools": tools_text(kwargs),
                         "kwargs": {k: v for k, v in kwargs.items() if k not in ("tools", "functions")}})  # fmt: skip
        if messages is not None:
            text = _dumps([m.model_dump(mode="json", exclude_none=True) for m in messages])
            last = messages[-1] if messages else None
            query = message_text(last) if last is not None and str(last.role.value) == "user" else None
            system = "\n".join(message_text(m) for m in messages if str(m.role.value) == "system")
            history = [f"{m.role.value}:{message_text(m)}" for m in messages[:-1] if str(m.role.value) != "system"]
        else:
            text, query, system, history = _dumps(prompt), prompt, "", []
        cache_tags = tags.get("cache_tags") or ()
        return self._parts.engine.request(
            model=self._model(), messages=text, params=params, attribution=read_attribution(tags), text=query,
            system=system, tools=tools_text(kwargs) or "", history=history,
            tags=(cache_tags,) if isinstance(cache_tags, str) else tuple(cache_tags),
        )  # fmt: skip

    # --- lookup, record, store ----------------------------------------------------------------------
    def _lookup(self, request: CacheRequest | None, kind: _Kind) -> CacheHit | None:
        """A hit, its ``value`` the stored response read back; or None: a miss, an entry that cannot
        be read back (a counted error and miss) or a call that is not cached."""
        if request is None:
            return None
        return self._parts.engine.lookup(request, decode=lambda payload: kind.rebuild(json.loads(payload)))

    def _record(self, hit: CacheHit) -> bool:
        """The hit in the cache's own ledger (no cost handler saw its call); whether it was recorded."""
        tags = active_instrument_tags.get() or {}
        call = ModelCall(self._model(), attribution=read_attribution(tags), framework="llamaindex")
        return self._parts.engine.record_hit(hit, call) is not None

    def _model_dict(self) -> dict[str, Any]:
        """The wrapped LLM as its own start events describe it (LlamaIndex's ``to_payload``)."""
        to_payload = getattr(self.inner, "to_payload", None)
        if callable(to_payload):
            return to_payload()  # type: ignore[no-any-return]
        return {"class_name": self.inner.class_name(), **self.inner.metadata.model_dump()}

    @_dispatcher.span
    def _answer(self, hit: CacheHit, kind: _Kind, asked: Any, kwargs: dict[str, Any]) -> Any:
        """The response of a call the cache answered, reported as LlamaIndex reports an LLM call (this
        span, a start and an end event) so the cost handlers see it. A handler that saw it start
        records it (from the marked response); otherwise the cache records it, once."""
        span_id = active_span_id.get()
        started = False
        try:
            _dispatcher.event(kind.start(model_dict=self._model_dict(), additional_kwargs=kwargs, span_id=span_id,
                                         **{kind.asked: asked}))  # fmt: skip
            started = True
        except Exception as e:  # noqa: BLE001 - our failure never breaks the call: the cache records it
            self._parts.recorder.note_internal_error("response cache hit event", e)
        recorded = not (started and handled(span_id)) and self._record(hit)
        response = hit.value
        try:
            marker = hit_marker(hit, recorded=recorded)
            response = response.model_copy(update={"additional_kwargs": {**response.additional_kwargs, MARKER: marker}})
        except Exception as e:  # noqa: BLE001 - our failure never breaks the call: served unmarked
            self._parts.recorder.note_internal_error("response cache hit marker", e)
        if started:
            _dispatcher.event(kind.end(response=response, span_id=span_id, **{kind.asked: asked}))
        return response

    def _keep(self, request: CacheRequest, response: Any, kind: _Kind) -> SharedResponse:
        """Store the provider's response (when it can be read back) and say what its flight shares."""
        try:
            found = from_chat_response(response)
            usage, model = found.usage, found.model
        except Exception:  # noqa: BLE001 - no readable usage: a hit saves an unknown amount
            usage, model = None, None
        try:
            payload = kind.payload(response)
            text = None if payload is None else _dumps(payload)
        except Exception as e:  # noqa: BLE001 - our failure never breaks the call: the response is not kept
            self._parts.recorder.note_internal_error("response cache store", e)
            text = None
        shared = SharedResponse(text, model=model or request.model, usage=usage, response=response)
        if shared.payload is not None:
            self._parts.engine.store(request, shared.payload, model=shared.model, usage=usage)
        return shared

    def _landed(self, request: CacheRequest, shared: SharedResponse, kind: _Kind) -> CacheHit | None:
        """A coalesced call's response (the owner's, shared) as a hit of the coalescing layer; None
        when the owner's response could not cross processes (the caller calls on its own)."""
        response = shared.response
        if response is None and shared.payload is not None:
            try:
                response = kind.rebuild(json.loads(shared.payload))
            except Exception as e:  # noqa: BLE001 - our failure never breaks the call: it calls on its own
                self._parts.recorder.note_internal_error("response cache coalesced response", e)
        if response is None:
            return None
        hit = self._parts.landed(request, shared)
        hit.value = response
        return hit

    def _served(self, request: CacheRequest | None, kind: _Kind, asked: Any, kwargs: dict[str, Any],
                call: Callable[[], Any]) -> Any:  # fmt: skip
        """A call through the cache (``asked``: its messages or prompt, with ``kwargs``): a hit, else the
        provider once for every identical call in flight."""
        hit = self._lookup(request, kind)
        if hit is not None:
            return self._answer(hit, kind, asked, kwargs)
        coalescer = self._parts.coalescer
        if request is None:
            return call()
        if coalescer is None:
            return self._keep(request, call(), kind).response
        shared, coalesced = coalescer.run(flight_key(request), lambda: self._keep(request, call(), kind))
        if not coalesced:
            return shared.response
        landed = self._landed(request, shared, kind)
        return self._answer(landed, kind, asked, kwargs) if landed is not None else call()

    async def _aserved(self, request: CacheRequest | None, kind: _Kind, asked: Any, kwargs: dict[str, Any],
                       call: Callable[[], Awaitable[Any]]) -> Any:  # fmt: skip
        """:meth:`_served` for a coroutine function."""
        hit = self._lookup(request, kind)
        if hit is not None:
            return self._answer(hit, kind, asked, kwargs)
        coalescer = self._parts.coalescer
        if request is None:
            return await call()
        if coalescer is None:
            return self._keep(request, await call(), kind).response

        async def keep() -> SharedResponse:
            return self._keep(request, await call(), kind)

        shared, coalesced = await coalescer.arun(flight_key(request), keep)
        if not coalesced:
            return shared.response
        landed = self._landed(request, shared, kind)
        return self._answer(landed, kind, asked, kwargs) if landed is not None else await call()

    # --- chat and complete ------------------------------------------------------------------------------
    @_no_span
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._request(messages, None, kwargs)
        return self._served(request, _CHAT, messages, kwargs, lambda: self.inner.chat(messages, **kwargs))  # type: ignore[no-any-return]

    @_no_span
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._request(messages, None, kwargs)
        return await self._aserved(request, _CHAT, messages, kwargs, lambda: self.inner.achat(messages, **kwargs))  # type: ignore[no-any-return]

    @_no_span
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        request = self._request(None, prompt, {**kwargs, "formatted": formatted})
        return self._served(  # type: ignore[no-any-return]
            request, _COMPLETION, prompt, kwargs, lambda: self.inner.complete(prompt, formatted=formatted, **kwargs)
        )

    @_no_span
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        request = self._request(None, prompt, {**kwargs, "formatted": formatted})
        return await self._aserved(  # type: ignore[no-any-return]
            request, _COMPLETION, prompt, kwargs, lambda: self.inner.acomplete(prompt, formatted=formatted, **kwargs)
        )

    # --- streams and tools: the wrapped LLM's own -----------------------------------------------------
    @_no_span
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self.inner.stream_chat(messages, **kwargs)

    @_no_span
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return await self.inner.astream_chat(messages, **kwargs)

    @_no_span
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self.inner.stream_complete(prompt, formatted=formatted, **kwargs)

    @_no_span
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        return await self.inner.astream_complete(prompt, formatted=formatted, **kwargs)

    @_no_span
    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                                 verbose: bool = False, allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        return self.inner._prepare_chat_with_tools(tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
                                                   allow_parallel_tool_calls=allow_parallel_tool_calls,
                                                   tool_required=tool_required, **kwargs)  # fmt: skip

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[ToolSelection]:  # fmt: skip
        return self.inner.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


def _bill_embeddings(semantic: Any) -> Any:
    """A LlamaIndex ``BaseEmbedding`` reports its calls to the root dispatcher: while an agentcost
    handler is attached there (``instrument()``), that handler records them, and the cache does not."""
    if not isinstance(semantic, BaseEmbedding):
        return True
    return lambda: not any(isinstance(h, CostEventHandler) for h in get_dispatcher().event_handlers)


class _Kind:
    """How one kind of response (chat, completion) is kept: ``payload`` (None: it cannot be kept) and
    ``rebuild`` from a kept payload; and how LlamaIndex reports a call of that kind: its ``start`` and
    ``end`` events, whose field ``asked`` holds what was asked (the messages, the prompt)."""

    __slots__ = ("asked", "end", "payload", "rebuild", "start")

    def __init__(self, payload: Callable[[Any], dict[str, Any] | None], rebuild: Callable[[dict[str, Any]], Any],
                 start: type, end: type, asked: str) -> None:  # fmt: skip
        self.payload, self.rebuild = payload, rebuild
        self.start, self.end, self.asked = start, end, asked


def _chat_payload(response: ChatResponse) -> dict[str, Any] | None:
    if response.message.additional_kwargs.get("tool_calls") or any(
        getattr(b, "block_type", None) == "tool_call" for b in response.message.blocks
    ):
        return None
    return {"message": response.message.model_dump(mode="json", exclude_none=True),
            "additional_kwargs": _json_safe(response.additional_kwargs)}  # fmt: skip


def _chat_response(stored: dict[str, Any]) -> ChatResponse:
    return ChatResponse(
        message=ChatMessage.model_validate(stored["message"]), additional_kwargs=stored["additional_kwargs"]
    )


def _completion_payload(response: CompletionResponse) -> dict[str, Any]:
    return {"text": response.text, "additional_kwargs": _json_safe(response.additional_kwargs)}


def _completion_response(stored: dict[str, Any]) -> CompletionResponse:
    return CompletionResponse(text=stored["text"], additional_kwargs=stored["additional_kwargs"])


_CHAT = _Kind(_chat_payload, _chat_response, LLMChatStartEvent, LLMChatEndEvent, "messages")
_COMPLETION = _Kind(_completion_payload, _completion_response, LLMCompletionStartEvent, LLMCompletionEndEvent, "prompt")


def _json_safe(value: Any) -> dict[str, Any]:
    """``additional_kwargs`` as JSON values (provider objects become their text), without a cache's
    marker (a response another cache served is kept as the response itself)."""
    return json.loads(_dumps({k: v for k, v in (value or {}).items() if k != MARKER}))
