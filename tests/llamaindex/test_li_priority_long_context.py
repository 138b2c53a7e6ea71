"""LlamaIndex: an OpenAI chat completion served on the priority tier above the long-context threshold
(raw provider response) is billed at the standard long-context price, as OpenAI's priority
processing excludes long context, even when the price data's priority tier is a multiplier."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import RawChatLLM, chat_completion, openai_usage, user

from agentcost_core import PriceCatalog, Usage
from agentcost_llamaindex import instrument

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


def test_priority_above_the_threshold_is_billed_at_standard_long_context() -> None:
    raw = chat_completion("Done.", openai_usage(150_000, 2_000, cached=30_000), model="house-gpt")
    raw["service_tier"] = "priority"
    with instrument("memory://", catalog=PriceCatalog.default().merged(HOUSE)) as handler:
        RawChatLLM(model="house-gpt", text="Done.", raw=raw).chat([user("Urgent.")])
    [event] = handler.events
    assert event.usage == Usage(input=120_000, cache_read=30_000, output=2_000)
    assert event.service_tier == "priority"
    assert event.cost == Decimal("0.516")  # 120,000 x 4 + 30,000 x 0.4 + 2,000 x 12 per 1M
