"""OpenAI cache writes split by retention (``cache_write_tokens_details``): the extended (24h)
retention part is billed at the extended-retention write rate (``cache_write_1h``), the rest at
the short-retention rate (``cache_write_5m``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentcost_core import Usage, UsageFormatError
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.parsers import from_chat_completions, from_raw, from_responses

MODEL = "gpt-5.6-sol"


def responses_usage(**details: int) -> dict:
    return {
        "input_tokens": 10_000,
        "input_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 5_000, **details},
        "output_tokens": 100,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10_100,
    }


SPLIT = {"cache_write_tokens_details": {"in_memory": 1_000, "24h": 4_000}}


def test_responses_retention_split_maps_onto_the_write_buckets() -> None:
    usage = from_responses(responses_usage(**SPLIT))
    assert usage == Usage(input=3_000, cache_read=2_000, cache_write_5m=1_000, cache_write_1h=4_000, output=100)
    # without the split every write is short retention
    assert from_responses(responses_usage()) == Usage(input=3_000, cache_read=2_000, cache_write_5m=5_000, output=100)


def test_each_retention_priced_at_its_rate() -> None:
    acc = Accountant()
    base = acc.price(MODEL).base
    assert (base.input, base.cache_read, base.cache_write_5m, base.cache_write_1h, base.output) == (
        Decimal(4), Decimal("0.4"), Decimal(5), Decimal(10), Decimal(20),
    )  # fmt: skip
    raw = {"object": "response", "model": MODEL, "usage": responses_usage(**SPLIT)}
    usage, model, _tier, _provider = from_raw(raw)
    event, _ = acc.event(ModelCall(MODEL), Outcome(usage=usage, model=model, text="ok"))
    # 3,000 x 4 + 2,000 x 0.4 + 1,000 x 5 + 4,000 x 10 + 100 x 20 = 59,800 per 1M
    assert event.cost == Decimal("0.0598")
    unsplit, _ = acc.event(ModelCall(MODEL), Outcome(usage=from_responses(responses_usage()), model=MODEL, text="ok"))
    assert unsplit.cost == Decimal("0.0398")  # what dropping the split bills: 33% under


def test_split_without_a_total_and_in_chat_completions() -> None:
    usage = from_responses({**responses_usage(), "input_tokens_details": {"cached_tokens": 2_000, **SPLIT}})
    assert (usage.cache_write_5m, usage.cache_write_1h, usage.input) == (1_000, 4_000, 3_000)
    chat = from_chat_completions({
        "prompt_tokens": 10_000,
        "completion_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 5_000, **SPLIT},
    })  # fmt: skip
    assert chat == usage


def test_a_long_part_above_the_total_is_malformed() -> None:
    bad = responses_usage(cache_write_tokens_details={"24h": 6_000})
    with pytest.raises(UsageFormatError, match="cache_write_tokens_details"):
        from_responses(bad)
