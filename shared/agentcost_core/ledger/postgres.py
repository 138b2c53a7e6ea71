"""``postgresql://…``: many processes and hosts on one ledger. Batches go in with ``COPY``."""

from __future__ import annotations

import threading
from typing import Any, Iterator, Sequence

from ..errors import LedgerURLError
from ..events import CostEvent
from .base import COLUMNS, LedgerBackend, event_to_row, where_clause

_TYPES = {
    "ts": "DOUBLE PRECISION NOT NULL", "latency_s": "DOUBLE PRECISION",
    "input": "BIGINT NOT NULL", "cache_read": "BIGINT NOT NULL", "cache_write_5m": "BIGINT NOT NULL",
    "cache_write_1h": "BIGINT NOT NULL", "output": "BIGINT NOT NULL", "reasoning": "BIGINT NOT NULL",
    "priced": "BOOLEAN NOT NULL", "estimated": "BOOLEAN NOT NULL", "cache_hit": "BOOLEAN NOT NULL",
    "cost": "NUMERIC", "saved": "NUMERIC", "extra": "JSONB",
}  # fmt: skip


class PostgresBackend(LedgerBackend):
    def __init__(self, url: str, *, table: str = "agentcost_events") -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the install
            raise LedgerURLError(
                f"ledger {url!r} needs psycopg: pip install 'agentcost[postgres]'"
            ) from None
        if not table.replace("_", "").isalnum():
            raise LedgerURLError(f"bad table name {table!r}")
        self.url = url
        self.table = table
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as e:
            raise LedgerURLError(f"cannot connect to PostgreSQL ledger {_redact(url)!r}: {e}") from None
        cols = ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
        try:
            ensure_schema(
                self._conn,
                table,
                f"CREATE TABLE IF NOT EXISTS {table} (seq BIGSERIAL PRIMARY KEY, {cols})",
                f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts)",
            )
        except psycopg.Error as e:
            self._conn.close()
            raise LedgerURLError(f"cannot create the ledger table {table!r} in {_redact(url)!r}: {e}") from None
        self._lock = threading.Lock()
        self._copy = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
        self._select = f"SELECT {', '.join(COLUMNS)} FROM {table}"

    def write_many(self, events: Sequence[CostEvent]) -> None:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            with cur.copy(self._copy) as copy:
                for e in events:
                    copy.write_row(event_to_row(e))

    def query(self, since: float | None = None, until: float | None = None, **filters: Any) -> Iterator[CostEvent]:
        where, args = where_clause(since, until, filters, "%s")
        with self._lock, self._conn.cursor() as cur:
            rows = cur.execute(f"{self._select}{where} ORDER BY ts, seq", args).fetchall()
        return self._iter(rows)

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        where, args = where_clause(since, until, filters, "%s")
        with self._lock, self._conn.cursor() as cur:
            return int(cur.execute(f"SELECT COUNT(*) FROM {self.table}{where}", args).fetchone()[0])

    def clear(self) -> None:
        with self._lock, self._conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self.table}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def ensure_schema(conn: Any, name: str, *statements: str) -> None:
    """Run ``CREATE … IF NOT EXISTS`` statements safely while other processes may run them too.

    PostgreSQL's ``IF NOT EXISTS`` does not hold under concurrency: two sessions creating the same
    table at once can both pass the check, and the loser fails on a catalog index (``duplicate key
    … pg_type_typname_nsp_index``, or ``type … already exists``). So every creator first takes a
    transaction-scoped advisory lock named after ``name``; the next one in line then finds the
    table there. (``conn`` is an autocommit psycopg connection.)"""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentcost:schema:{name}",))
        for statement in statements:
            conn.execute(statement)


def _redact(url: str) -> str:
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        head, tail = url.split("@", 1)
        scheme, creds = head.split("//", 1)
        return f"{scheme}//{creds.split(':')[0]}:***@{tail}"
    return url
