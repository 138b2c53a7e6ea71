"""The same ledger contract against a real PostgreSQL server, plus 100,000 events through the writer."""

from __future__ import annotations

import uuid

import pytest

import ledger_contract as contract
from processes_together import run_together
from agentcost_core import Ledger
from agentcost_core.ledger.postgres import PostgresBackend

pytestmark = pytest.mark.services


def _sql(url: str, statement: str, *args) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, args or None)


def _drop(url: str, table: str) -> None:
    _sql(url, f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
    _sql(url, "DELETE FROM agentcost_meta WHERE name = %s", table)


@pytest.fixture
def pg_ledger(postgres_url):
    table = "agentcost_test_" + uuid.uuid4().hex[:10]
    lg = Ledger(backend=PostgresBackend(postgres_url, table=table))
    yield lg
    lg.close()
    _drop(postgres_url, table)


@pytest.mark.parametrize(
    "check",
    [
        contract.check_round_trip_is_exact,
        contract.check_unpriced_stays_none,
        contract.check_filters_and_windows,
        contract.check_rollup,
        contract.check_concurrent_writers_lose_nothing,
    ],
    ids=lambda c: c.__name__,
)
def test_contract(pg_ledger, check):
    check(pg_ledger)


def test_100k_events_through_the_background_writer_are_all_present(pg_ledger):
    for i in range(100_000):
        pg_ledger.record(contract.make_event(i, span_id=str(i)))
    pg_ledger.flush()
    assert pg_ledger.count() == 100_000
    assert pg_ledger.dropped == 0


def test_url_opens_the_default_table(postgres_url):
    lg = Ledger(postgres_url, sync=True)
    try:
        marker = uuid.uuid4().hex
        lg.record(contract.make_event(1, trace_id=marker))
        assert [e.trace_id for e in lg.events(trace_id=marker)] == [marker]
    finally:
        lg.close()
        _sql(postgres_url, "DELETE FROM agentcost_events WHERE trace_id = %s", marker)


def _open_backend(url: str, table: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    try:
        barrier.wait(timeout=30)
        PostgresBackend(url, table=table).close()
        results.put("ok")
    except Exception as e:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(e).__name__}: {e}")


def test_processes_starting_at_once_on_a_fresh_database_all_open_the_ledger(postgres_url):
    """CREATE TABLE IF NOT EXISTS is not safe under concurrency in PostgreSQL: without the advisory
    lock most of these processes failed on a catalog index (duplicate key … pg_type_typname_nsp_index)."""
    for _ in range(4):
        table = "agentcost_test_" + uuid.uuid4().hex[:10]
        try:
            outcomes = run_together(_open_backend, [(postgres_url, table)] * 6)
        finally:
            PostgresBackend(postgres_url, table=table).close()  # exists even if every process failed
            _drop(postgres_url, table)
        assert outcomes == ["ok"] * 6
