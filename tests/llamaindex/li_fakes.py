"""Offline stand-ins for the LlamaIndex tests: provider-shaped payloads, scripted LLMs, prices.

Named uniquely (not ``helpers.py``) because test folders here are not packages.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, AsyncGenerator, Generator, List, Sequence

import httpx
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import Field

MILLION = Decimal(1_000_000)


# --- prices, read from the packaged price data so the tests follow price updates ---------------
def catalog_entry(model: str) -> dict[str, Any]:
    from agentcost_core import PriceCatalog

    price = PriceCatalog.default().get(model)
    assert price is not None, model
    return price.as_entry()


def _catalog_json() -> dict[str, Any]:
    return _Entries()


class _Entries(dict):  # type: ignore[type-arg]
    """model -> its price entry, looked up in the packaged price data."""

    def __missing__(self, model: str) -> dict[str, Any]:
        return catalog_entry(model)


def price(model: str, bucket: str, *, long_context: bool = False) -> Decimal:
    """USD per 1M tokens of ``bucket`` for ``model``, straight from the packaged price data."""
    entry = _catalog_json()[model]
    if long_context:
        lc = entry["long_context"]
        if lc.get(bucket) is not None:
            return Decimal(str(lc[bucket]))
    return Decimal(str(entry[bucket]))


def long_context_threshold(model: str) -> int:
    return int(_catalog_json()[model]["long_context"]["threshold"])


def expected_cost(model: str, *, long_context: bool = False, **tokens: int) -> Decimal:
    """Hand computation: sum(tokens[bucket] * price[bucket]) / 1M."""
    total = sum((Decimal(n) * price(model, b, long_context=long_context) for b, n in tokens.items()), Decimal(0))
    return total / MILLION


# --- OpenAI Chat Completions wire format ------------------------------------------------
OPENAI_DATED = "gpt-4o-mini-2024-07-18"


def openai_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(text: str, usage: dict[str, Any], model: str = OPENAI_DATED) -> dict[str, Any]:
    return {
        "id": "chatcmpl-AgC1",
        "object": "chat.completion",
        "created": 1731000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }


def chat_completion_sse(pieces: Sequence[str], usage: dict[str, Any] | None, model: str = OPENAI_DATED) -> bytes:
    """A streamed completion; with ``usage`` the last chunk has empty choices and the usage
    (what ``stream_options={"include_usage": true}`` produces)."""
    base = {"id": "chatcmpl-AgC2", "object": "chat.completion.chunk", "created": 1731000000, "model": model,
            "system_fingerprint": "fp_0ba0d124f1", "service_tier": "default"}
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                              "logprobs": None, "finish_reason": None}], "usage": None}
    ]
    for p in pieces:
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": p}, "logprobs": None,
                                            "finish_reason": None}], "usage": None})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
                   "usage": None})
    if usage is not None:
        chunks.append({**base, "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


class OpenAIServer:
    """``httpx.MockTransport`` handler for ``POST /v1/chat/completions``; keeps the request bodies."""

    def __init__(self, text: str = "Hello there!", usage: dict[str, Any] | None = None,
                 stream_usage: bool = True, status: int = 200) -> None:
        self.text = text
        self.usage = usage if usage is not None else openai_usage(100, 50, cached=40, reasoning=10)
        self.stream_usage = stream_usage
        self.status = status
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/chat/completions"), request.url
        body = json.loads(request.content)
        self.requests.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "boom", "type": "server_error",
                                                               "code": None, "param": None}})
        if body.get("stream"):
            usage = self.usage if self.stream_usage else None
            return httpx.Response(200, content=chat_completion_sse(["Hello", " there", "!"], usage),
                                  headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=chat_completion(self.text, self.usage))

    def clients(self) -> tuple[httpx.Client, httpx.AsyncClient]:
        return (httpx.Client(transport=httpx.MockTransport(self)),
                httpx.AsyncClient(transport=httpx.MockTransport(self)))


# --- Anthropic Messages wire format (as llama-index-llms-anthropic stores it in ``raw``) --
ANTHROPIC_DATED = "claude-sonnet-4-5-20250929"


def anthropic_message(text: str, *, input_tokens: int, output_tokens: int, cache_read: int = 0,
                      write_5m: int = 0, write_1h: int = 0, model: str = ANTHROPIC_DATED) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


# --- scripted LLMs ------------------------------------------------------------------------
class RawChatLLM(CustomLLM):
    """A chat LLM whose responses carry a provider payload in ``raw`` (one LLM span per call)."""

    model: str = "claude-sonnet-4-5"
    text: str = "Paris."
    raw: Any = None
    chunk_raw: Any = None  # raw of the non-final stream chunks
    error: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=True)

    def _respond(self) -> ChatResponse:
        if self.error is not None:
            raise self.error
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.text), raw=self.raw)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._respond()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._respond()

    def _chunks(self) -> list[ChatResponse]:
        words = self.text.split(" ")
        out, acc = [], ""
        for i, w in enumerate(words):
            delta = w if i == 0 else " " + w
            acc += delta
            last = i == len(words) - 1
            out.append(ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=acc), delta=delta,
                                    raw=self.raw if last else self.chunk_raw))
        return out

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> Generator[ChatResponse, None, None]:
            chunks = self._chunks()
            for i, c in enumerate(chunks):
                if self.error is not None and i == len(chunks) - 1:
                    raise self.error
                yield c

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        async def gen() -> AsyncGenerator[ChatResponse, None]:
            for c in self._chunks():
                yield c

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        r = self._respond()
        return CompletionResponse(text=r.message.content or "", raw=r.raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def gen() -> Generator[CompletionResponse, None, None]:
            yield CompletionResponse(text=self.text, delta=self.text, raw=self.raw)

        return gen()


class CompletionOnlyLLM(CustomLLM):
    """Implements only completion; ``chat`` / ``achat`` / streams come from ``CustomLLM`` and call
    ``complete`` / ``stream_complete`` inside their own LLM spans (the nested-span case)."""

    model: str = "gpt-4o"
    raw: Any = None
    text: str = "The answer is 42."
    calls: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.calls += 1
        return CompletionResponse(text=self.text, raw=self.raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.calls += 1

        def gen() -> Generator[CompletionResponse, None, None]:
            words = self.text.split(" ")
            acc = ""
            for i, w in enumerate(words):
                acc += (" " if i else "") + w
                yield CompletionResponse(text=acc, delta=w, raw=self.raw if i == len(words) - 1 else None)

        return gen()


class ToolScriptLLM(MockFunctionCallingLLM):
    """A function-calling LLM that plays a script of (message, raw) turns, streamed or not.

    Streams send the text in two chunks; only the last chunk's ``raw`` carries usage, as OpenAI
    does with ``include_usage``.
    """

    script: List[Any] = Field(default_factory=list)
    model: str = "gpt-4o"
    turn: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_function_calling_model=True, is_chat_model=True, model_name=self.model)

    def _next(self) -> tuple[ChatMessage, Any]:
        message, raw = self.script[self.turn]
        self.turn += 1
        return message, raw

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message, raw = self._next()
        return ChatResponse(message=message, raw=raw)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message, raw = self._next()
        return ChatResponse(message=message, raw=raw)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        message, raw = self._next()

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            content = message.content or ""
            half = len(content) // 2
            first = ChatMessage(role=MessageRole.ASSISTANT, content=content[:half])
            yield ChatResponse(message=first, delta=content[:half], raw={"id": "chunk", "usage": None})
            yield ChatResponse(message=message, delta=content[half:], raw=raw)

        return gen()

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        message, raw = self._next()

        def gen() -> Generator[ChatResponse, None, None]:
            yield ChatResponse(message=message, delta=message.content or "", raw=raw)

        return gen()


def user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)



def openai_responses_llm(mock: Any, model: str = "gpt-5") -> Any:
    """A real llama-index ``OpenAIResponses`` (the Responses API) whose sync and async clients talk to
    ``mock`` (a ``providers.MockProvider``)."""
    from llama_index.llms.openai import OpenAIResponses

    return OpenAIResponses(
        model=model,
        api_key="sk-test",
        max_retries=0,
        http_client=httpx.Client(transport=mock.httpx_transport()),
        async_http_client=httpx.AsyncClient(transport=mock.httpx_transport()),
    )
