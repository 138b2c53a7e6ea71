"""OpenAI priority processing "excludes long context" (https://openai.com/api-priority-processing/):
a priority request above the model's long-context threshold is billed at the STANDARD long-context
price, not long context x the priority factor, whatever the price data's shape."""

from __future__ import annotations

from decimal import Decimal

from agentcost_core import ModelPrice, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome

M = Decimal(1_000_000)
ENTRY = {
    "input": "2",
    "output": "8",
    "cache_read": "0.2",
    "long_context": {"threshold": 1000, "input": "4", "output": "12", "cache_read": "0.4"},
    "service_tiers": {"priority": "2", "flex": "0.5"},
}
LONG = Usage(input=1_500, cache_read=500, output=100)  # 2,000 prompt tokens: above the threshold
SHORT = Usage(input=600, cache_read=200, output=100)


def test_openai_priority_above_the_threshold_is_standard_long_context() -> None:
    price = ModelPrice.parse("house-gpt", {**ENTRY, "provider": "openai"}, "test")
    assert price.cost(LONG, "priority") == (1_500 * Decimal(4) + 500 * Decimal("0.4") + 100 * Decimal(12)) / M
    assert price.cost(LONG, "priority") == price.cost(LONG)
    # below the threshold the priority factor applies; other tiers keep long context x their factor
    assert price.cost(SHORT, "priority") == 2 * (600 * Decimal(2) + 200 * Decimal("0.2") + 100 * Decimal(8)) / M
    assert price.cost(LONG, "flex") == price.cost(LONG) / 2


def test_other_providers_keep_long_context_times_the_tier_factor() -> None:
    price = ModelPrice.parse("house-gemini", {**ENTRY, "provider": "google"}, "test")
    assert price.cost(LONG, "priority") == 2 * price.cost(LONG)


def test_packaged_gpt_5_5_priority_long_context_call() -> None:
    acc = Accountant()
    price = acc.price("gpt-5.5")
    lc = price.long_context
    assert (lc.input, lc.cache_read, lc.output) == (Decimal(10), Decimal(1), Decimal(45))
    assert price.long_context_threshold == 272_000
    usage = Usage(input=250_000, cache_read=50_000, output=10_000)
    event, _ = acc.event(ModelCall("gpt-5.5"), Outcome(usage=usage, model="gpt-5.5", service_tier="priority", text="x"))
    # 250,000 x 10 + 50,000 x 1 + 10,000 x 45 = 3,000,000 per 1M: $3 (x 2.5 priority would be $7.50)
    assert event.service_tier == "priority"
    assert event.cost == Decimal(3)
