"""SQLite ledgers carry a schema version: an unversioned ledger (the layout before versions) is
migrated on open and keeps its rows; a newer version is refused with a clear error. Opening a
ledger changes no process-wide ``sqlite3`` state."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

import ledger_contract as contract
from agentcost_core import Ledger, LedgerURLError

# The ledger's layout before schema versions existed, exactly as that code created it.
V1_DDL = (
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id TEXT, ts REAL NOT NULL, kind TEXT, "
    "model TEXT, provider TEXT, requested_model TEXT, service_tier TEXT, input INTEGER NOT NULL, "
    "cache_read INTEGER NOT NULL, cache_write_5m INTEGER NOT NULL, cache_write_1h INTEGER NOT NULL, "
    "output INTEGER NOT NULL, reasoning INTEGER NOT NULL, cost TEXT, priced INTEGER NOT NULL, "
    "estimated INTEGER NOT NULL, cache_hit INTEGER NOT NULL, saved TEXT, user_id TEXT, session_id TEXT, "
    "feature TEXT, agent_id TEXT, task_id TEXT, step TEXT, trace_id TEXT, span_id TEXT, parent_id TEXT, "
    "latency_s REAL, error TEXT, framework TEXT, tier TEXT, extra TEXT)",
    "CREATE INDEX IF NOT EXISTS events_ts ON events (ts)",
)
V1_ROWS = [
    ("old-1", 1_700_000_000.0, "llm", "gpt-4o", "openai", "gpt-4o", None, 1200, 200, 0, 0, 300, 0,
     "0.00575", 1, 0, 0, None, "u1", "s1", "search", None, None, None, "t1", "old-1", None, 0.8, None,
     "langchain", None, '{"k": 1}'),
    ("old-2", 1_700_000_001.0, "llm", "house-model", "house", None, None, 50, 0, 0, 0, 10, 0,
     None, 0, 1, 0, None, "u2", None, "support", None, None, None, "t2", "old-2", None, None, "Boom",
     "llamaindex", None, None),
]  # fmt: skip
V1_INSERT = (
    "INSERT INTO events (id, ts, kind, model, provider, requested_model, service_tier, input, cache_read, "
    "cache_write_5m, cache_write_1h, output, reasoning, cost, priced, estimated, cache_hit, saved, user_id, "
    "session_id, feature, agent_id, task_id, step, trace_id, span_id, parent_id, latency_s, error, "
    "framework, tier, extra) VALUES (" + ", ".join("?" * 32) + ")"
)


def _write_v1_ledger(path) -> None:
    conn = sqlite3.connect(path)
    for ddl in V1_DDL:
        conn.execute(ddl)
    conn.executemany(V1_INSERT, V1_ROWS)
    conn.commit()
    conn.close()


def _user_version(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_a_sqlite_ledger_written_before_schema_versions_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "v1.db"
    _write_v1_ledger(path)
    assert _user_version(path) == 0
    with Ledger(f"sqlite:///{path}") as ledger:
        old = ledger.events()
        assert [e.id for e in old] == ["old-1", "old-2"]
        assert old[0].cost == Decimal("0.00575") and old[0].usage.input == 1200 and old[0].extra == {"k": 1}
        assert old[1].cost is None and not old[1].priced and old[1].estimated and old[1].error == "Boom"
        ledger.record(contract.make_event(1, span_id="new"))
        assert [e.span_id for e in ledger.events()] == ["old-1", "old-2", "new"]
    assert _user_version(path) >= 1  # marked with its version now
    with Ledger(f"sqlite:///{path}", sync=True) as again:  # reopening a versioned ledger changes nothing
        assert again.count() == 3


def test_a_new_sqlite_ledger_carries_its_schema_version(tmp_path):
    path = tmp_path / "new.db"
    Ledger(f"sqlite:///{path}").close()
    assert _user_version(path) >= 1


def test_a_sqlite_ledger_with_a_newer_schema_version_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "future.db"
    Ledger(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(LedgerURLError, match=r"schema version 999, newer than this agentcost knows.*upgrade"):
        Ledger(f"sqlite:///{path}")


def test_a_sqlite_file_with_a_foreign_events_table_is_refused(tmp_path):
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (x INTEGER)")
    conn.close()
    with pytest.raises(LedgerURLError, match="not an agentcost ledger"):
        Ledger(f"sqlite:///{path}")


def test_using_a_sqlite_ledger_changes_no_process_wide_sqlite3_state(tmp_path):
    code = textwrap.dedent(
        f"""
        import sqlite3
        before = (dict(sqlite3.adapters), dict(sqlite3.converters))
        from agentcost_core import CostEvent, Ledger, Usage
        with Ledger("sqlite:///{tmp_path}/g.db") as lg:
            lg.record(CostEvent(model="gpt-4o", usage=Usage(input=1)))  # None in most columns
            assert lg.count() == 1
        assert (dict(sqlite3.adapters), dict(sqlite3.converters)) == before, "sqlite3 state changed"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
