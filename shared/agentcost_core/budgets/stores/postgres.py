"""``postgresql://…``: budget counters shared by every process and host that reaches one database.

One row per counter key. A reserve is one transaction: missing keys are inserted (``ON CONFLICT
DO NOTHING``), then all the call's rows are locked with ``SELECT … FOR UPDATE`` in key order (every
transaction locks in the same order, so concurrent calls never deadlock), checked, updated and
committed. A settle updates each row in place (``held = GREATEST(held - amount, 0)``,
``spent = spent + actual``), in the same key order, in one transaction.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...errors import ConfigurationError
from ...ledger.postgres import _redact, ensure_schema
from .base import ZERO, BudgetStoreUnavailable, Claim, Counters, CounterStore, ReserveResult, Vector, fits, hold

__all__ = ["PostgresStore"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SPENT = ("spent_usd", "spent_tokens", "spent_calls", "spent_tools")
_HELD = ("held_usd", "held_tokens", "held_calls", "held_tools")
_COUNTER_COLUMNS = (*_SPENT, *_HELD)
_ROW = f"{', '.join(_COUNTER_COLUMNS)}, started, expires"
_POOL_WAIT = 30.0  # seconds a call waits for a free connection before the store is "unavailable"
# Connections inherited through fork(): never used nor closed in the child (closing would end the
# parent's session on the shared socket); kept alive here so garbage collection does not close them.
_INHERITED: list[Any] = []


def _row_counters(r: Sequence[Any]) -> tuple[Counters, float | None]:
    return Counters(tuple(int(x) for x in r[0:4]), tuple(int(x) for x in r[4:8]), r[8]), r[9]  # type: ignore[arg-type]


class _Pool:
    """At most ``size`` connections per process; idle ones are reused, broken ones dropped."""

    def __init__(self, connect: Any, size: int) -> None:
        self._connect = connect
        self._size = size
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(self._size)

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    _INHERITED.extend(self._idle)
                    self._reset()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._check_fork()
        slots = self._slots
        if not slots.acquire(timeout=_POOL_WAIT):
            raise TimeoutError(f"no free connection in the pool of {self._size} after {_POOL_WAIT:.0f} s")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            ok = False
            try:
                yield conn
                ok = True
            finally:
                import psycopg.pq

                reusable = (
                    ok
                    and not conn.closed
                    and not conn.broken
                    and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                )
                if reusable and self._pid == os.getpid():
                    with self._lock:
                        self._idle.append(conn)
                elif self._pid == os.getpid():
                    conn.close()
        finally:
            slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                conn.close()


class PostgresStore(CounterStore):
    """Counters in ``table`` (created if missing; one table is one store: :meth:`reset` with no
    key empties it).

    Nothing connects at construction: the first call does, and from then on a connection failure,
    a timeout or an error answer raises :class:`BudgetStoreUnavailable` (``fail_closed`` refuses the
    call, ``fail_open`` lets it through flagged). ``connect_timeout`` bounds each connection
    attempt; ``pool_size`` caps this process' connections (threads beyond it wait their turn).
    The async forms run the sync calls in a worker thread (the base class' behaviour).
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        failure_mode: str = "fail_closed",
        table: str = "agentcost_budget_counters",
        connect_timeout: int = 5,
        pool_size: int = 8,
    ) -> None:
        self.failure_mode = self._check_failure_mode(failure_mode)
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError(f"a PostgreSQL budget store needs a postgresql://user@host/db URL, got {url!r}")
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if sep and scheme.lower() in ("postgresql+psycopg", "postgres"):
            url = "postgresql://" + rest
        self.url = _redact(url)
        if not isinstance(table, str) or not all(_IDENT.fullmatch(p) for p in table.split(".")):
            raise ConfigurationError(f"bad PostgreSQL table name {table!r} for the budget store")
        if connect_timeout <= 0:
            raise ConfigurationError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        if pool_size < 1:
            raise ConfigurationError(f"pool_size must be >= 1, got {pool_size!r}")
        try:
            import psycopg
            import psycopg.conninfo
        except ImportError:
            raise ConfigurationError(
                "a PostgreSQL budget store needs psycopg 3: pip install 'agentcost[postgres]'"
            ) from None
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as e:
            raise ConfigurationError(f"bad PostgreSQL budget store URL {self.url!r}: {e}") from None
        self._psycopg = psycopg
        self._dsn = url
        self.table = table
        self.connect_timeout = max(int(connect_timeout), 1)
        self._pool = _Pool(self._connect, pool_size)
        self._ready = False
        self._ready_lock = threading.Lock()
        t = table
        self._sql_create = (
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, "
            + ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in _COUNTER_COLUMNS)
            + ", started DOUBLE PRECISION, expires DOUBLE PRECISION)"
        )
        sorted_keys = 'SELECT k FROM unnest(%s::text[]) AS u(k) ORDER BY k COLLATE "C"'
        self._sql_insert_missing = f"INSERT INTO {t} (key) {sorted_keys} ON CONFLICT (key) DO NOTHING"
        self._sql_lock = f'SELECT key, {_ROW} FROM {t} WHERE key = ANY(%s) ORDER BY key COLLATE "C" FOR UPDATE'
        self._sql_write = (
            f"UPDATE {t} SET "
            + ", ".join(f"{c} = %s" for c in (*_COUNTER_COLUMNS, "started", "expires"))
            + " WHERE key = %s"
        )
        self._sql_settle = (
            f"UPDATE {t} SET "
            + ", ".join(f"{c} = {c} + %s" for c in _SPENT)
            + ", "
            + ", ".join(f"{c} = GREATEST({c} - %s, 0)" for c in _HELD)
            + f" WHERE key = %s RETURNING {_ROW}"
        )
        self._sql_drop_expired = f"DELETE FROM {t} WHERE key = ANY(%s) AND expires <= %s"
        self._sql_read = f"SELECT {_ROW} FROM {t} WHERE key = %s"

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, table={self.table!r}, failure_mode={self.failure_mode!r})"

    # -- connections ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        conn = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=self.connect_timeout)
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    try:
                        ensure_schema(conn, self.table, self._sql_create)  # safe with other processes starting
                    except BaseException:
                        conn.close()
                        raise
                    self._ready = True
        return conn

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (self._psycopg.Error, OSError) as e:
            raise BudgetStoreUnavailable(
                f"PostgreSQL budget store {self.url} (table {self.table}) unavailable: {type(e).__name__}: {e}"
            ) from e

    # -- counters ------------------------------------------------------------------------------

    def reserve(self, claims: Sequence[Claim], now: float) -> ReserveResult:
        keys = sorted({c.key for c in claims})
        expired: list[str] = []
        with self._connection() as conn:
            with conn.transaction() as tx, conn.cursor() as cur:
                cur.execute(self._sql_insert_missing, (keys,))
                state: dict[str, tuple[Counters, float | None]] = {}
                for r in cur.execute(self._sql_lock, (keys,)).fetchall():
                    counters, expires = _row_counters(r[1:])
                    if expires is not None and expires <= now:
                        expired.append(r[0])
                        counters, expires = Counters(), None  # its period is over: a fresh key
                    state[r[0]] = (counters, expires)
                current = tuple(state[c.key][0] for c in claims)
                refused = next(
                    ((i, d) for i, (c, claim) in enumerate(zip(current, claims)) if (d := fits(c, claim)) is not None),
                    None,
                )
                if refused is not None:
                    raise self._psycopg.Rollback(tx)  # change nothing
                after = hold(state, claims, now)  # expiry extended, never shortened
                cur.executemany(
                    self._sql_write, [(*c.spent, *c.held, c.started, exp, key) for key, (c, exp) in state.items()]
                )
                return ReserveResult(True, tuple(after))
            # refused: as the in-process store does, a refusal still drops the keys whose period is over
            if expired:
                conn.execute(self._sql_drop_expired, (expired, now))
            return ReserveResult(False, current, refused[0], refused[1])

    def settle(self, claims: Sequence[Claim], actual: Vector) -> tuple[Counters, ...]:
        keys = sorted({c.key for c in claims})
        order = sorted(range(len(claims)), key=lambda i: claims[i].key)  # stable: lock in key order
        out: list[Counters | None] = [None] * len(claims)
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(self._sql_insert_missing, (keys,))
            for i in order:
                claim = claims[i]
                r = cur.execute(self._sql_settle, (*actual, *claim.amounts, claim.key)).fetchone()
                out[i] = _row_counters(r)[0]
        return tuple(out)  # type: ignore[arg-type]

    def release(self, claims: Sequence[Claim]) -> tuple[Counters, ...]:
        return self.settle(claims, ZERO)

    def read(self, key: str) -> Counters:
        with self._connection() as conn:
            r = conn.execute(self._sql_read, (key,)).fetchone()
        return Counters() if r is None else _row_counters(r)[0]

    def reset(self, key: str | None = None) -> None:
        with self._connection() as conn:
            if key is None:
                conn.execute(f"DELETE FROM {self.table}")
            else:
                conn.execute(f"DELETE FROM {self.table} WHERE key = %s", (key,))

    def ping(self) -> None:
        """Check the database answers; raises :class:`BudgetStoreUnavailable` if not."""
        with self._connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._pool.close()
