"""The one abstract base of the response cache's storage backends (memory, SQLite, Redis)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from array import array
from typing import Any

from ...usage import Usage
from ..entries import CacheEntry

__all__ = ["CacheBackend", "pack_usage", "pack_vector", "unpack_usage", "unpack_vector"]


class CacheBackend(ABC):
    """Entries keyed by (scope, key); the scope is a partition no lookup ever crosses.

    Implementations drop an expired entry when they meet it; ``candidates`` lists the entries of
    one scope that carry a vector (what the semantic layer compares a query with)."""

    url: str
    #: Whether entries are stored as text (False: the memory backend keeps the payload objects as given).
    serializes: bool = True

    @abstractmethod
    def get(self, scope: str, key: str, now: float) -> CacheEntry | None: ...

    @abstractmethod
    def put(self, entry: CacheEntry) -> None: ...

    @abstractmethod
    def candidates(self, scope: str, now: float) -> list[CacheEntry]: ...

    @abstractmethod
    def invalidate(self, tag: str) -> int:
        """Drop every entry stored under ``tag``; how many were dropped."""

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def __len__(self) -> int: ...

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
