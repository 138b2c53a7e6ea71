"""The :class:`Ledger`: opens a backend from a URL and puts writes behind the background writer."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import LedgerURLError
from ..events import CostEvent
from ..privacy import redact_url
from .base import LedgerBackend
from .dead_letter_retry import DeadLetterRetry, retry_dead_letters
from .faults import BatchStore
from .jsonlines import DeadLetters
from .prompts import DEFAULT_PROMPT_RETENTION_DAYS, PromptWrites
from .settings import check_count, check_seconds
from .spool import Spool, replay_spools, spool_folder
from .writer import BackgroundWriter

__all__ = ["DEFAULT_LEDGER_URL", "DURABILITY", "Ledger", "LedgerStatus", "default_ledger_url", "open_backend"]

DEFAULT_LEDGER_URL = "sqlite:///.agentcost/ledger.db"
_SCHEMES = "sqlite:///path, postgresql://user@host/db, memory://"


def default_ledger_url() -> str:
    """``AGENTCOST_LEDGER`` when set, else ``sqlite:///.agentcost/ledger.db`` in the working directory."""
    return os.environ.get("AGENTCOST_LEDGER") or DEFAULT_LEDGER_URL


def open_backend(url: str, *, durable: bool = False, timeout_s: float | None = None) -> LedgerBackend:
    """A backend for ``url``. Raises :class:`LedgerURLError` with the accepted forms.

    ``durable``: every write must survive a power failure (the ledger's sync mode). ``timeout_s``:
    every database call's deadline (None: the backend's default, 10 s)."""
    deadline = {} if timeout_s is None else {"timeout_s": timeout_s}
    if not isinstance(url, str) or not url.strip():
        raise LedgerURLError(f"a ledger URL must be a non-empty string, got {redact_url(url)!r}; use one of: {_SCHEMES}")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise LedgerURLError(f"ledger URL {redact_url(url)!r} has no scheme; use one of: {_SCHEMES}")
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise LedgerURLError(
                f"SQLite ledger URL {redact_url(url)!r} needs a path: sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = rest[1:]
        from .sqlite import SQLiteBackend

        return SQLiteBackend(url, path, durable=durable, **deadline)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from .postgres import PostgresBackend

        return PostgresBackend("postgresql://" + rest, **deadline)
    raise LedgerURLError(f"unknown ledger scheme {scheme!r} in {redact_url(url)!r}; use one of: {_SCHEMES}")


#: The durability modes of :class:`Ledger`, fastest first.
DURABILITY = ("fast", "spool", "sync")


@dataclass(frozen=True)
class LedgerStatus:
    """Live counts of one ledger in this process (:meth:`Ledger.status`)."""

    durability: str
    queued: int  # recorded, not yet stored
    written: int  # stored by this process
    dropped: int  # lost because the queue stayed full
    dead_lettered: int  # refused by the database, or unreachable past the retry window: in the dead-letter file
    repaired: int  # stored after their text was made storable (flagged in extra["agentcost_repaired"])
    retries: int  # batch writes retried after a connection failure
    dead_letter_file: str | None
    spool_file: str | None


class Ledger:
    """Append-only store of :class:`CostEvent`.

    ``Ledger("sqlite:///path")`` (default: :func:`default_ledger_url`), ``Ledger("postgresql://…")``,
    ``Ledger("memory://")`` or ``Ledger(backend=...)``. ``flush()`` (also run at exit) stores
    everything recorded so far.

    ``durability`` says what a crash of this process (SIGKILL, OOM) can lose:

    * ``"fast"`` (default): ``record`` only queues the event; a background writer stores batches
      within about ``flush_interval_s`` (0.2 s) plus the time to write what was queued before.
      A crash loses what was queued (the last fraction of a second of events; at most ``max_queue``).
    * ``"spool"``: ``record`` also appends the event to a spool file beside the ledger (one
      unbuffered write, ~17 µs); the next ledger opened on the URL replays what a crashed process
      left there, skipping events already stored. A crash loses nothing (a power failure may).
    * ``"sync"`` (``sync=True`` is the same): ``record`` stores the event before it returns, on the
      caller's thread (SQLite with ``synchronous=FULL``). Nothing is lost, at the price of latency.

    Under faults nothing is lost silently (see :mod:`.faults`): a dropped connection is retried
    after a reconnect for up to ``retry_s`` seconds; an event the database refuses (a token count
    beyond 64 bits) is kept in the dead-letter file ``<ledger file>.deadletter.jsonl`` (PostgreSQL:
    under ``$AGENTCOST_LEDGER_DIR``, default ``.agentcost``) with the reason, and counted; text no
    database stores (a lone surrogate, a NUL) is escaped and flagged in ``extra``. :meth:`status`
    has the counts. :meth:`retry_dead_letters` (``agentcost ledger retry-dead-letters``) stores
    them once the cause is gone.

    Every database call has a deadline, ``timeout_s`` (default 10 s; for ``backend=``, the
    backend's own): a PostgreSQL server that stalls (no answer, connection still open) has the
    call's socket cut then, and the batch is retried like one on a dropped link. So a batch — and
    with it ``flush()``, a sync ``record()`` and the flush at interpreter exit — returns within
    about ``retry_s + timeout_s + max(timeout_s, 2)`` seconds however long the stall lasts
    (50 s with the defaults; once the ledger is known to be unreachable, a few seconds at most);
    what it could not store is in the dead-letter file, counted.

    ``max_queue`` and ``batch_size`` are whole numbers > 0; ``flush_interval_s`` and ``timeout_s``
    finite seconds > 0; ``full_queue_wait_s`` (0: never wait) and ``retry_s`` (0: no retry
    window) finite seconds >= 0. Anything else is a :class:`LedgerURLError` at construction.

    When the writer's queue (``max_queue`` events) is full, ``record`` from a thread running an
    asyncio event loop never waits: the event is dropped. From any other thread it waits up to
    ``full_queue_wait_s`` seconds for room, then drops. :attr:`dropped` counts what was dropped;
    the first drop logs one warning.

    Prompt logging (``log_prompts=True`` where recording is configured; off by default) stores
    each call's redacted prompt and response beside its event, through the same writer:
    :meth:`prompts` reads one back; records older than ``prompt_retention_days`` (default 30) are
    deleted when the ledger opens, hourly while prompts are written, and by :meth:`prune_prompts`
    (``agentcost ledger prune-prompts``).

    A ledger you construct is yours: ``close()`` stores what is queued and closes the backend.
    :meth:`shared` hands out references to one process-wide ledger per URL instead.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        backend: LedgerBackend | None = None,
        durability: str | None = None,
        sync: bool = False,
        max_queue: int = 100_000,
        batch_size: int = 2_000,
        flush_interval_s: float = 0.2,
        full_queue_wait_s: float = 5.0,
        retry_s: float = 30.0,
        timeout_s: float | None = None,
        prompt_retention_days: float = DEFAULT_PROMPT_RETENTION_DAYS,
    ) -> None:
        max_queue = check_count("max_queue", max_queue)
        batch_size = check_count("batch_size", batch_size)
        flush_interval_s = check_seconds("flush_interval_s", flush_interval_s)
        full_queue_wait_s = check_seconds("full_queue_wait_s", full_queue_wait_s, zero_ok=True)
        retry_s = check_seconds("retry_s", retry_s, zero_ok=True)
        if timeout_s is not None:
            timeout_s = check_seconds("timeout_s", timeout_s)
            if backend is not None:
                raise LedgerURLError("timeout_s is for a ledger opened from a URL; give it to the backend instead")
        if durability is None:
            durability = "sync" if sync else "fast"
        if durability not in DURABILITY or (sync and durability != "sync"):
            raise LedgerURLError(
                f"durability must be one of {', '.join(DURABILITY)} (sync=True is 'sync'), got {durability!r}"
            )
        if backend is None:
            backend = open_backend(
                default_ledger_url() if url is None else url, durable=durability == "sync", timeout_s=timeout_s
            )
        try:
            prompts = PromptWrites(None, backend, retention_days=prompt_retention_days)  # type: ignore[arg-type]
        except LedgerURLError:
            backend.close()
            raise
        state = backend.state_path()
        dead_letters = DeadLetters(None if state is None else state.with_name(state.name + ".deadletter.jsonl"))
        batch_store = BatchStore(backend, dead_letters, retry_s=retry_s)
        prompts.store_events = batch_store
        prompts.prune_quietly()
        if state is not None:
            replay_spools(spool_folder(state), batch_store, batch_size)
        spool = None
        if durability == "spool":
            if state is None:
                backend.close()
                raise LedgerURLError(f"durability='spool' needs a SQLite or PostgreSQL ledger, not {backend.url!r}")
            try:
                spool = Spool(spool_folder(state))
            except OSError as e:
                backend.close()
                raise LedgerURLError(
                    f"cannot create the spool of ledger {backend.url!r} in {spool_folder(state)}: {e}"
                ) from None
        writer = None
        if durability != "sync":
            writer = BackgroundWriter(
                prompts,  # events go on to batch_store
                max_queue=max_queue,
                batch_size=batch_size,
                interval_s=flush_interval_s,
                full_queue_wait_s=full_queue_wait_s,
                when_empty=None if spool is None else functools.partial(spool.truncate_if, self._nothing_queued),
            )
        self._use(durability, backend, writer, batch_store, spool, threading.Lock(), prompts)

    def _use(
        self,
        durability: str,
        backend: LedgerBackend,
        writer: BackgroundWriter | None,
        batch_store: BatchStore,
        spool: Spool | None,
        sync_lock: threading.Lock,
        prompts: PromptWrites,
    ) -> None:
        """Point this ledger at a backend and its writer (None: sync mode)."""
        self.durability = durability
        self.backend = backend
        self.url = redact_url(backend.url)  # for reports and reprs: the backend keeps the real one
        self.sync = writer is None
        self._writer = writer
        self._store = batch_store
        self._spool = spool
        self._sync_lock = sync_lock
        self._prompts = prompts
        self.closed = False

    def _nothing_queued(self) -> bool:
        return self._writer is not None and self._writer.pending == 0

    @classmethod
    def shared(cls, url: str | None = None) -> Ledger:
        """A reference to the one ledger of ``url`` in this process (default: :func:`default_ledger_url`),
        so many handlers share one writer and connection.

        Each call returns a new reference; ``close()`` on it drops only that reference. The
        backend closes when the last reference is closed (what is queued is stored at exit anyway)."""
        from .shared import SharedLedger

        return SharedLedger(url)

    # --- writing ------------------------------------------------------------------------
    def record(self, event: CostEvent) -> None:
        """Enqueue ``event`` for the background writer (spool: write it ahead first; sync: store it now)."""
        self._check_open()
        writer = self._writer
        if writer is None:
            with self._sync_lock:
                self._store((event,))
        elif self._spool is None:
            writer.put(event)
        else:
            with self._spool.lock:
                self._spool.append(event)
                writer.put(event)

    def record_many(self, events: list[CostEvent]) -> None:
        if self._writer is None:
            self._check_open()
            with self._sync_lock:
                self._store(events)
            return
        for e in events:
            self.record(e)

    def record_prompt(self, record: Any) -> None:
        """Store a :class:`~agentcost_core.prompt_log.PromptRecord` (prompt logging): queued for
        the background writer like an event (sync: stored now). Best effort: never spooled nor
        dead-lettered."""
        self._check_open()
        writer = self._writer
        if writer is None:
            with self._sync_lock:
                self._prompts.write((record,))
        else:
            self._prompts.queued = True
            writer.put(record)

    def prompts(self, event_id: str) -> Any:
        """The logged prompt and response of event ``event_id``
        (a :class:`~agentcost_core.prompt_log.PromptRecord`), or None: prompt logging was off for
        that call, or its record has expired."""
        self.flush()
        return self.backend.prompt(str(event_id))

    def prune_prompts(self, older_than_days: float | None = None) -> int:
        """Delete prompt records older than ``older_than_days`` (default: ``prompt_retention_days``);
        returns how many went."""
        self.flush()
        return self._prompts.prune(older_than_days)

    def prune(self, before: float) -> int:
        """Retention: delete the events (and their logged prompts) recorded before ``before`` (epoch
        seconds, e.g. ``cli.parse_when("2026-01-01")``); returns how many events went. Reports over
        the remaining window are unchanged."""
        self.flush()
        return self.backend.prune(float(before))

    def retry_dead_letters(self) -> DeadLetterRetry:
        """Store this ledger's dead letters now that their cause is gone (the database is back, a
        bug fixed): each one is stored once (never a second row for an event already stored) and
        removed from the dead-letter file; what still fails stays there with its current reason.
        Runs on the caller's thread, within the bound of a batch per 2,000 events under faults."""
        self._check_open()
        return retry_dead_letters(self._store)

    def flush(self) -> None:
        """Store every event recorded so far (under faults: see the class docstring for the bound)."""
        self._check_open()
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Store what is queued and close the backend. Closing twice is harmless."""
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.close()
        if self._spool is not None:
            self._spool.close()
        self.backend.close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self!r} is closed")

    @property
    def dropped(self) -> int:
        """Events lost because the queue stayed full (0 in sync mode)."""
        return self._writer.dropped if self._writer else 0

    def status(self) -> LedgerStatus:
        """What this process recorded into this ledger: queued, written, dropped, dead-lettered."""
        store = self._store
        return LedgerStatus(
            durability=self.durability,
            queued=self._writer.pending if self._writer else 0,
            written=store.written,
            dropped=self.dropped,
            dead_lettered=store.dead_lettered,
            repaired=store.repaired,
            retries=store.retries,
            dead_letter_file=None if store.dead_letters.path is None else str(store.dead_letters.path),
            spool_file=None if self._spool is None else str(self._spool.path),
        )

    # --- reading ------------------------------------------------------------------------
    def events(self, since: float | None = None, until: float | None = None, **filters: Any) -> list[CostEvent]:
        """Stored events in ``[since, until)`` (epoch seconds) matching the equality filters."""
        self.flush()
        return list(self.backend.query(since, until, **filters))

    def iter_events(
        self, since: float | None = None, until: float | None = None, **filters: Any
    ) -> Iterator[CostEvent]:
        self.flush()
        return self.backend.query(since, until, **filters)

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        self.flush()
        return self.backend.count(since, until, **filters)

    def rollup(
        self,
        by: str | tuple[str, ...] = "feature",
        since: float | None = None,
        until: float | None = None,
        **filters: Any,
    ):  # type: ignore[no-untyped-def]
        """Aggregate by attribution field(s); see :func:`agentcost_core.rollup.rollup`. SQLite and PostgreSQL
        ledgers aggregate in the database (:mod:`.sql_rollup`: the same result, without loading the events)."""
        from ..rollup import rollup

        self.flush()
        dialect = getattr(self.backend, "rollup_dialect", None)
        if dialect is not None:
            from .sql_rollup import sql_rollup

            backend: Any = self.backend
            with backend.reading() as aggregate:  # every query of the report reads one snapshot
                r = sql_rollup(aggregate, dialect, backend.table, by=by, since=since, until=until, filters=filters)
            if r is not None:
                return r
        return rollup(self.iter_events(since, until, **filters), by=by, since=since, until=until)

    def clear(self) -> None:
        self.flush()
        self.backend.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r}, durability={self.durability!r})"
