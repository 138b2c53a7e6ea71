"""``agentcost replay``: recorded traffic (a real SQLite ledger of tests/synthetic_traffic.py) recomputed
under each change, with the expected dollars worked out by hand from the test prices."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import synthetic_traffic as traffic

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.errors import ConfigurationError
from agentcost_core.prices import PriceCatalog
from agentcost_core.replay import Remap, Scenario, Scope, replay

M = Decimal(1_000_000)
BEFORE = {"chat": Decimal("0.028"), "research": Decimal("0.392"), "triage": Decimal("0.202")}


def doubled() -> PriceCatalog:
    models = {
        m: {k: v if k == "provider" else str(Decimal(v) * 2) for k, v in p.items()}
        for m, p in traffic.PRICES["models"].items()
    }
    return PriceCatalog.from_dict({"models": models})


@pytest.fixture
def ledger(tmp_path):
    with Ledger(f"sqlite:///{tmp_path}/ledger.db", sync=True) as led:
        led.record_many(traffic.events())
        yield led


def _replay(ledger, scenario, **kw):
    return replay(ledger.iter_events(), scenario, catalog=traffic.catalog(), **kw)


def _after(r):
    return {row.key[0]: row.after.cost for row in r.rows}


def test_no_change_replays_the_recorded_costs(ledger):
    r = _replay(ledger, Scenario())
    assert {row.key[0]: row.before.cost for row in r.rows} == BEFORE == _after(r)
    assert r.total.before.calls == r.total.after.calls == 226 and r.total.delta == 0


def test_every_price_doubled_is_exactly_twice_per_feature(ledger, tmp_path):
    r = _replay(ledger, Scenario(prices=doubled()))
    for row in r.rows:
        assert row.after.cost == 2 * row.before.cost and row.change == Decimal("1.0000")
        for q in ("p50", "p95", "p99"):
            assert row.after.per_call[q] == 2 * row.before.per_call[q]
    assert r.total.after.cost == 2 * Decimal("0.622")
    assert r.total.after.per_session["p99"] == 2 * Decimal("0.00028")
    # another catalog version (a whole catalog, not merged) reprices every call too
    assert _after(_replay(ledger, Scenario(prices=doubled(), prices_replace=True))) == {
        k: 2 * v for k, v in BEFORE.items()
    }


def test_a_price_file_reprices_only_the_models_it_names(ledger):
    small_only = PriceCatalog.from_dict({"small-model": {"input": "0.20", "cache_read": "0.02", "output": "0.80"}})
    after = _after(_replay(ledger, Scenario(prices=small_only)))
    assert after == {"chat": Decimal("0.056"), "research": Decimal("0.392"), "triage": Decimal("0.202")}


def test_remap_frontier_to_nano_for_one_feature_prices_the_recorded_usage(ledger):
    r = _replay(ledger, Scenario(remaps=[Remap("big-model", "small-model", Scope("triage"))]))
    nano = (2000 * Decimal("0.10") + 5 * Decimal("0.40")) / M
    assert _after(r) == {**BEFORE, "triage": 10 * nano}
    [triage] = [row for row in r.rows if row.key == ("triage",)]
    assert triage.delta == 10 * nano - Decimal("0.202") == Decimal("-0.19998")
    assert triage.after.usage == triage.before.usage  # same recorded usage, another model's price


def test_remap_by_tier(ledger):
    after = _after(_replay(ledger, Scenario(remaps=[Remap("frontier", "small-model")])))
    loop = sum((1000 * i * Decimal("0.10") + 100 * Decimal("0.40")) / M for i in range(1, 9))
    assert after == {"chat": BEFORE["chat"], "research": loop, "triage": 10 * (Decimal("0.0002") + Decimal("0.000002"))}
    assert loop == Decimal("0.00392")


def test_session_cap_lists_exactly_the_sessions_above_it(ledger):
    r = _replay(ledger, Scenario(session_cap=Decimal("0.05")))
    [loop] = r.stopped
    # loop: call 1 $0.014, call 2 $0.024 (spent $0.038); call 3 ($0.034) would pass $0.05: stopped there
    assert loop == {"session_id": "loop", "calls_run": 4, "calls_stopped": 12, "cost_until_stop": "0.038",
                    "cost_uncapped": "0.392", "avoided": "0.354"}  # fmt: skip
    assert _after(r)["research"] == Decimal("0.038") and r.total.after.cost == Decimal("0.622") - Decimal("0.354")
    assert r.total.after.calls == 226 - 12
    # the ordinary sessions cost $0.00028: a cap at that amount stops only the loop, one below it all 101
    assert [s["session_id"] for s in _replay(ledger, Scenario(session_cap=Decimal("0.00028"))).stopped] == ["loop"]
    assert len(_replay(ledger, Scenario(session_cap=Decimal("0.00027"))).stopped) == 101


def test_prompt_delta_per_feature_and_step(ledger):
    after = _after(_replay(ledger, Scenario(prompt_deltas=[(500, Scope("chat", "answer")), (-500, Scope("research"))])))
    assert after["chat"] == BEFORE["chat"] + 200 * 500 * Decimal("0.10") / M == Decimal("0.038")
    assert after["research"] == BEFORE["research"] - 8 * 500 * Decimal(10) / M == Decimal("0.352")
    assert after["triage"] == BEFORE["triage"]
    assert _after(_replay(ledger, Scenario(prompt_deltas=[(500, Scope.parse("*/other"))]))) == BEFORE


def test_prompt_cache_hit_rate(ledger):
    after = _after(_replay(ledger, Scenario(cache_hit_rate=Decimal("0.5"))))
    assert after["chat"] == 200 * (500 * Decimal("0.10") + 500 * Decimal("0.01") + 100 * Decimal("0.40")) / M
    assert after["chat"] == Decimal("0.019")
    assert after["triage"] == 10 * (1000 * Decimal(10) + 1000 * Decimal(1) + 5 * Decimal(40)) / M


def test_context_cap_on_input_tokens(ledger):
    after = _after(_replay(ledger, Scenario(context_cap=3000)))
    assert after["research"] == Decimal("0.014") + Decimal("0.024") + 6 * Decimal("0.034") == Decimal("0.242")
    assert after["chat"] == BEFORE["chat"] and after["triage"] == BEFORE["triage"]


def test_group_by_any_rollup_field_and_unpriced_calls_stay_apart():
    c = traffic.catalog()
    u = Usage(input=1000, output=100)
    events = [
        CostEvent("big-model", u, c.cost("big-model", u), feature="a", user_id="u1"),
        CostEvent("house-model", u, None, feature="a", user_id="u2"),
    ]
    r = replay(events, Scenario(remaps=[Remap("house-model", "small-model")]), by=("feature", "user_id"), catalog=c)
    rows = {row.key: row for row in r.rows}
    assert rows[("a", "u2")].before.unpriced_calls == 1 and rows[("a", "u2")].before.cost == 0
    assert rows[("a", "u2")].after.unpriced_calls == 0 and rows[("a", "u2")].after.cost == Decimal("0.00014")
    with pytest.raises(ConfigurationError, match="group by"):
        replay(events, Scenario(), by="colour", catalog=c)


def test_bad_scenarios_fail_loudly():
    with pytest.raises(ConfigurationError, match="cache_hit_rate"):
        Scenario(cache_hit_rate=Decimal("1.5"))
    with pytest.raises(ConfigurationError, match="context_cap"):
        Scenario(context_cap=0)
    with pytest.raises(ConfigurationError, match="session_cap"):
        Scenario(session_cap=Decimal(0))
    with pytest.raises(ConfigurationError, match="no-such-model"):
        replay([], Scenario(remaps=[Remap("big-model", "no-such-model")]), catalog=traffic.catalog())


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity", "-1", "abc"])
def test_a_scenario_refuses_a_session_cap_or_cache_hit_rate_that_is_not_a_finite_number_in_range(value):
    with pytest.raises(ConfigurationError, match=r"^session_cap must be a finite amount > 0 USD, got "):
        Scenario(session_cap=value)
    with pytest.raises(ConfigurationError, match=r"^cache_hit_rate must be between 0 and 1, got "):
        Scenario(cache_hit_rate=value)


def test_json_shape_holds_the_contract(ledger):
    data = json.loads(json.dumps(_replay(ledger, Scenario(prices=doubled())).as_dict()))
    row = data["rows"][0]
    assert row["key"] == ["research"] and row["before"]["calls"] == 16 and row["before"]["cost"] == "0.392"
    assert Decimal(row["after"]["cost"]) == Decimal("0.784")
    assert Decimal(data["total"]["after"]["cost"]) == Decimal("1.244") and data["total"]["before"]["calls"] == 226


@pytest.fixture
def cli_ledger(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    with Ledger(url, sync=True) as led:
        led.record_many(traffic.events())
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(traffic.PRICES))  # the test models, so the default catalog knows them
    return url, prices, tmp_path


def test_cli_replay_json_with_every_change(cli_ledger, capsys, monkeypatch):
    from agentcost_core.cli import main

    url, prices, tmp_path = cli_ledger
    monkeypatch.setenv("AGENTCOST_PRICES", str(prices))
    monkeypatch.setattr("agentcost_core.prices.catalog._DEFAULT", None)
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"models": {m: {k: str(Decimal(v) * 2) if k != "provider" else v for k, v in p.items()}
                                            for m, p in traffic.PRICES["models"].items()}}))  # fmt: skip
    assert main(["replay", "--ledger", url, "--prices", str(twice), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["key"][0]: Decimal(r["after"]["cost"]) / Decimal(r["before"]["cost"]) for r in data["rows"]} == {
        "research": 2, "triage": 2, "chat": 2}  # fmt: skip
    args = ["replay", "--ledger", url, "--remap", "big-model=small-model@triage", "--prompt-delta", "500@chat/answer",
            "--session-cap", "0.05", "--by", "feature,model", "--format", "json"]  # fmt: skip
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    after = {tuple(r["key"]): Decimal(r["after"]["cost"]) for r in data["rows"]}
    assert after[("triage", "big-model")] == Decimal("0.00202")  # rows stay keyed by the recorded model
    assert after[("chat", "small-model")] == Decimal("0.038") and after[("research", "big-model")] == Decimal("0.038")
    assert [s["session_id"] for s in data["stopped_sessions"]] == ["loop"]
    assert main(["replay", "--ledger", url, "--prompt-delta=-500@research", "--format", "json"]) == 0
    after = {r["key"][0]: Decimal(r["after"]["cost"]) for r in json.loads(capsys.readouterr().out)["rows"]}
    assert after["research"] == Decimal("0.352") and after["chat"] == Decimal("0.028")
    assert main(["replay", "--ledger", url, "--where", "feature=chat", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in data["rows"]] == [["chat"]] and data["total"]["before"]["calls"] == 200
    until = datetime.fromtimestamp(traffic.T0 + 200, tz=UTC).isoformat()  # the ordinary sessions' 200 calls
    assert main(["replay", "--ledger", url, "--until", until, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["before"]["calls"] == 200


def test_cli_replay_table_and_csv(cli_ledger, capsys, monkeypatch):
    from agentcost_core.cli import main

    url, prices, _ = cli_ledger
    monkeypatch.setenv("AGENTCOST_PRICES", str(prices))
    monkeypatch.setattr("agentcost_core.prices.catalog._DEFAULT", None)
    assert (
        main(["replay", "--ledger", url, "--cache-hit-rate", "0.5", "--context-cap", "3000", "--session-cap", "0.05"])
        == 0
    )
    out = capsys.readouterr().out
    assert "prompt-cache hit rate 0.5" in out and "$0.622" in out and "need 130 columns" in out
    assert "loop" in out and "$0.1025" in out  # the loop stopped by the cap: what it would have cost more
    assert main(["replay", "--ledger", url, "--remap", "frontier=small-model", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by = {r["feature"]: r for r in rows}
    assert Decimal(by["research"]["cost_after"]) == Decimal("0.00392") and by["research"]["calls_before"] == "16"
    assert Decimal(by["total"]["cost_before"]) == Decimal("0.622")
    for bad in (
        ["--remap", "big-model"],
        ["--prompt-delta", "x@chat"],
        ["--cache-hit-rate", "2"],
        ["--session-cap", "abc"],
    ):
        assert main(["replay", "--ledger", url, *bad]) == 2


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--session-cap", "nan", "agentcost: --session-cap takes a number, got 'nan'"),
        ("--session-cap", "inf", "agentcost: --session-cap takes a number, got 'inf'"),
        ("--session-cap", "-Infinity", "agentcost: --session-cap takes a number, got '-Infinity'"),
        ("--session-cap", "-1", "agentcost: session_cap must be a finite amount > 0 USD, got -1"),
        ("--cache-hit-rate", "nan", "agentcost: --cache-hit-rate takes a number, got 'nan'"),
        ("--cache-hit-rate", "inf", "agentcost: --cache-hit-rate takes a number, got 'inf'"),
        ("--cache-hit-rate", "-0.5", "agentcost: cache_hit_rate must be between 0 and 1, got -0.5"),
    ],
)
def test_cli_replay_refuses_nan_infinite_and_negative_caps_and_rates_in_one_line_exit_2(
    cli_ledger, capsys, flag, value, message
):
    from agentcost_core.cli import main

    url, _, _ = cli_ledger
    assert main(["replay", "--ledger", url, f"{flag}={value}"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [message]


def test_cli_replay_under_another_catalog_version(tmp_path, capsys):
    """``--prices`` with genai-prices data (a JSON list of providers) replaces the catalog: every call repriced."""
    from agentcost_core import CostRecorder
    from agentcost_core.cli import main

    url = f"sqlite:///{tmp_path}/l.db"
    with Ledger(url, sync=True) as ledger:
        rec = CostRecorder(ledger, feature="search")
        recorded = [rec.record("gpt-4o", Usage(input=1000 * k, cache_read=500, output=100)).cost for k in (1, 2, 3)]
    standard = PriceCatalog.default().get("gpt-4o").base
    version = [{
        "id": "openai", "name": "OpenAI", "api_pattern": "https://api\\\\.openai\\\\.com",
        "model_match": {"starts_with": "gpt-"},
        "models": [{"id": "gpt-4o", "match": {"starts_with": "gpt-4o"},
                    "prices": {"input_mtok": str(2 * standard.input), "output_mtok": str(2 * standard.output),
                               "cache_read_mtok": str(2 * standard.cache_read)}}],
    }]  # fmt: skip
    data = tmp_path / "data.json"
    data.write_text(json.dumps(version))
    assert main(["replay", "--ledger", url, "--prices", str(data), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changes"] == ["prices: another catalog version"]
    [row] = out["rows"]
    assert Decimal(row["before"]["cost"]) == sum(recorded) and Decimal(row["after"]["cost"]) == 2 * sum(recorded)
