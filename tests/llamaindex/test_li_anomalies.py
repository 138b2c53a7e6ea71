"""instrument(anomalies=...) feeds every LlamaIndex LLM call to the spend anomaly detector."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import RawChatLLM, openai_usage, user

from agentcost_core.alerts import Alert, SpendAnomalies
from agentcost_llamaindex import instrument


def test_instrument_feeds_each_call_and_a_spike_alerts_once() -> None:
    got: list[Alert] = []
    with instrument("memory://", anomalies=SpendAnomalies(alerts=got.append), agent_id="a", feature="f") as h:
        small = RawChatLLM(model="gpt-4o", raw={"model": "gpt-4o-2024-08-06", "usage": openai_usage(100, 10)})
        for _ in range(12):
            small.chat([user("hi")])
        assert got == []
        big = RawChatLLM(model="gpt-4o", raw={"model": "gpt-4o-2024-08-06", "usage": openai_usage(100_000, 10_000)})
        big.chat([user("a huge prompt")])
    assert [a.kind for a in got] == ["anomaly.spike"] and got[0].attribution == {"agent_id": "a", "feature": "f"}
    assert got[0].value == h.events[-1].cost
