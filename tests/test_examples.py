"""The README's first command: the examples run offline and end with a cost report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENTCOST_LEDGER")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _report_total_calls(out: str) -> list[int]:
    """The calls in the total row of each report table the example printed."""
    return [int(n) for n in re.findall(r"│ total\s+│\s+([\d,]+) │", out)]


def test_quickstart_prints_costs_per_feature_from_its_own_sqlite_ledger(tmp_path):
    pytest.importorskip("langchain.agents")
    out = _run("quickstart.py", tmp_path)
    assert "spend by feature" in out and "support" in out and "research" in out
    assert "This run: 12 model calls" in out
    assert _report_total_calls(out) == [12, 12]
    from agentcost_core import Ledger

    lg = Ledger(f"sqlite:///{tmp_path}/.agentcost/quickstart.db")
    assert lg.count() == 12 and {e.feature for e in lg.events()} == {"support", "research"}
    assert all(e.priced for e in lg.events())


def test_demo_run_twice_reports_only_the_current_run(tmp_path):
    pytest.importorskip("langchain.agents")
    _run("quickstart.py", tmp_path)
    _run("runaway_agent.py", tmp_path)  # another example in the same directory
    out = _run("quickstart.py", tmp_path)
    assert "This run: 12 model calls" in out
    assert _report_total_calls(out) == [12, 12]  # not 24 (the first run) nor the runaway agent's calls
    from agentcost_core import Ledger

    assert Ledger(f"sqlite:///{tmp_path}/.agentcost/quickstart.db").count() == 12


def test_llamaindex_quickstart_prints_costs_per_feature(tmp_path):
    pytest.importorskip("llama_index.core.agent.workflow")
    out = _run("llamaindex_quickstart.py", tmp_path)
    assert "spend by feature" in out and "stock-check" in out and "quotes" in out
    assert "This run: 10 model calls" in out
    from agentcost_core import Ledger

    events = Ledger(f"sqlite:///{tmp_path}/.agentcost/llamaindex_quickstart.db").events()
    assert len(events) == 10 and all(e.priced and not e.estimated for e in events)
    assert {e.user_id for e in events} == {"user-1", "user-2", "user-3"}
    assert len({e.trace_id for e in events}) == 4  # one workflow run id per session


def test_runaway_agent_prints_both_bills_and_the_guard_stops_the_loop(tmp_path):
    pytest.importorskip("langchain.agents")
    out = _run("runaway_agent.py", tmp_path)
    assert "unguarded: 20 model calls" in out and "cut off by GraphRecursionError" in out
    assert "stopped: repeated_tool" in out and "nudges sent: 1" in out
    from agentcost_core import Ledger

    events = Ledger(f"sqlite:///{tmp_path}/.agentcost/runaway_agent.db").events()
    calls = [e for e in events if e.kind == "llm"]
    guarded = sum(e.cost for e in calls if e.session_id == "guarded")
    unguarded = sum(e.cost for e in calls if e.session_id == "unguarded")
    assert 0 < guarded < unguarded / 4
    assert {"guard.nudge", "halt"} <= {e.kind for e in events}
    notices = out[out.index("budget warnings and halts"):]  # the report lists the guard's nudge and halt
    assert re.search(r"│ halt\s+│ repeated_tool\s+│\s+1 │", notices)
    assert re.search(r"│ guard\.nudge\s+│ repeated_tool\s+│\s+1 │", notices)


def test_long_conversation_tiered_memory_stays_in_budget_and_costs_least(tmp_path):
    pytest.importorskip("langchain_core.messages")
    out = _run("long_conversation.py", tmp_path)
    assert "| 200 turns, 4,000-token budget | full history | trim_messages | TieredMemory |" in out
    assert "spend by feature" in out
    rmas = re.search(r"\| refunds approved \(RMAs\) the turn-200 call still sees \| (\d+)/(\d+) \| \d+/\d+ \| (\d+)/", out)
    assert rmas and rmas.group(1) == rmas.group(2) == rmas.group(3)  # the summary kept every refund decision
    from agentcost_core import Ledger

    events = [e for e in Ledger(f"sqlite:///{tmp_path}/.agentcost/long_conversation.db").events() if e.kind == "llm"]
    by = {f: [e for e in events if e.feature == f] for f in ("full-history", "trim-messages", "tiered-memory", "memory")}
    assert {e.feature for e in events} == set(by)
    assert all(e.priced and not e.estimated for e in events)
    assert len(by["full-history"]) == len(by["trim-messages"]) == len(by["tiered-memory"]) > 200  # 200 turns + tool steps
    assert by["memory"] and all(e.model.startswith("gpt-4o-mini") for e in by["memory"])  # the summarizer ran
    assert all(e.model.startswith("gpt-4o") and "mini" not in e.model for e in by["tiered-memory"])
    prompt = {f: [e.usage.prompt_tokens for e in evs] for f, evs in by.items()}
    assert max(prompt["trim-messages"]) <= 4000 and max(prompt["tiered-memory"]) <= 4000  # the budget holds
    assert max(prompt["full-history"]) > 5 * max(prompt["tiered-memory"])
    cost = {f: sum(e.cost for e in evs) for f, evs in by.items()}
    tiered = cost["tiered-memory"] + cost["memory"]  # the summarizer's bill counts against the memory
    assert 0 < tiered < cost["trim-messages"] < cost["full-history"] / 5


def test_router_sends_easy_steps_to_nano_hard_ones_to_frontier_and_reports_savings(tmp_path):
    pytest.importorskip("langchain_core.runnables")
    out = _run("router.py", tmp_path)
    from decimal import Decimal

    from agentcost_core import Ledger

    events = Ledger(f"sqlite:///{tmp_path}/.agentcost/router.db").events()
    calls = [e for e in events if e.kind == "llm"]
    routes = {e.parent_id: e for e in events if e.kind == "route"}
    assert {e.feature for e in calls} == {"router-demo"} and all(e.priced for e in calls)
    tiers = {step: {(e.tier, e.model) for e in calls if e.step == step} for step in ("classify", "extract", "analyse")}
    assert tiers == {"classify": {("nano", "gpt-5-nano")}, "extract": {("nano", "gpt-5-nano")},
                     "analyse": {("frontier", "gpt-5")}}  # fmt: skip
    assert [sum(e.step == s for e in calls) for s in tiers] == [20, 20, 9]  # 20 tickets, 9 of them analysed
    # every call has its routing decision, linked to it, with the policy and reason that chose the tier
    assert set(routes) == {e.span_id for e in calls} and len(routes) == len(calls)
    for e in calls:
        r = routes[e.span_id]
        assert r.tier == e.tier and r.extra["id"] == e.extra["route_id"] and r.trace_id == e.trace_id
        assert r.extra["policy"] == ("heuristic" if e.step == "analyse" else "static")
        assert e.extra["route_reason"] == r.extra["reason"] and e.extra["top_model"] == "gpt-5"
    saved = re.search(r"routing savings: \$(\d+\.\d+) \((\d+)%\)", out)
    assert saved and Decimal(saved.group(1)) > 0 and int(saved.group(2)) > 0
    report = re.search(r"routing: 49 routed calls cost \$[\d.]+; on the top tier they would have cost \$[\d.]+ "
                       r"\(saved \$([\d.]+)\)", " ".join(out.split()))  # fmt: skip  (the line wraps at 80 columns)
    assert report and Decimal(report.group(1)) > 0
    # the same real usage: the report prints the exact savings, the example rounds them to 6 places
    assert Decimal(report.group(1)).quantize(Decimal("0.000001")) == Decimal(saved.group(1))
    assert "spend by tier" in out
