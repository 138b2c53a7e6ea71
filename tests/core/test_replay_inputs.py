"""Replay inputs from outside a ledger: the LangSmith run export and OTLP JSON GenAI spans committed
under tests/data, read into events priced by the Accountant, and replayed."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from agentcost_core import Usage
from agentcost_core.errors import ConfigurationError
from agentcost_core.prices import PriceCatalog
from agentcost_core.replay import Remap, Scenario, replay
from agentcost_core.replay_inputs import langsmith_events, otel_events

DATA = Path(__file__).resolve().parents[1] / "data"
M = Decimal(1_000_000)
PRICES = PriceCatalog.from_dict({
    "gpt-4o": {"provider": "openai", "input": "2.50", "cache_read": "1.25", "output": "10"},
    "gpt-4o-mini": {"provider": "openai", "input": "0.15", "cache_read": "0.075", "output": "0.60"},
})  # fmt: skip
AGENT_CALL = (2000 * Decimal("2.50") + 1000 * Decimal("1.25") + 200 * Decimal(10)) / M  # 3,000 in of which 1,000 cached
CLASSIFY_CALL = (500 * Decimal("0.15") + 10 * Decimal("0.60")) / M


def test_langsmith_runs_become_priced_events():
    events = list(langsmith_events(DATA / "langsmith_runs.json", catalog=PRICES))
    assert [(e.kind, e.model, e.step) for e in events] == [
        ("llm", "gpt-4o-2024-08-06", "agent"),
        ("tool", None, "tools"),
        ("llm", "gpt-4o-mini", "classify"),
        ("llm", "house-llm-2", "HouseLLM"),
        ("llm", "gpt-4o", "ChatOpenAI"),
    ]  # the chain run is left out; time order
    agent, tool, classify, house, failed = events
    assert agent.usage == Usage(input=2000, cache_read=1000, output=200) and agent.cost == AGENT_CALL == Decimal(
        "0.00825"
    )
    assert agent.extra == {"recorded_cost": "0.00875"}  # LangSmith's own figure is kept, not used
    assert (
        agent.session_id == "t1" and agent.feature == "support" and agent.user_id == "u1" and agent.provider == "openai"
    )
    assert agent.trace_id == "00000000-0000-4000-8000-000000000001" and agent.latency_s == 1.5
    assert tool.cost == 0 and tool.session_id == "t1"
    assert classify.usage == Usage(input=500, output=10) and classify.cost == CLASSIFY_CALL
    assert house.cost == Decimal("0.0042") and house.priced  # a model the catalog lacks: the recorded cost
    assert failed.cost is None and failed.error.startswith("RateLimitError") and failed.usage == Usage()


def test_replay_a_langsmith_export_with_a_remap():
    r = replay(langsmith_events(DATA / "langsmith_runs.json", catalog=PRICES),
               Scenario(remaps=[Remap("gpt-4o", "gpt-4o-mini")]), catalog=PRICES)  # fmt: skip
    [row] = r.rows
    assert row.key == ("support",) and row.before.calls == 5
    assert row.before.cost == AGENT_CALL + CLASSIFY_CALL + Decimal("0.0042")
    mini = (2000 * Decimal("0.15") + 1000 * Decimal("0.075") + 200 * Decimal("0.60")) / M  # gpt-4o-2024-08-06 matched
    assert row.after.cost == mini + CLASSIFY_CALL + Decimal("0.0042")
    assert row.before.unpriced_calls == row.after.unpriced_calls == 0  # the failed call has no cost, not an unknown one


def test_otlp_json_spans_become_priced_events():
    events = list(otel_events(DATA / "otel_genai_spans.json", catalog=PRICES))
    assert [(e.kind, e.model, e.feature) for e in events] == [
        ("llm", "gpt-4o-2024-08-06", "support"),
        ("tool", None, "support"),
        ("llm", "gpt-4o-mini", "triage"),
        ("llm", "gpt-4o", None),
    ]  # invoke_agent is left out
    agent, tool, classify, failed = events
    assert agent.usage == Usage(input=2000, cache_read=1000, output=200) and agent.cost == AGENT_CALL
    assert agent.requested_model == "gpt-4o" and agent.session_id == "c1" and agent.step == "agent"
    assert agent.parent_id == "eee19b7ec3c1b174" and agent.latency_s == 1.5 and agent.ts == 1796032801.0
    assert tool.step == "lookup_order"
    assert classify.cost == CLASSIFY_CALL and classify.provider == "openai"  # from the catalog's price
    assert failed.error == "RateLimitError" and failed.cost is None


def test_replay_otel_spans_by_session_with_doubled_prices():
    doubled = PriceCatalog.from_dict({
        "gpt-4o": {"input": "5", "cache_read": "2.50", "output": "20"},
        "gpt-4o-mini": {"input": "0.30", "cache_read": "0.15", "output": "1.20"},
    })  # fmt: skip
    r = replay(otel_events(DATA / "otel_genai_spans.json", catalog=PRICES), Scenario(prices=doubled),
               by="session_id", catalog=PRICES)  # fmt: skip
    assert r.total.before.cost == AGENT_CALL + CLASSIFY_CALL and r.total.after.cost == 2 * r.total.before.cost


def test_inputs_that_are_not_what_they_claim_fail_loudly(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not JSON"):
        list(langsmith_events(bad, catalog=PRICES))
    with pytest.raises(ConfigurationError, match="list of runs"):
        list(langsmith_events({"run": 1}, catalog=PRICES))
    over = [{"id": "r1", "run_type": "llm", "extra": {"invocation_params": {"model": "gpt-4o"}},
             "prompt_tokens": 10, "completion_tokens": 1, "prompt_token_details": {"cache_read": 50}}]  # fmt: skip
    with pytest.raises(ConfigurationError, match="run #0 .r1.*exceed"):
        list(langsmith_events(over, catalog=PRICES))
    with pytest.raises(ConfigurationError, match="resourceSpans"):
        list(otel_events({"spans": []}, catalog=PRICES))
    with pytest.raises(ConfigurationError, match="cannot read"):
        list(otel_events(tmp_path / "missing.json", catalog=PRICES))


def test_json_lines_export_reads_like_a_list(tmp_path):
    runs = json.loads((DATA / "langsmith_runs.json").read_text())
    lines = tmp_path / "runs.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    assert [e.cost for e in langsmith_events(lines, catalog=PRICES)] == [
        e.cost for e in langsmith_events(DATA / "langsmith_runs.json", catalog=PRICES)
    ]


def test_cli_replays_a_langsmith_export_and_otel_spans(capsys):
    from agentcost_core.cli import main

    expected = replay(langsmith_events(DATA / "langsmith_runs.json"), Scenario(), catalog=None).total.before.cost
    assert main(["replay", "--langsmith", str(DATA / "langsmith_runs.json"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert Decimal(data["total"]["before"]["cost"]) == expected and data["total"]["before"]["calls"] == 5
    assert main(["replay", "--otel", str(DATA / "otel_genai_spans.json"), "--by", "session", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["key"] == ["c1"]
    assert main(["replay", "--otel", "x.json", "--ledger", "memory://"]) == 2


def test_cli_profiles_a_langsmith_export_and_otel_spans(capsys):
    from agentcost_core.cli import main

    events = list(langsmith_events(DATA / "langsmith_runs.json"))
    assert main(["profile", "--langsmith", str(DATA / "langsmith_runs.json"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calls"] == 5 and data["sessions"] == 1
    assert Decimal(data["cost"]) == sum(e.cost for e in events if e.cost is not None)
    curve = data["context_curve"]
    assert [p["prompt_tokens"] for p in curve] == [3000, 500, 800, 0]  # the session's four model calls
    assert main(["profile", "--otel", str(DATA / "otel_genai_spans.json")]) == 0
    assert "findings" in capsys.readouterr().out
    assert main(["profile", "--otel", "a.json", "--since", "7d"]) == 2
    assert main(["profile", "--otel", "a.json", "--langsmith", "b.json"]) == 2


def test_a_langsmith_runs_web_searches_are_priced_and_replayed_with_their_fee():
    from langchain_core.load import dumpd
    from langchain_core.messages import AIMessage

    usage = {"input_tokens": 1000, "output_tokens": 400, "server_tool_use": {"web_search_requests": 3}}
    message = AIMessage(
        content="news",
        usage_metadata={"input_tokens": 1000, "output_tokens": 400, "total_tokens": 1400},
        response_metadata={"model": "claude-x", "usage": usage},
    )
    run = {"id": "r1", "run_type": "llm", "start_time": "2026-11-30T10:00:00", "end_time": "2026-11-30T10:00:01",
           "extra": {"invocation_params": {"model": "claude-x"}},
           "outputs": {"generations": [[{"text": "news", "message": dumpd(message)}]]}}  # fmt: skip
    prices = PriceCatalog.from_dict({
        "claude-x": {"provider": "anthropic", "input": "3", "output": "15", "tool_fees": {"web_search": "0.01"}},
    })  # fmt: skip
    tokens = (1000 * Decimal(3) + 400 * Decimal(15)) / M
    [event] = langsmith_events([run], catalog=prices)
    assert event.cost == tokens + Decimal("0.03") and event.extra == {"server_tool_requests": {"web_search": 3}}
    same = replay([event], Scenario(remaps=[Remap("claude-x", "claude-x")]), catalog=prices).total
    assert same.after.cost == same.before.cost == Decimal("0.039")
    no_fee = PriceCatalog.from_dict({"claude-x": {"provider": "anthropic", "input": "3", "output": "15"}})
    [event] = langsmith_events([run], catalog=no_fee)
    # a fee the catalog lacks: listed, not in the cost, as the call path records it
    assert event.cost == tokens and event.extra["server_tools_unpriced"] == ["web_search"]
