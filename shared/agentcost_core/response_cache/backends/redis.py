"""Redis backend (``redis://host:port/db``): one cache shared by processes and hosts.

Each entry is a hash ``{namespace}:e:{scope digest}:{key}`` (the 32-hex scope digest and the entry's
exact key, a sha256 hex digest) that expires with its TTL; each tag a set ``{namespace}:t:{tag}``
listing the names of its entries. Entries that carry a vector are listed per partition (scope and
context fingerprint) in a sorted set ``{namespace}:p:{scope digest}:{context digest}`` scored by a
counter ``{namespace}:seq`` taken in the same atomic step (the set expires with its latest entry, and
never while it lists an entry without expiry), so a process keeps the partition's vectors in
memory (:class:`~..vector_index.VectorIndex`) and reads only the entries added since; the semantic
layer searches that partition only, never the whole keyspace. Invalidations and clears move the
counter ``{namespace}:drops``: the indexes built before are rebuilt.

Other namespaces may share the Redis, and some may extend this one's name (``ns:staging`` beside
``ns``, or ``ns:e``, ``ns:t``). So ``len`` and ``clear`` match entry and partition names by their full
shape (fixed-length hex digests after the namespace), never by prefix alone; and as a tag's name may
be any text (``ns:t:t:docs`` is the tag ``t:docs`` of ``ns`` and the tag ``docs`` of ``ns:t``), a tag
set is only ever trusted for the members that are this namespace's entry names: ``invalidate`` and
``clear`` drop and unlist those, and leave any other member, and the set, to its own namespace.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ...coalesce_redis import decodes_responses
from ...errors import ConfigurationError
from ...privacy import redact_text, redact_url
from ..entries import CacheEntry
from ..vector_index import PartitionCache, VectorIndex
from .base import CacheBackend, pack_usage, pack_vector, unpack_usage, unpack_vector

__all__ = ["RedisBackend"]

_FIELDS = ("payload", "model", "usage", "created", "expires", "text", "context", "vector")
# Lists an entry in a set: KEYS: the set, the seq counter; ARGV: "z" (the partition's sorted set, scored by
# the counter) or "s" (a tag's set), the member, its expiry (Unix ms; "" = none). Atomic, so scores follow
# commits. The set expires with its latest entry (never earlier: the later of its expiry and the new one)
# and never while it lists an entry without expiry, so no list outlives its entries.
_LIST = """
local new = redis.call('EXISTS', KEYS[1]) == 0
if ARGV[1] == 'z' then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[2])
else
  redis.call('SADD', KEYS[1], ARGV[2])
end
local at = tonumber(ARGV[3])
if at == nil then
  redis.call('PERSIST', KEYS[1])
  return 1
end
local left = redis.call('PTTL', KEYS[1])
if new then
  redis.call('PEXPIREAT', KEYS[1], at)
elseif left >= 0 then
  local t = redis.call('TIME')
  if at > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + left then
    redis.call('PEXPIREAT', KEYS[1], at)
  end
end
return 1
"""
# KEYS: the partition's sorted set, then entry hashes; ARGV: their keys. Unlists the entries that are gone.
_PRUNE = """
local n = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n
"""
#: How often (seconds) a partition's index drops its expired rows and unlists them from Redis.
_PRUNE_EVERY = 60.0
_HEX = "[0-9a-f]"  # one hex digit in a SCAN pattern


def _scope_digest(scope: str) -> str:
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()[:32]


def _literal(text: str) -> str:
    """``text`` as a SCAN pattern matching exactly itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


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
        ns = _literal(namespace)
        self._entry_names = f"{ns}:e:{_HEX * 32}:{_HEX * 64}"  # SCAN patterns of this namespace's keys only
        self._partition_names = f"{ns}:p:{_HEX * 32}:{_HEX * 32}"
        self._own_entry = re.compile(re.escape(namespace.encode()) + rb":e:[0-9a-f]{32}:[0-9a-f]{64}").fullmatch
        self._partitions = PartitionCache()
        try:
            self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                               retry=Retry(NoBackoff(), 0))  # fmt: skip
        except (ValueError, TypeError) as e:
            raise ConfigurationError(f"bad Redis response cache URL {self.url!r}: {redact_text(str(e))}") from None
        if decodes_responses(self.client):
            raise ConfigurationError(f"Redis response cache URL {self.url!r}: decode_responses is not supported "
                                     "(entries and vectors are stored as bytes); drop it from the URL")  # fmt: skip

    def _partition_key(self, scope: str, context: str) -> str:
        return f"{self.namespace}:p:{_scope_digest(scope)}:{_scope_digest(context)}"

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
        expires_ms = None if entry.expires is None else int(entry.expires * 1000) + 1
        if expires_ms is not None:
            pipe.pexpireat(name, expires_ms)
        until = "" if expires_ms is None else str(expires_ms)
        seq = f"{self.namespace}:seq"
        if entry.vector is not None and entry.context is not None:
            pipe.eval(_LIST, 2, self._partition_key(entry.scope, entry.context), seq, "z", entry.key, until)
        for tag in entry.tags:
            pipe.eval(_LIST, 2, f"{self.namespace}:t:{tag}", seq, "s", name, until)
        pipe.execute()

    def partition(self, scope: str, context: str, now: float) -> VectorIndex:
        drops = self.client.get(f"{self.namespace}:drops")
        index = self._partitions.get(scope, context, drops, lambda index: self._fill(index, scope, context))
        if now - index.pruned >= _PRUNE_EVERY:
            index.pruned = now
            gone = index.expired(now)
            if gone:
                self._unlist(scope, context, gone)
        return index

    def _fill(self, index: VectorIndex, scope: str, context: str) -> None:
        """Index the partition's entries listed since ``index.cursor`` (by any process)."""
        listed = self.client.zrangebyscore(self._partition_key(scope, context), f"({index.cursor}", "+inf",
                                           withscores=True)  # fmt: skip
        gone = []
        for start in range(0, len(listed), 1000):  # a partition met for the first time: read in chunks
            chunk = listed[start : start + 1000]
            pipe = self.client.pipeline(transaction=False)
            for member, _ in chunk:
                pipe.hmget(self._entry_key(scope, _text(member) or ""), "text", "expires", "vector")
            for (member, seq), (text, expires, vector) in zip(chunk, pipe.execute()):
                key, unit = _text(member) or "", unpack_vector(vector)
                if unit is None:
                    gone.append(key)  # expired or invalidated since it was listed
                else:
                    index.add(key, unit, _text(text) or "", float(_text(expires) or "inf"))
                index.cursor = max(index.cursor, int(seq))
        if gone:
            self._unlist(scope, context, gone)

    def forget(self, index: VectorIndex, scope: str, context: str, key: str) -> None:
        index.discard(key)
        self._unlist(scope, context, [key])

    def _unlist(self, scope: str, context: str, keys: list[str]) -> None:
        """Take the entries of ``keys`` that no longer exist off the partition's sorted set."""
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            names = [self._entry_key(scope, key) for key in chunk]
            self.client.eval(_PRUNE, 1 + len(chunk), self._partition_key(scope, context), *names, *chunk)

    def _own(self, tag_key: str | bytes) -> list[bytes]:
        """The members of a tag set that are this namespace's entry names (the set's name may be another
        namespace's tag too)."""
        return [name for name in self.client.smembers(tag_key) if self._own_entry(name)]

    def invalidate(self, tag: str) -> int:
        tag_key = f"{self.namespace}:t:{tag}"
        names = self._own(tag_key)
        pipe = self.client.pipeline(transaction=True)
        if names:
            pipe.delete(*names)
            pipe.srem(tag_key, *names)  # a set left empty is gone
        pipe.incr(f"{self.namespace}:drops")
        return int(pipe.execute()[0]) if names else 0

    def _scan(self, pattern: str) -> list[bytes]:
        return list(self.client.scan_iter(match=pattern, count=1000))

    def clear(self) -> None:
        """Drop this namespace's entries, partition lists and tag lists (the counters keep counting up)."""
        names = self._scan(self._entry_names) + self._scan(self._partition_names)
        for start in range(0, len(names), 1000):
            self.client.delete(*names[start : start + 1000])
        for tag_key in self._scan(f"{_literal(self.namespace)}:t:*"):
            if self.client.type(tag_key) != b"set":
                continue  # another namespace's key (the entries of ``ns:t``, its counters …)
            own = self._own(tag_key)
            if own:
                self.client.srem(tag_key, *own)  # a set left empty is gone
        self.client.incr(f"{self.namespace}:drops")

    def count(self, now: float) -> int:
        names = self._scan(self._entry_names)
        live = 0
        for start in range(0, len(names), 1000):
            pipe = self.client.pipeline(transaction=False)
            for name in names[start : start + 1000]:
                pipe.hget(name, "expires")
            for expires in pipe.execute():  # None: gone since the scan; b"": never expires
                if expires is not None and (not expires or now < float(expires)):
                    live += 1
        return live

    def close(self) -> None:
        self.client.close()
