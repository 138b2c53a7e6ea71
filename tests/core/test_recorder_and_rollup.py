"""Pricing and recording of one call, unpriced warnings, cache hits, and rollups."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from agentcost_core import CostEvent, CostRecorder, Ledger, Usage, rollup
from agentcost_core.accountant import _warned_unpriced
from agentcost_core.rollup import percentile

M = Decimal(1_000_000)


def test_record_prices_exactly_and_keeps_totals():
    r = CostRecorder("memory://", feature="f", user_id="u")
    e = r.record("gpt-4o-mini-2024-07-18", Usage(input=1000, cache_read=1000, output=100), requested_model="gpt-4o-mini")
    expected = (1000 * Decimal("0.15") + 1000 * Decimal("0.075") + 100 * Decimal("0.60")) / M
    assert e.cost == expected and e.priced and e.provider == "openai"
    assert e.feature == "f" and e.user_id == "u"
    r.record("gpt-4o-mini", Usage(input=10), feature="other")
    assert r.total_cost == expected + 10 * Decimal("0.15") / M
    assert r.usage_by_model["gpt-4o-mini-2024-07-18"] == Usage(input=1000, cache_read=1000, output=100)
    assert [x.feature for x in r.events] == ["f", "other"]
    assert r.ledger.count() == 2


def test_unknown_model_is_unpriced_and_warned_once_per_model(caplog):
    _warned_unpriced.discard("house-llm-9")
    r = CostRecorder("memory://")
    with caplog.at_level(logging.WARNING, logger="agentcost"):
        a = r.record("house-llm-9", Usage(input=5, output=5))
        r.record("house-llm-9", Usage(input=5, output=5))
    assert a.cost is None and not a.priced
    assert caplog.text.count("house-llm-9") == 1 and "UNPRICED" in caplog.text
    assert r.total_cost == 0


def test_requested_model_prices_when_the_served_name_is_unknown():
    r = CostRecorder("memory://")
    e = r.record("gpt-4o-mini-custom-deploy-x", Usage(input=M), requested_model="gpt-4o-mini")
    assert e.cost == Decimal("0.15")


def test_cache_hit_costs_zero_and_records_the_saving():
    r = CostRecorder("memory://")
    e = r.record("gpt-4o", Usage(input=1000, output=100), cache_hit=True)
    assert e.cost == 0 and e.saved == (1000 * Decimal("2.5") + 100 * Decimal(10)) / M and e.cache_hit


def test_failed_call_has_no_invented_cost():
    r = CostRecorder("memory://")
    e = r.record("gpt-4o", None, error="RateLimitError: slow down")
    assert e.cost is None and e.usage == Usage() and e.error.startswith("RateLimitError")


def test_bad_configuration_fails_at_construction():
    with pytest.raises(TypeError, match="unknown attribution"):
        CostRecorder("memory://", customer="x")
    with pytest.raises(TypeError, match="catalog"):
        CostRecorder("memory://", catalog={"gpt-4o": {}})
    with pytest.raises(TypeError, match="ledger"):
        CostRecorder(42)


def test_percentile_nearest_rank():
    vals = [Decimal(i) for i in range(1, 101)]
    assert percentile(vals, 50) == 50 and percentile(vals, 95) == 95 and percentile(vals, 99) == 99
    assert percentile([Decimal(7)], 99) == 7 and percentile([], 50) is None


def _ev(cost, **kw):
    return CostEvent(model=kw.pop("model", "gpt-4o"), usage=Usage(input=100, output=10), cost=cost, priced=cost is not None, **kw)


def test_rollup_groups_sessions_unpriced_and_projection():
    now = time.time()
    events = [
        _ev(Decimal("0.01"), feature="a", session_id="s1", ts=now - 3600),
        _ev(Decimal("0.03"), feature="a", session_id="s1", ts=now - 1800),
        _ev(Decimal("0.02"), feature="b", session_id="s2", ts=now - 60),
        _ev(None, feature="b", model="mystery", session_id="s2", ts=now - 30),
        _ev(Decimal(0), feature="b", cache_hit=True, saved=Decimal("0.05"), ts=now - 10),
    ]
    r = rollup(events, by="feature", since=now - 7200, until=now)
    a, b = r.rows
    assert a.key == ("a",) and a.cost == Decimal("0.04") and a.calls == 2
    assert b.unpriced_calls == 1 and b.unpriced_models == ["mystery"] and b.cache_savings == Decimal("0.05")
    assert r.total.sessions == 2 and r.total.per_session["p50"] == Decimal("0.02")
    assert r.total.per_session["p99"] == Decimal("0.04")
    # $0.06 in a 2-hour window → 30 days × 12 windows/day
    assert r.projected_monthly == Decimal("0.06") * 12 * 30
    by_day = rollup(events, by=("day", "model"))
    assert all(len(row.key) == 2 for row in by_day.rows)
    with pytest.raises(ValueError, match="cannot group by"):
        rollup(events, by="colour")


def test_rollup_values_prompt_cache_savings_at_the_input_price():
    e = CostEvent(model="claude-sonnet-4-5", usage=Usage(input=10, cache_read=100_000), cost=Decimal("0.03"), priced=True)
    assert rollup([e], by="model").total.prompt_cache_savings == (Decimal("3.00") - Decimal("0.30")) / 10
    # above 200k prompt tokens the long-context rates apply to the saving too
    big = CostEvent(model="claude-sonnet-4-5", usage=Usage(input=10, cache_read=M), cost=Decimal("0.6"), priced=True)
    assert rollup([big], by="model").total.prompt_cache_savings == Decimal("6.00") - Decimal("0.60")


def test_ledger_rollup_filters():
    lg = Ledger("memory://")
    lg.record(_ev(Decimal("1"), feature="a", user_id="u1"))
    lg.record(_ev(Decimal("2"), feature="a", user_id="u2"))
    assert lg.rollup(by="user_id", feature="a").total.cost == Decimal(3)
    assert lg.rollup(by="feature", user_id="u2").total.cost == Decimal(2)


def test_provider_names_are_canonical_whatever_the_framework_calls_them():
    r = CostRecorder("memory://")
    assert r.record("gemini-2.5-flash", Usage(input=1), provider="google_genai").provider == "google"
    assert r.record("gpt-4o", Usage(input=1), provider="azure").provider == "azure"  # who served it is kept
    assert r.record("claude-haiku-4-5", Usage(input=1)).provider == "anthropic"  # from the catalog


def test_rollup_cache_read_share_per_row():
    events = [
        CostEvent(model="claude-sonnet-4-5", usage=Usage(input=100, cache_read=900, output=5), cost=Decimal("0.01"),
                  priced=True, feature="support"),
        CostEvent(model="claude-sonnet-4-5", usage=Usage(input=50, cache_write_1h=50, output=5), cost=Decimal("0.01"),
                  priced=True, feature="support"),
        CostEvent(model="gpt-4o", usage=Usage(input=300, output=5), cost=Decimal("0.001"), priced=True, feature="search"),
        CostEvent(model="gpt-4o", usage=Usage(), error="RateLimitError", feature="empty"),
    ]  # fmt: skip
    r = rollup(events, by="feature")
    rows = {row.key[0]: row for row in r.rows}
    assert rows["support"].cache_read_share == Decimal("0.8182")  # 900 / (100 + 900 + 50 + 50)
    assert rows["search"].cache_read_share == Decimal(0)
    assert rows["empty"].cache_read_share is None  # no prompt tokens: no share, not 0%
    assert r.total.cache_read_share == Decimal("0.6429")  # 900 / 1400
    d = rows["support"].as_dict()
    assert d["cache_read_share"] == "0.8182" and d["prompt_cache_savings"] == str(900 * Decimal("2.70") / M)
    assert rows["empty"].as_dict()["cache_read_share"] is None


def test_recorded_events_have_every_field_set():
    """record_call builds the event slot by slot: no field may be left unset."""
    import dataclasses

    rec = CostRecorder("memory://")
    for event in (rec.record("gpt-4o", Usage(input=10, output=2)), rec.record(None, None, error="boom")):
        for f in dataclasses.fields(CostEvent):
            getattr(event, f.name)  # an unset slot raises AttributeError
        assert event.as_dict()["id"]
