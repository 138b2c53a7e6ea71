"""The same ledger contract against a real PostgreSQL server, plus 100,000 events through the writer."""

from __future__ import annotations

import uuid

import pytest

import ledger_contract as contract
from agentcost_core import Ledger
from agentcost_core.ledger.postgres import PostgresBackend

pytestmark = pytest.mark.services


@pytest.fixture
def pg_ledger(postgres_url):
    table = "agentcost_test_" + uuid.uuid4().hex[:10]
    backend = PostgresBackend(postgres_url, table=table)
    lg = Ledger(backend=backend)
    yield lg
    lg.flush()
    with backend._conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    lg.close()


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
        with lg.backend._conn.cursor() as cur:
            cur.execute("DELETE FROM agentcost_events WHERE trace_id = %s", (marker,))
        lg.close()
