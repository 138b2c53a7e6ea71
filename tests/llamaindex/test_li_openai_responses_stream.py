"""LlamaIndex: a streamed ``OpenAIResponses`` call (llama-index-llms-openai, the Responses API) is
recorded exactly like the same call not streamed: the usage the provider reports on the stream's
``response.completed`` event (cached and reasoning tokens included), the model it served and the
service tier, never an estimate. The real LLM and the real openai SDK over a mock wire answering
with the documented Responses payloads (``tests/langchain/providers.py``)."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from langchain_providers import load_providers
from li_fakes import openai_responses_llm, user
from llama_index.llms.openai import OpenAIResponses

from agentcost_core import Usage

P = load_providers()
SERVED = "gpt-5-2025-08-07"
# 4,000 input tokens of which 1,000 cached; 2,000 output tokens of which 1,900 reasoning
USAGE = Usage(input=3_000, cache_read=1_000, output=2_000, reasoning=1_900)


def _llm(body) -> OpenAIResponses:
    return openai_responses_llm(P.MockProvider.always(body))


def _whole(tier: str) -> OpenAIResponses:
    return _llm(
        P.openai_responses(SERVED, 4_000, 2_000, cached=1_000, reasoning=1_900, text="Hello", service_tier=tier)
    )


def _streamed(tier: str) -> OpenAIResponses:
    return _llm(
        P.openai_responses_stream(SERVED, ["Hel", "lo"], 4_000, 2_000, cached=1_000, reasoning=1_900, service_tier=tier)
    )


def _same_call(handler) -> None:
    whole, streamed = handler.events
    assert streamed.usage == whole.usage == USAGE
    assert streamed.model == whole.model == SERVED
    assert streamed.requested_model == "gpt-5"
    assert streamed.service_tier == whole.service_tier
    assert streamed.cost == whole.cost and streamed.cost is not None and streamed.cost > 0
    assert not streamed.estimated and not whole.estimated
    assert streamed.extra is None or "usage_error" not in streamed.extra


@pytest.mark.parametrize("tier", ["default", "priority"])
def test_stream_chat_is_recorded_like_chat(handler, tier: str) -> None:
    assert _whole(tier).chat([user("Hi.")]).message.content == "Hello"
    chunks = list(_streamed(tier).stream_chat([user("Hi.")]))
    assert "".join(c.delta or "" for c in chunks) == "Hello"
    _same_call(handler)
    assert (handler.events[1].service_tier == "priority") is (tier == "priority")


def test_stream_complete_is_recorded_like_complete(handler) -> None:
    assert _whole("priority").complete("Hi.").text == "Hello"
    assert list(_streamed("priority").stream_complete("Hi."))[-1].text == "Hello"
    _same_call(handler)


async def test_astream_chat_is_recorded_like_achat(handler) -> None:
    assert (await _whole("priority").achat([user("Hi.")])).message.content == "Hello"
    chunks = [c async for c in await _streamed("priority").astream_chat([user("Hi.")])]
    assert "".join(c.delta or "" for c in chunks) == "Hello"
    _same_call(handler)


async def test_astream_complete_is_recorded_like_acomplete(handler) -> None:
    assert (await _whole("priority").acomplete("Hi.")).text == "Hello"
    assert [c async for c in await _streamed("priority").astream_complete("Hi.")][-1].text == "Hello"
    _same_call(handler)
