"""SQLite backend (``sqlite:///path``): entries survive restarts and are shared by the processes
of one host. The default store is ``response_cache.db`` beside the default ledger file.

Every write takes the next number of the ``seq`` counter, so a process keeps each searched partition's
vectors in memory (:class:`~..vector_index.VectorIndex`) and reads only what was written since; an
invalidation or a clear moves the ``drops`` counter and the indexes built before it are rebuilt."""

from __future__ import annotations

import os
import sqlite3
import threading

from ..entries import CacheEntry
from ..vector_index import PartitionCache, VectorIndex
from .base import CacheBackend, pack_usage, pack_vector, unpack_usage, unpack_vector

__all__ = ["SQLiteBackend"]

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS entries (scope TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, "
        "model TEXT, usage TEXT, created REAL NOT NULL, expires REAL, text TEXT, context TEXT, vector BLOB, "
        "seq INTEGER, PRIMARY KEY (scope, key))"
    ),
    (
        "CREATE TABLE IF NOT EXISTS entry_tags (tag TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, "
        "PRIMARY KEY (tag, scope, key))"
    ),
    # 'seq' numbers every write (a partition's index reads on from the last it saw); 'drops' counts the
    # invalidations and clears (an index older than the last one is rebuilt)
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_INDEXES = (
    "DROP INDEX IF EXISTS entries_semantic",
    "CREATE INDEX IF NOT EXISTS entries_partition ON entries (scope, context, seq) WHERE vector IS NOT NULL",
    "INSERT OR IGNORE INTO counters (name, value) VALUES ('seq', (SELECT COALESCE(MAX(seq), 0) FROM entries))",
    "INSERT OR IGNORE INTO counters (name, value) VALUES ('drops', 0)",
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
        self._partitions = PartitionCache()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
            if "seq" not in columns:  # a file written before partitions were indexed
                self._db.execute("ALTER TABLE entries ADD COLUMN seq INTEGER")
                self._db.execute("UPDATE entries SET seq = rowid")
            for statement in _INDEXES:
                self._db.execute(statement)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @staticmethod
    def _entry(row: tuple, tags: tuple[str, ...] = ()) -> CacheEntry:
        scope, key, payload, model, usage, created, expires, text, context, vector = row
        return CacheEntry(scope=scope, key=key, payload=payload, model=model, usage=unpack_usage(usage),
                          created=created, expires=expires, tags=tags, text=text, context=context,
                          vector=unpack_vector(vector))  # fmt: skip

    def _count(self, name: str) -> int:
        """Move the counter ``name`` on by one; its new value (inside the caller's transaction)."""
        rows = self._db.execute("UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value", (name,))
        return rows.fetchall()[0][0]

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
                self._db.execute(f"INSERT OR REPLACE INTO entries ({_COLUMNS}, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 (*row, self._count("seq")))  # fmt: skip
                self._db.execute("DELETE FROM entry_tags WHERE scope = ? AND key = ?", (entry.scope, entry.key))
                self._db.executemany("INSERT OR IGNORE INTO entry_tags (tag, scope, key) VALUES (?,?,?)",
                                     [(t, entry.scope, entry.key) for t in entry.tags])  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def partition(self, scope: str, context: str, now: float) -> VectorIndex:
        with self._lock:
            drops = self._db.execute("SELECT value FROM counters WHERE name = 'drops'").fetchone()[0]
            return self._partitions.get(scope, context, drops, lambda index: self._fill(index, scope, context))

    def _fill(self, index: VectorIndex, scope: str, context: str) -> None:
        """Index the partition's entries written since ``index.cursor`` (by any process)."""
        rows = self._db.execute(
            "SELECT seq, key, text, expires, vector FROM entries WHERE scope = ? AND context = ? "
            "AND vector IS NOT NULL AND seq > ? ORDER BY seq",
            (scope, context, index.cursor),
        )
        for seq, key, text, expires, vector in rows:
            index.add(key, unpack_vector(vector) or (), text or "", expires)
            index.cursor = seq

    def invalidate(self, tag: str) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                doomed = self._db.execute("SELECT scope, key FROM entry_tags WHERE tag = ?", (tag,)).fetchall()
                for scope, key in doomed:
                    self._drop(scope, key)
                self._count("drops")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM entries")
                self._db.execute("DELETE FROM entry_tags")
                self._count("drops")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def count(self, now: float) -> int:
        with self._lock:
            sql = "SELECT COUNT(*) FROM entries WHERE expires IS NULL OR expires > ?"
            return self._db.execute(sql, (now,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
