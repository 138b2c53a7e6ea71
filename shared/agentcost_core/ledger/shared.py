"""Process-wide ledgers, one per URL, handed out as reference-counted :class:`SharedLedger` handles."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..privacy import redact_url
from .ledger import Ledger, default_ledger_url

__all__ = ["SharedLedger"]


@dataclass
class _Entry:
    ledger: Ledger  # the one owning the backend and its writer
    references: int = 0


_ENTRIES: dict[str, _Entry] = {}
_LOCK = threading.Lock()


class SharedLedger(Ledger):
    """One reference to the process-wide ledger of a URL (what :meth:`Ledger.shared` returns).

    Every reference writes through the same background writer and connection. ``close()`` drops
    this reference only (a closed reference refuses further use); the underlying ledger is closed,
    its queue stored, when its last reference closes. A later ``Ledger.shared(url)`` then opens it
    again. Events still queued at interpreter exit are stored whatever the references do."""

    def __init__(self, url: str | None = None) -> None:
        self.key = url or default_ledger_url()
        with _LOCK:
            entry = _ENTRIES.get(self.key)
            if entry is None:
                entry = _ENTRIES[self.key] = _Entry(Ledger(self.key))
            entry.references += 1
        owner = entry.ledger
        self._use(
            owner.durability, owner.backend, owner._writer, owner._store, owner._spool, owner._sync_lock, owner._prompts
        )

    def close(self) -> None:
        """Drop this reference; the last one to go closes the ledger."""
        with _LOCK:
            if self.closed:
                return
            self.closed = True
            entry = _ENTRIES[self.key]
            entry.references -= 1
            last = entry.references == 0
            if last:
                del _ENTRIES[self.key]
        if last:
            entry.ledger.close()

    def __repr__(self) -> str:
        return f"Ledger.shared({redact_url(self.key)!r})"
