"""The one abstract base of the response cache's storage backends (memory, SQLite, Redis)."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from array import array
from collections.abc import Sequence
from typing import Any

from ...usage import Usage
from ..entries import CacheEntry
from ..vector_index import VectorIndex

__all__ = ["CacheBackend", "pack_usage", "pack_vector", "unpack_usage", "unpack_vector"]


class CacheBackend(ABC):
    """Entries keyed by (scope, key); the scope is a partition no lookup ever crosses.

    Implementations drop an expired entry when they meet it, and ``count`` (``len``: at the current
    time) counts only the live ones, whether or not the expired ones are still stored. Entries that
    carry a vector (the semantic layer's) are also indexed by partition: ``partition`` answers the
    up-to-date :class:`~..vector_index.VectorIndex` of one scope and context fingerprint, and
    ``similar`` reads back the entries it finds close to a query."""

    url: str
    #: Whether entries are stored as text (False: the memory backend keeps the payload objects as given).
    serializes: bool = True

    @abstractmethod
    def get(self, scope: str, key: str, now: float) -> CacheEntry | None: ...

    @abstractmethod
    def put(self, entry: CacheEntry) -> None: ...

    @abstractmethod
    def partition(self, scope: str, context: str, now: float) -> VectorIndex:
        """The vectors of the entries stored under ``scope`` with the context fingerprint ``context``."""

    def similar(
        self, scope: str, context: str, vector: Sequence[float], *, floor: float, now: float, text: str | None = None
    ) -> list[CacheEntry]:
        """The unexpired entries of the partition whose vectors are at least ``floor`` similar to
        ``vector`` (and, with ``text``, state the same strict facts), in the order they were indexed."""
        index = self.partition(scope, context, now)
        found = []
        for key in index.search(vector, floor=floor, now=now, text=text):
            entry = self.get(scope, key, now)
            if entry is None or entry.vector is None or entry.context != context:
                self.forget(index, scope, context, key)  # gone since it was indexed (another process, an expiry)
                continue
            found.append(entry)
        return found

    def forget(self, index: VectorIndex, scope: str, context: str, key: str) -> None:
        """Drop ``key`` from the partition's index: its entry is gone or changed."""
        index.discard(key)

    @abstractmethod
    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag``; how many were dropped."""

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def count(self, now: float) -> int:
        """How many entries are live at ``now``: stored and not expired (what ``get`` would return)."""

    def __len__(self) -> int:
        return self.count(time.time())

    def close(self) -> None:
        """Release connections (most backends hold none)."""


def pack_usage(usage: Usage | None) -> str | None:
    return None if usage is None else json.dumps(usage.as_dict(), separators=(",", ":"))


def unpack_usage(text: Any) -> Usage | None:
    if not text:
        return None
    if isinstance(text, bytes):
        text = text.decode()
    return Usage(**json.loads(text))


def pack_vector(vector: tuple[float, ...] | None) -> bytes | None:
    return None if vector is None else array("d", vector).tobytes()


def unpack_vector(data: bytes | None) -> tuple[float, ...] | None:
    if not data:
        return None
    out = array("d")
    out.frombytes(data)
    return tuple(out)
