"""Anthropic usage as llama-index-llms-anthropic stores it: the Messages API dict in ``ChatResponse.raw``.

Anthropic's ``input_tokens`` excludes cache reads and cache writes; writes may be split by TTL.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("llama_index.core")

from agentcost_core import Usage  # noqa: E402
from li_fakes import (  # noqa: E402
    ANTHROPIC_DATED,
    RawChatLLM,
    anthropic_message,
    expected_cost,
    long_context_threshold,
    price,
    user,
)

MODEL = "claude-sonnet-4-5"


def _llm(**usage: int) -> RawChatLLM:
    text = "Paris is the capital."
    return RawChatLLM(model=MODEL, text=text, raw=anthropic_message(text, **usage))


def test_cache_read_and_both_cache_write_ttls(handler) -> None:
    llm = _llm(input_tokens=1000, output_tokens=500, cache_read=5000, write_5m=2000, write_1h=1000)
    llm.chat([user("Capital of France?")])
    [e] = handler.events
    assert e.usage == Usage(input=1000, cache_read=5000, cache_write_5m=2000, cache_write_1h=1000, output=500)
    by_hand = (
        Decimal(1000) * price(MODEL, "input")
        + Decimal(5000) * price(MODEL, "cache_read")
        + Decimal(2000) * price(MODEL, "cache_write_5m")
        + Decimal(1000) * price(MODEL, "cache_write_1h")
        + Decimal(500) * price(MODEL, "output")
    ) / Decimal(1_000_000)
    assert e.cost == by_hand
    # the 1h write is dearer than the 5m write: a parser that lumps them together gets a different cost
    assert e.cost != expected_cost(MODEL, input=1000, cache_read=5000, cache_write_5m=3000, output=500)
    assert e.model == ANTHROPIC_DATED
    assert e.requested_model == MODEL
    assert e.provider == "anthropic"
    assert not e.estimated and e.priced


def test_cache_creation_without_ttl_split_is_5m() -> None:
    from agentcost_core.parsers import from_chat_response
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse

    raw = anthropic_message("x", input_tokens=10, output_tokens=5, write_5m=300)
    del raw["usage"]["cache_creation"]
    found = from_chat_response(ChatResponse(message=ChatMessage(role="assistant", content="x"), raw=raw))
    assert found.usage == Usage(input=10, cache_write_5m=300, output=5)


def test_long_context_reprices_the_whole_request(handler) -> None:
    threshold = long_context_threshold(MODEL)
    # 150k fresh + 60k cached = 210k prompt tokens: above the threshold although input_tokens alone is not
    llm = _llm(input_tokens=150_000, output_tokens=2_000, cache_read=threshold - 140_000)
    llm.chat([user("Summarize the attached corpus.")])
    [e] = handler.events
    assert e.usage.prompt_tokens > threshold > e.usage.input
    long_cost = expected_cost(MODEL, long_context=True, input=150_000, cache_read=threshold - 140_000, output=2_000)
    base_cost = expected_cost(MODEL, input=150_000, cache_read=threshold - 140_000, output=2_000)
    assert e.cost == long_cost
    assert long_cost > base_cost
    # output is repriced too, not only input
    assert price(MODEL, "output", long_context=True) > price(MODEL, "output")


def test_exactly_at_the_threshold_is_base_price(handler) -> None:
    threshold = long_context_threshold(MODEL)
    _llm(input_tokens=threshold - 1000, output_tokens=100, cache_read=1000).chat([user("q")])
    [e] = handler.events
    assert e.usage.prompt_tokens == threshold
    assert e.cost == expected_cost(MODEL, input=threshold - 1000, cache_read=1000, output=100)


async def test_achat_and_streams(handler) -> None:
    llm = _llm(input_tokens=20, output_tokens=7, cache_read=100)
    llm.chunk_raw = {"type": "content_block_delta"}  # intermediate chunks carry no usage
    await llm.achat([user("q")])
    list(llm.stream_chat([user("q")]))
    [c async for c in await llm.astream_chat([user("q")])]
    assert len(handler.events) == 3
    cost = expected_cost(MODEL, input=20, cache_read=100, output=7)
    assert [e.cost for e in handler.events] == [cost, cost, cost]
    assert all(e.model == ANTHROPIC_DATED and not e.estimated for e in handler.events)
    assert handler.total_cost == 3 * cost
