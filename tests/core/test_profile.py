"""``agentcost profile``: each finding found in a synthetic SQLite ledger built for it, with its dollar
figure worked out by hand (see tests/synthetic_traffic.py for the traffic and the prices)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import synthetic_traffic as traffic

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.attribution import Attribution
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.errors import ConfigurationError
from agentcost_core.prices import PriceCatalog
from agentcost_core.profile import profile


@pytest.fixture
def ledger(tmp_path):
    with Ledger(f"sqlite:///{tmp_path}/ledger.db", sync=True) as led:
        led.record_many(traffic.events())
        yield led


def _profile(ledger, **kw):
    return profile(ledger.iter_events(), catalog=traffic.catalog(), cheap_model="small-model", **kw)


def test_totals_and_the_quadratic_context_curve(ledger):
    p = _profile(ledger)
    # 200 ordinary calls, 8 loop calls + 8 tool events, 10 triage calls
    assert p.calls == 226 and p.sessions == 101
    assert p.cost == 100 * Decimal("0.00028") + Decimal("0.392") + 10 * Decimal("0.0202") == Decimal("0.622")
    curve = {pt.index: pt for pt in p.curve}
    assert sorted(curve) == list(range(1, 9))
    assert curve[1].calls == 101 and curve[1].prompt_tokens == 100 * 1000 + 1000
    assert curve[8].calls == 1 and curve[8].mean_prompt_tokens == 8000 and curve[8].cost == Decimal("0.084")


def test_late_step_share_is_the_cost_after_step_five(ledger):
    f = _profile(ledger).finding("context_growth")
    late = Decimal("0.064") + Decimal("0.074") + Decimal("0.084")  # the loop's calls 6, 7, 8
    assert f.dollars == late == Decimal("0.222") and f.control == "memory"
    assert f.detail["session_cost"] == "0.42000"  # 100 x 0.00028 + 0.392
    assert f.detail["late_share"] == "0.5286"  # 0.222 / 0.42
    assert f.detail["growth_last_vs_first"] == "8.0"  # step 8: 8,000 prompt tokens; step 1: 101,000 / 101
    assert _profile(ledger, late_after=7).finding("context_growth").dollars == Decimal("0.084")


def test_runaway_session_above_p99_with_its_loop_signature(ledger):
    f = _profile(ledger).finding("runaway_tail")
    assert f.dollars == Decimal("0.392") and f.control == "budgets"
    assert f.detail["p99_session_cost"] == "0.00028"  # rank ceil(0.99 x 101) = 100: an ordinary session
    assert f.detail["share_of_spend"] == "0.6302"  # 0.392 / 0.622
    assert f.detail["saving_at_p99_cap"] == str(Decimal("0.392") - Decimal("0.00028"))
    [loop] = f.detail["sessions"]
    assert loop["session_id"] == "loop" and loop["cost"] == "0.392"
    assert loop["llm_calls"] == 8 and loop["tool_calls"] == 8
    assert loop["top_step"] == {"step": "search", "count": 8}
    assert loop["top_tool"] == {"tool": "web_search", "count": 8}


def test_frontier_classification_calls_and_what_a_route_saves(ledger):
    f = _profile(ledger).finding("model_choice")
    per_call = Decimal("0.0202") - (2000 * Decimal("0.10") + 5 * Decimal("0.40")) / 1_000_000  # 0.019998
    assert f.dollars == 10 * per_call == Decimal("0.19998") and f.control == "routing"
    [group] = f.detail["groups"]
    assert group["feature"] == "triage" and group["step"] == "classify_intent" and group["calls"] == 10
    assert group["reason"] == "step 'classify_intent'" and Decimal(group["cheap_cost"]) == Decimal("0.00202")
    # the loop's frontier calls (step "search", 100 output tokens) are not cheap work and are not listed
    assert f.detail["calls"] == 10


def test_short_output_on_an_expensive_model_counts_as_cheap_work():
    e = CostEvent("big-model", Usage(input=1000, output=20), traffic.catalog().cost("big-model", Usage(input=1000, output=20)),
                  step="answer", feature="qa")  # fmt: skip
    f = profile([e], catalog=traffic.catalog(), cheap_model="small-model").finding("model_choice")
    assert f.detail["groups"][0]["reason"] == "output <= 64 tokens"
    assert f.dollars == Decimal("0.0108") - Decimal("0.000108")
    assert (
        profile([e], catalog=traffic.catalog(), cheap_model="small-model", short_output=10)
        .finding("model_choice")
        .dollars
        == 0
    )


def test_prompt_cache_opportunity_from_resent_input_tokens(ledger):
    f = _profile(ledger).finding("prompt_cache")
    ordinary = 100 * (1000 * (Decimal("0.10") - Decimal("0.01")) / 1_000_000)  # call 2 resends call 1's 1000
    loop = sum(1000 * (i - 1) * (Decimal(10) - Decimal(1)) / 1_000_000 for i in range(2, 9))  # 28,000 tokens
    assert f.dollars == ordinary + loop == Decimal("0.261") and f.control == "caching"
    assert f.detail["resent_tokens"] == 128_000
    assert "no prefix fingerprint" in f.advice


def test_tokens_already_read_from_cache_are_no_opportunity():
    c = traffic.catalog()
    u1, u2 = Usage(input=1000, output=10), Usage(input=0, cache_read=1000, output=10)
    events = [CostEvent("big-model", u, c.cost("big-model", u), session_id="s", ts=t) for t, u in ((1, u1), (2, u2))]
    f = profile(events, catalog=c, cheap_model="small-model").finding("prompt_cache")
    assert f.dollars == 0 and f.detail["resent_tokens"] == 0


def test_findings_are_costliest_first_and_json_ready(ledger):
    p = _profile(ledger)
    assert [f.name for f in p.findings] == ["runaway_tail", "prompt_cache", "context_growth", "model_choice"]
    data = json.loads(json.dumps(p.as_dict()))
    assert Decimal(data["cost"]) == Decimal("0.622") and data["findings"][0]["dollars"] == "0.392"


def test_a_cheap_model_without_a_price_fails_loudly(ledger):
    with pytest.raises(ConfigurationError, match="no-such-model"):
        profile([], catalog=traffic.catalog(), cheap_model="no-such-model")


def test_cli_profile_json_and_table(tmp_path, capsys):
    from agentcost_core.cli import main

    url = f"sqlite:///{tmp_path}/l.db"
    with Ledger(url, sync=True) as led:
        led.record_many(traffic.events())
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(traffic.PRICES))
    args = ["profile", "--ledger", url, "--prices", str(prices), "--cheap-model", "small-model"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    dollars = {f["name"]: Decimal(f["dollars"]) for f in data["findings"]}
    assert dollars == {
        "runaway_tail": Decimal("0.392"),
        "prompt_cache": Decimal("0.261"),
        "context_growth": Decimal("0.222"),
        "model_choice": Decimal("0.19998"),
    }
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "$0.19998" in out and "loop" in out and "classify" in out
    assert main(["profile", "--ledger", f"sqlite:///{tmp_path}/none.db"]) == 2


def test_loop_signature_names_tools_from_tool_events_and_guard_notices():
    c = traffic.catalog()
    u = Usage(input=1000, output=100)
    events = [CostEvent("small-model", u, c.cost("small-model", u), session_id=f"s{n}", ts=n) for n in range(100)]
    for i in range(3):
        events.append(CostEvent("big-model", u, c.cost("big-model", u), session_id="loop", step="agent", ts=200 + i))
        events.append(CostEvent(None, Usage(), Decimal(0), kind="tool", priced=True, cache_hit=True, session_id="loop",
                                step="agent", extra={"cache": "tool", "tool": "fetch"}, ts=300 + i))  # fmt: skip
    events.append(
        CostEvent(None, kind="guard.nudge", session_id="loop", extra={"reason": "stuck", "tool": "fetch"}, ts=400)
    )
    events.append(CostEvent(None, kind="halt", session_id="loop", extra={"reason": "stuck"}, ts=401))
    f = profile(events, catalog=c, cheap_model="small-model").finding("runaway_tail")
    [loop] = f.detail["sessions"]
    assert loop["top_tool"] == {"tool": "fetch", "count": 4} and loop["top_step"] == {"step": "agent", "count": 3}
    assert loop["tool_calls"] == 3 and loop["halts"] == 1 and f.dollars == 3 * Decimal("0.014")


def _searching_catalog():
    """The test prices, with a $0.01 web-search fee on both models."""
    models = {m: {**p, "tool_fees": {"web_search": "0.01"}} for m, p in traffic.PRICES["models"].items()}
    return PriceCatalog.from_dict({"models": models})


def _searched(catalog, usage, ts=1.0):
    """A big-model call with three web searches ($0.03), recorded by the call path's accountant."""
    call = ModelCall("big-model", step="classify_intent", attribution=Attribution(session_id="s"))
    event, _ = Accountant(catalog).event(call, Outcome(usage=usage, model="big-model", server_tools={"web_search": 3}))
    event.ts = ts
    return event


def test_a_routes_savings_exclude_the_web_search_fees_both_models_pay():
    c = _searching_catalog()
    u = Usage(input=1000, output=5)
    e = _searched(c, u)
    assert e.cost == c.cost("big-model", u) + Decimal("0.03")
    f = profile([e], catalog=c, cheap_model="small-model").finding("model_choice")
    assert f.dollars == c.cost("big-model", u) - c.cost("small-model", u) == Decimal("0.0102") - Decimal("0.000102")


def test_the_prompt_cache_saving_excludes_the_web_search_fees():
    c = _searching_catalog()
    first, second = _searched(c, Usage(input=1000, output=10), ts=1), _searched(c, Usage(input=1500, output=10), ts=2)
    f = profile([first, second], catalog=c, cheap_model="small-model").finding("prompt_cache")
    assert f.dollars == 1000 * (Decimal(10) - Decimal(1)) / 1_000_000 and f.detail["resent_tokens"] == 1000
