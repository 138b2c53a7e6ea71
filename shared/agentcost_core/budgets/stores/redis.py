"""``redis://host:port/db``: budget counters shared by every process and host that reaches one Redis.

One hash per counter key (``<prefix><key>``, fields ``spent0..3``, ``held0..3``, ``started``).
Reserve and settle are Lua scripts that take all the keys of a call at once, so the check of every
hard claim and the hold on every key happen as one atomic step on the server (EVALSHA; redis-py
reloads a script the server has forgotten).

Amounts stay integers: the hashes are updated with ``HINCRBY`` (exact 64-bit integers) and the
amounts travel as strings. Only the comparison ``spent + held + amount <= limit`` runs on Lua
numbers, which are doubles: exact up to 2**53 units, i.e. ~$900,000 per key at 1e-10 USD a unit,
which is why the store unit is 1e-10 USD and not finer.

Keys expire at the end of their period: a claim's ``ttl`` sets the hash's ``EXPIRE`` when it has
none or a shorter one (a TTL is only set or extended, never shortened). Leased holds are fields of the same hash (``l:<lease id>``), swept by every script that touches the
key. On Redis Cluster every key
of one call must live in one slot: give a prefix with a hash tag, e.g. ``"{agentcost}:budget:"``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ...errors import ConfigurationError
from ...privacy import redact_text, redact_url
from .base import (
    ZERO,
    BudgetStoreUnavailable,
    Claim,
    Counters,
    CounterStore,
    Lease,
    ReserveResult,
    Vector,
    check_timeout,
)
from .cancels import CANCEL_HORIZON, PendingCancels

__all__ = ["RedisStore"]

_FIELDS = ("spent0", "spent1", "spent2", "spent3", "held0", "held1", "held2", "held3", "started")

# Shared by every script. A leased hold is the hash field ``l:<lease id>`` = "a0 a1 a2 a3 expires";
# a cancelled lease leaves the tombstone ``t:<lease id>`` = "expires" (a reserve arriving after its
# cancel is not applied); field ``next`` is no later than the earliest expiry of either, so a sweep
# reads the hash only when one may have run out.
_PRELUDE = """
local fields = {'spent0','spent1','spent2','spent3','held0','held1','held2','held3','started'}
local function parse(v)
  local p = {}
  for x in string.gmatch(v, '%S+') do p[#p + 1] = x end
  return p
end
local function take(key, a)
  for d = 1, 4 do
    local amount = a[d]
    if amount ~= '0' then
      local held = tonumber(redis.call('HGET', key, fields[d + 4]) or '0')
      if held <= tonumber(amount) then
        redis.call('HSET', key, fields[d + 4], '0')
      else
        redis.call('HINCRBY', key, fields[d + 4], '-' .. amount)
      end
    end
  end
end
local function sweep(key, now)
  local nxt = redis.call('HGET', key, 'next')
  if not nxt or tonumber(nxt) > now then return end
  local all = redis.call('HGETALL', key)
  local soonest = nil
  for j = 1, #all, 2 do
    local kind = string.sub(all[j], 1, 2)
    if kind == 'l:' or kind == 't:' then
      local p = parse(all[j + 1])
      local expires = p[#p]
      if tonumber(expires) <= now then
        if kind == 'l:' then take(key, p) end
        redis.call('HDEL', key, all[j])
      elseif soonest == nil or tonumber(expires) < tonumber(soonest) then
        soonest = expires
      end
    end
  end
  if soonest then redis.call('HSET', key, 'next', soonest) else redis.call('HDEL', key, 'next') end
end
local function snapshot()
  local out = {}
  for i = 1, #KEYS do
    local v = redis.call('HMGET', KEYS[i], unpack(fields))
    for f = 1, 9 do out[#out + 1] = v[f] or '' end
  end
  return out
end
"""

# KEYS: the claims' hashes. ARGV[1]: now (kept as the string it is); ARGV[2]: lease id ("" when
# none); ARGV[3]: lease expiry. Then 10 per claim: hard ("1"/"0"), 4 limits ("" when unlimited),
# 4 amounts, ttl ("" when none).
# Returns {admitted, refused claim (0-based) or -1, dimension or -1, {9 fields per claim...}}.
_RESERVE = _PRELUDE + """
local n = #KEYS
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  for i = 1, n do
    if redis.call('HEXISTS', KEYS[i], 't:' .. ARGV[2]) == 1 then return {-1, -1, -1, {}} end
  end
end
for i = 1, n do sweep(KEYS[i], now) end
for i = 1, n do
  local a = 3 + (i - 1) * 10
  if ARGV[a + 1] == '1' then
    local v = redis.call('HMGET', KEYS[i], unpack(fields))
    for d = 0, 3 do
      local limit = ARGV[a + 2 + d]
      local amount = tonumber(ARGV[a + 6 + d])
      if limit ~= '' and amount ~= 0 then
        if tonumber(v[d + 1] or '0') + tonumber(v[d + 5] or '0') + amount > tonumber(limit) then
          return {0, i - 1, d, snapshot()}
        end
      end
    end
  end
end
local lease = ARGV[2]
for i = 1, n do
  local a = 3 + (i - 1) * 10
  for d = 0, 3 do
    local amount = ARGV[a + 6 + d]
    if amount ~= '0' then redis.call('HINCRBY', KEYS[i], fields[d + 5], amount) end
  end
  redis.call('HSETNX', KEYS[i], 'started', ARGV[1])
  if lease ~= '' then
    local amounts = {ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9]}
    local prev = redis.call('HGET', KEYS[i], 'l:' .. lease)
    if prev then
      local p = parse(prev)
      for d = 1, 4 do amounts[d] = string.format('%.0f', tonumber(p[d]) + tonumber(amounts[d])) end
    end
    redis.call('HSET', KEYS[i], 'l:' .. lease, table.concat(amounts, ' ') .. ' ' .. ARGV[3])
    local nxt = redis.call('HGET', KEYS[i], 'next')
    if not nxt or tonumber(ARGV[3]) < tonumber(nxt) then redis.call('HSET', KEYS[i], 'next', ARGV[3]) end
  end
  local ttl = ARGV[a + 10]
  if ttl ~= '' and redis.call('TTL', KEYS[i]) < tonumber(ttl) then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return {1, -1, -1, snapshot()}
"""

# KEYS: the claims' hashes. ARGV[1..4]: the actual amounts; ARGV[5]: lease id ("" when none). Then
# 5 per claim: 4 held amounts, ttl. spent += actual; held -= the lease's hold when it is still
# there (nothing when it was swept), else -= the amounts; never below 0. Returns {9 fields per claim}.
_SETTLE = _PRELUDE + """
local n = #KEYS
local lease = ARGV[5]
for i = 1, n do
  local a = 5 + (i - 1) * 5
  for d = 0, 3 do
    if ARGV[1 + d] ~= '0' then redis.call('HINCRBY', KEYS[i], fields[d + 1], ARGV[1 + d]) end
  end
  if lease == '' then
    take(KEYS[i], {ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]})
  else
    local v = redis.call('HGET', KEYS[i], 'l:' .. lease)
    if v then
      take(KEYS[i], parse(v))
      redis.call('HDEL', KEYS[i], 'l:' .. lease)
    end
  end
  local ttl = ARGV[a + 5]
  if ttl ~= '' and redis.call('EXISTS', KEYS[i]) == 1 and redis.call('TTL', KEYS[i]) < tonumber(ttl) then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return snapshot()
"""

# KEYS: the claims' hashes. ARGV[1]: lease id; ARGV[2]: its expiry; ARGV[3]: now. Per key: the
# lease's hold is released when it is there, else a tombstone is left until the lease's expiry (a
# key created for it expires then too). Returns how many holds it released.
_CANCEL = _PRELUDE + """
local released = 0
local lease = ARGV[1]
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], 'l:' .. lease)
  if v then
    take(KEYS[i], parse(v))
    redis.call('HDEL', KEYS[i], 'l:' .. lease)
    released = released + 1
  elseif tonumber(ARGV[2]) > tonumber(ARGV[3]) then
    local existed = redis.call('EXISTS', KEYS[i])
    redis.call('HSET', KEYS[i], 't:' .. lease, ARGV[2])
    local nxt = redis.call('HGET', KEYS[i], 'next')
    if not nxt or tonumber(ARGV[2]) < tonumber(nxt) then redis.call('HSET', KEYS[i], 'next', ARGV[2]) end
    if existed == 0 then
      redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2]) - tonumber(ARGV[3])) + 1)
    end
  end
end
return released
"""

# KEYS: the claims' hashes. ARGV[1]: lease id; ARGV[2]: new expiry. Returns how many holds it found.
_RENEW = _PRELUDE + """
local found = 0
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], 'l:' .. ARGV[1])
  if v then
    local p = parse(v)
    redis.call('HSET', KEYS[i], 'l:' .. ARGV[1], p[1] .. ' ' .. p[2] .. ' ' .. p[3] .. ' ' .. p[4] .. ' ' .. ARGV[2])
    found = found + 1
  end
end
return found
"""

# KEYS[1]: one hash; ARGV[1]: now. Sweeps its expired leases, returns its 9 fields.
_READ = _PRELUDE + """
sweep(KEYS[1], tonumber(ARGV[1]))
return snapshot()
"""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _counters(flat: Sequence[Any], i: int) -> Counters:
    v = [_text(x) for x in flat[9 * i : 9 * i + 9]]
    ints = [int(x) if x else 0 for x in v[:8]]
    return Counters(tuple(ints[:4]), tuple(ints[4:8]), float(v[8]) if v[8] else None)  # type: ignore[arg-type]


def _amount(n: int) -> str:
    if n < 0:
        raise ValueError(f"budget amounts are never negative, got {n}")
    return str(int(n))


class RedisStore(CounterStore):
    """Counters in Redis hashes named ``<prefix><key>``.

    Give a URL (``redis://``, ``rediss://``, ``unix://``) or a ready ``redis.Redis`` ``client``.
    Nothing connects at construction: the first reserve / settle / read does, and from then on any
    connection error, timeout or error answer raises :class:`BudgetStoreUnavailable`, which the
    enforcer turns into a refusal (``fail_closed``) or an unbudgeted call (``fail_open``). Call
    :meth:`ping` to check the server up front.

    ``timeout`` (seconds, default 1.0) is every call's deadline: the connection attempt and each
    command, with no retry, so a stalled or unreachable server costs a call at most that long. A
    leased reserve (or settle / release) that ran out of time may still be applied when the server
    answers again: the store then cancels it by its lease id (see :mod:`.cancels`), so no late
    apply stays held. A ``client`` passed in keeps its own timeouts.

    The async forms run the sync client in a worker thread (the base class' behaviour): one
    thread-safe connection pool serves every thread and event loop.
    """

    shared = True
    leases = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "agentcost:budget:",
        failure_mode: str = "fail_closed",
        timeout: float = 1.0,
    ) -> None:
        self.failure_mode = self._check_failure_mode(failure_mode)
        if (url is None) == (client is None):
            raise ConfigurationError("RedisStore takes a URL or a client= (one of the two)")
        if not isinstance(prefix, str):
            raise ConfigurationError(f"RedisStore prefix must be a string, got {prefix!r}")
        self.timeout = check_timeout("RedisStore", timeout)
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigurationError(
                "a Redis budget store needs the redis package: pip install 'agentcost-control[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self.prefix = prefix
        self._owns_client = client is None
        if client is None:
            assert url is not None
            self.url = redact_url(url)  # for reprs and errors: the client has the real one
            try:
                client = redis.Redis.from_url(
                    url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0)
                )
            except (ValueError, TypeError) as e:
                raise ConfigurationError(f"bad Redis budget store URL {self.url!r}: {redact_text(str(e))}") from None
        else:
            self.url = redact_text(repr(client))
        self.client = client
        self._reserve_script = client.register_script(_RESERVE)
        self._settle_script = client.register_script(_SETTLE)
        self._renew_script = client.register_script(_RENEW)
        self._read_script = client.register_script(_READ)
        self._cancel_script = client.register_script(_CANCEL)
        self._cancels = PendingCancels(self._cancel)

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r}, failure_mode={self.failure_mode!r})"

    def _unavailable(self, e: BaseException) -> BudgetStoreUnavailable:
        return BudgetStoreUnavailable(f"Redis budget store {self.url} unavailable: {type(e).__name__}: {redact_text(str(e))}")

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as e:
            raise self._unavailable(e) from e

    def _cancel(self, claims: Sequence[Claim], lease_id: str, expires: float) -> None:
        keys = [self.prefix + c.key for c in claims]
        self._call(self._cancel_script, keys=keys, args=[lease_id, repr(float(expires)), repr(time.time())])

    def pending_cancels(self) -> int:
        return len(self._cancels)

    def ping(self) -> None:
        """Check the server answers; raises :class:`BudgetStoreUnavailable` if not."""
        self._call(self.client.ping)

    def reserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        args: list[str] = [repr(float(now))]
        args += ["", ""] if lease is None else [lease.id, repr(float(lease.expires))]
        for c in claims:
            args.append("1" if c.hard else "0")
            args.extend("" if lim is None else str(int(lim)) for lim in c.limits)
            args.extend(_amount(a) for a in c.amounts)
            args.append("" if c.ttl is None else str(max(int(c.ttl), 1)))
        try:
            admitted, refused, dim, flat = self._call(
                self._reserve_script, keys=[self.prefix + c.key for c in claims], args=args
            )
        except BudgetStoreUnavailable:
            if lease is not None:  # it may still be applied when the server answers: cancel it then
                self._cancels.add(claims, lease.id, lease.expires)
            raise
        if int(admitted) < 0:  # pragma: no cover - a lease id is never reused after its cancel
            raise BudgetStoreUnavailable(f"Redis budget store {self.url}: this reservation was cancelled")
        counters = tuple(_counters(flat, i) for i in range(len(claims)))
        if int(admitted):
            return ReserveResult(True, counters)
        return ReserveResult(False, counters, int(refused), int(dim))

    def settle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        args = [str(int(a)) for a in actual]  # negative to give back a count (see CounterStore.settle)
        args.append(lease_id or "")
        for c in claims:
            args.extend(_amount(a) for a in c.amounts)
            args.append("" if c.ttl is None else str(max(int(c.ttl), 1)))
        try:
            flat = self._call(self._settle_script, keys=[self.prefix + c.key for c in claims], args=args)
        except BudgetStoreUnavailable:
            if lease_id is not None:  # its hold is released when the server answers again
                self._cancels.add(claims, lease_id, time.time() + CANCEL_HORIZON)
            raise
        return tuple(_counters(flat, i) for i in range(len(claims)))

    def release(self, claims: Sequence[Claim], lease_id: str | None = None) -> tuple[Counters, ...]:
        return self.settle(claims, ZERO, lease_id)

    def renew(self, claims: Sequence[Claim], lease_id: str, expires: float) -> bool:
        keys = [self.prefix + c.key for c in claims]
        return int(self._call(self._renew_script, keys=keys, args=[lease_id, repr(float(expires))])) > 0

    def read(self, key: str, now: float | None = None) -> Counters:
        now = time.time() if now is None else now
        return _counters(self._call(self._read_script, keys=[self.prefix + key], args=[repr(float(now))]), 0)

    def reset(self, key: str | None = None) -> None:
        if key is not None:
            self._call(self.client.delete, self.prefix + key)
            return
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self.prefix) + "*"

        def delete_all() -> None:
            batch: list[Any] = []
            for name in self.client.scan_iter(match=pattern, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    self.client.delete(*batch)
                    batch.clear()
            if batch:
                self.client.delete(*batch)

        self._call(delete_all)

    def ttl(self, key: str) -> int:
        """Seconds until ``key`` expires (-1: never, -2: no such key)."""
        return int(self._call(self.client.ttl, self.prefix + key))

    def close(self) -> None:
        """Close the connections of a client this store created (a client passed in is the caller's)."""
        if self._owns_client:
            self._call(self.client.close)
