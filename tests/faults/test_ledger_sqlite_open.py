"""Processes opening one new SQLite ledger at the same moment all succeed: a transient "database is
locked" while another creates the file or switches it to WAL is retried, not reported as a bad URL."""

from __future__ import annotations

import pytest
from processes_together import run_together

from agentcost_core import CostEvent, Ledger, Usage


def open_record_close(url: str, name: str, barrier, results) -> None:
    barrier.wait(timeout=30)
    try:
        with Ledger(url, sync=True) as ledger:
            ledger.record(CostEvent(model="m", usage=Usage(input=1), feature=name))
        results.put("ok")
    except Exception as e:  # reported to the parent, which fails the test with it
        results.put(f"{type(e).__name__}: {e}")


@pytest.mark.parametrize("processes", [2, 6])
def test_processes_opening_one_new_sqlite_ledger_at_once_all_succeed(tmp_path, processes):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    outcomes = run_together(open_record_close, [(url, f"p{i}") for i in range(processes)], timeout=60)
    assert outcomes == ["ok"] * processes
    with Ledger(url) as ledger:
        assert sorted(e.feature for e in ledger.events()) == sorted(f"p{i}" for i in range(processes))
