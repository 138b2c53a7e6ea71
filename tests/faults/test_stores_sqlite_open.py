"""Two processes opening one new SQLite budget store at the same moment both succeed: a transient
"database is locked" while the other creates the file's tables is retried, never reported as a
configuration error, and both processes' reservations count."""

from __future__ import annotations

from typing import Any

from processes_together import run_together

from agentcost_core.budgets.stores import Claim
from agentcost_core.budgets.stores.base import Lease
from agentcost_core.budgets.stores.sqlite import SQLiteStore

ROUNDS = 30
NOW = 1_700_000_000.0


def _open_and_reserve(path: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=20)
        store = SQLiteStore(path)
        result = store.reserve([Claim("global", (None, None, 10, None), (0, 0, 1, 0), None)], NOW, Lease("x", NOW + 60))
        results.put("ok" if result.admitted else "refused")
    except BaseException as e:  # reported to the test, which shows it
        results.put(f"{type(e).__name__}: {e}")


def test_two_processes_open_one_new_store_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for i in range(ROUNDS):
        path = str(tmp_path / f"round-{i}" / "budgets.db")
        outcomes = run_together(_open_and_reserve, [(path,), (path,)], timeout=30)
        assert outcomes == ["ok", "ok"], f"round {i}: {outcomes}"
        store = SQLiteStore(path)
        assert store.read("global", NOW).held == (0, 0, 2, 0)  # both reservations are there
        store.close()
