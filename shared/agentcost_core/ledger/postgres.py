"""``postgresql://…``: many processes and hosts on one ledger. Batches go in with ``COPY``."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..db_deadline import WATCHDOG
from ..errors import LedgerUnavailable, LedgerURLError
from ..events import CostEvent
from ..privacy import redact_text, redact_url
from .base import COLUMNS, COLUMNS_V1, LedgerBackend, event_to_row, top_model_of, where_clause
from .rollup_dialects import POSTGRES
from .rollup_tables import RollupTables
from .settings import check_seconds

_TYPES = {
    "ts": "DOUBLE PRECISION NOT NULL", "latency_s": "DOUBLE PRECISION",
    "input": "BIGINT NOT NULL", "cache_read": "BIGINT NOT NULL", "cache_write_5m": "BIGINT NOT NULL",
    "cache_write_1h": "BIGINT NOT NULL", "output": "BIGINT NOT NULL", "reasoning": "BIGINT NOT NULL",
    "priced": "BOOLEAN NOT NULL", "estimated": "BOOLEAN NOT NULL", "cache_hit": "BOOLEAN NOT NULL",
    "cost": "NUMERIC", "saved": "NUMERIC", "extra": "JSONB",
}  # fmt: skip

logger = logging.getLogger("agentcost.ledger")
_PROMPT_COLUMNS = "event_id, ts, input_messages, output_messages, tool_definitions"

#: Seconds every ledger call (a batch's ``COPY``, a read) may take before the client gives up.
DEFAULT_TIMEOUT_S = 10.0
#: Seconds one query of a report (``Ledger.rollup`` in the database) may take.
REPORT_TIMEOUT_S = 3600.0


class PostgresBackend(LedgerBackend):
    """``timeout_s`` (default :data:`DEFAULT_TIMEOUT_S`, 10 s) is every call's deadline: past it the
    connection's socket is cut (:mod:`agentcost_core.db_deadline`), the call fails as a broken
    connection would, and the ledger reconnects and retries (see :mod:`.faults`). Opening a
    connection is bounded by ``max(ceil(timeout_s), 2)`` seconds (libpq's floor is 2)."""

    #: Rollups run in PostgreSQL (see .sql_rollup).
    rollup_dialect = POSTGRES

    def __init__(self, url: str, *, table: str = "agentcost_events", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the install
            raise LedgerURLError(
                f"ledger {redact_url(url)!r} needs psycopg: pip install 'agentcost-control[postgres]'"
            ) from None
        if not table.replace("_", "").isalnum():
            raise LedgerURLError(f"bad table name {table!r}")
        self.timeout_s = check_seconds("timeout_s", timeout_s)
        self.connect_timeout = max(math.ceil(self.timeout_s), 2)
        self.url = url
        self.table = table
        self._psycopg = psycopg
        try:
            self._conn = self._connect()
            self._backend_pid = self._conn.info.backend_pid  # the server process of this connection
        except psycopg.Error as e:
            raise LedgerUnavailable(f"cannot connect to PostgreSQL ledger {redact_url(url)!r}: {redact_text(str(e))}") from None
        try:
            with self._deadline(self._conn):
                current = _schema_version(self._conn, table) == SCHEMA_VERSION
            if not current:  # a migration rebuilds tables of millions of rows: the report's deadline, not a write's
                with self._deadline(self._conn, max(self.timeout_s, REPORT_TIMEOUT_S)):
                    _migrate(self._conn, table, redact_url(url))
        except LedgerURLError:
            self._conn.close()
            raise
        except psycopg.Error as e:
            self._conn.close()
            raise LedgerURLError(f"cannot create the ledger table {table!r} in {redact_url(url)!r}: {redact_text(str(e))}") from None
        self._lock = threading.Lock()
        self._copy = f"COPY {table} ({', '.join(COLUMNS)}, top_model) FROM STDIN"
        self._select = f"SELECT {', '.join(COLUMNS)} FROM {table}"

    def write_many(self, events: Sequence[CostEvent]) -> None:
        with self._lock, self._deadline(self._conn) as conn, conn.transaction(), conn.cursor() as cur:
            with cur.copy(self._copy) as copy:
                for e in events:
                    copy.write_row((*event_to_row(e), top_model_of(e)))

    def query(self, since: float | None = None, until: float | None = None, **filters: Any) -> Iterator[CostEvent]:
        where, args = where_clause(since, until, filters, "%s")
        rows = self._read(f"{self._select}{where} ORDER BY ts, seq", args)
        return self._iter(rows)

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        where, args = where_clause(since, until, filters, "%s")
        return int(self._read(f"SELECT COUNT(*) FROM {self.table}{where}", args)[0][0])

    def aggregate(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Rows of a read-only query over the ledger table (rollups run in the database: .sql_rollup).
        A report over millions of events takes longer than a write's ``timeout_s``: its deadline is
        :data:`REPORT_TIMEOUT_S` (never shorter than ``timeout_s``)."""
        return self._read(sql, args, max(self.timeout_s, REPORT_TIMEOUT_S))

    @contextmanager
    def reading(self) -> Iterator[Callable[[str, Sequence[Any]], list[Any]]]:
        """:meth:`aggregate` for the queries of one report, all reading one snapshot (``REPEATABLE READ``):
        a write or prune committed meanwhile is not seen halfway. Under the report's deadline."""
        for attempt in (1, 2):  # a connection that broke since its last use is replaced once, as in _read
            self._lock.acquire()  # held to the end: no write may run inside this transaction
            conn = self._conn
            try:
                with self._deadline(conn):
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                break
            except Exception as e:  # noqa: BLE001 - re-raised unless the connection broke
                self._lock.release()
                if attempt == 2 or not self.is_transient(e):
                    raise
                self.reconnect()
        try:
            with self._deadline(conn, max(self.timeout_s, REPORT_TIMEOUT_S)):
                yield lambda sql, args: conn.execute(sql, args).fetchall()
        finally:
            try:
                conn.execute("ROLLBACK")  # read only: nothing to keep
            except Exception:  # noqa: S110 - a connection the deadline cut holds no transaction any more
                pass
            self._lock.release()

    def prune(self, before_ts: float) -> int:
        rollups = RollupTables(POSTGRES, self.table)
        # summing the cut hour and sessions again, then deleting millions of rows: a report's deadline
        with self._lock, self._deadline(self._conn, max(self.timeout_s, REPORT_TIMEOUT_S)) as conn, \
                conn.transaction(), conn.cursor() as cur:  # fmt: skip
            # no insert runs meanwhile (its trigger would add to a rollup row this rebuilds); inserts wait
            cur.execute(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
            hour = cur.execute(f"SELECT {rollups.hour_of()} FROM (SELECT %s::float8 AS ts) t", (before_ts,))
            hour = hour.fetchone()[0]
            for sql, args in rollups.prune_steps(before_ts, hour):
                cur.execute(sql, args)
            cur.execute(f"DELETE FROM {self.table} WHERE ts < %s", (before_ts,))
            n = cur.rowcount
            cur.execute(f"DELETE FROM {self.table}_prompts WHERE ts < %s", (before_ts,))
            return n

    def clear(self) -> None:
        with self._lock, self._deadline(self._conn) as conn, conn.transaction(), conn.cursor() as cur:
            # as in prune: no insert commits between the events' delete and the rollup tables'
            cur.execute(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(f"DELETE FROM {self.table}")
            cur.execute(f"DELETE FROM {self.table}_prompts")
            for sql in RollupTables(POSTGRES, self.table).clear_sql():
                cur.execute(sql)

    # --- prompt logging -----------------------------------------------------------------------
    def write_prompts(self, records: Sequence[Any]) -> None:
        rows = [(r.event_id, r.ts, r.input_messages, r.output_messages, r.tool_definitions) for r in records]
        sql = (
            f"INSERT INTO {self.table}_prompts ({_PROMPT_COLUMNS}) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (event_id) DO UPDATE SET ts = EXCLUDED.ts, input_messages = EXCLUDED.input_messages, "
            "output_messages = EXCLUDED.output_messages, tool_definitions = EXCLUDED.tool_definitions"
        )
        with self._lock, self._deadline(self._conn) as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, rows)

    def prompt(self, event_id: str) -> Any:
        from ..prompt_log import PromptRecord

        rows = self._read(f"SELECT {_PROMPT_COLUMNS} FROM {self.table}_prompts WHERE event_id = %s", (event_id,))
        return PromptRecord(*rows[0]) if rows else None

    def prune_prompts(self, before_ts: float) -> int:
        if not self._read(f"SELECT 1 FROM {self.table}_prompts WHERE ts < %s LIMIT 1", (before_ts,)):
            return 0
        with self._lock, self._deadline(self._conn) as conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self.table}_prompts WHERE ts < %s", (before_ts,))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- under faults -------------------------------------------------------------------------
    def _connect(self) -> Any:
        return self._psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)

    @contextmanager
    def _deadline(self, conn: Any, seconds: float | None = None) -> Iterator[Any]:
        """Run a call on ``conn`` within ``timeout_s`` (or ``seconds``); past it the socket is cut and the
        call raises ``OperationalError`` (transient: the ledger reconnects and retries)."""
        limit = self.timeout_s if seconds is None else seconds
        with WATCHDOG.armed(conn.fileno(), time.monotonic() + limit) as alarm:
            try:
                yield conn
            except Exception as e:
                if alarm.fired:
                    raise self._psycopg.OperationalError(
                        f"no answer from the PostgreSQL ledger within {limit:g} s (timeout_s=); "
                        "the connection was closed"
                    ) from e
                raise

    def _read(self, sql: str, args: Sequence[Any], seconds: float | None = None) -> list[Any]:
        """Run a query; a connection that broke since the last use is replaced once."""
        try:
            with self._lock, self._deadline(self._conn, seconds) as conn, conn.cursor() as cur:
                return cur.execute(sql, args).fetchall()
        except Exception as e:
            if not self.is_transient(e):
                raise
        self.reconnect()
        with self._lock, self._deadline(self._conn, seconds) as conn, conn.cursor() as cur:
            return cur.execute(sql, args).fetchall()

    def is_transient(self, error: Exception) -> bool:
        psycopg = self._psycopg
        return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))

    def reconnect(self) -> None:
        """Replace the connection. The server process of the old one is ended first (waiting up
        to ``timeout_s``): a stalled server may still hold a ``COMMIT`` the client gave up on, and
        it must land or be rolled back before the retry asks which events are stored."""
        fresh = self._connect()
        with self._lock:
            old, self._conn = self._conn, fresh
        try:
            old.close()
        except Exception:  # noqa: S110 - the old connection is broken anyway
            pass
        self._end_backend(fresh, self._backend_pid)
        self._backend_pid = fresh.info.backend_pid

    def _end_backend(self, fresh: Any, pid: int) -> None:
        try:
            with self._lock, self._deadline(fresh) as conn:
                conn.execute("SELECT pg_terminate_backend(%s, %s)", (pid, max(int(self.timeout_s * 1000), 1)))
        except self._psycopg.OperationalError:
            raise  # the fresh connection does not answer either: the reconnect failed
        except self._psycopg.Error as e:  # not allowed (another role), or a server before 14
            logger.debug("agentcost ledger could not end the old connection's server process: %s", e)

    def stored_ids(self, events: Sequence[CostEvent]) -> set[str]:
        if not events:
            return set()
        ids = [e.id for e in events]
        with self._lock, self._deadline(self._conn) as conn, conn.cursor() as cur:
            rows = cur.execute(f"SELECT id FROM {self.table} WHERE id = ANY(%s) AND ts >= %s AND ts <= %s",
                               (ids, min(e.ts for e in events), max(e.ts for e in events))).fetchall()  # fmt: skip
        return {r[0] for r in rows}

    def state_path(self) -> Path:
        """``$AGENTCOST_LEDGER_DIR`` (default ``.agentcost`` under the working directory) /
        ``postgresql-<digest of host, port, user, database and table>``."""
        parts = urlsplit(self.url)
        where = f"{parts.hostname}:{parts.port}/{parts.username}{parts.path}#{self.table}"
        folder = Path(os.environ.get("AGENTCOST_LEDGER_DIR") or ".agentcost")
        return folder / f"postgresql-{hashlib.sha256(where.encode()).hexdigest()[:16]}"


@contextmanager
def schema_transaction(conn: Any, name: str) -> Iterator[None]:
    """A transaction holding the advisory lock named after ``name``, for creating or changing tables
    while other processes may do the same.

    PostgreSQL's ``IF NOT EXISTS`` does not hold under concurrency: two sessions creating the same
    table at once can both pass the check, and the loser fails on a catalog index (``duplicate key
    … pg_type_typname_nsp_index``, or ``type … already exists``). So every creator first takes a
    transaction-scoped advisory lock; the next one in line then finds the table there. (``conn``
    is an autocommit psycopg connection.)"""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentcost:schema:{name}",))
        yield


def ensure_schema(conn: Any, name: str, *statements: str) -> None:
    """Run ``CREATE … IF NOT EXISTS`` statements safely while other processes may run them too."""
    with schema_transaction(conn, name):
        for statement in statements:
            conn.execute(statement)


#: Fields reports group and filter by that get an index (schema version 4; see sqlite.REPORT_FIELDS).
REPORT_FIELDS = ("feature", "session_id")

#: The layout version this code writes. Each ledger table's version is a row of ``agentcost_meta``;
#: version 0 is a new table or one written before versions existed (the same columns, no row).
SCHEMA_VERSION = 5
_META = "CREATE TABLE IF NOT EXISTS agentcost_meta (name TEXT PRIMARY KEY, schema_version INTEGER NOT NULL)"


def _upgrade_from_0(conn: Any, table: str, where: str) -> None:
    """A new table is created; an unversioned ledger keeps its rows and is marked version 1."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s",
        (table.lower(),),  # unquoted names are folded to lower case
    ).fetchall()
    missing = set(COLUMNS_V1) - {r[0] for r in rows} if rows else set()
    if missing:
        raise LedgerURLError(
            f"table {table!r} in {where!r} is not an agentcost ledger (no {', '.join(sorted(missing))})"
        )
    cols = ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in (*COLUMNS, "top_model"))
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (seq BIGSERIAL PRIMARY KEY, {cols})")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts)")


def _upgrade_from_1(conn: Any, table: str, where: str) -> None:
    """Version 2: ``price_source``, which price data priced each event (NULL for older rows)."""
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS price_source TEXT")


def _upgrade_from_2(conn: Any, table: str, where: str) -> None:
    """Version 3: ``<table>_prompts``, prompt logging's table (empty unless it is turned on)."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table}_prompts (event_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, "
        "input_messages TEXT NOT NULL, output_messages TEXT NOT NULL, tool_definitions TEXT)"
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_prompts_ts ON {table}_prompts (ts)")


def _upgrade_from_3(conn: Any, table: str, where: str) -> None:
    """Version 4: ``top_model``, the router's top model (kept in ``extra`` before), so a rollup runs in
    SQL without reading JSON, and indexes on the fields reports group and filter by. (Costs are
    ``NUMERIC``: PostgreSQL sums them exactly as they are.)"""
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS top_model TEXT")
    for f in REPORT_FIELDS:  # a filter on the field, a grouping by it (with ts: a filter and a window)
        conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_{f} ON {table} ({f}, ts)")
    conn.execute(
        f"UPDATE {table} SET top_model = extra::jsonb->>'top_model' WHERE extra IS NOT NULL "
        "AND COALESCE(extra::jsonb->>'top_model', '') NOT IN ('', 'false', '0')"
    )


def _upgrade_from_4(conn: Any, table: str, where: str) -> None:
    """Version 5: the rollup tables ``<table>_hourly`` and ``<table>_sessions`` (.rollup_tables), summed
    from every stored event, the statement trigger that keeps them, and the indexes of calls' costs (all,
    and a feature's) and of guard notices."""
    rollups = RollupTables(POSTGRES, table)
    for sql in (*rollups.create_sql(), *rollups.build_sql(), *rollups.trigger_sql()):
        conn.execute(sql)


#: ``_UPGRADES[n]`` takes a ledger table from version n to n + 1 (a new layout adds its step here).
_UPGRADES = {0: _upgrade_from_0, 1: _upgrade_from_1, 2: _upgrade_from_2, 3: _upgrade_from_3, 4: _upgrade_from_4}


def _schema_version(conn: Any, table: str) -> int:
    """The stored schema version of ``table`` (0: no ledger yet), read without a lock."""
    exists = conn.execute("SELECT to_regclass('agentcost_meta') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (table,)).fetchone()
    return row[0] if row else 0


def _migrate(conn: Any, table: str, where: str) -> None:
    """Bring ``table`` to :data:`SCHEMA_VERSION` in one locked transaction; refuse a newer one."""
    with schema_transaction(conn, "agentcost_meta"):
        conn.execute(_META)
        row = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (table,)).fetchone()
        version = row[0] if row else 0
        if version > SCHEMA_VERSION:
            raise LedgerURLError(
                f"ledger table {table!r} in {where!r} has schema version {version}, newer than this "
                f"agentcost knows ({SCHEMA_VERSION}); upgrade agentcost to read or write it"
            )
        if version == SCHEMA_VERSION:
            return
        while version < SCHEMA_VERSION:
            _UPGRADES[version](conn, table, where)
            version += 1
        conn.execute(
            "INSERT INTO agentcost_meta (name, schema_version) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET schema_version = EXCLUDED.schema_version",
            (table, version),
        )
