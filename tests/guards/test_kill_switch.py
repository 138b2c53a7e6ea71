"""The kill switch: every source (env, file, real Redis, local HTTP), the TTL cache, per-agent
versus global trips, trip/reset, and unreachable sources under on_error open and closed."""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agentcost_core.errors import ConfigurationError
from agentcost_core.guards.kill_switch import KillSwitch, KillSwitchState
from agentcost_core.halts import AgentHalted, TerminationReason

ENV = "AGENTCOST_KILL_SWITCH"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def refreshed(ks: KillSwitch) -> None:
    """A check on a stale cache answers from it and asks for a background reading: wait for it."""
    n = ks.refreshes
    ks.is_tripped()
    assert ks.wait_for_refresh(10, after=n)


# -- environment variable --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " all ", "*"])
def test_env_global_values_stop_every_agent(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV, value)
    ks = KillSwitch()
    assert ks.is_tripped() and ks.is_tripped("any-agent")
    with pytest.raises(AgentHalted) as info:
        ks.check("any-agent")
    err = info.value
    assert err.reason is TerminationReason.KILL_SWITCH
    assert err.details == {"source": f"env:{ENV}", "agent_id": "any-agent", "reason": None, "global": True}
    assert "all agents" in str(err) and f"env:{ENV}" in str(err)


@pytest.mark.parametrize("value", ["", "0", "false", "False"])
def test_env_off_values_let_runs_proceed(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV, value)
    ks = KillSwitch()
    ks.check("a")
    ks.check()
    assert ks.state() == KillSwitchState()
    assert not ks.state().tripped


def test_env_agent_list_stops_only_those_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "research-bot, billing-bot")
    ks = KillSwitch()
    assert ks.is_tripped("research-bot") and ks.is_tripped("billing-bot")
    assert not ks.is_tripped("support-bot")
    assert not ks.is_tripped()  # an unnamed agent is only stopped by a global trip
    ks.check("support-bot")
    with pytest.raises(AgentHalted, match="agent 'billing-bot'") as info:
        ks.check("billing-bot")
    assert info.value.details["agent_id"] == "billing-bot"
    assert info.value.details["global"] is False
    state = ks.state()
    assert state.agents == {"research-bot", "billing-bot"} and not state.is_global


def test_env_json_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, json.dumps({"global": True, "reason": "provider outage"}))
    with pytest.raises(AgentHalted, match="provider outage") as info:
        KillSwitch().check("a")
    assert info.value.details["reason"] == "provider outage"


def test_custom_env_name_and_env_disabled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MY_SWITCH", "1")
    monkeypatch.setenv(ENV, "1")
    assert KillSwitch(env="MY_SWITCH").state().source == "env:MY_SWITCH"
    assert not KillSwitch(env=None, file=tmp_path / "absent").is_tripped()  # env=None ignores the variable


# -- TTL cache -------------------------------------------------------------------------------


def test_trip_is_seen_after_ttl_not_before(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    ks = KillSwitch(ttl=5.0, clock=clock)
    ks.check("a")  # reads "off" and caches it
    monkeypatch.setenv(ENV, "1")
    clock.advance(4.9)
    assert not ks.is_tripped("a")  # still inside the TTL: the cached state answers
    clock.advance(0.1)
    assert ks.is_tripped("a")
    monkeypatch.setenv(ENV, "0")
    clock.advance(1.0)
    assert ks.is_tripped("a")  # the un-trip is cached the same way
    clock.advance(5.0)
    assert not ks.is_tripped("a")


def test_ttl_zero_reads_every_time(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    ks = KillSwitch(ttl=0, clock=clock)
    assert not ks.is_tripped()
    monkeypatch.setenv(ENV, "1")
    assert ks.is_tripped()


def test_refresh_ignores_the_cache(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    ks = KillSwitch(clock=clock)
    assert not ks.is_tripped()
    monkeypatch.setenv(ENV, "bot")
    assert ks.refresh().agents == {"bot"}
    assert ks.is_tripped("bot")


# -- file ------------------------------------------------------------------------------------


def test_missing_file_is_off(tmp_path: Path) -> None:
    ks = KillSwitch(env=None, file=tmp_path / "kill")
    ks.check("a")
    assert ks.state() == KillSwitchState()


def test_file_text_format(tmp_path: Path) -> None:
    path = tmp_path / "kill"
    path.write_text("research-bot\n")
    ks = KillSwitch(env=None, file=path, ttl=0)
    assert ks.is_tripped("research-bot") and not ks.is_tripped("other")
    path.write_text("all\n")
    assert ks.is_tripped("other")
    with pytest.raises(AgentHalted) as info:
        ks.check("other")
    assert info.value.details["source"] == f"file:{path}"


def test_file_json_format(tmp_path: Path) -> None:
    path = tmp_path / "kill.json"
    path.write_text(json.dumps({"global": False, "agents": ["x", "y"], "reason": "runaway spend"}))
    ks = KillSwitch(env=None, file=path)
    state = ks.state()
    assert state == KillSwitchState(
        is_global=False, agents=frozenset({"x", "y"}), reason="runaway spend", source=f"file:{path}"
    )
    with pytest.raises(AgentHalted, match="runaway spend"):
        ks.check("y")
    ks.check("z")


def test_trip_and_reset_through_the_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "kill.json"
    operator = KillSwitch(env=None, file=path, clock=clock)
    worker = KillSwitch(env=None, file=path, clock=clock)
    worker.check("bot")  # cached "off"

    operator.trip("bot", reason="looping")
    assert json.loads(path.read_text()) == {"global": False, "agents": ["bot"], "reason": "looping"}
    with pytest.raises(AgentHalted, match="looping"):
        operator.check("bot")  # the writer sees its own trip at once
    worker.check("bot")  # the other instance only after its TTL
    clock.advance(5.0)
    refreshed(worker)
    with pytest.raises(AgentHalted):
        worker.check("bot")

    operator.trip(reason="incident")  # global on top of the agent
    assert operator.state().is_global and operator.state().agents == {"bot"}
    operator.reset("bot")
    assert operator.is_tripped("bot")  # resetting one agent does not lift the global trip
    operator.reset()
    operator.check("bot")
    assert json.loads(path.read_text()) == {"global": False, "agents": [], "reason": None}
    clock.advance(5.0)
    refreshed(worker)
    worker.check("bot")  # reset lets runs proceed


def test_malformed_file_keeps_last_state_when_open(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "kill.json"
    path.write_text('{"agents": ["bot"]}')
    ks = KillSwitch(env=None, file=path, ttl=0)
    assert ks.is_tripped("bot")
    path.write_text('{"agents": "bot"')  # broken JSON
    with caplog.at_level(logging.WARNING, logger="agentcost_core.guards.kill_switch"):
        assert ks.is_tripped("bot")
        assert ks.is_tripped("bot")
    warnings = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warnings) == 1  # once per source until it recovers


@pytest.mark.parametrize(
    "content", ['{"global": "yes"}', '{"agents": "bot"}', '{"agents": [1]}', '{"reason": 5}', "[1, 2]"]
)
def test_malformed_json_trips_when_closed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kill.json"
    path.write_text(content)
    ks = KillSwitch(env=None, file=path, on_error="closed")
    with pytest.raises(AgentHalted, match="unreadable") as info:
        ks.check("bot")
    assert info.value.details["source"] == f"file:{path}"


# -- Redis (real server) ---------------------------------------------------------------------


@pytest.fixture
def redis_key(redis_url: str) -> Iterator[tuple[str, Any]]:
    import redis

    client = redis.Redis.from_url(redis_url)
    key = f"agentcost:test:kill_switch:{uuid.uuid4().hex}"
    try:
        yield key, client
    finally:
        client.delete(key)
        client.close()


def test_redis_key_text_and_json(redis_url: str, redis_key: tuple[str, Any]) -> None:
    key, client = redis_key
    ks = KillSwitch(env=None, redis_url=redis_url, redis_key=key)
    assert not ks.is_tripped("bot")  # missing key = off
    client.set(key, "bot,other")
    assert ks.wait_for_refresh(10)
    assert ks.is_tripped("bot") and not ks.is_tripped("third") and not ks.is_tripped()
    client.set(key, json.dumps({"global": True, "reason": "budget incident"}))
    assert ks.wait_for_refresh(10)
    with pytest.raises(AgentHalted, match="budget incident") as info:
        ks.check("third")
    assert info.value.details == {
        "source": f"redis:{key}",
        "agent_id": "third",
        "reason": "budget incident",
        "global": True,
    }
    client.set(key, "0")
    assert ks.wait_for_refresh(10)
    ks.check("third")


def test_redis_trip_and_reset_across_instances(redis_url: str, redis_key: tuple[str, Any], clock: Clock) -> None:
    key, client = redis_key
    operator = KillSwitch(env=None, redis_url=redis_url, redis_key=key)
    worker = KillSwitch(env=None, redis_client=client, redis_key=key, ttl=5.0, clock=clock)
    worker.check("bot")

    operator.trip("bot", reason="stuck in a loop")
    assert json.loads(client.get(key)) == {"global": False, "agents": ["bot"], "reason": "stuck in a loop"}
    clock.advance(4.0)
    worker.check("bot")  # not yet: cached
    clock.advance(1.0)
    refreshed(worker)
    with pytest.raises(AgentHalted, match="stuck in a loop"):
        worker.check("bot")
    worker.check("other-bot")

    operator.trip("second")
    assert set(json.loads(client.get(key))["agents"]) == {"bot", "second"}
    operator.reset("bot")
    assert json.loads(client.get(key))["agents"] == ["second"]
    operator.reset()
    assert client.get(key) is None  # fully off: the key is removed
    clock.advance(5.0)
    refreshed(worker)
    worker.check("bot")
    worker.check("second")


def test_unreachable_redis_open_keeps_state_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    ks = KillSwitch(env=None, redis_url="redis://127.0.0.1:1/0", timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="agentcost_core.guards.kill_switch"):
        ks.check("bot")
        assert ks.wait_for_refresh(10)
        ks.check("bot")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "redis:agentcost:kill_switch" in warnings[0] and "on_error='open'" in warnings[0]


def test_unreachable_redis_closed_trips() -> None:
    ks = KillSwitch(env=None, redis_url="redis://127.0.0.1:1/0", on_error="closed", timeout=1.0)
    with pytest.raises(AgentHalted) as info:
        ks.check("bot")
    assert info.value.reason is TerminationReason.KILL_SWITCH
    assert info.value.details["source"] == "redis:agentcost:kill_switch"
    assert "unreadable" in info.value.details["reason"] and "ConnectionError" in info.value.details["reason"]


# -- HTTP (local server) ---------------------------------------------------------------------


class Endpoint:
    """A local JSON endpoint whose answer the test controls; counts requests; can hold one open."""

    def __init__(self) -> None:
        self.body: bytes = b'{"global": false}'
        self.status = 200
        self.hits = 0
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.hits += 1
                endpoint.entered.set()
                if endpoint.hold is not None:
                    endpoint.hold.wait(10)
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/kill-switch?token=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def set(self, doc: Any) -> None:
        self.body = json.dumps(doc).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    try:
        yield ep
    finally:
        ep.close()


def test_url_global_and_per_agent(endpoint: Endpoint) -> None:
    ks = KillSwitch(env=None, url=endpoint.url)
    assert not ks.is_tripped("bot")
    endpoint.set({"agents": ["bot"], "reason": "manual stop"})
    assert ks.wait_for_refresh(10)
    with pytest.raises(AgentHalted, match="manual stop") as info:
        ks.check("bot")
    source = info.value.details["source"]
    assert source.startswith("url:http://127.0.0.1:") and source.endswith("/kill-switch")
    assert "secret" not in source  # no query string (tokens) in messages and logs
    ks.check("other")
    endpoint.set({"global": True})
    assert ks.wait_for_refresh(10)
    assert ks.is_tripped("other")


def test_url_is_fetched_once_per_ttl(endpoint: Endpoint, clock: Clock) -> None:
    ks = KillSwitch(env=None, url=endpoint.url, ttl=5.0, clock=clock)
    for _ in range(10):
        ks.check("bot")
    assert endpoint.hits == 1
    endpoint.set({"global": True})
    clock.advance(4.99)
    assert not ks.is_tripped("bot")
    assert endpoint.hits == 1
    clock.advance(0.01)
    refreshed(ks)  # read in the background, once
    assert ks.is_tripped("bot")
    assert endpoint.hits == 2


def test_a_check_never_waits_for_a_reading_in_flight(endpoint: Endpoint, clock: Clock) -> None:
    ks = KillSwitch(env=None, url=endpoint.url, ttl=5.0, clock=clock)
    assert not ks.is_tripped("bot")  # the first reading
    endpoint.set({"global": True})
    endpoint.hold = threading.Event()
    endpoint.entered.clear()
    clock.advance(5.0)
    n = ks.refreshes
    assert not ks.is_tripped("bot")  # stale: the last state answers at once, a reading starts
    assert endpoint.entered.wait(10)  # the background request is in flight, held by the server
    # Meanwhile checks neither block nor start a second request: they get the last state.
    assert [ks.is_tripped("bot") for _ in range(5)] == [False] * 5
    assert endpoint.hits == 2
    endpoint.hold.set()
    assert ks.wait_for_refresh(10, after=n)
    assert ks.is_tripped("bot")
    assert endpoint.hits == 2
    ks.close()


def test_url_failure_open_keeps_last_known_state_then_recovers(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    ks = KillSwitch(env=None, url=endpoint.url)
    endpoint.set({"global": True, "reason": "incident"})
    assert ks.is_tripped()
    endpoint.status = 500
    with caplog.at_level(logging.WARNING, logger="agentcost_core.guards.kill_switch"):
        assert ks.wait_for_refresh(10)
        assert ks.is_tripped()  # unreachable: the last known state (tripped) holds
        assert ks.state().reason == "incident"
        endpoint.status = 200
        endpoint.body = b"<html>not json</html>"
        assert ks.wait_for_refresh(10)
        assert ks.is_tripped()
        endpoint.set({"global": False})
        assert ks.wait_for_refresh(10)
        assert not ks.is_tripped()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "cannot be read" in m]) == 1
    assert len([m for m in messages if "readable again" in m]) == 1


def test_unreachable_url_open_and_closed() -> None:
    url = "http://127.0.0.1:1/kill-switch"
    assert not KillSwitch(env=None, url=url, timeout=1.0).is_tripped("bot")
    closed = KillSwitch(env=None, url=url, timeout=1.0, on_error="closed")
    with pytest.raises(AgentHalted, match="unreadable") as info:
        closed.check("bot")
    assert info.value.details["source"] == "url:http://127.0.0.1:1/kill-switch"


# -- several sources -------------------------------------------------------------------------


def test_any_source_trips_and_state_combines_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "kill.json"
    path.write_text(json.dumps({"agents": ["b"], "reason": "from file"}))
    monkeypatch.setenv(ENV, "a")
    ks = KillSwitch(file=path)
    assert ks.is_tripped("a") and ks.is_tripped("b") and not ks.is_tripped("c")
    with pytest.raises(AgentHalted) as info:
        ks.check("b")
    assert info.value.details["source"] == f"file:{path}" and info.value.details["reason"] == "from file"
    state = ks.state()
    assert state.agents == {"a", "b"} and not state.is_global
    assert state.reason == "from file"
    assert state.source == f"env:{ENV}, file:{path}"
    assert ks.sources == (f"env:{ENV}", f"file:{path}")


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ttl": -1}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
        ({"timeout": 0}, "timeout"),
        ({"on_error": "maybe"}, "on_error"),
        ({"env": None}, "at least one source"),
        ({"env": ""}, "env"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis_url"),
        ({"redis_url": "redis://127.0.0.1:6379/0", "redis_client": object()}, "not both"),
        ({"redis_url": "redis://127.0.0.1:6379/0", "redis_key": ""}, "redis_key"),
        ({"url": "http://127.0.0.1:1/x", "ttl": 0}, "ttl=0"),
        ({"redis_url": "redis://127.0.0.1:6379/0", "ttl": 0}, "ttl=0"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        KillSwitch(**kwargs)


def test_file_that_is_a_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="directory"):
        KillSwitch(file=tmp_path)


def test_redis_url_without_the_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes "import redis" fail
    with pytest.raises(ConfigurationError, match=r"pip install 'agentcost-control\[redis\]'"):
        KillSwitch(redis_url="redis://127.0.0.1:6379/0")


def test_trip_needs_a_writable_source(monkeypatch: pytest.MonkeyPatch) -> None:
    ks = KillSwitch()
    with pytest.raises(ConfigurationError, match="read-only"):
        ks.trip()
    with pytest.raises(ConfigurationError, match="read-only"):
        ks.reset("bot")
