"""The accountant's cost per bucket of a recorded call: what exporters show as a breakdown."""

from __future__ import annotations

from decimal import Decimal

from agentcost_core import PriceCatalog, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome

HOUSE = PriceCatalog.from_dict(
    {
        "house": {
            "provider": "house",
            "input": "3",
            "output": "15",
            "cache_read": "0.3",
            "cache_write_5m": "3.75",
            "cache_write_1h": "6",
        }
    }
)


def _event(acc: Accountant, usage: Usage, **outcome: object):
    event, _ = acc.event(ModelCall("house"), Outcome(usage=usage, model="house", **outcome))  # type: ignore[arg-type]
    return event


def test_the_buckets_sum_exactly_to_the_events_cost() -> None:
    acc = Accountant(HOUSE)
    event = _event(
        acc, Usage(input=1_000, cache_read=20_000, cache_write_5m=3_000, cache_write_1h=500, output=800, reasoning=300)
    )
    parts = acc.cost_parts(event)
    assert parts == {
        "input": Decimal("0.003"),
        "cache_read": Decimal("0.006"),
        "cache_write_5m": Decimal("0.01125"),
        "cache_write_1h": Decimal("0.003"),
        "output": Decimal("0.012"),
        "reasoning": Decimal("0.0045"),
    }
    assert sum(v for k, v in parts.items() if k != "reasoning") == event.cost == Decimal("0.03525")


def test_a_cache_hit_costs_nothing_in_every_bucket_and_an_unpriced_call_has_no_breakdown() -> None:
    acc = Accountant(HOUSE)
    hit = _event(acc, Usage(input=100, output=10), cache_hit=True)
    assert set(acc.cost_parts(hit).values()) == {Decimal(0)}  # type: ignore[union-attr]
    unknown, _ = acc.event(
        ModelCall("nobody-knows-me"), Outcome(usage=Usage(input=5, output=5), model="nobody-knows-me")
    )
    assert unknown.cost is None and acc.cost_parts(unknown) is None


def test_the_long_context_tier_prices_every_bucket_of_the_request() -> None:
    catalog = PriceCatalog.from_dict(
        {
            "big": {
                "provider": "house",
                "input": "1",
                "output": "2",
                "long_context": {"threshold": 100, "input": "2", "output": "4"},
            }
        }
    )
    acc = Accountant(catalog)
    event, _ = acc.event(ModelCall("big"), Outcome(usage=Usage(input=1_000, output=1_000), model="big"))
    parts = acc.cost_parts(event)
    assert parts["input"] == Decimal("0.002") and parts["output"] == Decimal("0.004")  # type: ignore[index]
    assert parts["input"] + parts["output"] == event.cost  # type: ignore[index]
