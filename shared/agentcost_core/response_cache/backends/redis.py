"""Redis backend (``redis://host:port/db``): one cache shared by processes and hosts.

Each entry is a hash ``{namespace}:e:{scope digest}:{key}`` that expires with its TTL; each scope
has a set ``{namespace}:s:{scope digest}`` of its entries that carry a vector (the semantic layer
searches that partition only, never the whole keyspace); each tag a set ``{namespace}:t:{tag}``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ...errors import ConfigurationError
from ...privacy import redact_text, redact_url
from ..entries import CacheEntry
from .base import CacheBackend, pack_usage, pack_vector, unpack_usage, unpack_vector

__all__ = ["RedisBackend"]

_FIELDS = ("payload", "model", "usage", "created", "expires", "text", "context", "vector")


def _scope_digest(scope: str) -> str:
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()[:32]


def _text(value: Any) -> str | None:
    if value is None or value == b"":
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisBackend(CacheBackend):
    """``RedisBackend(url, *, namespace="agentcost:cache", timeout=2.0)``."""

    def __init__(self, url: str, *, namespace: str = "agentcost:cache", timeout: float = 2.0) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigurationError(
                "a Redis response cache needs the redis package: pip install 'agentcost-control[redis]'"
            ) from None
        self.url = redact_url(url)
        self.namespace = namespace
        try:
            self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                               retry=Retry(NoBackoff(), 0))  # fmt: skip
        except (ValueError, TypeError) as e:
            raise ConfigurationError(f"bad Redis response cache URL {self.url!r}: {redact_text(str(e))}") from None

    def _entry_key(self, scope: str, key: str) -> str:
        return f"{self.namespace}:e:{_scope_digest(scope)}:{key}"

    def _entry(self, scope: str, key: str, h: dict[bytes, bytes]) -> CacheEntry:
        expires = _text(h.get(b"expires"))
        return CacheEntry(
            scope=scope, key=key, payload=_text(h[b"payload"]) or "", model=_text(h.get(b"model")),
            usage=unpack_usage(h.get(b"usage")), created=float(h[b"created"]),
            expires=float(expires) if expires else None, text=_text(h.get(b"text")),
            context=_text(h.get(b"context")), vector=unpack_vector(h.get(b"vector")),
        )  # fmt: skip

    def get(self, scope: str, key: str, now: float) -> CacheEntry | None:
        h = self.client.hgetall(self._entry_key(scope, key))
        if not h or b"payload" not in h:
            return None
        entry = self._entry(scope, key, h)
        return None if entry.expired(now) else entry

    def put(self, entry: CacheEntry) -> None:
        name = self._entry_key(entry.scope, entry.key)
        values = {
            "payload": entry.payload, "model": entry.model or "", "usage": pack_usage(entry.usage) or "",
            "created": repr(entry.created), "expires": "" if entry.expires is None else repr(entry.expires),
            "text": entry.text or "", "context": entry.context or "", "vector": pack_vector(entry.vector) or b"",
        }  # fmt: skip
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(name)
        pipe.hset(name, mapping=values)
        if entry.expires is not None:
            pipe.pexpireat(name, int(entry.expires * 1000) + 1)
        if entry.vector is not None:
            pipe.sadd(f"{self.namespace}:s:{_scope_digest(entry.scope)}", entry.key)
        for tag in entry.tags:
            pipe.sadd(f"{self.namespace}:t:{tag}", name)
        pipe.execute()

    def candidates(self, scope: str, now: float) -> list[CacheEntry]:
        index = f"{self.namespace}:s:{_scope_digest(scope)}"
        keys = [_text(k) or "" for k in self.client.smembers(index)]
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._entry_key(scope, key))
        out, gone = [], []
        for key, h in zip(keys, pipe.execute()):
            if not h or b"payload" not in h:
                gone.append(key)  # expired or invalidated: drop it from the partition's index
                continue
            entry = self._entry(scope, key, h)
            if entry.vector is not None and not entry.expired(now):
                out.append(entry)
        if gone:
            self.client.srem(index, *gone)
        return out

    def invalidate(self, tag: str) -> int:
        tag_key = f"{self.namespace}:t:{tag}"
        names = list(self.client.smembers(tag_key))
        dropped = int(self.client.delete(*names)) if names else 0
        self.client.delete(tag_key)
        return dropped

    def _names(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"{self.namespace}:*", count=1000))

    def clear(self) -> None:
        names = self._names()
        for start in range(0, len(names), 1000):
            self.client.delete(*names[start : start + 1000])

    def __len__(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=f"{self.namespace}:e:*", count=1000))

    def close(self) -> None:
        self.client.close()
