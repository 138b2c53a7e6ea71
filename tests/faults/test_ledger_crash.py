"""SIGKILL of a real process recording into a ledger, in each durability mode.

The child records events numbered 0, 1, 2 … and prints how many ``record()`` calls have returned,
every 100 events. The parent kills it with SIGKILL once it has reported enough, then opens the
ledger again (which replays a spool) and checks what was stored against what was reported:

* ``sync``: every reported event is stored (loss 0);
* ``spool``: every reported event is stored after the replay (loss 0), none twice;
* ``fast``: what is stored is a gapless prefix, and the newest stored event is younger than the
  documented commit bound at the moment of the kill (the loss is the last fraction of a second).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from agentcost_core import Ledger
from agentcost_core.ledger.postgres import PostgresBackend

COMMIT_BOUND_S = 5.0  # the documented bound (~flush_interval_s + write time), with a wide margin

CHILD = r"""
import sys, time
from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.ledger.postgres import PostgresBackend

url, table, mode = sys.argv[1:4]
if table:
    ledger = Ledger(backend=PostgresBackend(url, table=table), durability=mode)
else:
    ledger = Ledger(url, durability=mode)
i = 0
while True:
    for _ in range(100):
        ledger.record(CostEvent(model="m", usage=Usage(input=1), span_id=str(i), ts=time.time()))
        i += 1
    print(i, flush=True)
    time.sleep(0.002)  # a steady call rate (tens of thousands of events a second), not a sync point
"""


def run_and_kill(url: str, table: str, mode: str, enough: int) -> tuple[int, float]:
    """Start the child, SIGKILL it once it reported ``enough`` events; (events reported, kill time)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, table, mode], stdout=subprocess.PIPE, text=True, env=env
    )
    reported = 0
    deadline = time.monotonic() + 60
    try:
        while reported < enough:
            line = child.stdout.readline()
            assert line, f"the child stopped early (exit {child.poll()})"
            reported = int(line)
            assert time.monotonic() < deadline, "the child was too slow"
        child.send_signal(signal.SIGKILL)
        killed_at = time.time()
        for line in child.stdout.read().split():  # what it reported before the signal landed
            reported = int(line)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return reported, killed_at


def check(ledger: Ledger, mode: str, reported: int, killed_at: float) -> None:
    events = ledger.events()
    numbers = sorted(int(e.span_id) for e in events)
    stored = len(numbers)
    assert numbers == list(range(stored)), "stored events are not a gapless prefix, or some were stored twice"
    print(f"{mode}: reported {reported}, stored {stored}, lost {max(0, reported - stored)}")
    if mode in ("sync", "spool"):
        assert stored >= reported  # nothing that record() returned for is lost
    else:
        newest = max(e.ts for e in events)
        assert killed_at - newest < COMMIT_BOUND_S


@pytest.mark.parametrize(("mode", "enough"), [("fast", 20_000), ("spool", 20_000), ("sync", 1_000)])
def test_sigkill_of_a_sqlite_writer_loses_at_most_the_documented_bound(tmp_path, mode, enough):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    reported, killed_at = run_and_kill(url, "", mode, enough)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        print(f"{mode}: {db.execute('SELECT COUNT(*) FROM events').fetchone()[0]} stored before the reopen")
    with Ledger(url) as ledger:  # opening replays what a crashed spool left
        check(ledger, mode, reported, killed_at)
        assert not list((tmp_path / "ledger.db.spool").glob("*.jsonl"))  # replayed and removed


def test_sigkill_of_a_postgres_writer_in_spool_mode_loses_nothing(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTCOST_LEDGER_DIR", str(tmp_path))
    table = f"agentcost_crash_{uuid.uuid4().hex[:10]}"
    try:
        reported, killed_at = run_and_kill(postgres_url, table, "spool", 20_000)
        with Ledger(backend=PostgresBackend(postgres_url, table=table)) as ledger:
            check(ledger, "spool (PostgreSQL)", reported, killed_at)
        with Ledger(backend=PostgresBackend(postgres_url, table=table)) as again:  # a second replay adds nothing
            assert again.count() == len({e.id for e in again.events()})
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
            conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))


EXITING_CHILD = r"""
import sys
from agentcost_core import CostEvent, Ledger, Usage
ledger = Ledger(sys.argv[1], durability=sys.argv[2])
for i in range(int(sys.argv[3])):
    ledger.record(CostEvent(model="m", usage=Usage(input=1), span_id=str(i)))
sys.exit(0)  # a normal exit (a restart): the exit handler stores the queue
"""


@pytest.mark.parametrize(("mode", "n"), [("fast", 5_000), ("spool", 5_000), ("sync", 300)])
def test_a_process_that_exits_normally_loses_nothing_and_leaves_no_spool(tmp_path, mode, n):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", EXITING_CHILD, url, mode, str(n)], check=True, env=env, timeout=120)
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # stored before any reopen could replay
        assert db.execute("SELECT COUNT(DISTINCT span_id) FROM events").fetchone()[0] == n
    spool = tmp_path / "ledger.db.spool"
    assert all(f.stat().st_size == 0 for f in spool.glob("*.jsonl"))
