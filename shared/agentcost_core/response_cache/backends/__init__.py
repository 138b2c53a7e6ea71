"""Storage backends of the response cache, opened from a URL: ``memory://``, ``sqlite:///path``,
``redis://…`` (``?namespace=`` prefixes its keys; default ``agentcost:cache``); one abstract base,
:class:`CacheBackend`."""

from __future__ import annotations

import os
from urllib.parse import parse_qs

from ...errors import ConfigurationError
from ...ledger import default_ledger_url
from .base import CacheBackend
from .memory import MemoryBackend

__all__ = ["CacheBackend", "MemoryBackend", "default_cache_url", "open_cache_backend"]


def default_cache_url() -> str:
    """``response_cache.db`` beside the default ledger's SQLite file (``.agentcost/`` when the
    default ledger is not a SQLite file)."""
    ledger = default_ledger_url()
    folder = ".agentcost"
    if ledger.startswith("sqlite:///"):
        path = ledger[len("sqlite:///") :]
        if path and path != ":memory:":
            folder = os.path.dirname(path) or "."
    return f"sqlite:///{os.path.join(folder, 'response_cache.db')}"


def open_cache_backend(store: str | CacheBackend | None) -> CacheBackend:
    """A backend for a URL (None = :func:`default_cache_url`) or a backend as it is. A bad URL is
    a :class:`ConfigurationError` naming the accepted forms."""
    if isinstance(store, CacheBackend):
        return store
    if store is None:
        store = default_cache_url()
    if not isinstance(store, str) or "://" not in store:
        raise ConfigurationError(
            f"store must be a URL (memory://, sqlite:///path, redis://host:port/db) or None, got {store!r}"
        )
    scheme, _, rest = store.partition("://")
    scheme = scheme.lower()
    if scheme == "memory":
        query = parse_qs(rest.partition("?")[2])
        raw = query.get("max_entries", ["10000"])[0]
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigurationError(f"memory:// max_entries must be a positive integer, got {raw!r}")
        return MemoryBackend(max_entries=int(raw))
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigurationError(
                f"a SQLite cache URL is sqlite:///relative/path or sqlite:////absolute/path, got {store!r}"
            )
        from .sqlite import SQLiteBackend

        return SQLiteBackend(rest[1:])
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackend

        url, _, query = store.partition("?")
        params = parse_qs(query)
        namespace = params.pop("namespace", ["agentcost:cache"])[0]
        rest_query = "&".join(f"{k}={v}" for k, values in params.items() for v in values)
        return RedisBackend(f"{url}?{rest_query}" if rest_query else url, namespace=namespace)
    raise ConfigurationError(
        f"unknown cache store scheme {scheme!r}; use memory://, sqlite:///path or redis://host:port/db"
    )
