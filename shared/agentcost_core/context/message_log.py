"""A conversation's full history in SQLite: an append-only log per session.

Several writers on one session (threads, history objects, processes) are safe: each append is one
``BEGIN IMMEDIATE`` transaction that numbers its rows after the session's last one, so no message
is lost, duplicated or reordered, and a writer that finds the database busy waits (``timeout``)
instead of failing with "database is locked". Readers see every writer's messages in one order (the
sequence number) and can read incrementally (``after=``). The journal is WAL, so readers do not
block writers.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Sequence

from ..errors import ConfigurationError
from ..privacy import redact_url

__all__ = ["SqliteMessageLog"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS agentcost_memory "
    "(session_id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (session_id, seq))"
)


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
            db.execute(_SCHEMA)

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
        """``(seq, message)`` of the session's messages numbered above ``after``, in order."""
        with closing(self._connect()) as db:
            return db.execute(
                "SELECT seq, message FROM agentcost_memory WHERE session_id = ? AND seq > ? ORDER BY seq",
                (session_id, after),
            ).fetchall()

    def clear(self, session_id: str) -> None:
        with closing(self._connect()) as db:
            db.execute("DELETE FROM agentcost_memory WHERE session_id = ?", (session_id,))
