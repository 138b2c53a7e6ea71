"""``sqlite:///path``: budget counters in one SQLite file, shared by the processes of one machine.

Every reserve / settle is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock is taken before
the counters are read), so the check-and-hold is atomic across threads and processes. WAL mode
lets readers run beside the writer; each thread has its own connection. Leased holds live in table
``agentcost_budget_holds`` (one row per key and lease), swept inside the same transactions.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigurationError
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

__all__ = ["SQLiteStore"]

TABLE = "agentcost_budget_counters"
_DIM_COLUMNS = ("usd", "tokens", "calls", "tools")
_SPENT = tuple(f"spent_{d}" for d in _DIM_COLUMNS)
_HELD = tuple(f"held_{d}" for d in _DIM_COLUMNS)
_COUNTER_COLUMNS = (*_SPENT, *_HELD)
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, "
    + ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in _COUNTER_COLUMNS)
    + ", started REAL, expires REAL)"
)
_SELECT = f"SELECT {', '.join(_COUNTER_COLUMNS)}, started, expires FROM {TABLE} WHERE key = ?"
_UPSERT = (
    f"INSERT INTO {TABLE} (key, {', '.join(_COUNTER_COLUMNS)}, started, expires) "
    f"VALUES ({', '.join('?' * (len(_COUNTER_COLUMNS) + 3))}) ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_COUNTER_COLUMNS, "started", "expires"))
)
HOLDS = "agentcost_budget_holds"
HOLDS_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {HOLDS} (key TEXT NOT NULL, lease TEXT NOT NULL, "
    + ", ".join(f"{d} INTEGER NOT NULL DEFAULT 0" for d in _DIM_COLUMNS)
    + ", expires REAL NOT NULL, PRIMARY KEY (key, lease))"
)
HOLDS_INDEX = f"CREATE INDEX IF NOT EXISTS {HOLDS}_expires ON {HOLDS} (key, expires)"
_EXPIRED = f"SELECT {', '.join(_DIM_COLUMNS)} FROM {HOLDS} WHERE key = ? AND expires <= ?"
_URL_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or a file path"


def sqlite_path(url_or_path: str | os.PathLike[str]) -> str:
    """The file path of ``sqlite:///path`` (the ledger's URL form) or of a plain path."""
    if isinstance(url_or_path, os.PathLike):
        url_or_path = os.fspath(url_or_path)
    if not isinstance(url_or_path, str) or not url_or_path.strip():
        raise ConfigurationError(f"a SQLite budget store needs {_URL_FORMS}, got {url_or_path!r}")
    spec = url_or_path.strip()
    scheme, sep, rest = spec.partition("://")
    if sep:
        if scheme.lower() != "sqlite" or not rest.startswith("/") or rest == "/":
            raise ConfigurationError(f"bad SQLite budget store URL {spec!r}: use {_URL_FORMS}")
        spec = rest[1:]
    if spec == ":memory:" or spec.startswith("file::memory:"):
        raise ConfigurationError(
            "an in-memory SQLite database is not shared between connections: use 'memory://' for "
            "in-process budgets, or a file path"
        )
    return spec


def _transient(e: sqlite3.OperationalError) -> bool:
    """A lock another connection holds or just released: worth retrying, never a configuration error."""
    text = str(e).lower()
    return "locked" in text or "busy" in text


class _Conn:
    """A thread's connection, with the process it was opened in (a connection must never be used
    across fork())."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()


# Connections inherited through fork(): never used nor closed in the child (closing could release
# the parent's locks on the file); kept alive here so garbage collection does not close them either.
_INHERITED: list[sqlite3.Connection] = []


class SQLiteStore(CounterStore):
    """Counters in table ``agentcost_budget_counters`` of one SQLite file.

    ``timeout``: seconds a transaction waits for another writer before the store is reported
    unavailable. The file's folder is created if needed; a path that cannot be created or opened is
    a :class:`ConfigurationError` here, at construction. Opening retries a transient "database is
    locked" (another process creating the tables at the same moment) for up to ``timeout``. Any later SQLite error (locked past
    ``timeout``, disk full, I/O error) raises :class:`BudgetStoreUnavailable`.
    """

    shared = True
    leases = True

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        *,
        failure_mode: str = "fail_closed",
        timeout: float = 30.0,
    ) -> None:
        self.failure_mode = self._check_failure_mode(failure_mode)
        self.timeout = check_timeout("SQLite budget store", timeout)
        self.path = sqlite_path(url_or_path)
        self._local = threading.local()
        self._all: weakref.WeakSet[_Conn] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        self._closed = False
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigurationError(f"cannot create the folder for SQLite budget store {self.path!r}: {e}") from None
        try:
            self._conn()  # opens the file and creates the table: a bad path fails here, loudly
        except BudgetStoreUnavailable as e:
            cause = e.__cause__
            if isinstance(cause, sqlite3.OperationalError) and _transient(cause):
                pass  # still locked by another process after ``timeout``: the tables are created on first use
            else:
                raise ConfigurationError(f"cannot open SQLite budget store {self.path!r}: {cause or e}") from None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, failure_mode={self.failure_mode!r})"

    # -- connections ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        held: _Conn | None = getattr(self._local, "conn", None)
        if held is not None:
            if held.pid == os.getpid():
                return held.conn
            _INHERITED.append(held.conn)
        if self._closed:
            raise BudgetStoreUnavailable(f"SQLite budget store {self.path!r} is closed")
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                conn = self._open()
                break
            except sqlite3.OperationalError as e:
                # Another process creating the same tables at this moment: SQLite answers "database
                # is locked" at once (a stale snapshot, not a wait its busy timeout covers). Retry.
                if not _transient(e) or time.monotonic() + pause > deadline:
                    raise self._unavailable(e) from e
                threading.Event().wait(pause)
                pause = min(pause * 2, 0.2)
            except sqlite3.Error as e:
                raise self._unavailable(e) from e
        held = _Conn(conn)
        self._local.conn = held
        with self._all_lock:
            self._all.add(held)
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(SCHEMA)
            conn.execute(HOLDS_SCHEMA)
            conn.execute(HOLDS_INDEX)
        except BaseException:
            conn.close()
            raise
        return conn

    def _unavailable(self, e: BaseException) -> BudgetStoreUnavailable:
        return BudgetStoreUnavailable(f"SQLite budget store {self.path!r} unavailable: {type(e).__name__}: {e}")

    def _transaction(self, body: Any, *args: Any) -> Any:
        """Run ``body(conn, *args)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``; ``body`` returning
        ``(False, value)`` rolls back, ``(True, value)`` commits; the value is returned."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self._unavailable(e) from e
        try:
            commit, value = body(conn, *args)
            conn.execute("COMMIT" if commit else "ROLLBACK")
            return value
        except BaseException as e:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:  # pragma: no cover - the rollback of a failed transaction
                    pass
            if isinstance(e, sqlite3.Error):
                raise self._unavailable(e) from e
            raise

    # -- counters ------------------------------------------------------------------------------

    @staticmethod
    def _row(conn: sqlite3.Connection, key: str) -> tuple[Counters, float | None] | None:
        r = conn.execute(_SELECT, (key,)).fetchone()
        if r is None:
            return None
        return Counters(tuple(r[0:4]), tuple(r[4:8]), r[8]), r[9]  # type: ignore[arg-type]

    @staticmethod
    def _write(conn: sqlite3.Connection, key: str, c: Counters, expires: float | None) -> None:
        conn.execute(_UPSERT, (key, *c.spent, *c.held, c.started, expires))

    def reserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        return self._transaction(self._reserve, claims, now, lease)  # type: ignore[no-any-return]

    def _reserve(
        self, conn: sqlite3.Connection, claims: Sequence[Claim], now: float, lease: Lease | None
    ) -> tuple[bool, ReserveResult]:
        state: dict[str, tuple[Counters, float | None]] = {}
        changed = False
        for claim in claims:
            if claim.key not in state:
                row = self._row(conn, claim.key)
                if row is not None and row[1] is not None and row[1] <= now:
                    self._drop(conn, claim.key)  # its period is over: a fresh key, its leases with it
                    changed, row = True, None
                if row is not None:
                    swept = self._sweep(conn, claim.key, row[0], now)
                    changed = changed or swept is not row[0]
                    row = (swept, row[1])
                state[claim.key] = row or (Counters(), None)
        if changed:
            for key, (c, expires) in state.items():
                if c != Counters():
                    self._write(conn, key, c, expires)
        current = tuple(state[c.key][0] for c in claims)
        for i, (counters, claim) in enumerate(zip(current, claims)):
            dim = fits(counters, claim)
            if dim is not None:
                return changed, ReserveResult(False, current, i, dim)  # commits only what was swept
        after = hold(state, claims, now)  # expiry extended, never shortened
        for key, (c, expires) in state.items():
            self._write(conn, key, c, expires)
        if lease is not None:
            conn.executemany(
                f"INSERT INTO {HOLDS} (key, lease, {', '.join(_DIM_COLUMNS)}, expires) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key, lease) DO UPDATE SET "
                + ", ".join(f"{d} = {d} + excluded.{d}" for d in _DIM_COLUMNS),
                [(c.key, lease.id, *c.amounts, lease.expires) for c in claims],
            )
        return True, ReserveResult(True, tuple(after))

    @staticmethod
    def _drop(conn: sqlite3.Connection, key: str) -> None:
        conn.execute(f"DELETE FROM {TABLE} WHERE key = ?", (key,))
        conn.execute(f"DELETE FROM {HOLDS} WHERE key = ?", (key,))

    @staticmethod
    def _sweep(conn: sqlite3.Connection, key: str, c: Counters, now: float) -> Counters:
        """``c`` with the expired leases of ``key`` taken off held (and deleted); ``c`` itself when none."""
        expired = conn.execute(_EXPIRED, (key, now)).fetchall()
        if not expired:
            return c
        conn.execute(f"DELETE FROM {HOLDS} WHERE key = ? AND expires <= ?", (key, now))
        held = c.held
        for amounts in expired:
            held = add(held, amounts, -1)
        return Counters(c.spent, tuple(max(h, 0) for h in held), c.started)  # type: ignore[arg-type]

    def settle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        return self._transaction(self._settle, claims, actual, lease_id)  # type: ignore[no-any-return]

    def _settle(
        self, conn: sqlite3.Connection, claims: Sequence[Claim], actual: Vector, lease_id: str | None
    ) -> tuple[bool, tuple[Counters, ...]]:
        out = []
        for claim in claims:
            row = self._row(conn, claim.key)
            c, expires = row if row is not None else (Counters(), None)
            taken: Sequence[int] = claim.amounts
            if lease_id is not None:
                r = conn.execute(
                    f"DELETE FROM {HOLDS} WHERE key = ? AND lease = ? RETURNING {', '.join(_DIM_COLUMNS)}",
                    (claim.key, lease_id),
                ).fetchone()
                taken = ZERO if r is None else tuple(r)  # swept already: nothing left to take off
            held = tuple(max(h, 0) for h in add(c.held, taken, -1))
            c = Counters(add(c.spent, actual), held, c.started)  # type: ignore[arg-type]
            self._write(conn, claim.key, c, expires)
            out.append(c)
        return True, tuple(out)

    def release(self, claims: Sequence[Claim], lease_id: str | None = None) -> tuple[Counters, ...]:
        return self.settle(claims, ZERO, lease_id)

    def renew(self, claims: Sequence[Claim], lease_id: str, expires: float) -> bool:
        keys = sorted({c.key for c in claims})
        conn = self._conn()
        try:
            cur = conn.execute(
                f"UPDATE {HOLDS} SET expires = ? WHERE lease = ? AND key IN ({', '.join('?' * len(keys))})",
                (expires, lease_id, *keys),
            )
        except sqlite3.Error as e:
            raise self._unavailable(e) from e
        return cur.rowcount > 0

    def read(self, key: str, now: float | None = None) -> Counters:
        now = time.time() if now is None else now
        try:
            conn = self._conn()
            if conn.execute(f"SELECT 1 FROM {HOLDS} WHERE key = ? AND expires <= ? LIMIT 1", (key, now)).fetchone():
                return self._transaction(self._read_swept, key, now)  # type: ignore[no-any-return]
            row = self._row(conn, key)
        except sqlite3.Error as e:
            raise self._unavailable(e) from e
        return Counters() if row is None else row[0]

    def _read_swept(self, conn: sqlite3.Connection, key: str, now: float) -> tuple[bool, Counters]:
        row = self._row(conn, key)
        if row is None:
            return True, Counters()
        c = self._sweep(conn, key, row[0], now)
        self._write(conn, key, c, row[1])
        return True, c

    def reset(self, key: str | None = None) -> None:
        conn = self._conn()
        try:
            if key is None:
                conn.execute(f"DELETE FROM {TABLE}")
                conn.execute(f"DELETE FROM {HOLDS}")
            else:
                self._drop(conn, key)
        except sqlite3.Error as e:
            raise self._unavailable(e) from e

    def close(self) -> None:
        """Close every thread's connection; later calls raise :class:`BudgetStoreUnavailable`."""
        self._closed = True
        with self._all_lock:
            held = list(self._all)
            self._all = weakref.WeakSet()
        for h in held:
            if h.pid == os.getpid():
                h.conn.close()
