"""anomalies= on the LangChain handler, track_costs and BudgetEnforcer: every model call is fed to
the detector through the core recorder, and an anomaly can stop the agent's next call."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agentcost_core import AgentHalted, Budget, BudgetEnforcer, KillSwitch
from agentcost_core.alerts import Alert, SpendAnomalies
from agentcost_langchain import CostCallbackHandler, track_costs


def model(input_tokens: int, output_tokens: int) -> GenericFakeChatModel:
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens,
             "total_tokens": input_tokens + output_tokens}  # fmt: skip
    reply = AIMessage(content="ok", usage_metadata=usage, response_metadata={"model_name": "gpt-4o"})
    return GenericFakeChatModel(messages=iter([reply]))


def test_the_handler_feeds_the_detector_and_the_breaker_stops_the_next_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    got: list[Alert] = []
    switch = KillSwitch(env=None, file=tmp_path / "ks.json", ttl=0)
    anomalies = SpendAnomalies(alerts=got.append, trip=switch)
    h = CostCallbackHandler("memory://", anomalies=anomalies, kill_switch=switch, agent_id="bot", feature="f")
    for _ in range(12):
        model(100, 10).invoke("hi", config={"callbacks": [h]})
    model(100_000, 10_000).invoke("a huge prompt", config={"callbacks": [h]})
    assert [a.kind for a in got] == ["anomaly.spike"]
    assert anomalies.flush(timeout=10)
    with pytest.raises(AgentHalted, match="Kill switch is on for agent 'bot'"):
        model(100, 10).invoke("hi", config={"callbacks": [h]})
    switch.reset(agent_id="bot")
    model(100, 10).invoke("hi", config={"callbacks": [h]})


def test_track_costs_and_budget_enforcer_take_anomalies_too() -> None:
    got: list[Alert] = []
    with track_costs("memory://", anomalies=SpendAnomalies(alerts=got.append)) as h:
        for _ in range(12):
            model(100, 10).invoke("hi")
        model(100_000, 10_000).invoke("a huge prompt")
    assert [a.kind for a in got] == ["anomaly.spike"] and h.recorder.anomalies is not None

    got2: list[Alert] = []
    enforcer = BudgetEnforcer(Budget(usd=100), alerts=[], anomalies=SpendAnomalies(alerts=got2.append))
    h2 = CostCallbackHandler("memory://", budgets=enforcer)
    for _ in range(12):
        model(100, 10).invoke("hi", config={"callbacks": [h2]})
    model(100_000, 10_000).invoke("a huge prompt", config={"callbacks": [h2]})
    assert [a.kind for a in got2] == ["anomaly.spike"]
