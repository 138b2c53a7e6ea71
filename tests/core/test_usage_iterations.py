"""Anthropic ``usage.iterations`` (compaction, server-side tool loops, the advisor tool): billed as
the sum of the iterations, each at the price of the model that ran it, the detail kept on the event."""

from __future__ import annotations

from decimal import Decimal

import anthropic_iterations as AI
import pytest

from agentcost_core import Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.parsers import from_anthropic, from_raw


def test_the_hand_computation_uses_the_catalog_list_prices() -> None:
    acc = Accountant()
    for model, prices in AI.LIST_PRICES.items():
        base = acc.price(model).base
        for bucket, value in prices.items():
            assert getattr(base, bucket) == Decimal(value), (model, bucket)


def test_parser_sums_the_iterations_not_the_top_level_counts() -> None:
    usage = from_anthropic(AI.usage())
    assert usage.as_dict() == {**AI.SUM, "reasoning": 0}
    assert [(kind, model) for kind, model, _ in usage.iterations] == [
        ("compaction", None), ("message", None), ("advisor_message", AI.ADVISOR), ("message", None),
    ]  # fmt: skip
    assert usage.iterations[1][2] == Usage(input=1_500, cache_read=8_000, cache_write_1h=500, output=400)


def test_sdk_usage_object_parses_the_same() -> None:
    beta = pytest.importorskip("anthropic.types.beta")
    sdk = beta.BetaUsage.model_validate(AI.usage())
    assert from_anthropic(sdk).iterations == from_anthropic(AI.usage()).iterations


def test_each_iteration_priced_at_its_model_and_summed_exactly() -> None:
    acc = Accountant()
    found = from_raw(AI.message())
    usage, model, provider = found.usage, found.model, found.provider
    assert (model, provider) == (AI.MODEL, "anthropic")
    event, budget = acc.event(ModelCall(AI.MODEL), Outcome(usage=usage, model=model, text="Summary written."))
    assert event.cost == budget == AI.COST
    assert event.cost != AI.TOP_LEVEL_ONLY_COST
    assert type(event.usage) is Usage and event.usage == Usage(**AI.SUM)
    detail = event.extra["iterations"]
    assert [row["cost"] for row in detail] == AI.ITERATION_COSTS
    assert sum(Decimal(row["cost"]) for row in detail) == event.cost
    assert [row["model"] for row in detail] == [AI.MODEL, AI.MODEL, AI.ADVISOR, AI.MODEL]
    assert [row["type"] for row in detail] == ["compaction", "message", "advisor_message", "message"]
    assert detail[2]["input"] == 3_000 and detail[2]["output"] == 600


def test_an_iteration_on_an_unpriced_model_leaves_the_call_unpriced_but_budgeted() -> None:
    acc = Accountant()
    payload = AI.usage()
    payload["iterations"][2]["model"] = "house-advisor-x"
    event, budget = acc.event(ModelCall(AI.MODEL), Outcome(usage=from_anthropic(payload), model=AI.MODEL, text="ok"))
    assert event.cost is None and not event.priced  # never a partial sum recorded as the cost
    assert budget > AI.COST - Decimal("0.03")  # the fallback price counts the unknown iteration
    assert event.extra["iterations"][2]["cost"] is None


def test_no_iterations_is_priced_from_the_top_level_counts() -> None:
    payload = AI.usage()
    del payload["iterations"]
    event, _ = Accountant().event(ModelCall(AI.MODEL), Outcome(usage=from_anthropic(payload), model=AI.MODEL, text="x"))
    assert event.cost == AI.TOP_LEVEL_ONLY_COST
    assert not event.extra or "iterations" not in event.extra
