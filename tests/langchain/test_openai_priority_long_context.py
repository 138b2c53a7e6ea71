"""The real ``ChatOpenAI`` (mock wire) served on the priority tier above the long-context threshold,
priced by price data whose priority tier is a multiplier: billed at the standard long-context price
(OpenAI's priority processing excludes long context)."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("langchain_openai")
pytest.importorskip("httpx")

from langchain_providers import load_providers

from agentcost_core import PriceCatalog, Usage
from agentcost_langchain import CostCallbackHandler

P = load_providers()
M = Decimal(1_000_000)
HOUSE = {
    "house-gpt": {
        "provider": "openai",
        "input": "2",
        "output": "8",
        "cache_read": "0.2",
        "long_context": {"threshold": 100_000, "input": "4", "output": "12", "cache_read": "0.4"},
        "service_tiers": {"priority": "2"},
    }
}


def _invoke(prompt: int, cached: int, completion: int):
    mock = P.MockProvider.always(
        P.openai_chat_completion("house-gpt", prompt, completion, cached=cached, service_tier="priority")
    )
    handler = CostCallbackHandler("memory://", catalog=PriceCatalog.default().merged(HOUSE))
    P.chat_openai(mock, "house-gpt", service_tier="priority").invoke("Urgent.", config={"callbacks": [handler]})
    [event] = handler.events
    return event


def test_priority_above_the_threshold_is_billed_at_standard_long_context() -> None:
    event = _invoke(150_000, 30_000, 2_000)
    assert event.usage == Usage(input=120_000, cache_read=30_000, output=2_000)
    assert event.service_tier == "priority"
    assert event.cost == (120_000 * Decimal(4) + 30_000 * Decimal("0.4") + 2_000 * Decimal(12)) / M
    assert event.cost == Decimal("0.516")


def test_priority_below_the_threshold_keeps_the_priority_factor() -> None:
    event = _invoke(50_000, 10_000, 1_000)
    assert event.cost == 2 * (40_000 * Decimal(2) + 10_000 * Decimal("0.2") + 1_000 * Decimal(8)) / M
