"""``agentcost report`` shows hits and dollars saved per response-cache layer."""

from __future__ import annotations

from decimal import Decimal

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.cli import main
from agentcost_core.response_cache.summary import cache_summary


def _event(**kw) -> CostEvent:  # type: ignore[no-untyped-def]
    return CostEvent(model="gpt-4o-mini", usage=Usage(input=1_000, output=100), priced=True, **kw)


def test_report_lists_hits_rates_and_savings_per_layer(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "160")
    url = f"sqlite:///{tmp_path}/l.db"
    ledger = Ledger(url, sync=True)
    for _ in range(5):
        ledger.record(_event(cost=Decimal("0.0003")))
    ledger.record(_event(cost=Decimal(0), cache_hit=True, saved=Decimal("0.0003"), extra={"cache": "exact"}))
    ledger.record(_event(cost=Decimal(0), cache_hit=True, saved=Decimal("0.0003"), extra={"cache": "exact"}))
    ledger.record(_event(cost=Decimal(0), cache_hit=True, saved=Decimal("0.0005"), extra={"cache": "semantic"}))
    ledger.close()
    assert main(["report", "--ledger", url]) == 0
    out = capsys.readouterr().out
    assert "response cache [exact]: 2 hits (25.0% of 8 calls), $0.0006 saved" in out
    assert "response cache [semantic]: 1 hits (12.5% of 8 calls), $0.0005 saved" in out
    assert "response cache, all layers: $0.0011 saved" in out


def test_hits_of_another_llm_cache_are_their_own_layer() -> None:
    summary = cache_summary([_event(cost=Decimal(0), cache_hit=True, saved=Decimal("0.01")), _event(cost=Decimal(1))])
    assert list(summary.layers) == ["llm-cache"]
    assert summary.layers["llm-cache"].hits == 1 and summary.saved == Decimal("0.01")
