"""LlamaIndex: an OpenAI Responses payload in ``ChatResponse.raw`` whose cache writes are split by
retention is billed at each retention's write rate."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import RawChatLLM, user

from agentcost_core import Usage

MODEL = "gpt-5.6-sol"
RAW = {
    "id": "resp_mock01",
    "object": "response",
    "model": MODEL,
    "status": "completed",
    "usage": {
        "input_tokens": 10_000,
        "input_tokens_details": {
            "cached_tokens": 2_000,
            "cache_write_tokens": 5_000,
            "cache_write_tokens_details": {"in_memory": 1_000, "24h": 4_000},
        },
        "output_tokens": 100,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10_100,
    },
}


def test_retention_split_priced_at_each_rate(handler) -> None:
    RawChatLLM(model=MODEL, text="ok", raw=RAW).chat([user("Hi.")])
    [event] = handler.events
    assert event.usage == Usage(input=3_000, cache_read=2_000, cache_write_5m=1_000, cache_write_1h=4_000, output=100)
    # 3,000 x 4 + 2,000 x 0.4 + 1,000 x 5 (short) + 4,000 x 10 (24h) + 100 x 20 = 59,800 per 1M
    assert event.cost == Decimal("0.0598")
