"""Contract: record a call. The same usage of the same model is the same event on both adapters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from contract_drivers import MALFORMED, hand_cost, tier_multiplier

ATTRIBUTION = {"user_id": "u-42", "session_id": "s-7", "feature": "support", "agent_id": "triage-bot"}


def test_exact_usage_is_priced_to_the_exact_decimal(adapter: Any) -> None:
    event = adapter.call(usage={"input": 1200, "output": 300, "cached": 256}, model="gpt-4o")
    expected = hand_cost("gpt-4o", input=1200, output=300, cached=256)
    assert expected == Decimal("0.00568")
    assert event.cost == expected and isinstance(event.cost, Decimal)
    assert event.priced and not event.estimated
    assert (event.usage.input, event.usage.cache_read, event.usage.output) == (1200 - 256, 256, 300)
    assert event.model == "gpt-4o"


def test_both_adapters_record_the_same_cost_and_usage(both: dict[str, Any]) -> None:
    usage = {"input": 5000, "output": 777, "cached": 1024}
    lc, li = (both[name].call(usage=usage, model="gpt-4o-mini") for name in ("langchain", "llamaindex"))
    assert lc.cost == li.cost == hand_cost("gpt-4o-mini", **usage)
    assert lc.usage == li.usage
    assert (lc.model, lc.priced, lc.estimated) == (li.model, li.priced, li.estimated)


def test_attribution_lands_on_the_event(adapter: Any) -> None:
    event = adapter.call(usage={"input": 10, "output": 5}, attribution=ATTRIBUTION)
    assert (event.user_id, event.session_id, event.feature, event.agent_id) == (
        "u-42", "s-7", "support", "triage-bot",
    )  # fmt: skip


def test_thread_id_is_read_as_the_session(adapter: Any) -> None:
    event = adapter.call(usage={"input": 10, "output": 5}, attribution={"thread_id": "th-1"})
    assert event.session_id == "th-1"


def test_unknown_model_is_unpriced_never_zero(adapter: Any) -> None:
    event = adapter.call(usage={"input": 1000, "output": 100}, model="house-model-7b")
    assert event.cost is None and event.priced is False
    assert event.model == "house-model-7b"
    assert (event.usage.input, event.usage.output) == (1000, 100)  # the usage is still recorded


def test_priority_service_tier_is_priced_at_the_tier(adapter: Any) -> None:
    event = adapter.call(usage={"input": 1000, "output": 100}, model="gpt-4o", service_tier="priority")
    assert event.cost == hand_cost("gpt-4o", input=1000, output=100) * tier_multiplier("gpt-4o", "priority")
    assert event.priced


def test_missing_usage_is_estimated_and_marked(adapter: Any) -> None:
    event = adapter.call(usage=None, model="gpt-4o", text="The capital of France is Paris.")
    assert event.estimated
    assert event.usage.input > 0 and event.usage.output > 0
    assert event.cost is not None and event.cost > 0 and event.priced


@pytest.mark.parametrize("usage", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_usage_is_estimated_and_marked_never_a_priced_zero(adapter: Any, usage: Any) -> None:
    event = adapter.call(usage=usage, raw_usage=True, model="gpt-4o", text="The capital of France is Paris.")
    assert event.estimated and event.extra["usage_error"]
    assert event.usage.input > 0 and event.usage.output > 0
    assert event.cost is not None and event.cost > 0


def test_both_adapters_estimate_the_same_call_alike(both: dict[str, Any]) -> None:
    lc, li = (both[n].call(usage=None, model="gpt-4o", text="The capital of France is Paris.")
              for n in ("langchain", "llamaindex"))  # fmt: skip
    assert lc.estimated and li.estimated
    assert lc.usage.output == li.usage.output  # the same reply text counted by the same tokenizer


def test_llm_cache_hit_is_recorded_at_zero_with_its_saving(adapter: Any) -> None:
    paid, hit = adapter.same_call_twice_with_llm_cache(usage={"input": 1000, "output": 100})
    assert paid.cost == hand_cost("gpt-4o", input=1000, output=100) and not paid.cache_hit
    assert hit.cache_hit is True and hit.cost == Decimal(0) and hit.saved == paid.cost
