"""The real ``ChatAnthropic`` over a mock wire returning a response whose ``usage.iterations``
itemises a compaction, sampling iterations and an advisor call on another model: LangChain's
``usage_metadata`` has the top-level counts only; the event is billed from the iterations."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("langchain_anthropic")
pytest.importorskip("httpx2")

import anthropic_iterations as AI
from langchain_providers import load_providers

from agentcost_core import Usage
from agentcost_langchain import AsyncCostCallbackHandler, CostCallbackHandler

P = load_providers()


def _check(handler) -> None:
    [event] = handler.events
    assert event.error is None and event.priced and not event.estimated
    assert event.model == AI.MODEL
    assert event.usage == Usage(**AI.SUM)
    assert event.cost == AI.COST
    assert [row["cost"] for row in event.extra["iterations"]] == AI.ITERATION_COSTS
    assert event.extra["iterations"][2]["model"] == AI.ADVISOR


def test_chat_anthropic_bills_the_sum_of_iterations() -> None:
    mock = P.MockProvider.always(AI.message())
    handler = CostCallbackHandler("memory://")
    out = P.chat_anthropic(mock, AI.MODEL).invoke("Keep going.", config={"callbacks": [handler]})
    assert out.content == "Summary written."
    # what LangChain itself reports: the last iteration only
    assert out.usage_metadata["input_tokens"] == 2_000 + 10_000 + 1_000
    _check(handler)
    assert AI.COST - AI.TOP_LEVEL_ONLY_COST > Decimal("0.2")


async def test_chat_anthropic_async_bills_the_sum_of_iterations() -> None:
    mock = P.MockProvider.always(AI.message())
    handler = AsyncCostCallbackHandler("memory://")
    await P.chat_anthropic(mock, AI.MODEL).ainvoke("Keep going.", config={"callbacks": [handler]})
    _check(handler)
