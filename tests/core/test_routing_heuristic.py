"""The heuristic policy against the labelled prompt set (tests/data/routing_prompts.jsonl, rules in
tests/data/ROUTING_LABELS.md): agreement with the labels and the cost of the routed mix."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from agentcost_core import PriceCatalog, Usage
from agentcost_core.routing import (
    BudgetDowngrade,
    HeuristicPolicy,
    LatencyPreference,
    RouteRequest,
    Router,
    StaticPolicy,
    UserTierCap,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "routing_prompts.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
TIERS = {"nano": "gpt-5-nano", "frontier": "gpt-5"}


def route_all() -> list[str]:
    router = Router(TIERS, HeuristicPolicy(("nano", "frontier")))
    return [router.route(RouteRequest(r["prompt"])).tier for r in ROWS]


def cost(model: str, row: dict) -> Decimal:
    usage = Usage(input=row["input_tokens_hint"], output=row["expected_output_tokens"])
    return PriceCatalog.default().cost(model, usage)  # type: ignore[return-value]


def test_the_set_is_large_varied_and_labelled_by_the_written_rules() -> None:
    assert len(ROWS) >= 200 and len({r["id"] for r in ROWS}) == len(ROWS)
    assert {r["label"] for r in ROWS} == {"nano", "frontier"}
    assert len({r["category"] for r in ROWS}) >= 10


def test_heuristic_agrees_with_the_labels() -> None:
    routed = route_all()
    agree = sum(t == r["label"] for t, r in zip(routed, ROWS)) / len(ROWS)
    # frontier prompts sent to nano are the expensive mistake (quality); nano sent to frontier costs money
    missed_hard = sum(t == "nano" and r["label"] == "frontier" for t, r in zip(routed, ROWS))
    assert agree >= 0.88, agree
    assert missed_hard <= 0.1 * sum(r["label"] == "frontier" for r in ROWS)


def test_routed_mix_costs_a_fraction_of_all_frontier() -> None:
    routed = route_all()
    all_frontier = sum(cost(TIERS["frontier"], r) for r in ROWS)
    mix = sum(cost(TIERS[t], r) for t, r in zip(routed, ROWS))
    oracle = sum(cost(TIERS[r["label"]], r) for r in ROWS)
    assert mix < all_frontier and oracle <= mix * Decimal("1.2")
    assert 1 - mix / all_frontier > Decimal("0.05")


def test_constraints_compose_after_the_chooser() -> None:
    class Enforcer:
        def __init__(self, on: bool) -> None:
            self.on = on

        def downgrade_requested(self, scope: object) -> bool:
            return self.on

    hard = "Compare the trade-offs of Kafka versus SQS for our order pipeline and design the migration."
    router = Router(TIERS, [StaticPolicy({"triage": "nano"}), HeuristicPolicy(), UserTierCap({"free": "nano"})])
    assert router.route(RouteRequest(hard)).tier == "frontier"
    assert router.route(RouteRequest(hard, user_tier="free")).tier == "nano"
    assert router.route(RouteRequest(hard, step="triage")).reason.startswith("step 'triage'")
    budgeted = Router(TIERS, HeuristicPolicy() | BudgetDowngrade(Enforcer(True)))
    d = budgeted.route(RouteRequest(hard, scope=object()))
    assert d.tier == "nano" and d.adjustments == ("a downgrade budget passed its threshold",)
    waiting = Router(TIERS, HeuristicPolicy() | LatencyPreference("nano", keep_above=1.01))
    assert waiting.route(RouteRequest(hard, latency_sensitive=True)).tier == "nano"
    assert waiting.route(RouteRequest(hard)).tier == "frontier"


@pytest.mark.parametrize("bad", [{}, {"": "gpt-5"}])
def test_empty_or_unnamed_tiers_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    from agentcost_core import ConfigurationError

    with pytest.raises(ConfigurationError):
        Router(bad, HeuristicPolicy())
