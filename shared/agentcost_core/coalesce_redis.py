"""Flights across processes through Redis, for :class:`~agentcost_core.coalesce.Coalescer`.

Per key (hashed): ``…:lock`` holds the owner's random token for at most the lease (``SET NX
PX``); the owner writes ``…:result:<token>`` (with a short TTL) before it releases the lock (a
compare-and-delete on its token, so an owner whose lease ran out never releases another's lock),
then publishes on ``…:done``. A waiter subscribes first, then reads the result of the token it
saw; it wakes on the message or every :data:`POLL` seconds, and when the lock no longer holds that
token and there is no result, the owner failed or died: it tries to become the owner itself.
Only one caller per key and process talks to Redis (the in-process owner), so a process with 64
waiting threads holds one subscription.

Who waits: per flight, ``…:waiters:<token>`` counts the processes waiting for that owner; per
namespace, the sorted set ``<namespace>:waiting`` holds one member per waiting process, scored by
when it stops counting (Redis server time + the lease), so a waiter whose process died is dropped
when its lease would have ended, and counting every waiter reads one key (never the keyspace).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .errors import ConfigurationError
from .privacy import redact_text, redact_url

__all__ = ["POLL", "RedisFlights", "decodes_responses"]

#: Seconds between a waiter's checks of the lock when no message woke it (bounds how late a
#: crashed owner is noticed after its lease ends).
POLL = 0.25

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# A process starts waiting. Each script touches one key (so each runs on any Redis, a cluster
# included) and only ever extends that key's life: a waiter with a shorter lease must not end the
# count of one that waits longer. ARGV[2] is the lease in ms.
# The namespace's waiting set: ARGV[1] this wait's member, scored by Redis server time + the lease
# (the processes' own clocks never matter).
_WAIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
"""
# The flight's count of waiting processes (ARGV[1] unused).
_COUNT_UP = """
local lease = tonumber(ARGV[2])
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
"""
# KEYS[1] the namespace's waiting set: drop the members past their lease, count the rest.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""

_RETRY = object()
_TIMEOUT = object()


def decodes_responses(client: Any) -> bool:
    """Whether a redis client turns replies into text (``?decode_responses=true`` in its URL): the
    flights and the response cache exchange bytes, so they refuse such a client."""
    value = client.get_connection_kwargs().get("decode_responses")
    return value is True or str(value).lower() in ("true", "1", "yes")


def _client(redis_arg: Any) -> Any:
    if not isinstance(redis_arg, str):
        if not callable(getattr(redis_arg, "set", None)) or not callable(getattr(redis_arg, "pubsub", None)):
            raise ConfigurationError(f"redis= takes a URL or a redis.Redis client, got {type(redis_arg).__name__}")
        if callable(getattr(redis_arg, "get_connection_kwargs", None)) and decodes_responses(redis_arg):
            raise ConfigurationError("redis= client: decode_responses is not supported (flights exchange bytes)")
        return redis_arg
    if not redis_arg.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(f"redis= must be a redis://, rediss:// or unix:// URL, got {redact_url(redis_arg)!r}")
    try:
        import redis
    except ImportError:
        raise ConfigurationError("coalescing across processes needs the redis package: "
                                 "pip install 'agentcost-control[redis]'") from None  # fmt: skip
    try:
        client = redis.Redis.from_url(redis_arg, socket_timeout=5.0, socket_connect_timeout=5.0)
    except ValueError as e:
        raise ConfigurationError(f"redis= URL is not usable: {redact_text(str(e))}") from None
    if decodes_responses(client):
        raise ConfigurationError("redis= URL: decode_responses is not supported (flights exchange bytes); drop it")
    return client


class RedisFlights:
    """The cross-process half of a coalescer (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        *,
        encode: Callable[[Any], str | bytes] | None,
        decode: Callable[[str | bytes], Any] | None,
        namespace: str,
        result_ttl: float,
        lease: float,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ConfigurationError(f"namespace must be non-empty text, got {namespace!r}")
        if isinstance(result_ttl, bool) or not isinstance(result_ttl, (int, float)) or not 0 < result_ttl < 10**6:
            raise ConfigurationError(f"result_ttl must be a positive number of seconds, got {result_ttl!r}")
        self.client = _client(redis)
        self.namespace = namespace
        self.encode = encode if encode is not None else json.dumps
        self.decode = decode if decode is not None else json.loads
        self.result_ms = max(1, int(result_ttl * 1000))
        self.lease_ms = max(1, int(lease * 1000))
        self._release = self.client.register_script(_RELEASE)
        self._wait_start = self.client.register_script(_WAIT)
        self._count_up = self.client.register_script(_COUNT_UP)
        self._count = self.client.register_script(_COUNT)
        self._waiting_key = f"{namespace}:waiting"
        self._tokens: dict[str, str] = {}  # key -> token of a lock this process holds
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisFlights({self.namespace!r})"

    def _base(self, key: str) -> str:
        return f"{self.namespace}:{hashlib.sha256(key.encode()).hexdigest()}"

    def waiting(self, key: str) -> int:
        """How many processes wait for the flight of ``key`` in progress (the lock holder's)."""
        base = self._base(key)
        owner = self.client.get(base + ":lock")
        if owner is None:
            return 0
        raw = self.client.get(base + ":waiters:" + owner.decode())
        return max(0, int(raw)) if raw is not None else 0

    def waiting_all(self) -> int:
        """How many processes wait for any flight in progress in this namespace."""
        return int(self._count(keys=[self._waiting_key]))

    def join(self, key: str, deadline: float) -> tuple[Any] | None:
        """``(value,)`` from another process's flight of ``key``; None when this process must
        call: it now holds the lock, or it waited until ``deadline`` in vain."""
        base = self._base(key)
        while time.monotonic() < deadline:
            token = uuid.uuid4().hex
            if self.client.set(base + ":lock", token, nx=True, px=self.lease_ms):
                with self._lock:
                    self._tokens[key] = token
                return None
            owner = self.client.get(base + ":lock")
            if owner is None:
                continue  # released in between: try to take it
            got = self._wait(base, owner, deadline)
            if got is _TIMEOUT:
                return None
            if got is not _RETRY:
                return (got,)
        return None

    def _wait(self, base: str, owner: bytes, deadline: float) -> Any:
        result_key = base + ":result:" + owner.decode()
        waiters_key = base + ":waiters:" + owner.decode()  # per flight: a count of who waits for this owner
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(base + ":done")  # first: a result published from now on wakes us
        member = f"{waiters_key}:{uuid.uuid4().hex}"  # this process's wait, in the namespace's set
        pipe = self.client.pipeline()
        self._count_up(keys=[waiters_key], args=["", self.lease_ms], client=pipe)
        self._wait_start(keys=[self._waiting_key], args=[member, self.lease_ms], client=pipe)
        pipe.execute()
        try:
            while True:
                raw = self.client.get(result_key)
                if raw is not None:
                    return self.decode(raw)
                if self.client.get(base + ":lock") != owner:
                    raw = self.client.get(result_key)  # written before the lock is released
                    return self.decode(raw) if raw is not None else _RETRY
                left = deadline - time.monotonic()
                if left <= 0:
                    return _TIMEOUT
                pubsub.get_message(timeout=min(POLL, left))  # any message: look again
        finally:
            try:
                self.client.pipeline().decr(waiters_key).zrem(self._waiting_key, member).execute()
            finally:
                pubsub.close()

    def end(self, key: str, value: Any, *, ok: bool) -> None:
        """The owner's call ended: publish its result (when ``ok`` and it encodes), release the
        lock, wake the waiters. A no-op when this process does not hold the lock."""
        with self._lock:
            token = self._tokens.pop(key, None)
        if token is None:
            return
        base = self._base(key)
        data = None
        encode_error: Exception | None = None
        if ok:
            try:
                data = self.encode(value)
            except Exception as e:  # noqa: BLE001 - reported below, after the waiters are released
                encode_error = e
        pipe = self.client.pipeline()
        if data is not None:
            pipe.set(base + ":result:" + token, data, px=self.result_ms)
        self._release(keys=[base + ":lock"], args=[token], client=pipe)
        pipe.publish(base + ":done", token)
        pipe.execute()
        if encode_error is not None:
            raise encode_error
