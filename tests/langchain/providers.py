"""Offline provider fakes for the LangChain exactness tests.

Two parts:

* :class:`MockProvider` — a scripted HTTP endpoint. It answers every request through a
  ``reply(body, request)`` function (so concurrent ``batch()`` threads get the answer that
  belongs to their own prompt), records each request's parsed JSON body, and plugs into the
  real SDKs as an ``httpx.MockTransport`` (openai, google-genai) or an ``httpx2.MockTransport``
  (anthropic >= 2, which is built on httpx2).
* Payload builders shaped exactly like the providers' documented wire formats:
  OpenAI Chat Completions (JSON and SSE with ``stream_options.include_usage``), OpenAI Responses
  (JSON and the typed SSE event stream), Anthropic Messages (JSON and SSE), Gemini
  ``generateContent`` / ``streamGenerateContent?alt=sse``.

And factories that build the REAL LangChain integrations on top of a ``MockProvider``:

* ``ChatOpenAI`` takes ``http_client`` / ``http_async_client`` directly.
* ``ChatAnthropic`` (langchain-anthropic 1.7.7) has no ``http_client`` parameter: it builds its
  SDK clients in the cached properties ``_client`` / ``_async_client`` from ``_client_params``
  and an lru-cached default httpx2 client. :func:`chat_anthropic` pre-fills those cached
  properties in the instance ``__dict__`` with ``anthropic.Client(**llm._client_params,
  http_client=httpx2.Client(transport=...))`` — the same api key, headers, timeout and
  ``max_retries`` LangChain would use, only the transport differs.
* ``ChatGoogleGenerativeAI`` passes ``client_args`` to google-genai's ``HttpOptions``; google-genai
  forwards them to the ``httpx.Client`` / ``httpx.AsyncClient`` it creates, so
  ``client_args={"transport": httpx.MockTransport(...)}`` reaches the wire layer of both.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable, Iterable

__all__ = [
    "MockProvider",
    "Reply",
    "SSE",
    "anthropic_error",
    "anthropic_message",
    "anthropic_stream",
    "chat_anthropic",
    "chat_gemini",
    "chat_openai",
    "gemini_response",
    "gemini_stream",
    "openai_chat_completion",
    "openai_chat_stream",
    "openai_error",
    "openai_responses",
    "openai_responses_stream",
    "web_search_call",
]

CREATED = 1_760_000_000


class SSE:
    """A ``text/event-stream`` body."""

    def __init__(self, text: str) -> None:
        self.text = text


class Reply:
    """What the mock answers: a status code and a JSON body or an SSE body."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}


class MockProvider:
    """A scripted provider endpoint usable by httpx and httpx2 clients alike."""

    def __init__(self, reply: Callable[[dict[str, Any], Any], Any]) -> None:
        self._reply = reply
        self.requests: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def always(cls, body: Any, status: int = 200) -> MockProvider:
        return cls(lambda _body, _req: Reply(body, status))

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _answer(self, request: Any) -> Reply:
        raw = request.content
        body = json.loads(raw) if raw else {}
        with self._lock:
            self.requests.append(body)
            self.urls.append(str(request.url))
        out = self._reply(body, request)
        return out if isinstance(out, Reply) else Reply(out)

    def _build(self, lib: Any, request: Any) -> Any:
        r = self._answer(request)
        headers = {"x-request-id": "req_test", **r.headers}
        if isinstance(r.body, SSE):
            headers["content-type"] = "text/event-stream"
            return lib.Response(r.status, headers=headers, content=r.body.text.encode())
        return lib.Response(r.status, headers=headers, json=r.body)

    # --- transports -----------------------------------------------------------------------
    def httpx_transport(self) -> Any:
        import httpx

        return httpx.MockTransport(lambda req: self._build(httpx, req))

    def httpx2_transport(self) -> Any:
        import httpx2

        return httpx2.MockTransport(lambda req: self._build(httpx2, req))


# ------------------------------------------------------------------------------------------
# OpenAI Chat Completions
# ------------------------------------------------------------------------------------------
def _oa_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion if isinstance(prompt, int) and isinstance(completion, int) else 0,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_chat_completion(
    model: str,
    prompt: int,
    completion: int,
    *,
    cached: int = 0,
    reasoning: int = 0,
    text: str = "Hello from the mock.",
    service_tier: str = "default",
    n: int = 1,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object as https://platform.openai.com/docs/api-reference/chat/object."""
    return {
        "id": "chatcmpl-mock123",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i in range(n)
        ],
        "usage": usage if usage is not None else _oa_usage(prompt, completion, cached, reasoning),
        "service_tier": service_tier,
        "system_fingerprint": "fp_mock",
    }


def openai_chat_stream(
    model: str,
    pieces: Iterable[str],
    *,
    prompt: int | None = None,
    completion: int | None = None,
    cached: int = 0,
    reasoning: int = 0,
    service_tier: str = "default",
) -> SSE:
    """``chat.completion.chunk`` events. With ``prompt`` given, the stream ends the way
    ``stream_options={"include_usage": true}`` makes it end: every chunk has ``"usage": null``
    and a last chunk with empty ``choices`` carries the usage; then ``data: [DONE]``."""
    with_usage = prompt is not None

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> str:
        c: dict[str, Any] = {
            "id": "chatcmpl-mock123",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "service_tier": service_tier,
            "system_fingerprint": "fp_mock",
            "choices": choices,
        }
        if with_usage:
            c["usage"] = usage
        return f"data: {json.dumps(c)}\n\n"

    out = [chunk([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}])]  # noqa: E501
    for p in pieces:
        out.append(chunk([{"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}]))
    out.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    if with_usage:
        out.append(chunk([], _oa_usage(prompt, completion or 0, cached, reasoning)))  # type: ignore[arg-type]
    out.append("data: [DONE]\n\n")
    return SSE("".join(out))


def openai_error(status: int, message: str = "The server had an error while processing your request.") -> Reply:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return Reply({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)


# ------------------------------------------------------------------------------------------
# OpenAI Responses API
# ------------------------------------------------------------------------------------------
def openai_responses(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    cached: int = 0,
    reasoning: int = 0,
    text: str = "Hello from the mock.",
    service_tier: str = "default",
    status: str = "completed",
    with_usage: bool = True,
    web_searches: int = 0,
) -> dict[str, Any]:
    """A ``response`` object as https://platform.openai.com/docs/api-reference/responses/object.
    ``web_searches`` adds that many ``web_search_call`` output items (the ``web_search`` tool, billed
    per call: https://platform.openai.com/docs/guides/tools-web-search)."""
    output: list[dict[str, Any]] = []
    if reasoning:
        output.append({"type": "reasoning", "id": "rs_mock", "summary": []})
    output += [web_search_call(i) for i in range(web_searches)]
    output.append(
        {
            "type": "message",
            "id": "msg_mock",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    )
    return {
        "id": "resp_mock",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output if status == "completed" else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium" if reasoning else None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [{"type": "web_search"}] if web_searches else [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        }
        if with_usage
        else None,
        "user": None,
        "metadata": {},
        "service_tier": service_tier,
    }


def web_search_call(i: int = 0) -> dict[str, Any]:
    """A completed ``web_search_call`` output item of the Responses API."""
    return {
        "type": "web_search_call",
        "id": f"ws_mock{i}",
        "status": "completed",
        "action": {"type": "search", "query": f"mock query {i}"},
    }


def openai_responses_stream(
    model: str,
    pieces: list[str],
    input_tokens: int,
    output_tokens: int,
    *,
    cached: int = 0,
    reasoning: int = 0,
    service_tier: str = "default",
    web_searches: int = 0,
) -> SSE:
    """The typed Responses event stream: ``response.created`` … ``response.output_text.delta`` …
    ``response.completed`` (whose ``response`` carries the usage). Each of ``web_searches`` is an
    output item with its ``response.web_search_call.*`` events."""
    text = "".join(pieces)
    final = openai_responses(
        model,
        input_tokens,
        output_tokens,
        cached=cached,
        reasoning=reasoning,
        text=text,
        service_tier=service_tier,
        web_searches=web_searches,
    )
    pending = openai_responses(model, 0, 0, status="in_progress", with_usage=False, service_tier=service_tier)
    events: list[str] = []

    def ev(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(events), **fields}
        events.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n")

    ev("response.created", response=pending)
    ev("response.in_progress", response=pending)
    idx = 0
    if reasoning:
        item = {"type": "reasoning", "id": "rs_mock", "summary": []}
        ev("response.output_item.added", output_index=0, item=item)
        ev("response.output_item.done", output_index=0, item=item)
        idx = 1
    for i in range(web_searches):
        done = web_search_call(i)
        ev("response.output_item.added", output_index=idx, item={**done, "status": "in_progress"})
        for step in ("in_progress", "searching", "completed"):
            ev(f"response.web_search_call.{step}", output_index=idx, item_id=done["id"])
        ev("response.output_item.done", output_index=idx, item=done)
        idx += 1
    msg = {"type": "message", "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": []}
    ev("response.output_item.added", output_index=idx, item=msg)
    part = {"type": "output_text", "text": "", "annotations": []}
    ev("response.content_part.added", item_id="msg_mock", output_index=idx, content_index=0, part=part)
    for p in pieces:
        ev("response.output_text.delta", item_id="msg_mock", output_index=idx, content_index=0, delta=p, logprobs=[])
    ev("response.output_text.done", item_id="msg_mock", output_index=idx, content_index=0, text=text, logprobs=[])
    ev(
        "response.content_part.done",
        item_id="msg_mock",
        output_index=idx,
        content_index=0,
        part={"type": "output_text", "text": text, "annotations": []},
    )
    ev("response.output_item.done", output_index=idx, item=final["output"][-1])
    ev("response.completed", response=final)
    return SSE("".join(events))


# ------------------------------------------------------------------------------------------
# Anthropic Messages
# ------------------------------------------------------------------------------------------
def _anthropic_usage(
    input_tokens: Any,
    output_tokens: Any,
    cache_read: int,
    cache_creation: int,
    split: tuple[int, int] | None,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if split is not None:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": split[0], "ephemeral_1h_input_tokens": split[1]}
    return usage


def anthropic_message(
    model: str,
    input_tokens: Any,
    output_tokens: Any,
    *,
    cache_read: int = 0,
    cache_creation: int | None = None,
    split: tuple[int, int] | None = None,
    text: str = "Hello from the mock.",
    server_tool_use: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ``message`` object as https://docs.anthropic.com/en/api/messages. ``input_tokens``
    EXCLUDES cache reads and writes; ``split`` is the (5m, 1h) TTL split of the cache write,
    reported beside the total ``cache_creation_input_tokens``. ``server_tool_use`` is the usage's
    count of server tool requests (``{"web_search_requests": 3}``); each web search is a
    ``server_tool_use`` block and its ``web_search_tool_result`` in the content
    (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool)."""
    if cache_creation is None:
        cache_creation = sum(split) if split else 0
    usage = _anthropic_usage(input_tokens, output_tokens, cache_read, cache_creation, split)
    content: list[dict[str, Any]] = []
    if server_tool_use:
        usage["server_tool_use"] = dict(server_tool_use)
        for i in range(server_tool_use.get("web_search_requests", 0)):
            tool_id = f"srvtoolu_mock{i}"
            content.append(
                {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": f"mock query {i}"}}
            )
            content.append({
                "type": "web_search_tool_result",
                "tool_use_id": tool_id,
                "content": [{
                    "type": "web_search_result", "url": f"https://example.com/{i}", "title": f"Result {i}",
                    "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5", "page_age": "April 30, 2025",
                }],
            })  # fmt: skip
    content.append({"type": "text", "text": text})
    return {
        "id": "msg_mock01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def anthropic_stream(
    model: str,
    pieces: list[str],
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int = 0,
    cache_creation: int = 0,
    delta_output_only: bool = False,
) -> SSE:
    """The Messages SSE stream: ``message_start`` (input side of the usage, output_tokens 1),
    ``content_block_start`` / ``content_block_delta`` … / ``content_block_stop``, ``ping``,
    ``message_delta`` with the CUMULATIVE usage (as the API sends it today: input, cache and
    output counts), ``message_stop``. ``delta_output_only`` sends the older / gateway form whose
    ``message_delta.usage`` is just ``{"output_tokens": N}`` (input only in ``message_start``)."""
    events: list[str] = []

    def ev(kind: str, data: dict[str, Any]) -> None:
        events.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n")

    start_usage = _anthropic_usage(input_tokens, 1, cache_read, cache_creation, None)
    ev(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_mock01",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
    )
    block = {"type": "text", "text": ""}
    ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    ev("ping", {"type": "ping"})
    for p in pieces:
        delta = {"type": "text_delta", "text": p}
        ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    ev("content_block_stop", {"type": "content_block_stop", "index": 0})
    ev(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens}
            if delta_output_only
            else {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": cache_creation,
                "cache_read_input_tokens": cache_read,
                "output_tokens": output_tokens,
            },
        },
    )
    ev("message_stop", {"type": "message_stop"})
    return SSE("".join(events))


def anthropic_error(status: int, message: str = "Internal server error") -> Reply:
    kind = {400: "invalid_request_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    return Reply({"type": "error", "error": {"type": kind, "message": message}}, status)


# ------------------------------------------------------------------------------------------
# Gemini (Developer API)
# ------------------------------------------------------------------------------------------
def _gemini_usage(prompt: int, candidates: int | None, cached: int, thoughts: int) -> dict[str, Any]:
    u: dict[str, Any] = {
        "promptTokenCount": prompt,
        "totalTokenCount": prompt + (candidates or 0) + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if candidates is not None:
        u["candidatesTokenCount"] = candidates
    if cached:
        u["cachedContentTokenCount"] = cached
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        u["thoughtsTokenCount"] = thoughts
    return u


def gemini_response(
    model_version: str,
    prompt: int,
    candidates: int,
    *,
    cached: int = 0,
    thoughts: int = 0,
    text: str = "Hello from the mock.",
) -> dict[str, Any]:
    """A ``GenerateContentResponse``: ``promptTokenCount`` INCLUDES ``cachedContentTokenCount``;
    ``candidatesTokenCount`` EXCLUDES ``thoughtsTokenCount``."""
    return {
        "candidates": [
            {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": _gemini_usage(prompt, candidates, cached, thoughts),
        "modelVersion": model_version,
        "responseId": "resp-gemini-mock",
    }


def gemini_stream(model_version: str, pieces: list[str], prompt: int, candidates: int, *, thoughts: int = 0) -> SSE:
    """``streamGenerateContent?alt=sse``: every chunk repeats the prompt count and carries the
    CUMULATIVE candidate / thought counts so far; the last chunk has ``finishReason``."""
    out = []
    n = len(pieces)
    for i, p in enumerate(pieces, 1):
        cand: dict[str, Any] = {"content": {"parts": [{"text": p}], "role": "model"}, "index": 0}
        if i == n:
            cand["finishReason"] = "STOP"
        body = {
            "candidates": [cand],
            "usageMetadata": _gemini_usage(prompt, candidates * i // n, 0, thoughts),
            "modelVersion": model_version,
            "responseId": "resp-gemini-mock",
        }
        out.append(f"data: {json.dumps(body)}\r\n\r\n")
    return SSE("".join(out))


# ------------------------------------------------------------------------------------------
# The real LangChain integrations over the mock
# ------------------------------------------------------------------------------------------
def chat_openai(mock: MockProvider, model: str, **kwargs: Any) -> Any:
    import httpx
    from langchain_openai import ChatOpenAI

    kwargs.setdefault("max_retries", 0)
    return ChatOpenAI(
        model=model,
        api_key="sk-test",
        http_client=httpx.Client(transport=mock.httpx_transport()),
        http_async_client=httpx.AsyncClient(transport=mock.httpx_transport()),
        **kwargs,
    )


def chat_anthropic(mock: MockProvider, model: str, **kwargs: Any) -> Any:
    import anthropic
    import httpx2
    from langchain_anthropic import ChatAnthropic

    kwargs.setdefault("max_tokens", 64)
    kwargs.setdefault("max_retries", 0)
    llm = ChatAnthropic(model=model, api_key="sk-ant-test", **kwargs)
    params = llm._client_params  # api key, base url, headers, timeout, max_retries as LangChain sets them
    # ``_client`` / ``_async_client`` are functools.cached_property: a value in the instance
    # __dict__ is what the property returns, so LangChain uses these clients unchanged.
    llm.__dict__["_client"] = anthropic.Client(**params, http_client=httpx2.Client(transport=mock.httpx2_transport()))
    llm.__dict__["_async_client"] = anthropic.AsyncClient(
        **params, http_client=httpx2.AsyncClient(transport=mock.httpx2_transport())
    )
    return llm


def chat_gemini(mock: MockProvider, model: str, **kwargs: Any) -> Any:
    from langchain_google_genai import ChatGoogleGenerativeAI

    # google-genai builds httpx clients by default and httpx2 ones when GOOGLE_GENAI_HTTP_CLIENT=httpx2.
    use_httpx2 = os.environ.get("GOOGLE_GENAI_HTTP_CLIENT", "").strip().lower() == "httpx2"
    transport = mock.httpx2_transport() if use_httpx2 else mock.httpx_transport()
    kwargs.setdefault("max_retries", 0)
    return ChatGoogleGenerativeAI(
        model=model, api_key="test-google-key", client_args={"transport": transport}, **kwargs
    )
