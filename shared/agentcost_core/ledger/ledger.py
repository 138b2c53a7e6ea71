"""The :class:`Ledger`: opens a backend from a URL and puts writes behind the background writer."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any, Iterator, Sequence

from ..errors import LedgerURLError
from ..events import CostEvent, text_ids
from ..privacy import redact_url
from .base import LedgerBackend
from .writer import BackgroundWriter

__all__ = ["DEFAULT_LEDGER_URL", "Ledger", "default_ledger_url", "open_backend"]

DEFAULT_LEDGER_URL = "sqlite:///.agentcost/ledger.db"
_SCHEMES = "sqlite:///path, postgresql://user@host/db, memory://"


def default_ledger_url() -> str:
    """``AGENTCOST_LEDGER`` when set, else ``sqlite:///.agentcost/ledger.db`` in the working directory."""
    return os.environ.get("AGENTCOST_LEDGER") or DEFAULT_LEDGER_URL


def open_backend(url: str, *, durable: bool = False) -> LedgerBackend:
    """A backend for ``url``. Raises :class:`LedgerURLError` with the accepted forms.

    ``durable``: every write must survive a power failure (the ledger's sync mode)."""
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

        return SQLiteBackend(url, path, durable=durable)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from .postgres import PostgresBackend

        return PostgresBackend("postgresql://" + rest)
    raise LedgerURLError(f"unknown ledger scheme {scheme!r} in {redact_url(url)!r}; use one of: {_SCHEMES}")


class Ledger:
    """Append-only store of :class:`CostEvent`.

    ``Ledger("sqlite:///path")`` (default: :func:`default_ledger_url`), ``Ledger("postgresql://…")``,
    ``Ledger("memory://")`` or ``Ledger(backend=...)``. Writes go through a bounded background
    writer; ``flush()`` (also run at exit) stores everything enqueued. ``sync=True`` writes each
    event before ``record`` returns: nothing can be lost, at the price of latency (and the write
    then runs on the caller's thread).

    When the writer's queue (``max_queue`` events) is full, ``record`` from a thread running an
    asyncio event loop never waits: the event is dropped. From any other thread it waits up to
    ``full_queue_wait_s`` seconds for room, then drops. :attr:`dropped` counts what was dropped;
    the first drop logs one warning.

    A ledger you construct is yours: ``close()`` stores what is queued and closes the backend.
    :meth:`shared` hands out references to one process-wide ledger per URL instead.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        backend: LedgerBackend | None = None,
        sync: bool = False,
        max_queue: int = 100_000,
        batch_size: int = 2_000,
        flush_interval_s: float = 0.2,
        full_queue_wait_s: float = 5.0,
    ) -> None:
        if max_queue <= 0 or batch_size <= 0 or flush_interval_s <= 0:
            raise LedgerURLError("max_queue, batch_size and flush_interval_s must be positive")
        if full_queue_wait_s < 0:
            raise LedgerURLError("full_queue_wait_s must be zero or positive")
        if backend is None:
            backend = open_backend(default_ledger_url() if url is None else url, durable=sync)
        writer = None
        if not sync:
            writer = BackgroundWriter(
                functools.partial(store, backend),
                max_queue=max_queue,
                batch_size=batch_size,
                interval_s=flush_interval_s,
                full_queue_wait_s=full_queue_wait_s,
            )
        self._use(backend, writer, threading.Lock())

    def _use(self, backend: LedgerBackend, writer: BackgroundWriter | None, sync_lock: threading.Lock) -> None:
        """Point this ledger at a backend and its writer (None: sync mode)."""
        self.backend = backend
        self.url = redact_url(backend.url)  # for reports and reprs: the backend keeps the real one
        self.sync = writer is None
        self._writer = writer
        self._sync_lock = sync_lock
        self.closed = False

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
        """Enqueue ``event`` for the background writer (sync mode: store it now)."""
        self._check_open()
        if self._writer is not None:
            self._writer.put(event)
        else:
            with self._sync_lock:
                store(self.backend, (event,))

    def record_many(self, events: list[CostEvent]) -> None:
        self._check_open()
        if self._writer is not None:
            for e in events:
                self._writer.put(e)
        else:
            with self._sync_lock:
                store(self.backend, events)

    def flush(self) -> None:
        """Store every event recorded so far."""
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
        self.backend.close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self!r} is closed")

    @property
    def dropped(self) -> int:
        """Events lost because the queue stayed full (0 in sync mode)."""
        return self._writer.dropped if self._writer else 0

    # --- reading ------------------------------------------------------------------------
    def events(self, since: float | None = None, until: float | None = None, **filters: Any) -> list[CostEvent]:
        """Stored events in ``[since, until)`` (epoch seconds) matching the equality filters."""
        self.flush()
        return list(self.backend.query(since, until, **filters))

    def iter_events(self, since: float | None = None, until: float | None = None, **filters: Any) -> Iterator[CostEvent]:
        self.flush()
        return self.backend.query(since, until, **filters)

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        self.flush()
        return self.backend.count(since, until, **filters)

    def rollup(self, by: str | tuple[str, ...] = "feature", since: float | None = None, until: float | None = None, **filters: Any):  # type: ignore[no-untyped-def]
        """Aggregate by attribution field(s); see :func:`agentcost_core.rollup.rollup`."""
        from ..rollup import rollup

        return rollup(self.iter_events(since, until, **filters), by=by, since=since, until=until)

    def clear(self) -> None:
        self.flush()
        self.backend.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r}, sync={self.sync})"


def store(backend: LedgerBackend, events: Sequence[CostEvent]) -> None:
    """Hand events to the backend, their ids made text first (the LangChain hot path records
    a run's UUID as it comes: see :func:`~agentcost_core.events.text_ids`)."""
    for e in events:
        text_ids(e)
    backend.write_many(events)

