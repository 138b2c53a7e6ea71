"""Per-tool circuit breaker: closed -> open after N consecutive failures -> one half-open probe ->
closed on success or open again on failure; the message the agent gets; call / acall."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
from typing import Any

import pytest
from agentcost_core.errors import ConfigurationError
from agentcost_core.guards.circuit_breaker import CircuitBreaker, CircuitOpen
from agentcost_core.halts import AgentHalted, TerminationReason


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[tuple[str, str, str]]) -> CircuitBreaker:
    return CircuitBreaker(clock=clock, on_change=lambda tool, old, new: changes.append((tool, old, new)))


def fail(breaker: CircuitBreaker, tool: str, n: int, error: BaseException | None = None) -> None:
    for _ in range(n):
        assert breaker.allow(tool)
        breaker.record_failure(tool, error or TimeoutError("search backend timed out"))


def test_five_consecutive_failures_open_the_circuit(breaker: CircuitBreaker, changes: list[Any]) -> None:
    fail(breaker, "search", 4)
    assert breaker.state("search") == "closed" and breaker.allow("search")
    assert breaker.retry_in("search") is None
    breaker.record_failure("search", TimeoutError("again"))
    assert breaker.state("search") == "open"
    assert not breaker.allow("search")
    assert breaker.retry_in("search") == 60.0
    assert breaker.failures("search") == 5
    assert changes == [("search", "closed", "open")]


def test_a_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    fail(breaker, "search", 4)
    breaker.record_success("search")
    fail(breaker, "search", 4)
    assert breaker.state("search") == "closed"
    assert breaker.failures("search") == 4


def test_tools_have_separate_circuits(breaker: CircuitBreaker) -> None:
    fail(breaker, "search", 5)
    assert not breaker.allow("search")
    assert breaker.allow("calculator") and breaker.state("calculator") == "closed"


def test_after_reset_timeout_exactly_one_probe_and_success_closes(
    breaker: CircuitBreaker, clock: Clock, changes: list[Any]
) -> None:
    fail(breaker, "search", 5)
    clock.advance(59.9)
    assert breaker.state("search") == "open" and not breaker.allow("search")
    assert breaker.retry_in("search") == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state("search") == "half_open"
    assert breaker.retry_in("search") == 0.0
    assert breaker.allow("search")  # the probe
    assert not breaker.allow("search")  # everyone else waits while the probe is out
    assert not breaker.allow("search")
    breaker.record_success("search")
    assert breaker.state("search") == "closed"
    assert breaker.failures("search") == 0
    assert breaker.allow("search") and breaker.allow("search")
    assert changes == [("search", "closed", "open"), ("search", "open", "half_open"), ("search", "half_open", "closed")]
    fail(breaker, "search", 4)  # the counter really restarted
    assert breaker.state("search") == "closed"


def test_probe_failure_reopens_for_another_timeout(breaker: CircuitBreaker, clock: Clock, changes: list[Any]) -> None:
    fail(breaker, "search", 5)
    clock.advance(60)
    assert breaker.allow("search")
    breaker.record_failure("search", ConnectionError("refused"))
    assert breaker.state("search") == "open"
    assert breaker.retry_in("search") == 60.0
    assert not breaker.allow("search")
    clock.advance(30)
    assert not breaker.allow("search")
    clock.advance(30)
    assert breaker.allow("search")
    assert changes[-3:] == [
        ("search", "open", "half_open"),
        ("search", "half_open", "open"),
        ("search", "open", "half_open"),
    ]


def test_concurrent_callers_get_exactly_one_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, "search", 5)
    clock.advance(60)
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def caller() -> None:
        barrier.wait()
        allowed = breaker.allow("search")
        with lock:
            results.append(allowed)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [False] * 15 + [True]


def test_a_lost_probe_is_replaced_after_reset_timeout(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, "search", 5)
    clock.advance(60)
    assert breaker.allow("search")  # a probe that never reports back
    clock.advance(30)
    assert not breaker.allow("search")
    assert breaker.retry_in("search") == 30.0
    clock.advance(30)
    assert breaker.allow("search")


def test_success_of_a_call_started_before_opening_does_not_close(breaker: CircuitBreaker) -> None:
    fail(breaker, "search", 5)
    breaker.record_success("search")  # a slow call that was let through while closed
    assert breaker.state("search") == "open"


def test_unavailable_message(breaker: CircuitBreaker, clock: Clock) -> None:
    assert breaker.unavailable_message("search") == "Tool 'search' is available."
    fail(breaker, "search", 5, TimeoutError("search backend timed out"))
    clock.advance(20)
    msg = breaker.unavailable_message("search")
    assert "Tool 'search' is temporarily unavailable" in msg
    assert "failed 5 times in a row" in msg
    assert "last error: TimeoutError: search backend timed out" in msg
    assert "retried in about 40 seconds" in msg
    assert "try another approach or a different tool" in msg
    clock.advance(40)
    assert "may be retried now" in breaker.unavailable_message("search")


def test_unavailable_message_truncates_long_errors(breaker: CircuitBreaker) -> None:
    fail(breaker, "search", 5, RuntimeError("x" * 5000))
    msg = breaker.unavailable_message("search")
    assert len(msg) < 500 and "RuntimeError: xxx" in msg


def test_call_runs_records_and_refuses(breaker: CircuitBreaker, clock: Clock) -> None:
    calls: list[str] = []

    def flaky(q: str) -> str:
        calls.append(q)
        raise ValueError(f"bad response for {q}")

    for i in range(5):
        with pytest.raises(ValueError, match="bad response"):  # the tool's own error is re-raised
            breaker.call("search", flaky, f"q{i}")
    assert len(calls) == 5

    with pytest.raises(CircuitOpen) as info:
        breaker.call("search", flaky, "q5")
    assert len(calls) == 5  # refused without calling the tool
    err = info.value
    assert isinstance(err, AgentHalted) and err.reason is TerminationReason.CIRCUIT_OPEN
    assert err.tool == "search"
    assert err.message == str(err) == breaker.unavailable_message("search")
    assert err.details == {
        "tool": "search",
        "failures": 5,
        "state": "open",
        "retry_in": 60.0,
        "last_error": "ValueError: bad response for q4",
    }

    clock.advance(60)
    assert breaker.call("search", lambda q: f"results for {q}", "q6") == "results for q6"
    assert breaker.state("search") == "closed"


def test_circuit_open_pickles(breaker: CircuitBreaker) -> None:
    fail(breaker, "search", 5)
    with pytest.raises(CircuitOpen) as info:
        breaker.call("search", lambda: None)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.tool, copy.message, copy.details, copy.reason) == (
        info.value.tool,
        info.value.message,
        info.value.details,
        TerminationReason.CIRCUIT_OPEN,
    )


async def test_acall(breaker: CircuitBreaker, clock: Clock) -> None:
    async def broken() -> str:
        raise ConnectionError("down")

    async def working(x: int) -> int:
        return x * 2

    for _ in range(5):
        with pytest.raises(ConnectionError):
            await breaker.acall("api", broken)
    with pytest.raises(CircuitOpen, match="Tool 'api' is temporarily unavailable"):
        await breaker.acall("api", working, 1)
    clock.advance(60)
    assert await breaker.acall("api", working, 21) == 42
    assert breaker.state("api") == "closed"


async def test_cancelled_probe_frees_the_slot(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, "api", 5)
    clock.advance(60)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await breaker.acall("api", cancelled)
    assert breaker.state("api") == "half_open"
    assert breaker.allow("api")  # the next caller gets the probe


def test_deliberate_halt_is_not_a_tool_failure(breaker: CircuitBreaker, clock: Clock) -> None:
    def halted() -> None:
        raise AgentHalted(TerminationReason.KILL_SWITCH, "stopped")

    for _ in range(10):
        with pytest.raises(AgentHalted):
            breaker.call("search", halted)
    assert breaker.state("search") == "closed" and breaker.failures("search") == 0
    fail(breaker, "search", 5)
    clock.advance(60)
    with pytest.raises(AgentHalted):
        breaker.call("search", halted)  # the probe ends without a verdict
    assert breaker.state("search") == "half_open" and breaker.allow("search")


def test_reset(breaker: CircuitBreaker, changes: list[Any]) -> None:
    fail(breaker, "a", 5)
    fail(breaker, "b", 5)
    breaker.reset("a")
    assert breaker.state("a") == "closed" and breaker.state("b") == "open"
    breaker.reset()
    assert breaker.state("b") == "closed" and breaker.allow("b")
    assert changes[-2:] == [("a", "open", "closed"), ("b", "open", "closed")]


def test_listener_errors_are_logged_not_raised(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    def listener(tool: str, old: str, new: str) -> None:
        raise RuntimeError("listener bug")

    cb = CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=clock, on_change=listener)
    with caplog.at_level(logging.ERROR, logger="agentcost_core.guards.circuit_breaker"):
        cb.record_failure("t")
        cb.record_failure("t")
    assert cb.state("t") == "open"
    assert any("on_change listener failed" in r.getMessage() for r in caplog.records)


def test_custom_threshold_and_timeout(clock: Clock) -> None:
    cb = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    cb.record_failure("t", "boom")
    assert cb.state("t") == "open"
    assert "failed 1 time in a row (last error: boom)" in cb.unavailable_message("t")
    assert "about 5 seconds" in cb.unavailable_message("t")
    clock.advance(5)
    assert cb.allow("t")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0,), {}, "failure_threshold"),
        ((2.5,), {}, "failure_threshold"),
        ((True,), {}, "failure_threshold"),
        ((5, -1), {}, "reset_timeout"),
        ((5, float("nan")), {}, "reset_timeout"),
        ((), {"clock": 3}, "clock"),
        ((), {"on_change": "print"}, "on_change"),
    ],
)
def test_bad_configuration(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CircuitBreaker(*args, **kwargs)
