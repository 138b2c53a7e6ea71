"""Our process SIGKILLed in the middle of a call, on each shared store: the spend it settled before
stays counted, and the hold of the call it was making is gone once its lease lapses (nothing renews
a dead process' lease), read by another process through the public API."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from agentcost_core.budgets import Budget, BudgetEnforcer, ScopeContext
from agentcost_core.budgets.stores.postgres import PostgresStore
from agentcost_core.budgets.stores.redis import RedisStore
from agentcost_core.budgets.stores.sqlite import SQLiteStore

LEASE = 1.0  # seconds
CTX = ScopeContext(session_id="s-crash")


def _open(spec: tuple[str, str, str]) -> Any:
    kind, where, name = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    if kind == "redis":
        return RedisStore(where, prefix=name)
    return PostgresStore(where, table=name)


def _spend_then_hold(spec: tuple[str, str, str], ready: Any) -> None:
    """Settle $1, then reserve another call and wait there to be killed."""
    enforcer = BudgetEnforcer(Budget(usd=100, per="session", store=_open(spec)), lease_seconds=LEASE)
    enforcer.settle(enforcer.reserve(CTX, model="gpt-4o", input_tokens=10, max_tokens=10), cost=Decimal(1))
    held = enforcer.reserve(CTX, model="gpt-4o", input_tokens=1_000, max_tokens=1_000)
    ready.set()
    threading.Event().wait(60)  # the call "runs" until the test kills this process
    enforcer.release(held)  # pragma: no cover - never reached


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_a_killed_process_keeps_its_spend_and_loses_its_hold_after_the_lease(kind, request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    unique = f"agentcost_crash_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        spec = ("sqlite", str(tmp_path / "budgets.db"), "")
    elif kind == "redis":
        spec = ("redis", request.getfixturevalue("own_redis").url, unique + ":")
    else:
        spec = ("postgres", request.getfixturevalue("postgres_url"), unique)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_spend_then_hold, args=(spec, ready), daemon=True)
    child.start()
    store = _open(spec)
    try:
        assert ready.wait(30), "the child never reserved"
        budget = Budget(usd=100, per="session", store=store)
        assert budget.status(session_id=CTX.session_id).held > 0
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=10)
        killed = time.monotonic()
        while (status := budget.status(session_id=CTX.session_id)).held > 0:
            assert time.monotonic() - killed < LEASE + 5, "the dead process' hold outlived its lease"
            threading.Event().wait(0.05)  # polling a condition with a deadline
        assert status.spent == Decimal(1)
    finally:
        if child.is_alive():
            child.kill()
        if kind == "postgres":
            with psycopg.connect(spec[1], autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {unique}, {unique}_holds")
        store.close()
