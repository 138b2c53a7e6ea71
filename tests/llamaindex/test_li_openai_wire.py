"""The real llama-index-llms-openai ``OpenAI`` LLM and the real openai SDK, over httpx.MockTransport."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from agentcost_core import Usage  # noqa: E402
from li_fakes import OPENAI_DATED, OpenAIServer, catalog_entry, expected_cost, openai_usage, price, user  # noqa: E402
from llama_index.llms.openai import OpenAI  # noqa: E402

# prompt 100 of which 40 cached; completion 50 of which 10 reasoning
USAGE = Usage(input=60, cache_read=40, output=50, reasoning=10)


def _llm(server: OpenAIServer, **kwargs) -> OpenAI:
    sync_client, async_client = server.clients()
    return OpenAI(
        model="gpt-4o-mini",
        api_key="sk-test",
        http_client=sync_client,
        async_http_client=async_client,
        max_retries=0,
        additional_kwargs={"stream_options": {"include_usage": True}},
        **kwargs,
    )


def _expected() -> Decimal:
    return expected_cost("gpt-4o-mini", input=60, cache_read=40, output=50)


def test_expected_cost_is_the_hand_computation() -> None:
    by_hand = (
        Decimal(60) * price("gpt-4o-mini", "input")
        + Decimal(40) * price("gpt-4o-mini", "cache_read")
        + Decimal(50) * price("gpt-4o-mini", "output")
    ) / Decimal(1_000_000)
    assert _expected() == by_hand
    assert by_hand > 0


def _check_one(handler, server: OpenAIServer) -> None:
    assert len(handler.events) == 1, [e.span_id for e in handler.events]
    e = handler.events[0]
    assert e.model == OPENAI_DATED
    assert e.requested_model == "gpt-4o-mini"
    assert e.usage == USAGE
    assert e.usage.cache_read == 40 and e.usage.reasoning == 10 and e.usage.input == 60
    assert e.cost == _expected()
    assert e.priced and not e.estimated and e.error is None
    assert e.provider == "openai"
    assert e.framework == "llamaindex"
    assert e.latency_s is not None and e.latency_s >= 0
    assert handler.total_cost == _expected()
    assert handler.usage_by_model == {OPENAI_DATED: USAGE}
    assert len(server.requests) == 1
    handler.flush()
    stored = handler.ledger.events()
    assert [s.id for s in stored] == [e.id]
    assert stored[0].cost == _expected()


def test_chat(handler) -> None:
    server = OpenAIServer()
    resp = _llm(server).chat([user("Say hello")])
    assert resp.message.content == "Hello there!"
    _check_one(handler, server)
    assert "stream_options" not in server.requests[0]  # the integration drops it when not streaming


async def test_achat(handler) -> None:
    server = OpenAIServer()
    resp = await _llm(server).achat([user("Say hello")])
    assert resp.message.content == "Hello there!"
    _check_one(handler, server)


def test_complete(handler) -> None:
    server = OpenAIServer()
    resp = _llm(server).complete("Say hello")
    assert resp.text == "Hello there!"
    _check_one(handler, server)


def test_stream_chat_usage_from_last_chunk(handler) -> None:
    server = OpenAIServer()
    text = "".join(r.delta or "" for r in _llm(server).stream_chat([user("Say hello")]))
    assert text == "Hello there!"
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    _check_one(handler, server)


async def test_astream_chat_usage_from_last_chunk(handler) -> None:
    server = OpenAIServer()
    gen = await _llm(server).astream_chat([user("Say hello")])
    text = "".join([r.delta or "" async for r in gen])
    assert text == "Hello there!"
    _check_one(handler, server)


async def test_astream_complete(handler) -> None:
    server = OpenAIServer()
    gen = await _llm(server).astream_complete("Say hello")
    chunks = [r async for r in gen]
    assert chunks[-1].text == "Hello there!"
    _check_one(handler, server)


def test_stream_without_include_usage_is_estimated(handler) -> None:
    server = OpenAIServer(stream_usage=False)
    llm = _llm(server)
    llm.additional_kwargs = {}
    list(llm.stream_chat([user("Say hello")]))
    assert "stream_options" not in server.requests[0]
    [e] = handler.events
    assert e.estimated and e.model == OPENAI_DATED
    # "Say hello" + chat framing, and "Hello there!" (3 tokens with o200k_base)
    assert e.usage.input > 0 and e.usage.output == 3
    assert e.cost == expected_cost("gpt-4o-mini", input=e.usage.input, output=3)


def test_service_tier_priority_is_priced_at_priority_rates(handler) -> None:
    server = OpenAIServer(usage=openai_usage(1000, 100, cached=200))

    def priority(request: httpx.Request) -> httpx.Response:
        body = json.loads(server(request).content)
        body["service_tier"] = "priority"
        return httpx.Response(200, json=body)

    llm = OpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0,
                 http_client=httpx.Client(transport=httpx.MockTransport(priority)))
    llm.chat([user("hi")])
    [e] = handler.events
    assert e.service_tier == "priority"
    tier = catalog_entry("gpt-4o-mini")["service_tiers"]["priority"]
    by_hand = (Decimal(800) * Decimal(tier["input"]) + Decimal(200) * Decimal(tier["cache_read"])
               + Decimal(100) * Decimal(tier["output"])) / Decimal(1_000_000)
    assert e.cost == by_hand
    assert e.cost != expected_cost("gpt-4o-mini", input=800, cache_read=200, output=100)


def test_several_calls_add_up(handler) -> None:
    server = OpenAIServer()
    llm = _llm(server)
    llm.chat([user("one")])
    llm.complete("two")
    list(llm.stream_chat([user("three")]))
    assert len(handler.events) == 3
    assert handler.total_cost == 3 * _expected()
    assert handler.usage_by_model[OPENAI_DATED] == USAGE + USAGE + USAGE
    assert not handler.table.calls and not handler.table.parents and not handler.table.streams
