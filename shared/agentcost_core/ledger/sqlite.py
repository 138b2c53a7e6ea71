"""``sqlite:///path``: the zero-setup default. WAL mode, batched inserts in one transaction."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import LedgerURLError
from ..events import CostEvent
from .base import COLUMNS, LedgerBackend, event_to_row, where_clause

_TYPES = {
    "ts": "REAL NOT NULL", "latency_s": "REAL",
    "input": "INTEGER NOT NULL", "cache_read": "INTEGER NOT NULL", "cache_write_5m": "INTEGER NOT NULL",
    "cache_write_1h": "INTEGER NOT NULL", "output": "INTEGER NOT NULL", "reasoning": "INTEGER NOT NULL",
    "priced": "INTEGER NOT NULL", "estimated": "INTEGER NOT NULL", "cache_hit": "INTEGER NOT NULL",
}  # fmt: skip
# Costs are TEXT holding the exact decimal: SQLite's REAL would round them.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, "
    + ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
    + ")"
)
INDEXES = ("CREATE INDEX IF NOT EXISTS events_ts ON events (ts)",)
# CPython's sqlite3 binds NULL by first trying to adapt None, which fails through an AttributeError
# (an exception per NULL column per row: ~40% of the insert time for a ledger row). An identity
# adapter for None binds exactly the same NULL, without the exception. It is registered only if
# nobody registered one before, and changes no stored value for anyone.
if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), lambda value: value)

_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"


class SQLiteBackend(LedgerBackend):
    """``durable=True`` (the ledger's sync mode) fsyncs every commit (``synchronous=FULL``): nothing
    recorded is lost even on power failure. Otherwise WAL with ``synchronous=OFF``: an application
    crash loses nothing committed, an OS crash may lose the last batches (as the writer's queue
    would), and inserts run ~15% faster."""

    def __init__(self, url: str, path: str, *, durable: bool = False) -> None:
        self.url = url
        self.path = path
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LedgerURLError(f"cannot create the folder for ledger {url!r}: {e}") from None
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
            self._conn.execute(SCHEMA)
            for ddl in INDEXES:
                self._conn.execute(ddl)
        except sqlite3.Error as e:
            raise LedgerURLError(f"cannot open SQLite ledger {url!r}: {e}") from None
        self._lock = threading.Lock()

    def write_many(self, events: Sequence[CostEvent]) -> None:
        rows = [event_to_row(e) for e in events]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_INSERT, rows)
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

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM events")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
