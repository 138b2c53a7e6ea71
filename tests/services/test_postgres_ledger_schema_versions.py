"""PostgreSQL ledgers carry a schema version (a row of ``agentcost_meta``): an unversioned ledger
table (the layout before versions) is migrated on open and keeps its rows; a newer version is
refused with a clear error."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

import ledger_contract as contract
from agentcost_core import Ledger, LedgerURLError
from agentcost_core.ledger.postgres import PostgresBackend

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.services

# The ledger's layout before schema versions existed, exactly as that code created it.
V1_COLUMNS = (
    "id TEXT, ts DOUBLE PRECISION NOT NULL, kind TEXT, model TEXT, provider TEXT, requested_model TEXT, "
    "service_tier TEXT, input BIGINT NOT NULL, cache_read BIGINT NOT NULL, cache_write_5m BIGINT NOT NULL, "
    "cache_write_1h BIGINT NOT NULL, output BIGINT NOT NULL, reasoning BIGINT NOT NULL, cost NUMERIC, "
    "priced BOOLEAN NOT NULL, estimated BOOLEAN NOT NULL, cache_hit BOOLEAN NOT NULL, saved NUMERIC, "
    "user_id TEXT, session_id TEXT, feature TEXT, agent_id TEXT, task_id TEXT, step TEXT, trace_id TEXT, "
    "span_id TEXT, parent_id TEXT, latency_s DOUBLE PRECISION, error TEXT, framework TEXT, tier TEXT, "
    "extra JSONB"
)


@pytest.fixture
def sql(postgres_url):
    conn = psycopg.connect(postgres_url, autocommit=True)
    tables: list[str] = []

    def table() -> str:
        tables.append("agentcost_test_" + uuid.uuid4().hex[:10])
        return tables[-1]

    yield conn, table
    for t in tables:
        conn.execute(f"DROP TABLE IF EXISTS {t}, {t}_prompts, {t}_hourly, {t}_sessions")
        if conn.execute("SELECT to_regclass('agentcost_meta')").fetchone()[0]:
            conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (t,))
    conn.close()


def _version(conn, table):
    row = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (table,)).fetchone()
    return row[0] if row else None


def test_a_postgres_ledger_written_before_schema_versions_is_migrated_and_keeps_its_rows(sql, postgres_url):
    conn, new_table = sql
    t = new_table()
    conn.execute(f"CREATE TABLE IF NOT EXISTS {t} (seq BIGSERIAL PRIMARY KEY, {V1_COLUMNS})")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_ts ON {t} (ts)")
    conn.execute(
        f"INSERT INTO {t} (id, ts, kind, model, provider, input, cache_read, cache_write_5m, cache_write_1h, "
        "output, reasoning, cost, priced, estimated, cache_hit, feature, span_id, extra) VALUES "
        "('old-1', 1700000000, 'llm', 'gpt-4o', 'openai', 1200, 200, 0, 0, 300, 0, 0.00575, true, false, false,"
        " 'search', 'old-1', '{\"k\": 1}'),"
        "('old-2', 1700000001, 'llm', 'house', 'house', 50, 0, 0, 0, 10, 0, NULL, false, true, false,"
        " 'support', 'old-2', NULL)"
    )
    with Ledger(backend=PostgresBackend(postgres_url, table=t)) as ledger:
        old = ledger.events()
        assert [e.id for e in old] == ["old-1", "old-2"]
        assert old[0].cost == Decimal("0.00575") and old[0].usage.input == 1200 and old[0].extra == {"k": 1}
        assert old[1].cost is None and old[1].estimated
        ledger.record(contract.make_event(1, span_id="new"))
        assert [e.span_id for e in ledger.events()] == ["old-1", "old-2", "new"]
    assert _version(conn, t) >= 1
    with Ledger(backend=PostgresBackend(postgres_url, table=t), sync=True) as again:
        assert again.count() == 3


def test_a_new_postgres_ledger_carries_its_schema_version(sql, postgres_url):
    conn, new_table = sql
    t = new_table()
    PostgresBackend(postgres_url, table=t).close()
    assert _version(conn, t) >= 1


def test_a_postgres_ledger_with_a_newer_schema_version_is_refused_with_a_clear_error(sql, postgres_url):
    conn, new_table = sql
    t = new_table()
    PostgresBackend(postgres_url, table=t).close()
    conn.execute("UPDATE agentcost_meta SET schema_version = 999 WHERE name = %s", (t,))
    with pytest.raises(LedgerURLError, match=r"schema version 999, newer than this agentcost knows.*upgrade"):
        PostgresBackend(postgres_url, table=t)


def test_a_postgres_table_that_is_not_a_ledger_is_refused(sql, postgres_url):
    conn, new_table = sql
    t = new_table()
    conn.execute(f"CREATE TABLE {t} (x INTEGER)")
    with pytest.raises(LedgerURLError, match="not an agentcost ledger"):
        PostgresBackend(postgres_url, table=t)
