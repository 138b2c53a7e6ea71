"""The anomaly breaker: an anomaly trips the kill switch for its agent (or feature) in the shared
store, a second process stops before its next model call, and ``agentcost killswitch reset`` lets
it through again. A real subprocess, a real LangChain chat model and handler, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from agentcost_core import CostEvent, KillSwitch, Ledger
from agentcost_core.alerts import Alert, SpendAnomalies

T0 = 1_800_000_000.0

CHILD = textwrap.dedent(
    """
    import sys
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from agentcost_core import AgentHalted, KillSwitch
    from agentcost_langchain import CostCallbackHandler

    switch = KillSwitch(env=None, file=sys.argv[1], ttl=0)  # read on every check
    handler = CostCallbackHandler("memory://", kill_switch=switch, agent_id=sys.argv[2], feature="refunds")
    for line in sys.stdin:
        model = GenericFakeChatModel(messages=iter([AIMessage(content="done")]))
        try:
            model.invoke("hello", config={"callbacks": [handler]})
            print("ok", flush=True)
        except AgentHalted as e:
            print("halted", e.reason, flush=True)
    """
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentcost_core.cli", "killswitch", *args], capture_output=True, check=False,
                          text=True, timeout=60, env=os.environ.copy())  # fmt: skip


def steady_ledger() -> Ledger:
    ledger = Ledger("memory://", sync=True)
    ledger.record_many([CostEvent("gpt-4o-mini", cost=Decimal("0.01"), priced=True, agent_id="support-bot",
                                  feature="refunds", ts=T0 - 60 * i - 30) for i in range(120)])  # fmt: skip
    return ledger


@pytest.fixture
def child(tmp_path: Path):  # type: ignore[no-untyped-def]
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    switch_file = tmp_path / "kill-switch.json"
    proc = subprocess.Popen([sys.executable, str(script), str(switch_file), "support-bot"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())  # fmt: skip

    def next_call() -> str:
        proc.stdin.write("call\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return proc.stdout.readline().strip()  # type: ignore[union-attr]

    yield switch_file, next_call
    proc.stdin.close()  # type: ignore[union-attr]
    proc.wait(timeout=30)


def test_an_anomaly_stops_a_second_process_until_the_cli_resets_it(child) -> None:  # type: ignore[no-untyped-def]
    switch_file, next_call = child
    assert next_call() == "ok"
    got: list[Alert] = []
    switch = KillSwitch(env=None, file=switch_file, ttl=0)
    det = SpendAnomalies(alerts=got.append, ledger=steady_ledger(), clock=lambda: T0, trip=switch)
    det.observe(CostEvent("gpt-4o", cost=Decimal("0.15"), priced=True, agent_id="support-bot", feature="refunds"))
    assert det.flush(timeout=10)
    [alert] = got
    assert alert.kind == "anomaly.spike" and alert.severity == "critical"
    assert "kill switch tripped for agent 'support-bot'" in alert.message
    assert next_call() == "halted kill_switch"  # the other process stops before its next call
    status = json.loads(cli("status", "--file", str(switch_file), "--format", "json").stdout)
    assert status["agents"] == ["support-bot"] and status["reason"].startswith("agentcost anomaly.spike")
    reset = cli("reset", "--agent", "support-bot", "--file", str(switch_file))
    assert reset.returncode == 0 and "kill switch: off" in reset.stdout
    assert next_call() == "ok"


def test_trip_by_feature_stops_every_agent_of_that_feature(tmp_path: Path) -> None:
    switch = KillSwitch(env=None, file=tmp_path / "ks.json", ttl=0)
    det = SpendAnomalies(alerts=[], ledger=steady_ledger(), clock=lambda: T0, trip=switch, trip_by="feature")
    det.observe(CostEvent("gpt-4o", cost=Decimal("0.15"), priced=True, agent_id="support-bot", feature="refunds"))
    assert det.flush(timeout=10)
    assert switch.is_tripped("another-bot", "refunds") and not switch.is_tripped("another-bot", "search")
    assert "features: refunds" in cli("status", "--file", str(tmp_path / "ks.json")).stdout
    assert cli("reset", "--feature", "refunds", "--file", str(tmp_path / "ks.json")).returncode == 0
    assert not switch.is_tripped("another-bot", "refunds")


def test_the_breaker_is_off_by_default(tmp_path: Path) -> None:
    switch = KillSwitch(env=None, file=tmp_path / "ks.json", ttl=0)
    det = SpendAnomalies(alerts=[], ledger=steady_ledger(), clock=lambda: T0)
    det.observe(CostEvent("gpt-4o", cost=Decimal("0.15"), priced=True, agent_id="support-bot", feature="refunds"))
    assert det.flush(timeout=10) and not switch.state().tripped


def test_cli_trip_and_reset_through_redis(redis_url: str) -> None:
    key = f"agentcost-test:ks:{os.getpid()}"
    try:
        tripped = cli("trip", "--agent", "a-1", "--reason", "by hand", "--redis-url", redis_url, "--redis-key", key)
        assert tripped.returncode == 0 and "agents:   a-1" in tripped.stdout
        with KillSwitch(env=None, redis_url=redis_url, redis_key=key) as switch:
            assert switch.refresh().agents == {"a-1"}
        assert cli("reset", "--redis-url", redis_url, "--redis-key", key).returncode == 0
        with KillSwitch(env=None, redis_url=redis_url, redis_key=key) as switch:
            assert not switch.refresh().tripped
    finally:
        import redis

        redis.Redis.from_url(redis_url).delete(key)


def test_cli_without_a_store_fails_with_a_clear_message(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AGENTCOST_KILL_SWITCH_FILE", raising=False)
    monkeypatch.delenv("AGENTCOST_KILL_SWITCH_REDIS_URL", raising=False)
    done = cli("status")
    assert done.returncode == 2 and "needs a store: --file PATH or --redis-url URL" in done.stderr
