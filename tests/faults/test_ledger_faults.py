"""The ledger under faults: a PostgreSQL link dropped or gone for a while, an event the database
refuses among good ones, text no column stores. Nothing is lost silently."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import ledger_contract as contract
import pytest
from ledger_checks import stored_spans, wait_for

from agentcost_core import Ledger, Usage
from agentcost_core.ledger.postgres import PostgresBackend


@pytest.mark.parametrize("durability", ["fast", "spool", "sync"])
def test_the_postgres_ledger_reconnects_after_a_dropped_link_and_a_server_restart(
    pg_proxy, postgres_url, pg_table, durability
):
    lg = Ledger(backend=PostgresBackend(pg_proxy.url, table=pg_table), durability=durability, flush_interval_s=0.05)
    try:
        lg.record_many([contract.make_event(i, span_id=f"before-{i}") for i in range(100)])
        lg.flush()

        pg_proxy.drop()  # every open connection cut
        lg.record_many([contract.make_event(i, span_id=f"dropped-{i}") for i in range(1_200)])
        lg.flush()

        pg_proxy.stop()  # the server is gone until we bring it back

        def record_while_down():  # in sync mode record() itself waits for the database
            lg.record_many([contract.make_event(i, span_id=f"down-{i}") for i in range(1_200)])
            lg.flush()

        recorder = threading.Thread(target=record_while_down, daemon=True)
        recorder.start()
        wait_for(lambda: lg.status().retries >= 2)  # retrying, not losing the batch
        pg_proxy.start()
        recorder.join(timeout=30)
        assert not recorder.is_alive()

        spans = stored_spans(postgres_url, pg_table)
        assert len(spans) == len(set(spans)) == 2_500  # every event, none twice
        status = lg.status()
        assert (status.written, status.dropped, status.dead_lettered) == (2_500, 0, 0)
        assert lg.count() == 2_500  # reads reconnect too
    finally:
        lg.close()


def test_an_outage_longer_than_the_retry_window_is_dead_lettered_and_counted_then_writes_resume(
    pg_proxy, postgres_url, pg_table
):
    lg = Ledger(backend=PostgresBackend(pg_proxy.url, table=pg_table), retry_s=0.3)
    try:
        pg_proxy.stop()
        lg.record_many([contract.make_event(i, span_id=f"lost-{i}") for i in range(10)])
        lg.flush()
        status = lg.status()
        assert status.dead_lettered == 10 and status.written == 0
        entries = [json.loads(line) for line in Path(status.dead_letter_file).read_text().splitlines()]
        assert sorted(e["event"]["span_id"] for e in entries) == sorted(f"lost-{i}" for i in range(10))
        assert all(e["reason"].startswith("ledger unreachable") for e in entries)

        pg_proxy.start()
        lg.record_many([contract.make_event(i, span_id=f"after-{i}") for i in range(50)])
        lg.flush()
        assert sorted(stored_spans(postgres_url, pg_table)) == sorted(f"after-{i}" for i in range(50))
    finally:
        lg.close()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        lg = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        table = request.getfixturevalue("pg_table")
        lg = Ledger(backend=PostgresBackend(request.getfixturevalue("postgres_url"), table=table))
    yield lg
    lg.close()


def test_a_poison_event_among_1999_good_ones_is_the_only_one_dead_lettered(ledger):
    events = [contract.make_event(i, span_id=str(i)) for i in range(2_000)]
    poison = events[1_234] = contract.make_event(1_234, span_id="poison", usage=Usage(input=2**63))
    ledger.record_many(events)  # one batch of 2,000
    ledger.flush()

    assert ledger.count() == 1_999
    assert "poison" not in {e.span_id for e in ledger.events()}
    status = ledger.status()
    assert (status.written, status.dead_lettered, status.dropped) == (1_999, 1, 0)
    [entry] = [json.loads(line) for line in Path(status.dead_letter_file).read_text().splitlines()]
    assert entry["event"]["id"] == poison.id and entry["event"]["usage"]["input"] == 2**63  # kept exactly
    assert "64-bit" in entry["reason"]


def test_text_no_column_stores_is_escaped_flagged_and_stored_with_its_batch(ledger):
    ledger.record(contract.make_event(0, span_id="good"))
    ledger.record(
        contract.make_event(1, span_id="bad", error="boom \udc80 and \x00", feature="f\x00", extra={"k": "\ud800"})
    )
    ledger.flush()

    by_span = {e.span_id: e for e in ledger.events()}
    assert set(by_span) == {"good", "bad"}
    bad = by_span["bad"]
    assert bad.error == "boom \\udc80 and \\x00" and bad.feature == "f\\x00"
    assert bad.extra == {"k": "\\ud800", "agentcost_repaired": ["error", "extra", "feature"]}
    assert ledger.status().repaired == 1 and ledger.status().dead_lettered == 0


def test_a_failing_batch_never_reaches_the_callers_thread_in_sync_mode(ledger, tmp_path):
    sync = Ledger(backend=ledger.backend, sync=True)
    sync.record(contract.make_event(0, span_id="huge", usage=Usage(output=2**64)))  # no exception
    sync.record(contract.make_event(1, span_id="fine"))
    assert [e.span_id for e in sync.events()] == ["fine"]
    assert sync.status().dead_lettered == 1


def test_a_batch_retried_after_a_dropped_link_is_stored_once(pg_proxy, postgres_url, pg_table):
    lg = Ledger(backend=PostgresBackend(pg_proxy.url, table=pg_table), flush_interval_s=3600)
    try:
        for round_ in range(5):
            lg.record_many([contract.make_event(i, span_id=f"{round_}-{i}") for i in range(200)])
            pg_proxy.drop()  # the writer finds its connection broken at the next write
            lg.flush()
        spans = stored_spans(postgres_url, pg_table)
        assert len(spans) == len(set(spans)) == 1_000
        status = lg.status()
        assert status.retries >= 5 and status.dead_lettered == 0
    finally:
        lg.close()
