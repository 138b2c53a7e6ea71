"""The PostgreSQL ledger under a stalled server: a proxy that keeps every connection open but
forwards nothing (``pg_proxy.pause()``). Every ledger call has a client-side deadline
(``timeout_s``), so the writer, ``flush()``, a sync ``record()`` and interpreter exit return
within ``retry_s + timeout_s + connect deadline`` however long the stall lasts; afterwards every
event is stored exactly once, or dead-lettered, counted, and stored once by a retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import ledger_contract as contract
import pytest
from ledger_checks import stored_spans, wait_for

from agentcost_core import Ledger
from agentcost_core.ledger.postgres import PostgresBackend

TIMEOUT = 0.5  # the ledger's call deadline in these tests
CONNECT = 2.0  # opening a connection: libpq's floor (whole seconds, at least 2)
RETRY = 0.5  # the retry window when the stall is meant to outlast it
MARGIN = 1.5  # scheduling on a shared 2-CPU machine
BOUND = RETRY + TIMEOUT + CONNECT + MARGIN  # the documented bound of one batch, with the margin


def dead_letter_spans(path: str | None) -> list[str]:
    if path is None or not Path(path).exists():
        return []
    return [json.loads(line)["event"]["span_id"] for line in Path(path).read_text().splitlines()]


def test_a_stall_shorter_than_retry_s_is_waited_out_and_every_event_stored_once(pg_proxy, postgres_url, pg_table):
    lg = Ledger(
        backend=PostgresBackend(pg_proxy.url, table=pg_table, timeout_s=TIMEOUT), flush_interval_s=0.05, retry_s=20
    )
    try:
        lg.record_many([contract.make_event(i, span_id=f"before-{i}") for i in range(100)])
        lg.flush()

        pg_proxy.pause()
        started = time.monotonic()
        lg.record_many([contract.make_event(i, span_id=f"stalled-{i}") for i in range(500)])
        flusher = threading.Thread(target=lg.flush, daemon=True)
        flusher.start()
        wait_for(lambda: lg.status().retries >= 1, timeout=TIMEOUT + 0.05 + MARGIN)  # the call was cut
        cut_after = time.monotonic() - started
        assert flusher.is_alive()  # still inside the retry window, waiting for the server
        pg_proxy.resume()
        flusher.join(timeout=CONNECT + 2.0 + MARGIN)  # a reconnect attempt, the next backoff step
        assert not flusher.is_alive()
        print(f"stall < retry_s: writer's call cut after {cut_after:.2f} s (timeout_s={TIMEOUT})")

        spans = stored_spans(postgres_url, pg_table)
        assert len(spans) == len(set(spans)) == 600  # every event, none twice
        status = lg.status()
        assert (status.written, status.dead_lettered, status.dropped) == (600, 0, 0)
    finally:
        lg.close()


@pytest.mark.parametrize("durability", ["fast", "spool", "sync"])
def test_a_stall_longer_than_retry_s_returns_within_the_bound_dead_letters_and_retry_stores_once(
    pg_proxy, postgres_url, pg_table, durability
):
    lg = Ledger(
        backend=PostgresBackend(pg_proxy.url, table=pg_table, timeout_s=TIMEOUT),
        durability=durability,
        flush_interval_s=3600,  # fast, spool: the events wait for flush()
        retry_s=RETRY,
    )
    try:
        lg.record_many([contract.make_event(i, span_id=f"before-{i}") for i in range(50)])
        lg.flush()

        pg_proxy.pause()
        took: list[float] = []
        for i in range(300):
            started = time.monotonic()
            lg.record(contract.make_event(i, span_id=f"stalled-{i}"))
            took.append(time.monotonic() - started)
        started = time.monotonic()
        lg.flush()
        flushed = time.monotonic() - started
        worst = max([*took, flushed])
        print(
            f"{durability}, stall > retry_s: slowest record {max(took):.2f} s, record total {sum(took):.2f} s, "
            f"flush {flushed:.2f} s (bound {BOUND - MARGIN:.1f} s + margin)"
        )
        assert worst < BOUND
        if durability == "sync":  # the first record found the outage; the others are not held up by it
            assert sum(took) < 2 * BOUND

        status = lg.status()
        assert (status.written, status.dead_lettered, status.dropped) == (50, 300, 0)
        assert sorted(dead_letter_spans(status.dead_letter_file)) == sorted(f"stalled-{i}" for i in range(300))

        pg_proxy.resume()
        result = lg.retry_dead_letters()
        assert (result.stored, result.already_stored, result.still_dead) == (300, 0, 0)
        assert dead_letter_spans(status.dead_letter_file) == []
        again = lg.retry_dead_letters()  # nothing left to do: no second row
        assert (again.stored, again.still_dead) == (0, 0)
        spans = stored_spans(postgres_url, pg_table)
        assert len(spans) == len(set(spans)) == 350
    finally:
        lg.close()


def test_repeated_stalls_under_steady_recording_store_each_event_exactly_once(pg_proxy, postgres_url, pg_table):
    """Batches cut mid-way may still commit late (the stalled link delivers them on resume): the
    retry ends the old server process and asks what is stored before writing, so nothing is lost,
    nothing doubled, and ``written`` counts what is stored."""
    lg = Ledger(backend=PostgresBackend(pg_proxy.url, table=pg_table, timeout_s=TIMEOUT), sync=True, retry_s=20)
    stop = threading.Event()
    batches = 0

    def record() -> None:
        nonlocal batches
        while not stop.is_set():
            lg.record_many([contract.make_event(i, span_id=f"{batches}-{i}") for i in range(50)])
            batches += 1

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    try:
        for stall in range(8):
            before = lg.status()
            wait_for(lambda b=before: lg.status().written >= b.written + 200, timeout=5)  # recording flows
            pg_proxy.pause()
            wait_for(lambda b=before: lg.status().retries > b.retries, timeout=TIMEOUT + MARGIN)  # a call was cut
            cut = lg.status().written
            pg_proxy.resume()
            wait_for(lambda c=cut: lg.status().written > c, timeout=CONNECT + 2.0 + MARGIN)  # writing again
    finally:
        stop.set()
        recorder.join(timeout=10)
        pg_proxy.resume()
    try:
        assert not recorder.is_alive()
        spans = stored_spans(postgres_url, pg_table)
        print(f"8 stalls under steady sync recording: {batches * 50:,} events, {len(spans):,} rows")
        assert len(spans) == len(set(spans)) == batches * 50
        status = lg.status()
        assert (status.written, status.dead_lettered) == (batches * 50, 0) and status.retries >= 8
    finally:
        lg.close()


def test_a_server_down_past_retry_s_is_dead_lettered_then_retry_stores_each_event_once(
    pg_proxy, postgres_url, pg_table
):
    lg = Ledger(backend=PostgresBackend(pg_proxy.url, table=pg_table, timeout_s=TIMEOUT), retry_s=RETRY)
    try:
        lg.record_many([contract.make_event(i, span_id=f"before-{i}") for i in range(20)])
        lg.flush()
        pg_proxy.stop()
        lg.record_many([contract.make_event(i, span_id=f"down-{i}") for i in range(200)])
        lg.flush()
        status = lg.status()
        assert (status.written, status.dead_lettered) == (20, 200)

        pg_proxy.start()
        result = lg.retry_dead_letters()
        assert (result.stored, result.still_dead) == (200, 0)
        assert dead_letter_spans(status.dead_letter_file) == []
        spans = stored_spans(postgres_url, pg_table)
        assert len(spans) == len(set(spans)) == 220
    finally:
        lg.close()


CHILD = r"""
import sys, time
from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.ledger.postgres import PostgresBackend

url, table, timeout, retry = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ledger = Ledger(backend=PostgresBackend(url, table=table, timeout_s=timeout), retry_s=retry, flush_interval_s=3600)
ledger.record(CostEvent(model="m", usage=Usage(input=1), span_id="warm", ts=time.time()))
ledger.flush()
for i in range(1000):
    ledger.record(CostEvent(model="m", usage=Usage(input=1), span_id=f"queued-{i}", ts=time.time()))
print("queued", flush=True)
sys.stdin.readline()  # the parent pauses the server, then lets us exit with 1,000 events queued
"""


def test_interpreter_exit_under_a_stall_returns_within_the_bound_and_dead_letters_what_was_queued(
    pg_proxy, postgres_url, pg_table, tmp_path
):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, pg_proxy.url, pg_table, str(TIMEOUT), str(RETRY)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "queued"
        pg_proxy.pause()
        started = time.monotonic()
        child.stdin.write("exit\n")
        child.stdin.flush()
        child.wait(timeout=BOUND + 5)
        exited = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        pg_proxy.resume()
    print(f"exit under a stall with 1,000 events queued: {exited:.2f} s")
    assert child.returncode == 0
    assert exited < BOUND
    [dead_file] = tmp_path.glob("*.deadletter.jsonl")
    assert sorted(dead_letter_spans(str(dead_file))) == sorted(f"queued-{i}" for i in range(1000))
    assert stored_spans(postgres_url, pg_table) == ["warm"]
