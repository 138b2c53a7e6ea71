"""Server-side tool requests (Anthropic's web search, OpenAI Responses' web_search tool) are billed
per request on top of the tokens. The real ``ChatAnthropic`` / ``ChatOpenAI`` over the real SDKs and
a mock wire answering with the documented payloads: the event lists the requests in
``extra["server_tool_requests"]``; a fee the price data carries (web search: $10 per 1,000) is in
``cost`` and in its ``server_tools`` part; a request without a fee in the price data is flagged in
``extra["server_tools_unpriced"]`` with a warning, never silently left out."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

pytest.importorskip("langchain_core")

from langchain_providers import load_providers

from agentcost_langchain import AsyncCostCallbackHandler, CostCallbackHandler

P = load_providers()
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
M = Decimal(10**6)  # prices are USD per 1M tokens
SEARCH = Decimal("0.01")  # USD per web search: $10 per 1,000 (Anthropic and OpenAI)
SONNET = "claude-sonnet-4-5-20250929"
GPT5 = "gpt-5-2025-08-07"


def _one(handler):
    [event] = handler.events
    assert not event.estimated and event.error is None
    return event


def _parts(handler, event) -> dict[str, Decimal]:
    parts = handler.recorder.accountant.cost_parts(event)
    assert parts is not None
    assert sum(v for k, v in parts.items() if k != "reasoning") == event.cost
    return parts


def test_anthropic_web_searches_are_counted_and_priced():
    h = CostCallbackHandler("memory://")
    body = P.anthropic_message(SONNET, 1000, 400, server_tool_use={"web_search_requests": 3})
    P.chat_anthropic(P.MockProvider.always(body), "claude-sonnet-4-5").invoke("News?", config={"callbacks": [h]})
    event = _one(h)
    assert event.extra["server_tool_requests"] == {"web_search": 3}
    assert "server_tools_unpriced" not in event.extra
    # 1,000 x $3 + 400 x $15 per 1M tokens, plus 3 searches x $0.01: Anthropic bills $0.039
    assert event.cost == (1000 * Decimal(3) + 400 * Decimal(15)) / M + 3 * SEARCH == Decimal("0.039")
    assert _parts(h, event)["server_tools"] == Decimal("0.03")
    assert h.total_cost == Decimal("0.039")
    # the same call without server tools: the token price only, and no such extra
    plain = P.anthropic_message(SONNET, 1000, 400)
    P.chat_anthropic(P.MockProvider.always(plain), "claude-sonnet-4-5").invoke("Hi", config={"callbacks": [h]})
    event = h.events[1]
    assert event.cost == Decimal("0.009") and "server_tool_requests" not in (event.extra or {})
    assert "server_tools" not in _parts(h, event)


async def test_anthropic_async_web_searches_are_counted_and_priced():
    h = AsyncCostCallbackHandler("memory://")
    body = P.anthropic_message(SONNET, 1000, 400, server_tool_use={"web_search_requests": 2})
    await P.chat_anthropic(P.MockProvider.always(body), "claude-sonnet-4-5").ainvoke("News?", config={"callbacks": [h]})
    event = _one(h)
    assert event.extra["server_tool_requests"] == {"web_search": 2}
    assert event.cost == Decimal("0.009") + 2 * SEARCH


def test_anthropic_request_without_a_fee_in_the_price_data_is_flagged_with_a_warning(caplog):
    h = CostCallbackHandler("memory://")
    body = P.anthropic_message(
        "claude-haiku-4-5-20251001", 1000, 100, server_tool_use={"web_search_requests": 1, "web_fetch_requests": 2}
    )
    with caplog.at_level(logging.WARNING, logger="agentcost"):
        for _ in range(2):
            P.chat_anthropic(P.MockProvider.always(body), "claude-haiku-4-5").invoke("Read", config={"callbacks": [h]})
    first, second = h.events
    for event in (first, second):
        assert event.extra["server_tool_requests"] == {"web_search": 1, "web_fetch": 2}
        assert event.extra["server_tools_unpriced"] == ["web_fetch"]
        # 1,000 x $1 + 100 x $5 per 1M tokens, plus the one priced search
        assert event.cost == (1000 * Decimal(1) + 100 * Decimal(5)) / M + SEARCH
    warnings = [r.getMessage() for r in caplog.records if "web_fetch" in r.getMessage()]
    assert len(warnings) == 1 and "NOT in the recorded cost" in warnings[0]


@pytest.mark.parametrize("output_version", [None, "responses/v1", "v1"])
def test_openai_responses_web_search_calls_are_counted_and_priced(output_version):
    h = CostCallbackHandler("memory://")
    kwargs = {"output_version": output_version} if output_version else {}
    mock = P.MockProvider.always(P.openai_responses(GPT5, 1000, 200, web_searches=2))
    P.chat_openai(mock, "gpt-5", use_responses_api=True, **kwargs).invoke("News?", config={"callbacks": [h]})
    event = _one(h)
    assert event.model == GPT5
    assert event.extra["server_tool_requests"] == {"web_search": 2}
    # 1,000 x $1.25 + 200 x $10 per 1M tokens, plus 2 searches x $0.01
    assert event.cost == (1000 * Decimal("1.25") + 200 * Decimal(10)) / M + 2 * SEARCH == Decimal("0.02325")
    assert _parts(h, event)["server_tools"] == 2 * SEARCH


def test_openai_responses_stream_web_search_calls_are_counted_and_priced():
    h = CostCallbackHandler("memory://")
    mock = P.MockProvider.always(P.openai_responses_stream(GPT5, ["Sun", "ny"], 1000, 200, web_searches=3))
    chunks = list(P.chat_openai(mock, "gpt-5", use_responses_api=True).stream("News?", config={"callbacks": [h]}))
    assert chunks
    event = _one(h)
    assert event.extra["server_tool_requests"] == {"web_search": 3}
    assert event.cost == Decimal("0.00325") + 3 * SEARCH


def test_the_budget_middleware_settles_the_web_search_fees_like_the_ledger():
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from agentcost_core import Budget, Ledger
    from agentcost_langchain.middleware import BudgetMiddleware

    body = P.anthropic_message(SONNET, 1000, 400, server_tool_use={"web_search_requests": 3})
    model = P.chat_anthropic(P.MockProvider.always(body), "claude-sonnet-4-5", max_tokens=500)
    budget = Budget(usd=Decimal("10"), per="global_day")
    agent = create_agent(model, tools=[], middleware=[BudgetMiddleware(budget, ledger=Ledger("memory://", sync=True))])
    h = CostCallbackHandler("memory://")
    agent.invoke({"messages": [HumanMessage("News?")]}, config={"callbacks": [h]})
    status = budget.status()
    assert status.held == 0 and status.spent == _one(h).cost == Decimal("0.039")  # tokens and the 3 searches
