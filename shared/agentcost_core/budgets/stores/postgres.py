"""``postgresql://…``: budget counters shared by every process and host that reaches one database.

One row per counter key. A reserve is one transaction: missing keys are inserted (``ON CONFLICT
DO NOTHING``), then all the call's rows are locked with ``SELECT … FOR UPDATE`` in key order (every
transaction locks in the same order, so concurrent calls never deadlock), checked, updated and
committed. A settle updates each row in place (``held = GREATEST(held - amount, 0)``,
``spent = spent + actual``), in the same key order, in one transaction.

Leased holds are rows of ``<table>_holds`` (key, lease, amounts, expires). Every transaction that
touches them locks the counter rows first, in key order, so sweeps, settles and reserves never
deadlock; a renewal updates one hold row per statement.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...db_deadline import WATCHDOG
from ...errors import ConfigurationError
from ...ledger.postgres import ensure_schema
from ...privacy import redact_text, redact_url
from .base import (
    ZERO,
    BudgetStoreUnavailable,
    Claim,
    Counters,
    CounterStore,
    Lease,
    ReserveResult,
    Vector,
    add,
    check_timeout,
    fits,
    hold,
)
from .cancels import CANCEL_HORIZON, PendingCancels

__all__ = ["PostgresStore"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SPENT = ("spent_usd", "spent_tokens", "spent_calls", "spent_tools")
_HELD = ("held_usd", "held_tokens", "held_calls", "held_tools")
_AMOUNTS = ("usd", "tokens", "calls", "tools")
_COUNTER_COLUMNS = (*_SPENT, *_HELD)
_ROW = f"{', '.join(_COUNTER_COLUMNS)}, started, expires"
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
    def connection(self, deadline: float) -> Iterator[Any]:
        """A connection, waiting for a free one until ``deadline`` (``time.monotonic()``)."""
        self._check_fork()
        slots = self._slots
        if not slots.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise TimeoutError(f"no free connection in the pool of {self._size} before the call's deadline")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect(deadline)
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
    call, ``fail_open`` lets it through flagged).

    ``timeout`` (seconds, default 5.0) is every call's deadline, waiting for a pooled connection
    included; ``connect_timeout`` (default 5) bounds opening a new one. A stalled server is given
    up on by the client (:mod:`agentcost_core.db_deadline` cuts the connection; the server rolls its transaction
    back), and the server bounds its side too (``statement_timeout`` = ``timeout``,
    ``idle_in_transaction_session_timeout`` = twice that, so a lost client's row locks go). A
    leased reserve (or settle / release) that was given up on may still commit if its last
    statement was already on its way: the store then cancels it by its lease id (see
    :mod:`.cancels`), so no late commit stays held. ``pool_size`` caps this process' connections
    (threads beyond it wait their turn, within their deadline). The async forms run the sync calls
    in a worker thread (the base class' behaviour).
    """

    shared = True
    leases = True

    def __init__(
        self,
        url: str,
        *,
        failure_mode: str = "fail_closed",
        table: str = "agentcost_budget_counters",
        connect_timeout: int = 5,
        pool_size: int = 8,
        timeout: float = 5.0,
    ) -> None:
        self.failure_mode = self._check_failure_mode(failure_mode)
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError(
                f"a PostgreSQL budget store needs a postgresql://user@host/db URL, got {redact_url(url)!r}"
            )
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if sep and scheme.lower() in ("postgresql+psycopg", "postgres"):
            url = "postgresql://" + rest
        self.url = redact_url(url)  # for reprs and errors: connections use the real one
        if (
            not isinstance(table, str)
            or not all(_IDENT.fullmatch(p) for p in table.split("."))
            or len(table.split(".")[-1]) > 57  # room for the "_holds" table
        ):
            raise ConfigurationError(f"bad PostgreSQL table name {table!r} for the budget store")
        self.timeout = check_timeout("PostgreSQL budget store", timeout)
        check_timeout("PostgreSQL budget store connect", connect_timeout)
        if pool_size < 1:
            raise ConfigurationError(f"pool_size must be >= 1, got {pool_size!r}")
        try:
            import psycopg
            import psycopg.conninfo
        except ImportError:
            raise ConfigurationError(
                "a PostgreSQL budget store needs psycopg 3: pip install 'agentcost-control[postgres]'"
            ) from None
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as e:
            raise ConfigurationError(f"bad PostgreSQL budget store URL {self.url!r}: {redact_text(str(e))}") from None
        self._psycopg = psycopg
        self._dsn = url
        self.table = table
        self.connect_timeout = max(math.ceil(connect_timeout), 1)  # libpq takes whole seconds (at least 2)
        self._pool = _Pool(self._connect, pool_size)
        self._cancels = PendingCancels(self._cancel)
        self._ready = False
        self._ready_lock = threading.Lock()
        t = table
        h = self.holds_table = f"{table}_holds"
        self._sql_create = (
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, "
            + ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in _COUNTER_COLUMNS)
            + ", started DOUBLE PRECISION, expires DOUBLE PRECISION)"
        )
        self._sql_create_holds = (
            f"CREATE TABLE IF NOT EXISTS {h} (key TEXT NOT NULL, lease TEXT NOT NULL, "
            + ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in _AMOUNTS)
            + ", expires DOUBLE PRECISION NOT NULL, PRIMARY KEY (key, lease))"
        )
        amounts = ", ".join(_AMOUNTS)
        self._sql_sweep = f"DELETE FROM {h} WHERE key = ANY(%s) AND expires <= %s RETURNING key, {amounts}"
        self._sql_any_expired = f"SELECT 1 FROM {h} WHERE key = %s AND expires <= %s LIMIT 1"
        self._sql_drop_holds = f"DELETE FROM {h} WHERE key = ANY(%s)"
        self._sql_add_hold = (
            f"INSERT INTO {h} (key, lease, {amounts}, expires) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (key, lease) DO UPDATE SET " + ", ".join(f"{c} = {h}.{c} + excluded.{c}" for c in _AMOUNTS)
        )
        # settle: lock the counter rows (key order) first, then take the lease's holds of those keys
        self._sql_lock_take = (
            f'WITH locked AS (SELECT key FROM {t} WHERE key = ANY(%s) ORDER BY key COLLATE "C" FOR UPDATE) '
            f"DELETE FROM {h} WHERE lease = %s AND key IN (SELECT key FROM locked) RETURNING key, {amounts}"
        )
        self._sql_renew = f"UPDATE {h} SET expires = %s WHERE key = %s AND lease = %s"
        sorted_keys = 'SELECT k FROM unnest(%s::text[]) AS u(k) ORDER BY k COLLATE "C"'
        self._sql_insert_missing = f"INSERT INTO {t} (key) {sorted_keys} ON CONFLICT (key) DO NOTHING"
        self._sql_lock = f'SELECT key, {_ROW} FROM {t} WHERE key = ANY(%s) ORDER BY key COLLATE "C" FOR UPDATE'
        # the same, and whether the key has a lease that ran out (a sweep is due)
        self._sql_lock_due = (
            f"SELECT key, {_ROW}, EXISTS (SELECT 1 FROM {h} WHERE {h}.key = {t}.key AND {h}.expires <= %s) "
            f'FROM {t} WHERE key = ANY(%s) ORDER BY key COLLATE "C" FOR UPDATE'
        )
        self._sql_write = (
            f"UPDATE {t} SET "
            + ", ".join(f"{c} = %s" for c in (*_COUNTER_COLUMNS, "started", "expires"))
            + " WHERE key = %s"
        )
        self._sql_write_with_hold = f"WITH hold AS ({self._sql_add_hold}) {self._sql_write}"
        self._sql_settle = (
            f"UPDATE {t} SET "
            + ", ".join(f"{c} = {c} + %s" for c in _SPENT)
            + ", "
            + ", ".join(f"{c} = GREATEST({c} - %s, 0)" for c in _HELD)
            + f" WHERE key = %s RETURNING {_ROW}"
        )
        self._sql_read = f"SELECT {_ROW} FROM {t} WHERE key = %s"

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, table={self.table!r}, failure_mode={self.failure_mode!r})"

    # -- connections ---------------------------------------------------------------------------

    def _connect(self, deadline: float) -> Any:
        conn = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=self.connect_timeout)
        try:
            with WATCHDOG.armed(conn.fileno(), max(deadline, time.monotonic() + self.timeout)) as alarm:
                ms = max(int(self.timeout * 1000), 1)
                conn.execute(f"SET statement_timeout = {ms}")
                conn.execute(f"SET idle_in_transaction_session_timeout = {2 * ms}")
                if not self._ready:
                    with self._ready_lock:
                        if not self._ready:
                            # safe with other processes starting
                            ensure_schema(conn, self.table, self._sql_create, self._sql_create_holds)
                            self._ready = True
            if alarm.fired:  # cut just as the setup finished: not a connection to use
                raise self._psycopg.OperationalError(f"no answer within {self.timeout:g} s while connecting")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        deadline = time.monotonic() + self.timeout
        alarm = None
        try:
            with self._pool.connection(deadline) as conn:
                with WATCHDOG.armed(conn.fileno(), deadline) as alarm:
                    yield conn
                if alarm.fired:  # cut just as the call finished: its answer stands, the connection goes
                    conn.close()
        except (self._psycopg.Error, OSError) as e:
            if alarm is not None and alarm.fired:
                raise BudgetStoreUnavailable(
                    f"PostgreSQL budget store {self.url} (table {self.table}) unavailable: no answer within "
                    f"{self.timeout:g} s (timeout=); the connection was closed"
                ) from e
            raise BudgetStoreUnavailable(
                f"PostgreSQL budget store {self.url} (table {self.table}) unavailable: {type(e).__name__}: {redact_text(str(e))}"
            ) from e

    def _cancel(self, claims: Sequence[Claim], lease_id: str, expires: float) -> None:
        self._settle(claims, ZERO, lease_id)  # the counter rows are locked first: after any late reserve

    def pending_cancels(self) -> int:
        return len(self._cancels)

    # -- counters ------------------------------------------------------------------------------

    def reserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        try:
            return self._reserve(claims, now, lease)
        except BudgetStoreUnavailable:
            if lease is not None:  # its COMMIT may still be on its way: cancel it once the server answers
                self._cancels.add(claims, lease.id, lease.expires)
            raise

    def _reserve(self, claims: Sequence[Claim], now: float, lease: Lease | None) -> ReserveResult:
        keys = sorted({c.key for c in claims})
        with self._connection() as conn:
            with conn.transaction() as tx, conn.cursor() as cur:
                cur.execute(self._sql_insert_missing, (keys,))
                state, changed = self._locked(cur, keys, now)
                current = tuple(state[c.key][0] for c in claims)
                refused = next(
                    ((i, d) for i, (c, claim) in enumerate(zip(current, claims)) if (d := fits(c, claim)) is not None),
                    None,
                )
                if refused is None:
                    after = hold(state, claims, now)  # expiry extended, never shortened
                    if lease is not None:  # each key's counters and its hold for this lease, in one statement
                        held: dict[str, Sequence[int]] = {}
                        for c in claims:
                            held[c.key] = add(held[c.key], c.amounts) if c.key in held else c.amounts
                        cur.executemany(
                            self._sql_write_with_hold,
                            [
                                (key, lease.id, *held[key], lease.expires, *c.spent, *c.held, c.started, exp, key)
                                for key, (c, exp) in state.items()
                            ],
                        )
                    else:
                        cur.executemany(
                            self._sql_write,
                            [(*c.spent, *c.held, c.started, exp, key) for key, (c, exp) in state.items()],
                        )
                elif changed:  # refused: as the in-process store does, still commit what was swept or reset
                    cur.executemany(
                        self._sql_write, [(*c.spent, *c.held, c.started, exp, key) for key, (c, exp) in state.items()]
                    )
                else:
                    raise self._psycopg.Rollback(tx)  # change nothing
            if refused is not None:
                return ReserveResult(False, current, refused[0], refused[1])
            return ReserveResult(True, tuple(after))

    def _locked(self, cur: Any, keys: list[str], now: float) -> tuple[dict[str, tuple[Counters, float | None]], bool]:
        """The counter rows of ``keys``, locked in key order, with their expired periods reset and
        their expired leases swept; and whether anything was reset or swept."""
        state: dict[str, tuple[Counters, float | None]] = {}
        over: list[str] = []
        due = False
        for r in cur.execute(self._sql_lock_due, (now, keys)).fetchall():
            counters, expires = _row_counters(r[1:11])
            due = due or r[11]
            if expires is not None and expires <= now:
                over.append(r[0])
                counters, expires = Counters(), None  # its period is over: a fresh key
            state[r[0]] = (counters, expires)
        if over:
            cur.execute(self._sql_drop_holds, (over,))
        swept = cur.execute(self._sql_sweep, (keys, now)).fetchall() if due else []
        for key, *amounts in swept:
            c, expires = state[key]
            held = add(c.held, [int(a) for a in amounts], -1)
            state[key] = (Counters(c.spent, tuple(max(x, 0) for x in held), c.started), expires)  # type: ignore[arg-type]
        return state, bool(over or swept)

    def settle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        try:
            return self._settle(claims, actual, lease_id)
        except BudgetStoreUnavailable:
            if lease_id is not None:  # its hold is released when the server answers again
                self._cancels.add(claims, lease_id, time.time() + CANCEL_HORIZON)
            raise

    def _settle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None) -> tuple[Counters, ...]:
        keys = sorted({c.key for c in claims})
        order = sorted(range(len(claims)), key=lambda i: claims[i].key)  # stable: lock in key order
        out: list[Counters | None] = [None] * len(claims)
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(self._sql_insert_missing, (keys,))
            holds: dict[str, Sequence[int]] = {}
            if lease_id is not None:  # counters locked before holds, as in every transaction
                holds = {r[0]: tuple(int(x) for x in r[1:]) for r in cur.execute(self._sql_lock_take, (keys, lease_id))}
            for i in order:
                claim = claims[i]
                taken: Sequence[int] = claim.amounts
                if lease_id is not None:
                    taken = holds.pop(claim.key, ZERO)  # swept already (or taken by a twin claim): nothing
                r = cur.execute(self._sql_settle, (*actual, *taken, claim.key)).fetchone()
                out[i] = _row_counters(r)[0]
        return tuple(out)  # type: ignore[arg-type]

    def release(self, claims: Sequence[Claim], lease_id: str | None = None) -> tuple[Counters, ...]:
        return self.settle(claims, ZERO, lease_id)

    def renew(self, claims: Sequence[Claim], lease_id: str, expires: float) -> bool:
        found = 0
        with self._connection() as conn:
            for key in sorted({c.key for c in claims}):  # one row per statement: never a lock cycle
                found += conn.execute(self._sql_renew, (expires, key, lease_id)).rowcount
        return found > 0

    def read(self, key: str, now: float | None = None) -> Counters:
        now = time.time() if now is None else now
        with self._connection() as conn:
            if conn.execute(self._sql_any_expired, (key, now)).fetchone() is not None:
                with conn.transaction(), conn.cursor() as cur:
                    state, _ = self._locked(cur, [key], now)
                    cur.executemany(
                        self._sql_write, [(*c.spent, *c.held, c.started, exp, k) for k, (c, exp) in state.items()]
                    )
            r = conn.execute(self._sql_read, (key,)).fetchone()
        return Counters() if r is None else _row_counters(r)[0]

    def reset(self, key: str | None = None) -> None:
        with self._connection() as conn:
            if key is None:
                conn.execute(f"DELETE FROM {self.table}")
                conn.execute(f"DELETE FROM {self.holds_table}")
            else:
                conn.execute(f"DELETE FROM {self.table} WHERE key = %s", (key,))
                conn.execute(f"DELETE FROM {self.holds_table} WHERE key = %s", (key,))

    def ping(self) -> None:
        """Check the database answers; raises :class:`BudgetStoreUnavailable` if not."""
        with self._connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._pool.close()
