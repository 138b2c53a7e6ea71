"""A PostgreSQL ledger's rollup runs in PostgreSQL and equals the Python rollup of the same events; a
version 3 table migrates to version 4 (``top_model`` filled from ``extra``) and reports the same."""

from __future__ import annotations

import json

import pytest
import rollup_cases as cases

from agentcost_core import Ledger
from agentcost_core.ledger.base import COLUMNS, event_to_row
from agentcost_core.ledger.postgres import PostgresBackend
from agentcost_core.rollup import rollup

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.services


def test_a_postgres_rollup_equals_the_python_rollup_for_every_grouping_and_window(postgres_url, pg_table):
    events = cases.varied_events()
    with Ledger(backend=PostgresBackend(postgres_url, table=pg_table), sync=True) as ledger:
        ledger.record_many(events)
        cases.check_equal_to_python(ledger, events)
        cases.check_equal_to_python(ledger, events, feature="support")


def test_a_version_3_postgres_table_migrates_and_reports_the_same(postgres_url, pg_table):
    events = cases.varied_events()
    v3_columns = COLUMNS  # version 3's layout: version 4 only adds top_model (and version 5 the rollup tables)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        PostgresBackend(postgres_url, table=pg_table).close()  # the current layout, then back to version 3's
        conn.execute(f"DROP TABLE {pg_table}_hourly, {pg_table}_sessions")  # version 5's
        conn.execute(f"DROP TRIGGER {pg_table}_rollups ON {pg_table}")
        conn.execute(f"ALTER TABLE {pg_table} DROP COLUMN top_model")
        conn.execute("UPDATE agentcost_meta SET schema_version = 3 WHERE name = %s", (pg_table,))
        with conn.cursor() as cur, cur.copy(f"COPY {pg_table} ({', '.join(v3_columns)}) FROM STDIN") as copy:
            for e in events:
                row = list(event_to_row(e))
                row[COLUMNS.index("extra")] = None if not e.extra else json.dumps(e.extra)
                copy.write_row(row)
    with Ledger(backend=PostgresBackend(postgres_url, table=pg_table), sync=True) as ledger:
        got = ledger.rollup(by=("feature", "tier"))
        assert cases.as_compared(got) == cases.as_compared(
            rollup(sorted(events, key=lambda e: e.ts), by=("feature", "tier"))
        )
        assert got.total.routed_calls == 30 and got.total.routing_savings > 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        version = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (pg_table,)).fetchone()
        tops = conn.execute(f"SELECT COUNT(top_model) FROM {pg_table}").fetchone()
    assert version[0] == 5 and tops[0] == 30


def test_a_report_query_may_take_longer_than_a_writes_deadline(postgres_url, pg_table):
    backend = PostgresBackend(postgres_url, table=pg_table, timeout_s=0.5)
    try:  # a report over millions of events takes seconds; the 0.5 s deadline is for writes and reads
        assert backend.aggregate("SELECT 7 FROM pg_sleep(1.2)", []) == [(7,)]
    finally:
        backend.close()
