"""Input limits: absurd prices, NaN / infinite budget values and the token memo's memory."""

from __future__ import annotations

import gc
import json
import math
import time
import tracemalloc
from decimal import Decimal

import pytest

from agentcost_core import Budget, ChatMessage, ConfigurationError, PriceCatalog, PriceFileError, TokenCounter, Usage
from agentcost_core.routing.policy import LatencyPreference


@pytest.mark.parametrize("price", ["1e-60000", "1e60000", "0E-60000", "0E+60000", "1e-31", "1" + "0" * 200])
def test_an_absurd_price_is_refused_at_once(price):
    started = time.perf_counter()
    with pytest.raises(PriceFileError, match=r"models\['m'\]\.input"):
        PriceCatalog.from_dict({"m": {"input": price, "output": "1", "provider": "x"}})
    assert time.perf_counter() - started < 1.0  # "1e-60000" used to take minutes


def test_a_price_above_a_million_dollars_per_million_tokens_is_refused():
    with pytest.raises(PriceFileError, match=r"models\['m'\]\.output: price '1000001' is out of range"):
        PriceCatalog.from_dict({"m": {"input": "1", "output": "1000001", "provider": "x"}})


def test_an_absurd_litellm_price_is_refused(tmp_path):
    path = tmp_path / "litellm.json"
    entry = {"input_cost_per_token": "1e-60000", "output_cost_per_token": 1e-5, "litellm_provider": "openai"}
    path.write_text(json.dumps({"m": {**entry, "mode": "chat"}}))
    with pytest.raises(
        PriceFileError, match=r"input_cost_per_token \(USD per token\): price '1e-60000' is out of range"
    ):
        PriceCatalog.from_file(path)


def test_prices_at_the_limits_still_price_exactly():
    c = PriceCatalog.from_dict({"m": {"input": "1e-30", "output": "1000000", "provider": "x"}})
    assert c.cost("m", Usage(input=1, output=1)) == Decimal("1.000000000000000000000000000000000001")
    assert PriceCatalog.default().cost("gpt-4o", Usage(input=10**6)) > 0  # the shipped catalog loads


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, -1])
def test_budget_seconds_must_be_finite(seconds):
    with pytest.raises(ConfigurationError, match="seconds= must be a finite number >= 0"):
        Budget(seconds=seconds)


def test_budget_values_that_are_not_finite_are_refused():
    for bad in (math.nan, math.inf):
        with pytest.raises(ConfigurationError):
            Budget(usd="NaN")
        with pytest.raises(ConfigurationError):
            Budget(usd="Infinity")
        with pytest.raises(ConfigurationError):
            Budget(tokens=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            Budget(usd="1", warn_at=bad)
    assert Budget(seconds=0.5).seconds == 0.5


@pytest.mark.parametrize("score", [math.nan, math.inf])
def test_router_latency_threshold_must_be_finite(score):
    with pytest.raises(ConfigurationError, match="keep_above must be a finite score"):
        LatencyPreference("nano", keep_above=score)


def test_the_token_memo_keeps_no_message_text():
    counter = TokenCounter("gpt-4o")
    counter.count_messages([ChatMessage("user", "warm up")])
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        texts = [f"{i:06d} " + "y" * 2000 for i in range(2_000)]  # ~4 MB of prompts
        first = counter.count_messages(ChatMessage("user", t) for t in texts)
        del texts
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1_000_000  # the memo holds digests and counts, not the 4 MB of prompts
    again = counter.count_messages(ChatMessage("user", f"{i:06d} " + "y" * 2000) for i in range(2_000))
    assert again == first  # and still answers from it


def test_a_small_memo_stays_correct_when_it_fills():
    counter = TokenCounter("gpt-4o", memo_size=8)
    messages = [ChatMessage("user", f"message number {i} " * (i % 7 + 1)) for i in range(50)]
    expected = [TokenCounter("gpt-4o").message_tokens(m) for m in messages]
    assert [counter.message_tokens(m) for m in messages] == expected
    assert [counter.message_tokens(m) for m in reversed(messages)] == expected[::-1]
    with pytest.raises(ValueError, match="memo_size"):
        TokenCounter("gpt-4o", memo_size=0)
