"""An explicit 0 in LiteLLM's price file is a price (free), never a missing value."""

from __future__ import annotations

from decimal import Decimal

from agentcost_core import PriceCatalog, Usage

M = 1_000_000


def _entry(**prices):
    return {
        "free-cache": {
            "litellm_provider": "house",
            "mode": "chat",
            "input_cost_per_token": 3e-06,
            "output_cost_per_token": 1.5e-05,
            **prices,
        }
    }


def test_litellm_explicit_zero_cache_prices_stay_zero():
    catalog = PriceCatalog.from_litellm(
        _entry(
            cache_read_input_token_cost=0,
            cache_creation_input_token_cost=3.75e-06,
            cache_creation_input_token_cost_above_1hr=0,
        )
    )
    base = catalog.get("free-cache").base
    assert base.cache_read == 0 and base.cache_write_1h == 0
    assert base.cache_write_5m == Decimal("3.75")
    only_cached = Usage(cache_read=M, cache_write_1h=M)
    assert catalog.cost("free-cache", only_cached) == 0


def test_litellm_explicit_zero_long_context_prices_stay_zero():
    catalog = PriceCatalog.from_litellm(
        _entry(
            cache_read_input_token_cost=3e-07,
            cache_creation_input_token_cost=3.75e-06,
            input_cost_per_token_above_200k_tokens=6e-06,
            output_cost_per_token_above_200k_tokens=0,
            cache_read_input_token_cost_above_200k_tokens=0,
            cache_creation_input_token_cost_above_200k_tokens=0,
        )
    )
    long = catalog.get("free-cache").long_context
    assert long.input == Decimal("6") and long.output == 0
    assert long.cache_read == 0 and long.cache_write_5m == 0


def test_litellm_missing_prices_still_fall_back_to_the_input_price():
    catalog = PriceCatalog.from_litellm(_entry(cache_creation_input_token_cost=3.75e-06))
    base = catalog.get("free-cache").base
    assert base.cache_read == Decimal("3") and base.cache_write_1h == Decimal("3.75")
