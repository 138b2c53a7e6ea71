"""Sustained ledger throughput into SQLite, with raw ``sqlite3`` anchors measured in the same run.

    python tests/benchmarks/bench_ledger.py [--quick] [--n 200000] [--rounds 3]

Measured (each repeated ``--rounds`` times, alternating, fresh database file each time; medians):

* **Ledger, background writer** — ``Ledger("sqlite:///…")`` with its defaults. N prebuilt but
  distinct :class:`CostEvent` are ``record()``-ed from the producer (main) thread, then ``flush()``;
  wall time from the first ``record`` to the return of ``flush``. Also reported: the producer's
  ``record()`` loop time per call (it includes waiting when the queue is full), and that
  ``count() == N`` with nothing dropped. Run twice: with every event of a writer's batch in a session
  of its own (the sessions rollup table's worst case: two new rows per event) and with realistic
  sessions of 10–30 events, 8 open at a time (:func:`sessions_of`).
* **Anchors** — plain ``sqlite3`` with the same pragmas (WAL, ``synchronous=NORMAL``), prebuilt
  rows, ``executemany`` in transactions of 2,000 rows (the writer's batch size):
  16-column rows keyed by a uuid4 TEXT primary key; the same keyed by INTEGER PRIMARY KEY; and the
  ledger's own 32-column table + index with rows prebuilt by ``event_to_row`` (what the SQLite
  part of the ledger costs without the Python around it).
* **Ledger, sync=True** — each ``record()`` is its own transaction; smaller N.
* **record() alone** — the producer's cost per call with the writer idle (batch and interval set
  so it does not wake during the loop).

Target (DESIGN.md): ≥ 50,000 events/s sustained into SQLite on 2 cores.
"""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _bench first: it points TIKTOKEN_CACHE_DIR at the offline cache before tiktoken loads anything.
import _bench
from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.ledger.base import COLUMNS, event_to_row
from agentcost_core.ledger.sqlite import _INSERT, INDEXES, SCHEMA

BATCH = 2_000
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "gemini-2.5-flash")
PROVIDERS = ("openai", "openai", "anthropic", "google")


def sessions_of(n: int, realistic: bool) -> list[str]:
    """Each event's session. Worst case for the sessions rollup table: 5,000 sessions in turn, so every
    event of a writer's batch (2,000) is in a session of its own. Realistic: sessions of 10 to 30 events,
    8 of them open at a time (their events interleave), as agents running side by side write them."""
    if not realistic:
        return [f"sess-{i % 5_000}" for i in range(n)]
    out: list[str] = []
    open_: list[list[object]] = []  # [session number, events left]
    started = 0
    while len(out) < n:
        while len(open_) < 8:
            open_.append([started, 10 + (started * 7) % 21])
            started += 1
        slot = open_[len(out) % len(open_)]
        out.append(f"sess-{slot[0]}")
        slot[1] = int(slot[1]) - 1  # type: ignore[call-overload]
        if slot[1] == 0:
            open_.remove(slot)
    return out


def make_events(n: int, realistic_sessions: bool = False) -> list[CostEvent]:
    """Distinct, realistic events: varied model, tokens, cost and attribution; unique ids (sessions: see
    :func:`sessions_of`)."""
    out = []
    sessions = sessions_of(n, realistic_sessions)
    for i in range(n):
        k = i % 4
        inp = 200 + (i * 7) % 3_000
        out.append(
            CostEvent(
                model=MODELS[k],
                usage=Usage(input=inp, cache_read=(i % 3) * 512, output=40 + (i * 13) % 900, reasoning=(i % 5) * 8),
                cost=Decimal(inp * 15 + i % 997) / Decimal(100_000_000),
                provider=PROVIDERS[k],
                priced=True,
                requested_model=MODELS[k][:11],
                user_id=f"user-{i % 1_000}",
                session_id=sessions[i],
                feature=("support", "search", "billing", "triage")[i % 4],
                agent_id="agent-1",
                step=("plan", "act", "reflect")[i % 3],
                trace_id=f"trace-{i // 8}",
                span_id=str(uuid.UUID(int=i + 1)),
                parent_id=f"trace-{i // 8}",
                latency_s=0.25 + (i % 100) / 100,
                framework="langchain",
                ts=1_790_000_000.0 + i * 0.01,
            )
        )
    return out


def fresh_db(tmp: str, name: str) -> str:
    path = os.path.join(tmp, name)
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
    return path


def ledger_background(tmp: str, events: list[CostEvent]) -> dict[str, float]:
    path = fresh_db(tmp, "ledger.db")
    ledger = Ledger(f"sqlite:///{path}")
    n = len(events)
    record = ledger.record
    gc.collect()
    t0 = _bench.perf()
    for e in events:
        record(e)
    t1 = _bench.perf()
    ledger.flush()
    t2 = _bench.perf()
    stored, dropped = ledger.count(), ledger.dropped
    ledger.close()
    if stored != n or dropped:
        raise SystemExit(f"ERROR: ledger stored {stored} of {n} events, dropped {dropped}")
    return {"s": t2 - t0, "eps": n / (t2 - t0), "record_us": (t1 - t0) / n * 1e6, "flush_s": t2 - t1}


def ledger_sync(tmp: str, events: list[CostEvent]) -> dict[str, float]:
    path = fresh_db(tmp, "ledger-sync.db")
    ledger = Ledger(f"sqlite:///{path}", sync=True)
    n = len(events)
    gc.collect()
    t0 = _bench.perf()
    for e in events:
        ledger.record(e)
    t1 = _bench.perf()
    stored = ledger.count()
    ledger.close()
    if stored != n:
        raise SystemExit(f"ERROR: sync ledger stored {stored} of {n} events")
    return {"s": t1 - t0, "eps": n / (t1 - t0), "record_us": (t1 - t0) / n * 1e6}


def record_alone(events: list[CostEvent]) -> float:
    """µs per record() with the writer asleep (nothing competes for the GIL)."""
    tmp = tempfile.mkdtemp(prefix="agentcost-bench-rec-")
    try:
        n = len(events)
        ledger = Ledger(f"sqlite:///{tmp}/l.db", max_queue=n + 1, batch_size=n + 1, flush_interval_s=3_600)
        record = ledger.record
        gc.collect()
        c0 = _bench.CLOCKS["cpu"]()
        for e in events:
            record(e)
        us = (_bench.CLOCKS["cpu"]() - c0) / n * 1e6
        ledger.close()
        return us
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _insert_batches(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> float:  # type: ignore[type-arg]
    gc.collect()
    t0 = _bench.perf()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i : i + BATCH])
        conn.execute("COMMIT")
    return _bench.perf() - t0


def anchor_16(tmp: str, n: int, key: str) -> float:
    path = fresh_db(tmp, f"anchor-{key}.db")
    conn = _connect(path)
    cols = ", ".join(f"c{i} {'INTEGER' if i % 2 else 'TEXT'}" for i in range(1, 16))
    if key == "uuid":
        conn.execute(f"CREATE TABLE t (id TEXT PRIMARY KEY, {cols})")
        keys: list[object] = [str(uuid.uuid4()) for _ in range(n)]
    else:
        conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {cols})")
        keys = list(range(1, n + 1))
    rows = [(k,) + tuple(i + j if j % 2 else f"v{(i + j) % 977}" for j in range(1, 16)) for i, k in enumerate(keys)]
    sql = f"INSERT INTO t VALUES ({', '.join('?' * 16)})"
    s = _insert_batches(conn, sql, rows)
    conn.close()
    return n / s


def anchor_ledger_schema(tmp: str, events: list[CostEvent]) -> float:
    path = fresh_db(tmp, "anchor-ledger-schema.db")
    conn = _connect(path)
    conn.execute(SCHEMA)
    for ddl in INDEXES:
        conn.execute(ddl)
    rows = [event_to_row(e) for e in events]
    s = _insert_batches(conn, _INSERT, rows)
    conn.close()
    return len(events) / s


def convert_only(events: list[CostEvent]) -> float:
    """µs per event_to_row (the Python the writer runs per event before SQLite sees it)."""
    c0 = _bench.CLOCKS["cpu"]()
    for e in events:
        event_to_row(e)
    return (_bench.CLOCKS["cpu"]() - c0) / len(events) * 1e6


def _arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def main() -> int:
    quick = _bench.quick()
    n = _arg("--n", 20_000 if quick else 200_000)
    rounds = _arg("--rounds", 1 if quick else 3)
    n_sync = max(500, n // 40)
    print(f"Ledger throughput into SQLite — {_bench.machine()}, {_bench.load()}")
    print(f"N={n:,} events, {rounds} round(s) alternating, fresh database each time; sync mode N={n_sync:,}\n")
    events = make_events(n)
    real_events = make_events(n, realistic_sessions=True)
    tmp = tempfile.mkdtemp(prefix="agentcost-bench-ledger-")
    res: dict[str, list[float]] = {k: [] for k in ("bg", "bg_real", "uuid16", "int16", "schema32", "sync")}
    rec_us: list[float] = []
    flush_s: list[float] = []
    sync_us: list[float] = []
    try:
        for r in range(rounds):
            order = ["bg", "uuid16", "bg_real", "int16", "schema32", "sync"]
            if r % 2:
                order.reverse()
            for what in order:
                if what == "bg":
                    m = ledger_background(tmp, events)
                    res["bg"].append(m["eps"])
                    rec_us.append(m["record_us"])
                    flush_s.append(m["flush_s"])
                elif what == "bg_real":
                    res["bg_real"].append(ledger_background(tmp, real_events)["eps"])
                elif what == "uuid16":
                    res["uuid16"].append(anchor_16(tmp, n, "uuid"))
                elif what == "int16":
                    res["int16"].append(anchor_16(tmp, n, "int"))
                elif what == "schema32":
                    res["schema32"].append(anchor_ledger_schema(tmp, events))
                else:
                    m = ledger_sync(tmp, events[:n_sync])
                    res["sync"].append(m["eps"])
                    sync_us.append(m["record_us"])
        alone = _bench.median([record_alone(events[: min(n, 100_000)]) for _ in range(rounds)])
        conv = _bench.median([convert_only(events[: min(n, 100_000)]) for _ in range(rounds)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: _bench.median(v) for k, v in res.items()}
    rows = [
        (
            "Ledger(sqlite), background writer",
            f"{med['bg']:,.0f}",
            f"{min(res['bg']):,.0f}–{max(res['bg']):,.0f}",
            f"record() loop {_bench.median(rec_us):.2f} µs/call, then flush() {_bench.median(flush_s):.2f} s",
        ),
        (
            "Ledger(sqlite), background writer, realistic sessions",
            f"{med['bg_real']:,.0f}",
            f"{min(res['bg_real']):,.0f}–{max(res['bg_real']):,.0f}",
            "sessions of 10–30 events, 8 open at a time (above: every event of a batch in its own session)",
        ),
        (
            "Ledger(sqlite, sync=True)",
            f"{med['sync']:,.0f}",
            f"{min(res['sync']):,.0f}–{max(res['sync']):,.0f}",
            f"{_bench.median(sync_us):.1f} µs per record(), one transaction each",
        ),
        (
            "anchor: sqlite3 16 cols, uuid TEXT key",
            f"{med['uuid16']:,.0f}",
            f"{min(res['uuid16']):,.0f}–{max(res['uuid16']):,.0f}",
            "prebuilt rows, executemany × 2,000 per txn",
        ),
        (
            "anchor: sqlite3 16 cols, INTEGER key",
            f"{med['int16']:,.0f}",
            f"{min(res['int16']):,.0f}–{max(res['int16']):,.0f}",
            "prebuilt rows, executemany × 2,000 per txn",
        ),
        (
            f"anchor: ledger table ({len(COLUMNS)} cols + ts index)",
            f"{med['schema32']:,.0f}",
            f"{min(res['schema32']):,.0f}–{max(res['schema32']):,.0f}",
            "rows prebuilt by event_to_row",
        ),
    ]
    print(_bench.table(("variant", "events/s (median)", "range", "notes"), rows))
    print(f"\nproducer: record() with the writer idle: {alone:.2f} µs/call (calling-thread CPU)")
    print(
        f"writer:   event_to_row: {conv:.2f} µs/event; SQLite insert of the ledger's rows: "
        f"{1e6 / med['schema32']:.2f} µs/event; whole ledger path: {1e6 / med['bg']:.2f} µs/event"
    )
    print(
        f"\nLedger / anchor(uuid16) = {med['bg'] / med['uuid16']:.2f} (realistic sessions: "
        f"{med['bg_real'] / med['uuid16']:.2f}); "
        f"Ledger / anchor(ledger table) = {med['bg'] / med['schema32']:.2f}"
    )
    for what, label in (("bg", "worst-case sessions"), ("bg_real", "realistic sessions")):
        print(f"target ≥ 50,000 events/s ({label}): {med[what]:,.0f} -> {_bench.verdict(med[what] >= 50_000)}")
    print(_bench.load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
