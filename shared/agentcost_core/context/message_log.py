"""A conversation's full history in SQLite: an append-only log per session.

Several writers on one session (threads, history objects, processes) are safe: each append is one
``BEGIN IMMEDIATE`` transaction that numbers its rows after the session's last one, so no message
is lost, duplicated or reordered, and a writer that finds the database busy waits (``timeout``)
instead of failing with "database is locked". Readers see every writer's messages in one order (the
sequence number). The journal is WAL, so readers do not block writers.

A reader that keeps what it read reads incrementally with :meth:`SqliteMessageLog.read_since`: it
passes its position (the session's epoch and the last sequence number it holds) and gets the new
messages only, or, when another writer cleared the session since (a clear starts a new epoch, and
numbering restarts at 0), the whole session again with the new epoch, so it starts over instead of
keeping deleted messages and skipping new ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigurationError
from ..privacy import redact_url

__all__ = ["LogRead", "SqliteMessageLog"]

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS agentcost_memory "
        "(session_id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (session_id, seq))"
    ),
    # one row per session cleared at least once: how many times (no row: epoch 0)
    "CREATE TABLE IF NOT EXISTS agentcost_memory_epochs (session_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL)",
)
_EPOCH = "SELECT COALESCE((SELECT epoch FROM agentcost_memory_epochs WHERE session_id = ?), 0)"


class LogRead(NamedTuple):
    """What :meth:`SqliteMessageLog.read_since` returns: the session's ``epoch`` and the ``rows``
    (``(seq, message)``, in order) the reader does not hold. ``restart`` is true when the epoch is
    not the reader's (the session was cleared since): ``rows`` are then the whole session, and the
    reader drops what it held."""

    epoch: int
    rows: list[tuple[int, str]]
    restart: bool


class SqliteMessageLog:
    """``SqliteMessageLog("sqlite:///path.db", timeout=30.0)``: messages are stored as text (the
    adapter serializes them)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        if not isinstance(url, str) or not url.startswith("sqlite:///"):
            raise ConfigurationError(f"TieredMemory store must be a sqlite:///path URL, got {redact_url(url)!r}")
        self.path = Path(url[len("sqlite:///") :])
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            try:
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:  # pragma: no cover - a filesystem without WAL support
                pass
            for statement in _SCHEMA:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: every transaction below is explicit
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    def append(self, session_id: str, messages: Sequence[str]) -> None:
        """Append ``messages`` after the session's last one, atomically."""
        if not messages:
            return
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: the next number is ours alone
            try:
                (last,) = db.execute(
                    "SELECT COALESCE(MAX(seq), -1) FROM agentcost_memory WHERE session_id = ?", (session_id,)
                ).fetchone()
                db.executemany(
                    "INSERT INTO agentcost_memory (session_id, seq, message) VALUES (?, ?, ?)",
                    [(session_id, last + 1 + k, m) for k, m in enumerate(messages)],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def read(self, session_id: str, *, after: int = -1) -> list[tuple[int, str]]:
        """``(seq, message)`` of the session's messages numbered above ``after``, in order. Numbers
        restart after a clear: a reader that keeps what it read uses :meth:`read_since`."""
        with closing(self._connect()) as db:
            return self._rows(db, session_id, after)

    def read_since(self, session_id: str, epoch: int | None, after: int = -1) -> LogRead:
        """The messages a reader at ``(epoch, after)`` does not hold (``epoch`` None: it holds
        nothing): those numbered above ``after`` if the session's epoch is still ``epoch``, else
        the whole session (``restart``). The epoch and the rows come from one snapshot, so a clear
        and the appends after it are seen together or not at all. The common case costs one
        primary-key lookup more than :meth:`read`."""
        with closing(self._connect()) as db:
            db.execute("BEGIN")  # one read snapshot for the epoch and the rows
            try:
                (current,) = db.execute(_EPOCH, (session_id,)).fetchone()
                restart = current != epoch
                rows = self._rows(db, session_id, -1 if restart else after)
            finally:
                db.execute("COMMIT")
        return LogRead(current, rows, restart)

    @staticmethod
    def _rows(db: sqlite3.Connection, session_id: str, after: int) -> list[tuple[int, str]]:
        return db.execute(
            "SELECT seq, message FROM agentcost_memory WHERE session_id = ? AND seq > ? ORDER BY seq",
            (session_id, after),
        ).fetchall()

    def clear(self, session_id: str) -> None:
        """Delete the session's messages and start its next epoch (one transaction), so every
        reader using :meth:`read_since` drops what it held."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM agentcost_memory WHERE session_id = ?", (session_id,))
                db.execute(
                    "INSERT INTO agentcost_memory_epochs (session_id, epoch) VALUES (?, 1) "
                    "ON CONFLICT (session_id) DO UPDATE SET epoch = epoch + 1",
                    (session_id,),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
