"""The anomaly breaker: an anomaly trips the kill switch for its agent (or feature) in the shared
store, a second process stops before its next model call, and ``agentcost killswitch reset`` lets
it through again. A real subprocess, a real LangChain chat model and handler, the real CLI."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
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

    store, where, agent = sys.argv[1:4]
    if store == "file":
        switch = KillSwitch(env=None, file=where, ttl=0)  # read on every check
    else:
        switch = KillSwitch(env=None, redis_url=where, redis_key=sys.argv[4], ttl=0.5)  # read in the background
    handler = CostCallbackHandler("memory://", kill_switch=switch, agent_id=agent, feature="refunds")
    for line in sys.stdin:
        switch.wait_for_refresh(timeout=10)  # a Redis reading taken after the parent's last write
        model = GenericFakeChatModel(messages=iter([AIMessage(content="done")]))
        try:
            model.invoke("hello", config={"callbacks": [handler]})
            print("ok", flush=True)
        except AgentHalted as e:
            print("halted", e.reason, flush=True)
    """
)


class Child:
    """A second process running a LangChain model under the shared kill switch, one call per request."""

    def __init__(self, tmp_path: Path, *store_args: str) -> None:
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        self.proc = subprocess.Popen([sys.executable, str(script), *store_args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=os.environ.copy())  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line.strip())
        self.lines.put("<exited>")

    def next_call(self) -> str:
        self.proc.stdin.write("call\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.lines.get(timeout=60)

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=30)
        finally:
            self.proc.kill()


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
    switch_file = tmp_path / "kill-switch.json"
    c = Child(tmp_path, "file", str(switch_file), "support-bot")
    yield switch_file, c.next_call
    c.close()


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


def test_through_redis_the_breaker_stops_another_process_and_the_cli_lets_it_through(
    tmp_path: Path, redis_url: str
) -> None:
    key = f"agentcost-test:breaker:{os.getpid()}"
    c = Child(tmp_path, "redis", redis_url, "support-bot", key)
    try:
        assert c.next_call() == "ok"
        with KillSwitch(env=None, redis_url=redis_url, redis_key=key) as switch:
            det = SpendAnomalies(alerts=[], ledger=steady_ledger(), clock=lambda: T0, trip=switch)
            det.observe(
                CostEvent("gpt-4o", cost=Decimal("0.15"), priced=True, agent_id="support-bot", feature="refunds")
            )
            assert det.flush(timeout=10)
        assert c.next_call() == "halted kill_switch"
        assert cli("reset", "--agent", "support-bot", "--redis-url", redis_url, "--redis-key", key).returncode == 0
        assert c.next_call() == "ok"
    finally:
        c.close()
        import redis

        redis.Redis.from_url(redis_url).delete(key)


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
