"""The kill switch reads its remote sources in the background (issue 12, defect 6b): a check on an
event loop never waits for a stalled URL, a trip at the server is seen after a background reading,
the first check before any reading is bounded (and never waits on a loop), and the one background
thread per switch starts on first check and stops on close() or when the switch is dropped."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import pytest
from agentcost_core.guards.kill_switch import KillSwitch
from agentcost_core.halts import AgentHalted
from test_kill_switch import Clock, Endpoint, endpoint  # noqa: F401 - the local HTTP endpoint fixture

THREAD = "agentcost-kill-switch"  # the documented name of the background thread


def stall(endpoint: Endpoint) -> None:
    """From now on the server holds every request until :func:`resume`."""
    endpoint.entered.clear()
    endpoint.hold = threading.Event()


def resume(endpoint: Endpoint) -> None:
    if endpoint.hold is not None:
        endpoint.hold.set()


def stalled(endpoint: Endpoint) -> bool:
    return endpoint.hold is not None and not endpoint.hold.is_set()


def background_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == THREAD and t.is_alive()}


async def test_a_check_on_the_event_loop_returns_while_the_url_is_stalled(endpoint: Endpoint) -> None:
    clock = Clock()
    ks = KillSwitch(env=None, url=endpoint.url, ttl=5.0, clock=clock, timeout=30.0)
    assert not (await asyncio.to_thread(ks.refresh)).tripped  # a first reading, off the loop: off
    stall(endpoint)
    endpoint.set({"global": True, "reason": "incident"})
    clock.advance(5.0)
    # stale: answers from the cache at once and asks for a background reading (a blocking read here
    # would hold the loop until the server gives up its stall, then see the trip and raise)
    ks.check("bot")
    # the loop is free while the server holds the request: this await completes only if it is
    assert await asyncio.to_thread(endpoint.entered.wait, 10)
    for _ in range(3):
        ks.check("bot")  # still the last state, still no waiting
    assert stalled(endpoint)  # the server was stalled through all of the above
    n = ks.refreshes  # the stalled reading cannot have landed yet
    resume(endpoint)
    assert await asyncio.to_thread(ks.wait_for_refresh, 10, after=n)
    with pytest.raises(AgentHalted, match="incident"):
        ks.check("bot")  # the trip at the server is seen after the background reading
    assert endpoint.hits == 2
    ks.close()


async def test_the_first_check_on_the_event_loop_never_waits_and_counts_as_on_error_says(
    endpoint: Endpoint,
) -> None:
    endpoint.set({"global": True})
    stall(endpoint)
    fail_open = KillSwitch(env=None, url=endpoint.url)
    fail_closed = KillSwitch(env=None, url=endpoint.url, on_error="closed")
    fail_open.check("bot")  # not read yet: off
    with pytest.raises(AgentHalted, match="not read yet"):
        fail_closed.check("bot")  # not read yet: tripped
    assert stalled(endpoint)
    resume(endpoint)
    assert await asyncio.to_thread(fail_open.wait_for_refresh, 10, after=0)
    with pytest.raises(AgentHalted):
        fail_open.check("bot")
    fail_open.close()
    fail_closed.close()


def test_the_first_check_off_the_loop_waits_for_the_first_reading(endpoint: Endpoint) -> None:
    endpoint.set({"agents": ["bot"]})
    with KillSwitch(env=None, url=endpoint.url) as ks:
        with pytest.raises(AgentHalted):
            ks.check("bot")  # the very first check already knows
        assert endpoint.hits == 1


def test_the_first_check_off_the_loop_waits_at_most_the_timeout(endpoint: Endpoint) -> None:
    endpoint.set({"global": True})
    stall(endpoint)
    with KillSwitch(env=None, url=endpoint.url, timeout=0.2) as ks:
        assert not ks.is_tripped("bot")  # no reading within the timeout: on_error="open" counts it as off
        assert stalled(endpoint)  # returned while the server still held the request
        resume(endpoint)


def test_trip_and_reset_act_at_once_locally(tmp_path: Path) -> None:
    clock = Clock()
    with KillSwitch(env=None, file=tmp_path / "kill.json", clock=clock) as ks:
        ks.check("bot")
        ks.trip("bot", reason="looping")
        with pytest.raises(AgentHalted, match="looping"):
            ks.check("bot")
        ks.reset()
        ks.check("bot")


def test_one_background_thread_per_switch_started_on_first_check_and_stopped_by_close(tmp_path: Path) -> None:
    before = background_threads()
    ks = KillSwitch(env=None, file=tmp_path / "kill.json")
    assert background_threads() == before  # lazily: nothing before the first check
    for _ in range(20):
        ks.check("bot")
    mine = background_threads() - before
    assert len(mine) == 1
    ks.close()
    (thread,) = mine
    thread.join(10)
    assert not thread.is_alive()
    ks.check("bot")  # still answers from the last reading; no new thread
    assert background_threads() - before == set()


def test_dropped_switches_do_not_leak_their_threads(tmp_path: Path) -> None:
    before = background_threads()
    switches = [KillSwitch(env=None, file=tmp_path / "kill.json") for _ in range(10)]
    for ks in switches:
        ks.check("bot")
    started = background_threads() - before
    assert len(started) == 10
    del switches, ks
    gc.collect()
    for thread in started:
        thread.join(10)
    assert not any(t.is_alive() for t in started)


def test_env_only_switch_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCOST_KILL_SWITCH", "1")
    before = background_threads()
    assert KillSwitch().is_tripped("bot")
    assert background_threads() == before
