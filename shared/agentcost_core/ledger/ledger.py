"""The :class:`Ledger`: opens a backend from a URL and puts writes behind the background writer."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator, Sequence

from ..errors import LedgerURLError
from ..events import CostEvent, text_ids
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
        raise LedgerURLError(f"a ledger URL must be a non-empty string, got {url!r}; use one of: {_SCHEMES}")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise LedgerURLError(f"ledger URL {url!r} has no scheme; use one of: {_SCHEMES}")
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise LedgerURLError(
                f"SQLite ledger URL {url!r} needs a path: sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = rest[1:]
        from .sqlite import SQLiteBackend

        return SQLiteBackend(url, path, durable=durable)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from .postgres import PostgresBackend

        return PostgresBackend("postgresql://" + rest)
    raise LedgerURLError(f"unknown ledger scheme {scheme!r} in {url!r}; use one of: {_SCHEMES}")


_SHARED: dict[str, Ledger] = {}
_SHARED_LOCK = threading.Lock()


class Ledger:
    """Append-only store of :class:`CostEvent`.

    ``Ledger("sqlite:///path")`` (default: :func:`default_ledger_url`), ``Ledger("postgresql://…")``,
    ``Ledger("memory://")`` or ``Ledger(backend=...)``. Writes go through a bounded background
    writer; ``flush()`` (also run at exit) stores everything enqueued. ``sync=True`` writes each
    event before ``record`` returns: nothing can be lost, at the price of latency.
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
    ) -> None:
        if max_queue <= 0 or batch_size <= 0 or flush_interval_s <= 0:
            raise LedgerURLError("max_queue, batch_size and flush_interval_s must be positive")
        self.backend = backend if backend is not None else open_backend(
            default_ledger_url() if url is None else url, durable=sync
        )
        self.url = self.backend.url
        self.sync = sync
        self._writer: BackgroundWriter | None = None
        self._sync_lock = threading.Lock()
        if not sync:
            self._writer = BackgroundWriter(
                self._store, max_queue=max_queue, batch_size=batch_size, interval_s=flush_interval_s
            )
            if type(self).record is Ledger.record:  # (a subclass's own record() is kept)
                # The hot path calls ``ledger.record(event)`` once per model call: go straight to the queue.
                self.record = self._writer.put  # type: ignore[method-assign]

    @classmethod
    def shared(cls, url: str | None = None) -> Ledger:
        """One ledger per URL per process, so many handlers share one writer and connection."""
        key = url or default_ledger_url()
        with _SHARED_LOCK:
            ledger = _SHARED.get(key)
            if ledger is None:
                ledger = _SHARED[key] = cls(key)
            return ledger

    # --- writing ------------------------------------------------------------------------
    def _store(self, events: Sequence[CostEvent]) -> None:
        """Hand events to the backend, their ids made text first (the LangChain hot path records
        a run's UUID as it comes: see :func:`~agentcost_core.events.text_ids`)."""
        for e in events:
            text_ids(e)
        self.backend.write_many(events)

    def record(self, event: CostEvent) -> None:
        """Enqueue ``event`` for the background writer (sync mode: store it now)."""
        if self._writer is not None:
            self._writer.put(event)
        else:
            with self._sync_lock:
                self._store((event,))

    def record_many(self, events: list[CostEvent]) -> None:
        if self._writer is not None:
            for e in events:
                self._writer.put(e)
        else:
            with self._sync_lock:
                self._store(events)

    def flush(self) -> None:
        """Store every event recorded so far."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.backend.close()

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
