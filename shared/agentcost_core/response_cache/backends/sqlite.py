"""SQLite backend (``sqlite:///path``): entries survive restarts and are shared by the processes
of one host. The default store is ``response_cache.db`` beside the default ledger file."""

from __future__ import annotations

import os
import sqlite3
import threading

from ..entries import CacheEntry
from .base import CacheBackend, pack_usage, pack_vector, unpack_usage, unpack_vector

__all__ = ["SQLiteBackend"]

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS entries (scope TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, "
        "model TEXT, usage TEXT, created REAL NOT NULL, expires REAL, text TEXT, context TEXT, vector BLOB, "
        "PRIMARY KEY (scope, key))"
    ),
    (
        "CREATE TABLE IF NOT EXISTS entry_tags (tag TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, "
        "PRIMARY KEY (tag, scope, key))"
    ),
    "CREATE INDEX IF NOT EXISTS entries_semantic ON entries (scope) WHERE vector IS NOT NULL",
)
_COLUMNS = "scope, key, payload, model, usage, created, expires, text, context, vector"


class SQLiteBackend(CacheBackend):
    """One connection per backend, used under a lock (WAL mode, so other processes read while one writes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    @staticmethod
    def _entry(row: tuple, tags: tuple[str, ...] = ()) -> CacheEntry:
        scope, key, payload, model, usage, created, expires, text, context, vector = row
        return CacheEntry(scope=scope, key=key, payload=payload, model=model, usage=unpack_usage(usage),
                          created=created, expires=expires, tags=tags, text=text, context=context,
                          vector=unpack_vector(vector))  # fmt: skip

    def _drop(self, scope: str, key: str) -> None:
        self._db.execute("DELETE FROM entries WHERE scope = ? AND key = ?", (scope, key))
        self._db.execute("DELETE FROM entry_tags WHERE scope = ? AND key = ?", (scope, key))

    def get(self, scope: str, key: str, now: float) -> CacheEntry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
            if row is None:
                return None
            entry = self._entry(row)
            if entry.expired(now):
                self._drop(scope, key)
                return None
            return entry

    def put(self, entry: CacheEntry) -> None:
        row = (entry.scope, entry.key, entry.payload, entry.model, pack_usage(entry.usage), entry.created,
               entry.expires, entry.text, entry.context, pack_vector(entry.vector))  # fmt: skip
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"INSERT OR REPLACE INTO entries ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
                self._db.execute("DELETE FROM entry_tags WHERE scope = ? AND key = ?", (entry.scope, entry.key))
                self._db.executemany("INSERT OR IGNORE INTO entry_tags (tag, scope, key) VALUES (?,?,?)",
                                     [(t, entry.scope, entry.key) for t in entry.tags])  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def candidates(self, scope: str, now: float) -> list[CacheEntry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE scope = ? AND vector IS NOT NULL AND (expires IS NULL OR expires > ?)",
                (scope, now),
            ).fetchall()
        return [self._entry(r) for r in rows]

    def invalidate(self, tag: str) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                doomed = self._db.execute("SELECT scope, key FROM entry_tags WHERE tag = ?", (tag,)).fetchall()
                for scope, key in doomed:
                    self._drop(scope, key)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries")
            self._db.execute("DELETE FROM entry_tags")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
