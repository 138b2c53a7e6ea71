"""Shared budget stores under a stalled server: our own redis-server paused (SIGSTOP), and a proxy in
front of PostgreSQL that stops forwarding. Every call returns within its deadline (refused under
``fail_closed``, let through flagged under ``fail_open``), nothing a given-up reservation held
stays held once the server answers again, and ``fail_open`` logs a bounded number of lines."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from agentcost_core.budgets import Budget, BudgetEnforcer, BudgetStoreUnavailable, ScopeContext
from agentcost_core.budgets.stores.postgres import PostgresStore
from agentcost_core.budgets.stores.redis import RedisStore

TIMEOUT = 0.5  # the stores' deadline in these tests
CONNECT_TIMEOUT = 2  # PostgreSQL: libpq's floor for opening a connection
THREADS = 6
CALLS = 2  # per thread while the server is stalled
CTX = ScopeContext(session_id="s-1", user_id="u-1")


def _bound(kind: str) -> float:
    """The longest a call may take: its deadline (PostgreSQL: plus opening a new connection, which
    every call after a cut one must do), with 0.5 s of scheduling slack."""
    return TIMEOUT + (CONNECT_TIMEOUT if kind == "postgres" else 0) + 0.5


@contextmanager
def stalled_store(kind: str, request: pytest.FixtureRequest, failure_mode: str) -> Iterator[tuple[Any, Any]]:
    """(server, store): a store of ``kind`` with a 0.5 s deadline, on a server the test can stall."""
    if kind == "redis":
        server = request.getfixturevalue("own_redis")
        store: Any = RedisStore(server.url, timeout=TIMEOUT, failure_mode=failure_mode)
        try:
            yield server, store
        finally:
            store.close()
        return
    server = request.getfixturevalue("pg_proxy")
    table = f"agentcost_faults_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(
        server.url, table=table, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT, failure_mode=failure_mode
    )
    try:
        yield server, store
    finally:
        server.resume()
        store.close()
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_holds")


def _calls_while_stalled(enforcer: BudgetEnforcer) -> list[tuple[float, Any]]:
    """Reserve from THREADS threads, CALLS each: (seconds taken, the reservation or the error)."""
    results: list[tuple[float, Any]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(CALLS):
            start = time.monotonic()
            try:
                outcome: Any = enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=100, max_tokens=100)
            except BudgetStoreUnavailable as e:
                outcome = e
            with lock:
                results.append((time.monotonic() - start, outcome))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a call hung past every deadline"
    return results


def _wait_until_nothing_held(budget: Budget, store: Any, within: float = 15.0) -> Any:
    """Poll (through the public API) until no reservation is held and no cancel is pending."""
    deadline = time.monotonic() + within
    while True:
        try:
            status = budget.status(session_id=CTX.session_id)
            if status.held == 0 and store.pending_cancels() == 0:
                return status
        except BudgetStoreUnavailable:
            pass
        assert time.monotonic() < deadline, f"still held after resume: {status.held}, pending {store.pending_cancels()}"
        threading.Event().wait(0.05)  # polling a condition with a deadline


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_fail_closed_calls_end_within_the_deadline_and_nothing_stays_held(
    kind: str, request: pytest.FixtureRequest
) -> None:
    with stalled_store(kind, request, "fail_closed") as (server, store):
        budget = Budget(usd=100, per="session", store=store)
        enforcer = BudgetEnforcer(budget)
        warm = enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=100, max_tokens=100)
        enforcer.settle(warm, cost=None)
        server.pause()
        try:
            results = _calls_while_stalled(enforcer)
        finally:
            server.resume()
        took = sorted(t for t, _ in results)
        print(
            f"{kind} paused, fail_closed: {len(took)} calls, median {took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s"
        )
        assert all(isinstance(outcome, BudgetStoreUnavailable) for _, outcome in results)
        assert took[-1] < _bound(kind)
        status = _wait_until_nothing_held(budget, store)
        assert status.held == 0 and status.model_calls == 1  # the warm-up call only
        after = enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=100, max_tokens=100)  # working again
        enforcer.release(after)
        enforcer.close()


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_fail_open_passes_flagged_within_the_deadline_with_bounded_logging(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    with stalled_store(kind, request, "fail_open") as (server, store):
        budget = Budget(usd=100, per="session", store=store)
        enforcer = BudgetEnforcer(budget)
        enforcer.settle(enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=100, max_tokens=100))
        caplog.set_level(logging.WARNING, logger="agentcost")
        server.pause()
        try:
            results = _calls_while_stalled(enforcer)
        finally:
            server.resume()
        took = sorted(t for t, _ in results)
        assert took[-1] < _bound(kind)
        for _, res in results:
            assert res.flags["budget_store_unavailable"]  # each call went ahead, flagged
            enforcer.release(res)  # nothing held there: a no-op in the store
        status = _wait_until_nothing_held(budget, store)
        assert status.held == 0 and status.model_calls == 1
        enforcer.release(enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=100, max_tokens=100))
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("agentcost")]
        print(f"{kind} paused, fail_open: {len(results)} calls, max {took[-1]:.2f} s, {len(lines)} log lines")
        assert len(lines) == 2, lines  # the outage's first failure, and the store answering again
        assert "call allowed (fail_open)" in lines[0]
        assert f"answers again after {THREADS * CALLS} failed call(s)" in lines[1]
        enforcer.close()


def test_postgres_down_and_back_keeps_spend_and_reconnects(request: pytest.FixtureRequest) -> None:
    """The proxy stops (connections cut, port closed: a server restart seen from the client) and
    starts again: calls are refused at once meanwhile, then the same store reconnects by itself and
    the spend committed before is still there."""
    with stalled_store("postgres", request, "fail_closed") as (server, store):
        budget = Budget(usd=10, per="session", store=store)
        enforcer = BudgetEnforcer(budget)
        enforcer.settle(enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10), cost=Decimal("2"))
        server.stop()
        start = time.monotonic()
        with pytest.raises(BudgetStoreUnavailable):
            enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10)
        assert time.monotonic() - start < _bound("postgres")
        server.start()
        enforcer.settle(enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10), cost=Decimal("1"))
        status = budget.status(session_id=CTX.session_id)
        assert status.spent == Decimal("3") and status.held == 0
        enforcer.close()


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_async_reserve_on_a_stalled_store_ends_within_the_deadline_and_never_blocks_the_loop(
    kind: str, request: pytest.FixtureRequest
) -> None:
    with stalled_store(kind, request, "fail_closed") as (server, store):
        budget = Budget(usd=100, per="session", store=store)
        enforcer = BudgetEnforcer(budget)

        async def scenario() -> tuple[float, int]:
            await enforcer.arelease(await enforcer.areserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10))
            ticks = 0
            stop = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while not stop.is_set():
                    ticks += 1
                    await asyncio.sleep(0.01)  # the loop's own heartbeat, not synchronisation

            beat = asyncio.create_task(ticker())
            server.pause()
            start = time.monotonic()
            try:
                with pytest.raises(BudgetStoreUnavailable):
                    await enforcer.areserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10)
            finally:
                server.resume()
            took = time.monotonic() - start
            stop.set()
            await beat
            return took, ticks

        took, ticks = asyncio.run(scenario())
        assert took < _bound(kind)
        assert ticks >= int(took / 0.01) // 2  # the loop kept running while the store stalled
        assert _wait_until_nothing_held(budget, store).held == 0
        enforcer.close()
