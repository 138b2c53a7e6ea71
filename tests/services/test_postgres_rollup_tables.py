"""Schema version 5's rollup tables on PostgreSQL (``<table>_hourly``, ``<table>_sessions``, kept by a
statement trigger): a report that reads them equals the Python rollup of the events after a migration
that builds them from a version 4 table, after a prune that cuts an hour and sessions in two, and with
several writers (connections) adding to the same rows at once."""

from __future__ import annotations

import pytest
import rollup_cases as cases

from agentcost_core import Ledger
from agentcost_core.ledger.postgres import PostgresBackend

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.services


def _ledger(url: str, table: str) -> Ledger:
    return Ledger(backend=PostgresBackend(url, table=table), sync=True)


def test_a_version_4_table_gains_rollup_tables_built_from_its_events(postgres_url, pg_table):
    events = cases.varied_events()
    with _ledger(postgres_url, pg_table) as ledger:
        ledger.record_many(events)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # back to version 4's layout, the events kept
        conn.execute(f"DROP TRIGGER {pg_table}_rollups ON {pg_table}")
        conn.execute(f"DROP TABLE {pg_table}_hourly, {pg_table}_sessions")
        for index in ("feature_cost", "call_cost", "notices"):
            conn.execute(f"DROP INDEX {pg_table}_{index}")
        conn.execute("UPDATE agentcost_meta SET schema_version = 4 WHERE name = %s", (pg_table,))
    with _ledger(postgres_url, pg_table) as ledger:  # the migration sums the stored events
        cases.check_equal_to_python(ledger, events)
        cases.check_equal_to_python(ledger, events, feature="support")
        more = cases.varied_events(30)
        ledger.record_many(more)  # and the trigger adds the next ones
        cases.check_equal_to_python(ledger, events + more)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        version = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (pg_table,)).fetchone()
        n = conn.execute(f"SELECT SUM(n) FROM {pg_table}_hourly").fetchone()
    assert version[0] == 5 and n[0] == len(events) + len(more)


def test_a_prune_that_cuts_an_hour_and_sessions_keeps_the_rollup_exact(postgres_url, pg_table):
    with _ledger(postgres_url, pg_table) as ledger:
        cases.check_prune_keeps_the_rollup_exact(ledger, cases.varied_events())


def test_a_prune_beyond_any_date_deletes_everything_and_empties_the_rollup(postgres_url, pg_table):
    with _ledger(postgres_url, pg_table) as ledger:
        cases.check_prune_beyond_any_date_empties_the_rollup(ledger, cases.varied_events())


def test_a_report_reads_one_snapshot_while_another_connection_prunes(postgres_url, pg_table):
    with _ledger(postgres_url, pg_table) as ledger, _ledger(postgres_url, pg_table) as other:
        cases.check_a_report_reads_one_snapshot(ledger, other, pg_table, cases.varied_events())


def test_writers_on_their_own_connections_at_once_keep_the_rollup_exact(postgres_url, pg_table):
    ledgers = [_ledger(postgres_url, pg_table) for _ in range(3)]
    try:
        cases.check_concurrent_writers_keep_the_rollup_exact(ledgers, cases.varied_events(240))
    finally:
        for ledger in ledgers:
            ledger.close()


def test_a_big_version_4_table_migrates_on_open_even_when_the_migration_outlasts_timeout_s(postgres_url, pg_table):
    """Building the rollup tables of a large version 4 table takes longer than a write's deadline: the
    open runs it under the report's deadline, so ``Ledger(url)`` with its default settings opens it."""
    events = cases.varied_events()
    with _ledger(postgres_url, pg_table) as ledger:
        ledger.record_many(events)
    copies = 3_000
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # version 4's layout, ~len(events) x 3,000 rows
        conn.execute(f"DROP TRIGGER {pg_table}_rollups ON {pg_table}")
        conn.execute(f"DROP TABLE {pg_table}_hourly, {pg_table}_sessions")
        conn.execute("UPDATE agentcost_meta SET schema_version = 4 WHERE name = %s", (pg_table,))
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name NOT IN ('seq', 'id')",
            (pg_table,),
        )]  # fmt: skip
        listed = ", ".join(columns)
        conn.execute(
            f"INSERT INTO {pg_table} (id, {listed}) SELECT md5(random()::text || g::text), {listed} "
            f"FROM {pg_table}, generate_series(1, {copies - 1}) AS g"
        )
    backend = PostgresBackend(postgres_url, table=pg_table, timeout_s=0.5)  # the migration takes seconds
    with Ledger(backend=backend, sync=True) as ledger:
        assert ledger.count() == len(events) * copies
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        version = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (pg_table,)).fetchone()
        hourly = conn.execute(f"SELECT SUM(n) FROM {pg_table}_hourly").fetchone()
    assert version[0] == 5 and hourly[0] == len(events) * copies
