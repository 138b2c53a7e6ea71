"""Prices that depend on more than tokens: DeepSeek's peak / off-peak hours apply at the call's time
(genai-prices' time-of-day prices), and per-request fees (Perplexity's Sonar models) are part of the
cost, exactly as genai-prices' own ``calc_price`` computes them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage as GenaiUsage

from agentcost_core import PriceCatalog, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.prices.genai import GenaiPrices, genai_version, load_providers

USAGE = Usage(input=10_000, cache_read=4_000, output=2_000)
M = Decimal(1_000_000)


def at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 12, 4, hour, minute, tzinfo=UTC).timestamp()


def test_deepseek_peak_and_off_peak_prices_apply_at_the_time_of_the_call() -> None:
    catalog = PriceCatalog.default()
    peak = catalog.at("deepseek-chat", at(10))  # 00:30-16:30 UTC: the standard price
    off = catalog.at("deepseek-chat", at(20))  # 16:30-00:30 UTC: the discount
    assert (peak.base.input, peak.base.cache_read, peak.base.output) == (
        Decimal("0.27"),
        Decimal("0.07"),
        Decimal("1.1"),
    )
    assert (off.base.input, off.base.cache_read, off.base.output) == (
        Decimal("0.135"),
        Decimal("0.035"),
        Decimal("0.55"),
    )
    assert peak.cost(USAGE) == (10_000 * Decimal("0.27") + 4_000 * Decimal("0.07") + 2_000 * Decimal("1.1")) / M
    # each price holds until its window ends
    assert peak.until == at(16, 30) and off.until == datetime(2026, 12, 5, 0, 30, tzinfo=UTC).timestamp()
    assert catalog.at("deepseek-chat", at(0, 29)).base.input == Decimal("0.135")
    assert catalog.at("deepseek-chat", at(0, 30)).base.input == Decimal("0.27")


@pytest.mark.parametrize("model", ["deepseek-chat", "deepseek-reasoner", "deepseek-flash"])
def test_every_hour_agrees_with_genai_prices_calc_price(model: str) -> None:
    genai = GenaiPrices.build(load_providers(), origin=f"genai-prices {genai_version()}")
    owner = next(p for p in genai.providers if p.id == "deepseek")
    info = genai.model_info("deepseek", model)
    catalog = PriceCatalog.default()
    gu = GenaiUsage(input_tokens=USAGE.prompt_tokens, cache_read_tokens=USAGE.cache_read, output_tokens=USAGE.output)
    seen = set()
    for minutes in range(0, 24 * 60, 30):
        when = at(0) + minutes * 60
        theirs = info.calc_price(gu, owner, genai_request_timestamp=datetime.fromtimestamp(when, UTC)).total_price
        ours = catalog.at(model, when).cost(USAGE)
        assert ours == theirs, f"{model} at {minutes // 60:02d}:{minutes % 60:02d}"
        seen.add(ours)
    assert len(seen) == 2  # a peak and an off-peak price


def test_a_call_is_priced_in_the_window_it_is_made_in() -> None:
    """A catalog that resolved the model in another window (its price has ended) prices a call made
    now at the current window's price: the accountant sees the end and asks for the price now."""
    catalog = PriceCatalog.default()
    now = catalog.at("deepseek-chat", time.time())
    when = time.time() - 2 * 86_400
    while catalog.at("deepseek-chat", when).base.input == now.base.input:
        when -= 3_600  # an hour of the other window, two days ago
    old = catalog.at("deepseek-chat", when)
    stale = PriceCatalog([old.with_model("deepseek-chat").with_origin(old.origin, old.until)], base=catalog.base)
    acc = Accountant(stale)
    event, budget = acc.event(ModelCall("deepseek-chat"), Outcome(usage=USAGE, model="deepseek-chat", text="ok"))
    assert event.cost == budget == now.cost(USAGE) != old.cost(USAGE)
    assert acc.worst_case_of("deepseek-chat", 10_000, 0).usd == now.base.input * 10_000 / M


def test_a_per_request_fee_is_part_of_the_cost() -> None:
    catalog = PriceCatalog.default()
    sonar = catalog.get("sonar")  # $1 / 1M in and out, $12 per 1,000 requests
    assert sonar.base.request == Decimal("0.012")
    u = Usage(input=1_000, output=100)
    assert sonar.cost(u) == Decimal("0.0011") + Decimal("0.012")
    acc = Accountant(catalog)
    event, _ = acc.event(ModelCall("sonar"), Outcome(usage=u, model="sonar", text="ok"))
    assert event.cost == Decimal("0.0131")
    parts = acc.cost_parts(event)
    assert parts["request"] == Decimal("0.012") and sum(v for k, v in parts.items() if k != "reasoning") == event.cost
    # the fee is reserved too: a budget's worst case of a call includes it
    assert acc.worst_case_of("sonar", 1_000, 100).usd == Decimal("0.0131")
    # models without a fee are unchanged
    assert catalog.get("gpt-4o").base.request == 0


def test_a_users_price_file_can_give_a_request_fee() -> None:
    mine = PriceCatalog.default().merged(
        {"models": {"house-search": {"input": "1", "output": "2", "request": "0.005"}}}
    )
    assert mine.cost("house-search", Usage(input=1_000_000)) == Decimal("1.005")


def test_agentcost_prices_shows_the_fee_and_when_a_time_of_day_price_ends(capsys) -> None:
    from agentcost_core.cli import main

    assert main(["prices", "sonar", "deepseek-chat"]) == 0
    out = capsys.readouterr().out
    assert "sonar: genai-prices" in out and "+ $0.012 per request" in out
    assert "deepseek-chat: genai-prices" in out and "this price until " in out
    assert "+ $0.01 per web search request" not in out


def test_agentcost_prices_shows_the_web_search_fee(capsys) -> None:
    from agentcost_core.cli import main

    assert main(["prices", "gpt-5"]) == 0
    assert "+ $0.01 per web search request" in capsys.readouterr().out


def test_web_search_fees_of_the_price_data_are_compiled() -> None:
    catalog = PriceCatalog.default()
    for model in ("gpt-5", "gpt-4o", "claude-sonnet-4-5", "claude-haiku-4-5"):  # $10 per 1,000 searches
        assert catalog.get(model).tool_fees == {"web_search": Decimal("0.01")}, model
    assert catalog.get("gpt-5").as_entry()["tool_fees"] == {"web_search": "0.01"}


def test_server_tool_requests_are_priced_by_the_accountant_and_listed_in_extra() -> None:
    acc = Accountant(PriceCatalog.default())
    u = Usage(input=1_000, output=400)
    outcome = Outcome(usage=u, model="claude-sonnet-4-5", text="ok", server_tools={"web_search": 3, "web_fetch": 1})
    event, budget = acc.event(ModelCall("claude-sonnet-4-5"), outcome)
    assert event.cost == budget == Decimal("0.009") + Decimal("0.03")
    assert event.extra == {
        "server_tool_requests": {"web_search": 3, "web_fetch": 1},
        "server_tools_unpriced": ["web_fetch"],
    }
    parts = acc.cost_parts(event)
    assert (
        parts["server_tools"] == Decimal("0.03") and sum(v for k, v in parts.items() if k != "reasoning") == event.cost
    )
    # an LLM-cache hit saves the fees too
    hit, _ = acc.event(ModelCall("claude-sonnet-4-5"), Outcome(usage=u, model="claude-sonnet-4-5", cache_hit=True,
                                                               server_tools={"web_search": 3}))  # fmt: skip
    assert hit.cost == 0 and hit.saved == Decimal("0.039")


def test_a_users_price_file_can_give_tool_fees_and_bad_ones_are_refused() -> None:
    from agentcost_core.errors import PriceFileError

    mine = PriceCatalog.default().merged(
        {"models": {"house-search": {"input": "1", "output": "2", "tool_fees": {"web_search": "0.005"}}}}
    )
    assert mine.get("house-search").tool_cost({"web_search": 2}) == (Decimal("0.010"), ())
    for bad in ({"web_search": "-1"}, {"web_search": "abc"}, ["web_search"]):
        with pytest.raises(PriceFileError, match="tool_fees"):
            PriceCatalog.default().merged({"models": {"x": {"input": "1", "output": "2", "tool_fees": bad}}})
