"""``CachedLLM``: pay once for the same answer, for any LlamaIndex LLM.

    from agentcost_llamaindex import CachedLLM
    llm = CachedLLM(OpenAI(model="gpt-4o-mini"), "sqlite:///.agentcost/response_cache.db")
    with instrument_tags({"user_id": "u1"}):
        llm.chat([ChatMessage(role="user", content="...")])   # the provider once, then the cache

The key covers the wrapped LLM's class, model and settings (temperature, max tokens, extra
arguments), the full message list and the call's keyword arguments (tools included). Entries are
partitioned by the ``instrument_tags`` attribution (``scope``, default ``("user_id",)``); a tag
``cache_tags`` stores a response under tags for :meth:`CachedLLM.invalidate`. A hit calls nothing:
it is recorded as a ledger event with ``cache_hit=True``, cost $0 and ``saved``. Responses that
carry tool calls are not stored (providers' tool-call objects do not survive a round trip), and
streams pass through uncached.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
from llama_index.core.instrumentation import DISPATCHER_SPAN_DECORATED_ATTR
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import Field, PrivateAttr

from agentcost_core.attribution import read_attribution
from agentcost_core.call import ModelCall
from agentcost_core.errors import ConfigurationError
from agentcost_core.parsers.llamaindex import from_chat_response
from agentcost_core.recorder import CostRecorder
from agentcost_core.response_cache import CacheEngine, CacheHit, CacheRequest

from .messages import message_text, tools_text

__all__ = ["CachedLLM"]

_SETTINGS = ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort", "additional_kwargs", "system_prompt")


def _no_span(fn: Any) -> Any:
    """The wrapped LLM's own call is the one instrumented (and measured): no span of ours around it."""
    setattr(fn, DISPATCHER_SPAN_DECORATED_ATTR, True)
    return fn


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)


class CachedLLM(FunctionCallingLLM):
    """``CachedLLM(llm, store=None, *, semantic=None, threshold=0.95, scope=("user_id",), ttl=None,
    coalesce=True)`` — the arguments of :class:`agentcost_langchain.ResponseCache` (plus ``ledger``,
    ``catalog``, ``tags``)."""

    inner: Any = Field(exclude=True)
    _engine: CacheEngine = PrivateAttr()
    _recorder: CostRecorder = PrivateAttr()

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
        if not isinstance(coalesce, bool):
            raise ConfigurationError(f"coalesce must be True or False, got {coalesce!r}")
        super().__init__(inner=llm)
        self._recorder = CostRecorder(ledger, catalog=catalog, framework="llamaindex", keep_events=False)
        self._engine = CacheEngine(store, semantic=semantic, threshold=threshold, scope=scope, ttl=ttl, tags=tags,
                                   recorder=self._recorder)  # fmt: skip

    @classmethod
    def class_name(cls) -> str:
        return "AgentcostCachedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.inner.metadata

    @property
    def engine(self) -> CacheEngine:
        return self._engine

    @property
    def stats(self) -> Any:
        """Hits, misses and errors per layer."""
        return self._engine.stats

    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag``; how many were dropped."""
        return self._engine.invalidate(tag)

    # --- keys -------------------------------------------------------------------------------------
    def _model(self) -> str | None:
        name = getattr(self.inner, "model", None) or self.inner.metadata.model_name
        return name if isinstance(name, str) else None

    def _request(
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
        return self._engine.request(
            model=self._model(), messages=text, params=params, attribution=read_attribution(tags), text=query,
            system=system, tools=tools_text(kwargs) or "", history=history,
            tags=(cache_tags,) if isinstance(cache_tags, str) else tuple(cache_tags),
        )  # fmt: skip

    # --- lookup, record, store ----------------------------------------------------------------------
    def _lookup(self, request: CacheRequest) -> dict[str, Any] | None:
        hit = self._engine.lookup(request)
        if hit is None:
            return None
        try:
            payload = json.loads(hit.entry.payload)
        except ValueError as e:
            self._recorder.note_internal_error("response cache entry", e)
            return None
        self._record(hit)
        return payload

    def _record(self, hit: CacheHit) -> None:
        tags = active_instrument_tags.get() or {}
        call = ModelCall(self._model(), attribution=read_attribution(tags), framework="llamaindex")
        self._engine.record_hit(hit, call)

    def _store(self, request: CacheRequest, response: Any, payload: dict[str, Any]) -> None:
        try:
            found = from_chat_response(response)
            usage, model = found.usage, found.model
        except Exception:  # noqa: BLE001 - no readable usage: the hit saves an unknown amount
            usage, model = None, None
        self._engine.store(request, _dumps(payload), model=model or request.model, usage=usage)

    @staticmethod
    def _chat_payload(response: ChatResponse) -> dict[str, Any] | None:
        if response.message.additional_kwargs.get("tool_calls") or any(
            getattr(b, "block_type", None) == "tool_call" for b in response.message.blocks
        ):
            return None
        return {"message": response.message.model_dump(mode="json", exclude_none=True),
                "additional_kwargs": _json_safe(response.additional_kwargs)}  # fmt: skip

    # --- chat ----------------------------------------------------------------------------------------
    @_no_span
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._request(messages, None, kwargs)
        found = self._lookup(request)
        if found is not None:
            return ChatResponse(
                message=ChatMessage.model_validate(found["message"]), additional_kwargs=found["additional_kwargs"]
            )
        response = self.inner.chat(messages, **kwargs)
        payload = self._chat_payload(response)
        if payload is not None:
            self._store(request, response, payload)
        return response

    @_no_span
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._request(messages, None, kwargs)
        found = self._lookup(request)
        if found is not None:
            return ChatResponse(
                message=ChatMessage.model_validate(found["message"]), additional_kwargs=found["additional_kwargs"]
            )
        response = await self.inner.achat(messages, **kwargs)
        payload = self._chat_payload(response)
        if payload is not None:
            self._store(request, response, payload)
        return response

    @_no_span
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        request = self._request(None, prompt, {**kwargs, "formatted": formatted})
        found = self._lookup(request)
        if found is not None:
            return CompletionResponse(text=found["text"], additional_kwargs=found["additional_kwargs"])
        response = self.inner.complete(prompt, formatted=formatted, **kwargs)
        self._store(
            request, response, {"text": response.text, "additional_kwargs": _json_safe(response.additional_kwargs)}
        )
        return response

    @_no_span
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        request = self._request(None, prompt, {**kwargs, "formatted": formatted})
        found = self._lookup(request)
        if found is not None:
            return CompletionResponse(text=found["text"], additional_kwargs=found["additional_kwargs"])
        response = await self.inner.acomplete(prompt, formatted=formatted, **kwargs)
        self._store(
            request, response, {"text": response.text, "additional_kwargs": _json_safe(response.additional_kwargs)}
        )
        return response

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


def _json_safe(value: Any) -> dict[str, Any]:
    """``additional_kwargs`` as JSON values (provider objects become their text)."""
    return json.loads(_dumps(value or {}))
