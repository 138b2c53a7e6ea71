"""The one accountant of a model call: worst case before, usage or estimate after, one pricing policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentcost_core import PriceCatalog, Usage
from agentcost_core.accountant import Accountant, image_tokens
from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.tokens import ChatMessage


def test_without_max_tokens_the_worst_case_reserves_the_models_maximum_output() -> None:
    acc = Accountant()
    assert acc.worst_case_of("o3", 1_000).output_tokens == 100_000
    assert acc.worst_case_of("gpt-4o-2024-08-06", 1_000).output_tokens == 16_384
    assert acc.worst_case_of("o3", 1_000, 500).output_tokens == 500  # the call's own cap wins
    assert acc.worst_case_of("some-unknown-model", 1_000).output_tokens == 4_096  # documented default


def test_the_litellm_import_carries_the_maximum_output() -> None:
    catalog = PriceCatalog.from_litellm({"house": {"litellm_provider": "house", "input_cost_per_token": 1e-06,
                                                   "output_cost_per_token": 2e-06, "max_output_tokens": 1_000}})
    worst = Accountant(catalog).worst_case_of("house", 100)
    assert worst.output_tokens == 1_000 and worst.usd == Decimal("0.0021")


def test_image_parts_and_tool_schemas_are_part_of_the_worst_case() -> None:
    acc = Accountant()
    text = ModelCall("gpt-4o", messages=[ChatMessage("user", "what is this?")], max_tokens=10)
    with_images = ModelCall("gpt-4o", messages=[ChatMessage("user", "what is this?")], max_tokens=10, images=2)
    with_tools = ModelCall("gpt-4o", messages=[ChatMessage("user", "what is this?")], max_tokens=10,
                           tools='[{"type": "function", "function": {"name": "lookup", "parameters": {}}}]')
    assert acc.worst_case(with_images).input_tokens >= acc.worst_case(text).input_tokens + 2 * image_tokens("gpt-4o")
    assert acc.worst_case(with_tools).input_tokens > acc.worst_case(text).input_tokens
    assert acc.worst_case(with_images).estimated and not acc.worst_case(text).estimated


def test_the_service_tier_prices_the_worst_case() -> None:
    acc = Accountant()
    assert acc.worst_case_of("gpt-4o", 1_000, 100, service_tier="priority").usd == \
        acc.worst_case_of("gpt-4o", 1_000, 100).usd * Decimal("1.7")  # fmt: skip


def test_an_unknown_model_is_unpriced_in_the_ledger_and_at_the_fallback_in_budgets() -> None:
    acc = Accountant()
    event, budget = acc.event(ModelCall("house-llm-x"), Outcome(usage=Usage(input=1_000, output=100), text="ok"))
    assert event.cost is None and not event.priced
    assert budget == acc.fallback.cost(Usage(input=1_000, output=100)) > 0


def test_a_cache_hit_costs_nothing_in_both_and_says_what_it_saved() -> None:
    acc = Accountant()
    event, budget = acc.event(ModelCall("gpt-4o"), Outcome(usage=Usage(input=1_000, output=100), cache_hit=True))
    assert event.cost == 0 and budget == 0 and event.saved == Decimal("0.0035")


def test_the_ledger_and_the_budget_see_the_same_number() -> None:
    acc = Accountant()
    event, budget = acc.event(ModelCall("gpt-4o"), Outcome(usage=Usage(input=1_000, cache_read=500, output=100)))
    assert event.cost == budget == Decimal("0.004125")  # 1,000 × 2.50 + 500 × 1.25 + 100 × 10.00 per 1M


def test_usage_without_tokens_for_a_call_that_produced_output_is_estimated_and_marked() -> None:
    acc = Accountant()
    call = ModelCall("gpt-4o", messages=[ChatMessage("user", "Tell me about refunds.")])
    event, budget = acc.event(call, Outcome(usage=Usage(), text="Refunds take five days."))
    assert event.estimated and event.usage.input > 0 and event.usage.output > 0
    assert event.cost == budget > 0 and "no tokens" in event.extra["usage_error"]


def test_a_failed_call_has_no_usage_and_no_cost() -> None:
    event, budget = Accountant().event(ModelCall("gpt-4o"), Outcome(error="RateLimitError: slow down"))
    assert event.cost is None and budget == 0 and event.error.startswith("RateLimitError")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"user_id": 17, "thread_id": "t-1", "feature": "support"}, Attribution("17", "t-1", "support")),
        ({"conversation_id": "c-9", "agent_id": "bot"}, Attribution(session_id="c-9", agent_id="bot")),
        ({}, Attribution(feature="default-feature")),
    ],
)
def test_one_attribution_reader_for_every_adapter(metadata: dict, expected: Attribution) -> None:
    defaults = Attribution(feature="default-feature")
    got = read_attribution(metadata, defaults=defaults)
    assert got.user_id == expected.user_id and got.session_id == expected.session_id
    assert got.agent_id == expected.agent_id
    assert got.feature == (expected.feature or "default-feature")


def test_bad_accountant_configuration_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="default_max_tokens"):
        Accountant(default_max_tokens=0)
    with pytest.raises(ValueError, match="estimate_margin"):
        Accountant(estimate_margin=-1)
    with pytest.raises(TypeError, match="catalog"):
        Accountant(catalog={"gpt-4o": {}})  # type: ignore[arg-type]


def test_a_call_asking_for_several_completions_reserves_output_for_each() -> None:
    from agentcost_core.call import choices_of

    acc = Accountant()
    one = ModelCall("gpt-4o", messages=[ChatMessage("user", "three taglines")], max_tokens=100)
    three = ModelCall("gpt-4o", messages=[ChatMessage("user", "three taglines")], max_tokens=100, choices=3)
    uncapped = ModelCall("o3", messages=[ChatMessage("user", "prove it")], choices=2)
    assert acc.worst_case(three).output_tokens == 3 * acc.worst_case(one).output_tokens == 300
    assert acc.worst_case(uncapped).output_tokens == 200_000  # the model's maximum output, twice
    assert acc.worst_case(three).usd > acc.worst_case(one).usd
    assert choices_of({"n": 3}) == 3 and choices_of({"best_of": 5, "n": 2}) == 5
    assert choices_of({"candidate_count": 2}, None) == 2
    assert choices_of({}, {"n": None}, {"n": True}, {"n": "4"}) == 1  # only a whole count > 1 counts


def test_gpt_5_without_max_tokens_reserves_its_128k_maximum_output() -> None:
    acc = Accountant()
    assert acc.worst_case_of("gpt-5", 100).output_tokens == 128_000
    assert acc.worst_case_of("gpt-5-2025-08-07", 100).output_tokens == 128_000  # dated ids resolve to it
    assert acc.worst_case_of("gpt-5-mini", 100).output_tokens == 128_000


def test_a_known_server_tool_fee_is_budgeted_even_when_an_iterations_model_is_unpriced() -> None:
    from agentcost_core.usage import IteratedUsage

    acc = Accountant()
    sonnet = "claude-sonnet-4-5-20250929"
    usage = IteratedUsage(((None, None, Usage(input=1000, output=100)),
                           ("message", "house-model-nobody-prices", Usage(input=500, output=50))))  # fmt: skip
    event, budget = acc.event(ModelCall(sonnet), Outcome(usage=usage, model=sonnet, text="ok",
                                                         server_tools={"web_search": 2}))  # fmt: skip
    assert event.cost is None  # one iteration has no price: never a partial ledger sum
    _, tokens_only = acc.event(ModelCall(sonnet), Outcome(usage=usage, model=sonnet, text="ok"))
    assert budget - tokens_only == Decimal("0.02")  # the two searches, on top of the tokens' budget cost
