"""LlamaIndex: server-side tool requests are billed per request on top of the tokens. The real
``OpenAIResponses`` LLM (llama-index-llms-openai) and the real openai SDK over a mock wire answering
with a documented Responses payload whose output holds ``web_search_call`` items, whole and
streamed; and an Anthropic Messages response with ``usage.server_tool_use`` as
llama-index-llms-anthropic keeps it in ``raw`` (``dict(message)`` of the SDK's ``Message``). The
event lists the requests in ``extra["server_tool_requests"]`` and its cost includes the web-search
fee of the price data ($10 per 1,000)."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from langchain_providers import load_providers
from li_fakes import RawChatLLM, openai_responses_llm, user
from llama_index.llms.openai import OpenAIResponses

P = load_providers()
M = Decimal(10**6)
SEARCH = Decimal("0.01")
GPT5 = "gpt-5-2025-08-07"
TOKENS = (1000 * Decimal("1.25") + 200 * Decimal(10)) / M  # gpt-5: $1.25 in, $10 out per 1M tokens


def _responses(body) -> OpenAIResponses:
    return openai_responses_llm(P.MockProvider.always(body))


def _check(handler, searches: int) -> None:
    [event] = handler.events
    assert event.model == GPT5 and not event.estimated
    assert event.extra["server_tool_requests"] == {"web_search": searches}
    assert event.cost == TOKENS + searches * SEARCH


def test_responses_chat_web_search_calls(handler) -> None:
    _responses(P.openai_responses(GPT5, 1000, 200, web_searches=2)).chat([user("News?")])
    _check(handler, 2)


def test_responses_stream_chat_web_search_calls(handler) -> None:
    llm = _responses(P.openai_responses_stream(GPT5, ["a", "b"], 1000, 200, web_searches=2))
    list(llm.stream_chat([user("News?")]))
    _check(handler, 2)


async def test_responses_astream_chat_web_search_calls(handler) -> None:
    llm = _responses(P.openai_responses_stream(GPT5, ["a", "b"], 1000, 200, web_searches=3))
    [c async for c in await llm.astream_chat([user("News?")])]
    _check(handler, 3)


def test_anthropic_server_tool_use_in_raw(handler) -> None:
    anthropic = pytest.importorskip("anthropic")
    uses = {"web_search_requests": 3, "web_fetch_requests": 0}
    body = P.anthropic_message("claude-sonnet-4-5-20250929", 1000, 400, server_tool_use=uses)
    raw = dict(anthropic.types.Message.model_validate(body))  # what llama-index-llms-anthropic stores
    RawChatLLM(model="claude-sonnet-4-5", raw=raw).chat([user("News?")])
    [event] = handler.events
    assert event.extra["server_tool_requests"] == {"web_search": 3}
    assert event.cost == (1000 * Decimal(3) + 400 * Decimal(15)) / M + 3 * SEARCH == Decimal("0.039")
