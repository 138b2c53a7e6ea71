"""The values the response cache passes around: one stored entry, one lookup, one hit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..usage import Usage

__all__ = ["CacheEntry", "CacheHit", "CacheRequest"]


@dataclass(slots=True)
class CacheEntry:
    """One stored response.

    ``payload`` is the framework's own serialized response (the adapter's to read back), or, in a
    backend that keeps objects (``serializes = False``: memory), the response objects themselves;
    ``model`` and ``usage`` are what the original call served and billed, so a hit can say what it
    saved. ``text`` / ``context`` / ``vector`` are set for entries the semantic layer can match.
    """

    scope: str
    key: str
    payload: Any
    model: str | None = None
    usage: Usage | None = None
    created: float = field(default_factory=time.time)
    expires: float | None = None
    tags: tuple[str, ...] = ()
    text: str | None = None
    context: str | None = None
    vector: tuple[float, ...] | None = None

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


@dataclass(slots=True)
class CacheRequest:
    """One lookup: the exact ``key``, the ``scope`` partition, the requested ``model``; for the
    semantic layer the query ``text`` (the last user message) and the ``context`` fingerprint;
    ``tags`` to store the response under."""

    key: str
    scope: str
    model: str | None = None
    text: str | None = None
    context: str | None = None
    tags: tuple[str, ...] = ()
    vector: tuple[float, ...] | None = None  # the query's embedding, once the semantic layer made it
    attribution: Any = None  # who asked (the semantic layer bills its embedding calls to them)


@dataclass(slots=True)
class CacheHit:
    """A found entry and the layer that found it (``"exact"`` or ``"semantic"``)."""

    entry: CacheEntry
    layer: str
    similarity: float | None = None
