"""Budget counter stores: one interface (:class:`CounterStore`), four backends.

``open_store(spec)`` turns what a user passes as ``Budget(store=...)`` into a store: ``None`` or
``"memory://"`` → the process-wide in-process store; ``"sqlite:///path"``; ``"redis://…"``;
``"postgresql://…"``; or a :class:`CounterStore` instance (to choose ``failure_mode`` and other
options).
"""

from __future__ import annotations

import threading

from ...errors import ConfigurationError
from ...privacy import redact_url
from .base import (
    DIMENSIONS,
    FAILURE_MODES,
    BudgetStoreUnavailable,
    Claim,
    Counters,
    CounterStore,
    ReserveResult,
    units_to_usd,
    usd_to_units,
)
from .memory import MemoryStore

__all__ = [
    "DIMENSIONS",
    "FAILURE_MODES",
    "BudgetStoreUnavailable",
    "Claim",
    "CounterStore",
    "Counters",
    "MemoryStore",
    "ReserveResult",
    "default_store",
    "open_store",
    "units_to_usd",
    "usd_to_units",
]

_DEFAULT: MemoryStore | None = None
_OPENED: dict[str, CounterStore] = {}
_LOCK = threading.Lock()


def default_store() -> MemoryStore:
    """The in-process store budgets use when given no store."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None:
            _DEFAULT = MemoryStore()
        return _DEFAULT


def open_store(spec: CounterStore | str | None) -> CounterStore:
    """A store from a store, a URL or None; stores opened from the same URL are shared."""
    if spec is None:
        return default_store()
    if isinstance(spec, CounterStore):
        return spec
    if not isinstance(spec, str):
        raise ConfigurationError(f"Budget store= takes a CounterStore, a URL string or None, got {type(spec).__name__}")
    url = spec.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        return default_store()
    with _LOCK:
        store = _OPENED.get(url)
        if store is not None:
            return store
        if scheme == "sqlite":
            from .sqlite import SQLiteStore

            store = SQLiteStore(url)
        elif scheme in ("redis", "rediss", "unix"):
            from .redis import RedisStore

            store = RedisStore(url)
        elif scheme in ("postgresql", "postgres"):
            from .postgres import PostgresStore

            store = PostgresStore(url)
        else:
            raise ConfigurationError(
                f"unknown budget store URL {redact_url(spec)!r}: use memory://, sqlite:///path, redis://host:port/db "
                "or postgresql://user@host/db"
            )
        _OPENED[url] = store
        return store
