"""Contract: route a call. The same policy picks the same tier for the same prompt on both adapters
(``ModelRouter`` and ``RouterLLM``), and the call's event carries the tier and the route's reason."""

from __future__ import annotations

from typing import Any

import pytest
from contract_drivers import FRONTIER, NANO, hand_cost

from agentcost_core.routing import HeuristicPolicy, StaticPolicy, UserTierCap

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SIMPLE = "Classify this ticket as billing or shipping: my parcel is late."
HARD = (
    "Explain why our checkout service times out under load, compare a queue versus a cache, "
    "then design a step by step plan and write a function that implements the retry."
)
TIER_MODEL = {"nano": NANO, "frontier": FRONTIER}


@pytest.mark.parametrize(("prompt", "tier"), [(SIMPLE, "nano"), (HARD, "frontier")], ids=["simple", "hard"])
def test_the_heuristic_policy_picks_the_tier_by_complexity(adapter: Any, prompt: str, tier: str) -> None:
    event = adapter.route(policy=HeuristicPolicy(("nano", "frontier")), prompt=prompt)
    assert event.tier == tier
    assert event.extra["route_reason"]
    assert event.model == TIER_MODEL[tier]
    assert event.priced and not event.estimated
    assert event.cost == hand_cost(event.model, input=event.usage.input, output=event.usage.output)


def test_a_static_default_routes_every_call_to_it(adapter: Any) -> None:
    for prompt in (SIMPLE, HARD):
        event = adapter.route(policy=StaticPolicy({}, default="frontier"), prompt=prompt)
        assert (event.tier, event.model) == ("frontier", FRONTIER) and event.extra["route_reason"]


@pytest.mark.parametrize("prompt", [SIMPLE, HARD], ids=["simple", "hard"])
def test_both_adapters_route_the_same_prompt_alike(both: dict[str, Any], prompt: str) -> None:
    policy = HeuristicPolicy(("nano", "frontier"))
    lc, li = (both[n].route(policy=policy, prompt=prompt) for n in ("langchain", "llamaindex"))
    assert (lc.tier, lc.model) == (li.tier, li.model)
    assert lc.extra["route_reason"] == li.extra["route_reason"]
    assert lc.usage == li.usage and lc.cost == li.cost


def test_the_runs_metadata_reaches_the_policy_and_the_event(adapter: Any) -> None:
    policy = HeuristicPolicy(("nano", "frontier")) | UserTierCap({"free": "nano"})
    metadata = {"user_tier": "free", "user_id": "u-free", "session_id": "s-1"}
    capped = adapter.route(policy=policy, prompt=HARD, metadata=metadata)
    assert (capped.tier, capped.model) == ("nano", NANO)
    assert "capped" in capped.extra["route_reason"]
    assert (capped.user_id, capped.session_id) == ("u-free", "s-1")
    paying = adapter.route(policy=policy, prompt=HARD, metadata={"user_tier": "enterprise"})
    assert paying.tier == "frontier"
