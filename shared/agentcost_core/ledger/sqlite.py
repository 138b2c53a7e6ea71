"""``sqlite:///path``: the zero-setup default. WAL mode, batched inserts in one transaction."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

from ..errors import LedgerUnavailable, LedgerURLError
from ..events import CostEvent
from ..privacy import redact_url
from .base import COLUMNS, COLUMNS_V1, LedgerBackend, event_to_row, top_model_of, where_clause
from .money_columns import MONEY_COLUMNS, money_values
from .rollup_dialects import SQLITE
from .rollup_tables import RollupTables
from .settings import check_seconds

_TYPES = {
    "ts": "REAL NOT NULL", "latency_s": "REAL",
    "input": "INTEGER NOT NULL", "cache_read": "INTEGER NOT NULL", "cache_write_5m": "INTEGER NOT NULL",
    "cache_write_1h": "INTEGER NOT NULL", "output": "INTEGER NOT NULL", "reasoning": "INTEGER NOT NULL",
    "priced": "INTEGER NOT NULL", "estimated": "INTEGER NOT NULL", "cache_hit": "INTEGER NOT NULL",
    **{c: "TEXT" if c.endswith("_rem") else "INTEGER" for c in MONEY_COLUMNS},
}  # fmt: skip
#: Columns schema version 4 adds: money as integers SQLite sums exactly (see .money_columns) and the
#: router's top model (kept in ``extra`` before), so a rollup runs in SQL without reading JSON.
COLUMNS_V4 = (*MONEY_COLUMNS, "top_model")
#: Every column this code writes.
ALL_COLUMNS = (*COLUMNS, *COLUMNS_V4)
# Costs are TEXT holding the exact decimal (SQLite's REAL would round them), and integers beside them.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, "
    + ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in ALL_COLUMNS)
    + ")"
)
INDEXES = ("CREATE INDEX IF NOT EXISTS events_ts ON events (ts)",)
#: Fields reports group and filter by that get an index (schema version 4): ``feature``, the default
#: grouping, and ``session_id``, which every report groups by for its per-session percentiles. Each
#: index costs every insert (the writer's throughput), so the other fields have none.
REPORT_FIELDS = ("feature", "session_id")
#: Schema version 4's indexes: the report fields (with ``ts`` for a filter and a window together), and
#: calls' costs in the order of a percentile's ranks (``seq`` is the rowid, the last key of every index).
REPORT_INDEXES = (
    *(f"CREATE INDEX IF NOT EXISTS events_{f} ON events ({f}, ts)" for f in REPORT_FIELDS),
    "CREATE INDEX IF NOT EXISTS events_call_cost ON events (cost_nanos, cost_attos, ts) "
    "WHERE cost_nanos IS NOT NULL AND kind IN ('embedding', 'llm', 'tool')",
)
#: Prompt logging's table (schema version 3): one row per logged model call, keyed by its event id.
PROMPTS_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS prompts (event_id TEXT PRIMARY KEY, ts REAL NOT NULL, "
        "input_messages TEXT NOT NULL, output_messages TEXT NOT NULL, tool_definitions TEXT)"
    ),
    "CREATE INDEX IF NOT EXISTS prompts_ts ON prompts (ts)",
)
_PROMPT_COLUMNS = "event_id, ts, input_messages, output_messages, tool_definitions"

#: The layout version this code writes, kept in the file's ``PRAGMA user_version``. Version 0 is
#: a new file or a ledger written before versions existed (the same ``events`` table, unmarked).
SCHEMA_VERSION = 5
#: Schema version 5's rollup tables (``events_hourly``, ``events_sessions``): every batch the writer
#: inserts is added to them in its own transaction (:meth:`.RollupTables.batch_sql`).
ROLLUPS = RollupTables(SQLITE, "events")
_ADD_BATCH = ROLLUPS.batch_sql()


def _upgrade_from_0(conn: sqlite3.Connection, url: str) -> None:
    """A new file gets the tables; an unversioned ledger keeps its rows and is marked version 1."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    missing = set(COLUMNS_V1) - have if have else set()
    if missing:
        raise LedgerURLError(
            f"{url!r} has an 'events' table that is not an agentcost ledger (no {', '.join(sorted(missing))})"
        )
    for ddl in (SCHEMA, *INDEXES):
        conn.execute(ddl)


def _upgrade_from_1(conn: sqlite3.Connection, url: str) -> None:
    """Version 2: ``price_source``, which price data priced each event (NULL for older rows)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "price_source" not in have:  # a table created by version 0's step above already has it
        conn.execute("ALTER TABLE events ADD COLUMN price_source TEXT")


def _upgrade_from_2(conn: sqlite3.Connection, url: str) -> None:
    """Version 3: the ``prompts`` table of prompt logging (empty unless it is turned on)."""
    for ddl in PROMPTS_SCHEMA:
        conn.execute(ddl)


#: Rows the version 4 step fills per statement.
_FILL_BATCH = 5000


def _upgrade_from_3(conn: sqlite3.Connection, url: str) -> None:
    """Version 4: the money columns (.money_columns) and ``top_model``, filled for every stored row, and
    the report indexes."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    for c in COLUMNS_V4:
        if c not in have:  # a table created by version 0's step above already has them
            conn.execute(f"ALTER TABLE events ADD COLUMN {c} {_TYPES.get(c, 'TEXT')}")
    for ddl in REPORT_INDEXES:
        conn.execute(ddl)
    sets = ", ".join(f"{c} = ?" for c in COLUMNS_V4)
    last = -1
    while True:
        rows = conn.execute(
            "SELECT seq, cost, saved, extra FROM events WHERE seq > ? AND (cost IS NOT NULL OR saved IS NOT NULL "
            "OR extra IS NOT NULL) ORDER BY seq LIMIT ?",
            (last, _FILL_BATCH),
        ).fetchall()
        if not rows:
            return
        conn.executemany(f"UPDATE events SET {sets} WHERE seq = ?", [_v4_values(*r[1:]) + (r[0],) for r in rows])
        last = rows[-1][0]


def _v4_values(cost: str | None, saved: str | None, extra: str | None) -> tuple[object, ...]:
    from ..events import CostEvent

    top = top_model_of(CostEvent(model=None, extra=json.loads(extra))) if extra else None
    return (*money_values(cost, saved), top)


def _upgrade_from_4(conn: sqlite3.Connection, url: str) -> None:
    """Version 5: the rollup tables (.rollup_tables), summed from every stored event, and the indexes of a
    feature's calls' costs and of guard notices."""
    for sql in (*ROLLUPS.create_sql(), *ROLLUPS.build_sql()):
        conn.execute(sql)


#: ``_UPGRADES[n]`` takes a ledger from version n to n + 1 (a new layout adds its step here).
_UPGRADES = {0: _upgrade_from_0, 1: _upgrade_from_1, 2: _upgrade_from_2, 3: _upgrade_from_3, 4: _upgrade_from_4}


def _migrate(conn: sqlite3.Connection, url: str) -> None:
    """Bring the file to :data:`SCHEMA_VERSION` in one transaction; refuse a newer one."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return  # the usual case: nothing to write (a read-only file opens too)
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others then see its result
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerURLError(
                f"ledger {url!r} has schema version {version}, newer than this agentcost knows "
                f"({SCHEMA_VERSION}); upgrade agentcost to read or write it"
            )
        while version < SCHEMA_VERSION:
            _UPGRADES[version](conn, url)
            version += 1
        conn.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_ROW = f"({', '.join('?' * len(ALL_COLUMNS))})"
#: Rows per INSERT statement: one statement per few hundred rows instead of one per row, so the
#: writer releases and re-takes the GIL a few times per batch, not once per row (next to a
#: CPU-bound thread each re-take can wait the whole 5 ms switch interval).
_ROWS_PER_INSERT = 500
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"
#: How long opening a ledger retries a transient lock (another process creating or migrating it).
OPEN_RETRY_S = 15.0


def _insert(n: int) -> str:
    return f"INSERT INTO events ({', '.join(ALL_COLUMNS)}) VALUES " + ", ".join([_ROW] * n)


def _row(e: CostEvent) -> tuple[Any, ...]:
    row = event_to_row(e)
    return (*row, *money_values(row[_COST], row[_SAVED]), top_model_of(e))


_COST, _SAVED = COLUMNS.index("cost"), COLUMNS.index("saved")


#: One row's INSERT of :func:`~.base.event_to_row`'s columns (the benchmarks' raw ``executemany`` anchor uses it).
_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def _transient_lock(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


#: The connection's page cache for writes (KiB; SQLite's default is 2,000). Every insert adds to six
#: indexes of the events and the rollup tables' indexes at scattered places: with the default, most of
#: those pages are read again from the operating system's cache for each batch.
CACHE_KIB = 65_536
#: The page cache while a report reads (SQLite's default): a report scans once, and a large cache
#: would only hold what it read (and its sorts) in memory: ~100-290 MB at 1,000,000 events.
REPORT_CACHE_KIB = 2_000

#: Seconds a call waits for another process's lock on the file before it fails (and is retried).
DEFAULT_TIMEOUT_S = 10.0


def _open(path: str, url: str, durable: bool, timeout_s: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout_s)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        _migrate(conn, url)
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteBackend(LedgerBackend):
    """``durable=True`` (the ledger's sync mode) fsyncs every commit (``synchronous=FULL``): nothing
    recorded is lost even on power failure. Otherwise WAL with ``synchronous=OFF``: an application
    crash loses nothing committed, an OS crash may lose the last batches (as the writer's queue
    would), and inserts run ~15% faster.

    Opening retries "database is locked" for up to :data:`OPEN_RETRY_S` seconds (two processes
    opening one new ledger at once) before calling it a configuration error. ``timeout_s``
    (default 10 s) is how long a call waits for another process's lock on the file; past it the
    call fails and the ledger retries it (see :mod:`.faults`)."""

    #: Rollups run in SQLite (see .sql_rollup), the events table's name.
    rollup_dialect = SQLITE
    table = "events"

    def __init__(self, url: str, path: str, *, durable: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.path = path
        self.timeout_s = check_seconds("timeout_s", timeout_s)
        shown = redact_url(url)
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LedgerURLError(f"cannot create the folder for ledger {shown!r}: {e}") from None
        deadline = time.monotonic() + OPEN_RETRY_S
        delay = 0.01
        while True:
            try:
                self._conn = _open(path, shown, durable, self.timeout_s)
                break
            except sqlite3.Error as e:
                if not _transient_lock(e):
                    raise LedgerURLError(f"cannot open SQLite ledger {shown!r}: {e}") from None
                if time.monotonic() >= deadline:  # another process holds it: busy now, not a bad URL
                    raise LedgerUnavailable(f"cannot open SQLite ledger {shown!r}: {e}") from None
                time.sleep(delay)  # another process holds the file for a moment: wait, then try again
                delay = min(delay * 2, 0.5)
        self._lock = threading.Lock()

    def write_many(self, events: Sequence[CostEvent]) -> None:
        rows = [_row(e) for e in events]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:  # the rows get the sequence numbers above the highest stored now
                last = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
                for start in range(0, len(rows), _ROWS_PER_INSERT):
                    chunk = rows[start : start + _ROWS_PER_INSERT]
                    self._conn.execute(_insert(len(chunk)), list(chain.from_iterable(chunk)))
                for sql in _ADD_BATCH:
                    self._conn.execute(sql, (last,))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, since: float | None = None, until: float | None = None, **filters: Any) -> Iterator[CostEvent]:
        where, args = where_clause(since, until, filters, "?")
        with self._lock:
            rows = self._conn.execute(f"{_SELECT}{where} ORDER BY ts, seq", args).fetchall()
        return self._iter(rows)

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        where, args = where_clause(since, until, filters, "?")
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM events{where}", args).fetchone()[0])

    def aggregate(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Rows of a read-only query over the ``events`` table (rollups run in the database: .sql_rollup)."""
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    @contextmanager
    def reading(self) -> Iterator[Callable[[str, Sequence[Any]], list[Any]]]:
        """:meth:`aggregate` for the queries of one report, all reading one snapshot of the file (a
        write or prune committed meanwhile by another connection is not seen halfway)."""
        with self._lock:
            self._conn.execute(f"PRAGMA cache_size = -{REPORT_CACHE_KIB}")
            self._conn.execute("BEGIN")
            try:
                yield lambda sql, args: self._conn.execute(sql, args).fetchall()
            finally:
                self._conn.execute("COMMIT")  # read only: nothing to keep or undo
                self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    def prune(self, before_ts: float) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                hour = self._conn.execute(f"SELECT {ROLLUPS.hour_of()} FROM (SELECT ? AS ts)", (before_ts,))
                hour = hour.fetchone()[0]
                for sql, args in ROLLUPS.prune_steps(before_ts, hour):
                    self._conn.execute(sql, args)
                n = self._conn.execute("DELETE FROM events WHERE ts < ?", (before_ts,)).rowcount
                self._conn.execute("DELETE FROM prompts WHERE ts < ?", (before_ts,))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return n

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sql in ("DELETE FROM events", "DELETE FROM prompts", *ROLLUPS.clear_sql()):
                    self._conn.execute(sql)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- prompt logging -----------------------------------------------------------------------
    def write_prompts(self, records: Sequence[Any]) -> None:
        rows = [(r.event_id, r.ts, r.input_messages, r.output_messages, r.tool_definitions) for r in records]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    f"INSERT OR REPLACE INTO prompts ({_PROMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def prompt(self, event_id: str) -> Any:
        from ..prompt_log import PromptRecord

        with self._lock:
            row = self._conn.execute(
                f"SELECT {_PROMPT_COLUMNS} FROM prompts WHERE event_id = ?", (event_id,)
            ).fetchone()
        return None if row is None else PromptRecord(*row)

    def prune_prompts(self, before_ts: float) -> int:
        with self._lock:  # read first: opening a ledger with nothing to prune takes no write lock
            if self._conn.execute("SELECT 1 FROM prompts WHERE ts < ? LIMIT 1", (before_ts,)).fetchone() is None:
                return 0
            return self._conn.execute("DELETE FROM prompts WHERE ts < ?", (before_ts,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- under faults -------------------------------------------------------------------------
    def is_transient(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError)  # locked, busy, disk I/O, disk full

    def stored_ids(self, events: Sequence[CostEvent]) -> set[str]:
        if not events:
            return set()
        ids = {e.id for e in events}
        low, high = min(e.ts for e in events), max(e.ts for e in events)
        with self._lock:
            rows = self._conn.execute("SELECT id FROM events WHERE ts >= ? AND ts <= ?", (low, high)).fetchall()
        return {r[0] for r in rows} & ids

    def state_path(self) -> Path | None:
        return None if self.path == ":memory:" else Path(self.path)
