"""A user's price entry for a model the catalog knows is merged on top of the catalog's price: the
fields it gives replace those fields, the others (cache prices, service tiers, long context,
max_output, provider, source) are kept, and prices derived from a changed price keep their ratio
to it. Through ``merged()``, ``AGENTCOST_PRICES`` and a LiteLLM import."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agentcost_core import PriceCatalog, PriceFileError, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome

M = 1_000_000
MINE = {"models": {"gpt-4o": {"input": "2", "output": "8"}}}  # the catalog's gpt-4o: $2.50 / $10


@pytest.fixture(scope="module")
def packaged() -> PriceCatalog:
    return PriceCatalog.default()


def test_a_user_price_for_gpt_4o_keeps_its_cache_tiers_max_output_and_provider(packaged) -> None:
    below = packaged.get("gpt-4o")
    mine = packaged.merged(MINE).get("gpt-4o-2024-08-06")
    assert (mine.base.input, mine.base.output) == (Decimal(2), Decimal(8))
    assert mine.provider == "openai" and mine.max_output == below.max_output == 16_384
    assert sorted(mine.tiers) == sorted(below.tiers) and "priority" in mine.tiers
    # derived prices keep their ratio to the price they derive from: cache read stays half the input
    # price, priority stays 1.7x (input and output), batch half
    assert mine.base.cache_read == below.base.cache_read * 2 / below.base.input == Decimal(1)
    for tier in mine.tiers:
        assert mine.tiers[tier].input == below.tiers[tier].input * 2 / below.base.input
        assert mine.tiers[tier].output == below.tiers[tier].output * 8 / below.base.output
    assert mine.origin == f"{below.origin} + user"
    assert mine.source.startswith(below.source) and "input, output from <overrides>" in mine.source


def test_cached_tokens_and_priority_calls_are_billed_at_the_merged_prices(packaged) -> None:
    mine = packaged.merged(MINE)
    assert mine.cost("gpt-4o", Usage(input=1000, cache_read=1000)) == Decimal("0.003")  # 1000 x $2 + 1000 x $1
    priority = packaged.get("gpt-4o").tiers["priority"]
    assert (priority.input, priority.output) == (Decimal("4.25"), Decimal(17))
    u = Usage(input=1000, output=1000)
    assert mine.cost("gpt-4o", u, service_tier="priority") == Decimal("0.017")  # $3.40 + $13.60 per 1M
    assert mine.cost("gpt-4o", u) == Decimal("0.010")
    # a budget's worst case of a call without max_tokens still reserves the model's maximum output
    worst = Accountant(mine).worst_case_of("gpt-4o", 1000)
    assert worst.output_tokens == 16_384 and worst.usd == (1000 * 2 + 16_384 * 8) / Decimal(M)


def test_the_fields_a_user_gives_replace_those_fields_only(packaged) -> None:
    pro = packaged.get("gemini-2.5-pro")  # long context above 200k, batch / flex / priority tiers
    mine = packaged.merged({"gemini-2.5-pro": {
        "input": pro.base.input, "output": pro.base.output, "cache_read": "0.1", "max_output": 1000,
        "service_tiers": {"flex": None, "priority": {"input": "3"}},
    }}).get("gemini-2.5-pro")  # fmt: skip
    assert mine.base.cache_read == Decimal("0.1") and mine.max_output == 1000
    assert mine.long_context_threshold == pro.long_context_threshold
    assert (mine.long_context.input, mine.long_context.output) == (pro.long_context.input, pro.long_context.output)
    # the long-context cache read keeps its ratio to the (changed) cache read price
    assert mine.long_context.cache_read == pro.long_context.cache_read * Decimal("0.1") / pro.base.cache_read
    assert "flex" not in mine.tiers and mine.tiers["batch"].input == pro.tiers["batch"].input
    assert mine.tiers["priority"].input == 3 and mine.tiers["priority"].output == pro.tiers["priority"].output
    dropped = packaged.merged({"gemini-2.5-pro": {"input": "1", "output": "8", "long_context": None}})
    assert dropped.get("gemini-2.5-pro").long_context is None


def test_long_context_prices_keep_their_ratio_to_a_changed_standard_price(packaged) -> None:
    pro = packaged.get("gemini-2.5-pro")
    mine = packaged.merged({"gemini-2.5-pro": {"input": pro.base.input / 2, "output": pro.base.output}})
    big = Usage(input=300_000, output=100)
    assert (
        mine.cost("gemini-2.5-pro", big) == (300_000 * pro.long_context.input / 2 + 100 * pro.long_context.output) / M
    )


def test_a_user_price_for_a_model_the_catalog_lacks_stands_alone(packaged) -> None:
    house = packaged.merged({"house-llm": {"input": "0.40", "output": "1.60"}}).get("house-llm")
    assert house.origin == "user" and house.provider == "unknown" and house.tiers == {}
    assert house.base.cache_read == Decimal("0.40") and house.source == "user: <overrides>"


def test_a_merge_that_puts_a_derived_price_out_of_range_fails_at_load(packaged) -> None:
    with pytest.raises(PriceFileError, match=r"models\['gpt-4o'\].*out of range"):
        packaged.merged({"gpt-4o": {"input": "900000", "output": "10"}})  # priority: 1.7 x 900,000


def test_agentcost_prices_file_merges_on_top_of_gpt_4o(tmp_path, monkeypatch) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(MINE))
    monkeypatch.setenv("AGENTCOST_PRICES", str(path))
    monkeypatch.setenv("AGENTCOST_PRICES_WATCH", "0")
    monkeypatch.setattr("agentcost_core.prices.catalog._DEFAULT", None)
    catalog = PriceCatalog.default()
    gpt = catalog.get("gpt-4o")
    assert gpt.provider == "openai" and gpt.max_output == 16_384 and "priority" in gpt.tiers
    assert catalog.cost("gpt-4o", Usage(cache_read=1000)) == Decimal("0.001")  # cached: $1, not $2
    event, _ = Accountant(catalog).event(
        ModelCall("gpt-4o", service_tier="priority"),
        Outcome(usage=Usage(input=1000, output=1000), model="gpt-4o-2024-08-06", service_tier="priority", text="ok"),
    )
    assert event.cost == Decimal("0.017") and event.price_source.endswith(" + user")
    assert f"input, output from {path} (user)" in gpt.source


def test_a_litellm_import_merges_on_top_of_gpt_4o(packaged) -> None:
    lite = PriceCatalog.from_litellm({"gpt-4o": {"litellm_provider": "openai", "input_cost_per_token": 2e-06,
                                                 "output_cost_per_token": 8e-06, "max_output_tokens": 4096}})  # fmt: skip
    assert lite.get("gpt-4o").tiers == {}  # alone: only what the file gives
    gpt = packaged.merged(lite).get("gpt-4o")
    assert gpt.max_output == 4096 and gpt.provider == "openai" and gpt.origin.endswith(" + litellm")
    assert gpt.base.cache_read == 1 and gpt.tiers["priority"].input == Decimal("3.4")


def test_two_user_layers_stack(packaged) -> None:
    first = packaged.merged({"gpt-4o": {"input": "2", "output": "8", "cache_read": "0.5"}})
    both = first.merged({"gpt-4o": {"input": "1", "output": "8"}}).get("gpt-4o")
    assert both.base.cache_read == Decimal("0.25")  # the first layer's cache price, at its ratio to the input
    assert both.origin.endswith(" + user + user") and both.tiers["priority"].input == Decimal("1.7")


def test_a_past_price_of_a_merged_model_keeps_the_users_fields(packaged) -> None:
    mine = packaged.merged(MINE)
    then = mine.at("gpt-4o", 1_700_000_000)
    assert (then.base.input, then.base.output, then.provider) == (Decimal(2), Decimal(8), "openai")


def test_a_users_tool_fees_replace_those_tools_fees_on_a_known_model(packaged) -> None:
    assert packaged.get("gpt-5").tool_fees == {"web_search": Decimal("0.01")}
    fees = {"web_search": "0.025", "file_search": "0.0025"}
    mine = packaged.merged({"gpt-5": {"input": "1.25", "output": "10", "tool_fees": fees}}).get("gpt-5")
    assert mine.tool_fees == {"web_search": Decimal("0.025"), "file_search": Decimal("0.0025")}
    assert mine.tool_cost({"web_search": 2, "file_search": 4}) == (Decimal("0.06"), ())
    assert "input, output, tool_fees from <overrides> (user)" in mine.source
    # a fee for another tool keeps the catalog's web-search fee; null removes a fee
    added = packaged.merged({"gpt-5": {"input": "1.25", "output": "10", "tool_fees": {"file_search": "0.0025"}}})
    assert added.get("gpt-5").tool_fees == {"web_search": Decimal("0.01"), "file_search": Decimal("0.0025")}
    removed = packaged.merged({"gpt-5": {"input": "1.25", "output": "10", "tool_fees": {"web_search": None}}})
    assert removed.get("gpt-5").tool_cost({"web_search": 3}) == (Decimal(0), ("web_search",))
    assert packaged.merged({"gpt-5": {"input": "1", "output": "10", "tool_fees": None}}).get("gpt-5").tool_fees == {}


def test_the_source_names_only_the_fields_that_were_applied(packaged) -> None:
    entry = {"input": "2", "output": "8", "max_output": None, "cache_read": None, "note": "mine", "service_tiers": {}}
    mine = packaged.merged({"gpt-4o": entry}).get("gpt-4o")
    assert mine.source.endswith("; input, output from <overrides> (user)")
    assert mine.max_output == 16_384 and mine.base.cache_read == 1


def test_a_tiers_request_fee_follows_the_users_new_fee() -> None:
    below = PriceCatalog.from_dict({"sonar-x": {
        "input": "1", "output": "1", "request": "0.005",
        "long_context": {"threshold": 1000, "input": "2", "output": "2"},
        "service_tiers": {"batch": "0.5", "pro": {"input": "2", "request": "0.01"}},
    }})  # fmt: skip
    mine = below.merged({"sonar-x": {"input": "1", "output": "1", "request": "0.008"}}).get("sonar-x")
    assert mine.base.request == Decimal("0.008")
    # the batch tier and the long-context prices had the standard fee: they get the new one; the pro
    # tier's fee was twice the standard fee and stays twice it
    assert mine.tiers["batch"].request == mine.long_context.request == Decimal("0.008")
    assert mine.tiers["pro"].request == Decimal("0.016")
    assert mine.cost(Usage(input=1000), service_tier="pro") == Decimal("0.018")  # 1000 x $2 / 1M + $0.016
    # above the threshold, batch is half the long-context price: 2000 x $1 / 1M + $0.008
    assert mine.cost(Usage(input=2000), service_tier="batch") == Decimal("0.010")


def test_a_user_price_on_a_time_of_day_model_applies_at_every_hour(packaged) -> None:
    peak, off_peak = 1_796_292_000, 1_796_317_200  # 2026-12-03 10:00 and 17:00 UTC
    assert packaged.at("deepseek-chat", off_peak).base.input < packaged.at("deepseek-chat", peak).base.input
    mine = packaged.merged({"deepseek-chat": {"input": "0.3", "output": "1.2"}})
    for when in (peak, off_peak):
        price = mine.at("deepseek-chat", when)
        assert (price.base.input, price.base.output) == (Decimal("0.3"), Decimal("1.2"))
        assert price.until is None  # not re-resolved at every window edge
    # the cache read keeps its ratio (0.07 / 0.27 of the input price), rounded to 12 significant
    # digits since the ratio does not divide exactly: no 30-digit tail in a report
    assert str(mine.get("deepseek-chat").base.cache_read) == "0.0777777777778"
