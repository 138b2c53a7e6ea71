"""Tool-result caching: a tool called again with the same arguments, within its TTL, answers from
the cache instead of running (and billing, when the tool calls a paid API) again.

Tools may have side effects (send an email, charge a card, write a row), so nothing is cached
unless the user names the tool: ``ttl={"search": 300, "get_weather": 60}``. A tool not listed
is never cached. ``math.inf`` keeps a result until it is evicted; ``0`` says "never" explicitly.

The key covers the tool's name, its arguments in canonical JSON (key order does not matter; a
value JSON cannot represent makes the call uncacheable, never a guessed key) and the scope: the
attribution keys that partition entries (``scope=("user_id",)`` by default), so one user never
gets another's result. Entries live in a bounded LRU in this process.

Every hit is recorded through the :class:`~agentcost_core.recorder.CostRecorder` as an event of
``kind="tool"`` with ``cache_hit=True``, cost $0 and ``saved`` = the tool's cost per call when
``cost={"search": "0.005"}`` gives one, else $0 (still counted as a hit). A failure inside the
cache is a miss, counted in :attr:`ToolCache.internal_errors`; it never breaks the tool call.
Adapters: ``agentcost_langchain.ToolCacheMiddleware`` / ``cached_tool`` and
``agentcost_llamaindex.CachedTool``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from .attribution import ATTRIBUTION_FIELDS, NO_ATTRIBUTION, Attribution
from .errors import ConfigurationError
from .recorder import CostRecorder

__all__ = ["ToolCache", "ToolHit", "own_copy"]

logger = logging.getLogger("agentcost")
T = TypeVar("T")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ToolHit:
    """A cached tool result: ``value`` as the tool returned it (``None`` is a valid result)."""

    value: Any


def own_copy(value: Any) -> Any:
    """A deep copy of a cached value, so that a caller changing what a hit gave it changes no later
    hit; the value itself when it cannot be copied (then it is shared, as before)."""
    if value is None or isinstance(value, (str, bytes, int, float, bool, Decimal)):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - an object that cannot be copied (a lock, a client ...)
        return value


def _ttls(ttl: Mapping[str, float] | None) -> dict[str, float]:
    if ttl is None:
        return {}
    if not isinstance(ttl, Mapping):
        raise ConfigurationError(f"ttl must map tool names to seconds, got {type(ttl).__name__}")
    out: dict[str, float] = {}
    for name, seconds in ttl.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"ttl keys must be tool names, got {name!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds) or seconds < 0:
            raise ConfigurationError(f"ttl for tool {name!r} must be seconds >= 0 (0 = never, math.inf = "
                                     f"until evicted), got {seconds!r}")  # fmt: skip
        out[name] = float(seconds)
    return out


def _costs(cost: Mapping[str, Decimal | str | int] | None) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for name, value in (cost or {}).items():
        if isinstance(value, (bool, float)):
            raise ConfigurationError(f"cost for tool {name!r} must be a Decimal or a string, not {value!r}")
        try:
            amount = Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            raise ConfigurationError(f"cost for tool {name!r} is not an amount: {value!r}") from None
        if not amount.is_finite() or amount < 0:
            raise ConfigurationError(f"cost for tool {name!r} must be >= 0, got {value!r}")
        out[name] = amount
    return out


class ToolCache:
    """``ToolCache(ttl, *, cost=None, scope=("user_id",), max_entries=10_000, recorder=None, ledger=None)``.

    ``ttl``: seconds per tool name (unlisted tools are never cached). ``cost``: USD per call of a
    tool (what a hit saves). ``recorder`` (or ``ledger``, a Ledger or URL for a recorder of its
    own): where hits are recorded. ``clock`` is for tests that move time.
    """

    def __init__(
        self,
        ttl: Mapping[str, float] | None = None,
        *,
        cost: Mapping[str, Decimal | str | int] | None = None,
        scope: tuple[str, ...] | list[str] = ("user_id",),
        max_entries: int = 10_000,
        recorder: CostRecorder | None = None,
        ledger: Any = None,
        framework: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        **attribution: str | None,
    ) -> None:
        self.ttl = _ttls(ttl)
        self.cost = _costs(cost)
        if isinstance(scope, str) or not all(isinstance(k, str) and k in ATTRIBUTION_FIELDS for k in scope):
            raise ConfigurationError(f"scope must be attribution keys from {sorted(ATTRIBUTION_FIELDS)}, got {scope!r}")
        self.scope = tuple(scope)
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries must be a positive int, got {max_entries!r}")
        self.max_entries = max_entries
        if recorder is not None and ledger is not None:
            raise TypeError("pass either recorder= or ledger=, not both")
        self.recorder = recorder if recorder is not None else CostRecorder(ledger, framework=framework, **attribution)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, Any, float]] = OrderedDict()  # key -> (tool, value, expiry)
        self.hits = 0
        self.misses = 0
        self.internal_errors = 0

    def __repr__(self) -> str:
        return f"ToolCache(tools={sorted(self.ttl)}, scope={self.scope}, entries={len(self)})"

    def __len__(self) -> int:
        return len(self._entries)

    def caches(self, tool: str) -> bool:
        """Whether results of ``tool`` are cached at all."""
        return self.ttl.get(tool, 0.0) > 0

    def key(self, tool: str, args: Any, attribution: Attribution = NO_ATTRIBUTION) -> str | None:
        """The entry key of a call, or None when its arguments have no canonical JSON form."""
        try:
            text = json.dumps([tool, args, [getattr(attribution, k) for k in self.scope]],
                              sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)  # fmt: skip
        except (TypeError, ValueError):
            return None
        return hashlib.sha256(text.encode()).hexdigest()

    # --- lookups ---------------------------------------------------------------------------
    def get(self, tool: str, args: Any, *, attribution: Attribution = NO_ATTRIBUTION) -> ToolHit | None:
        """The cached result of this call, or None. Does not record anything."""
        if not self.caches(tool):
            return None
        key = self.key(tool, args, attribution)
        if key is None:
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[2] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return ToolHit(entry[1])

    def put(self, tool: str, args: Any, value: Any, *, attribution: Attribution = NO_ATTRIBUTION) -> bool:
        """Keep ``value`` as the result of this call; False when the tool is not cached or the
        arguments have no canonical form."""
        if not self.caches(tool):
            return False
        key = self.key(tool, args, attribution)
        if key is None:
            return False
        expires = self._clock() + self.ttl[tool]
        with self._lock:
            self._entries[key] = (tool, value, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return True

    def invalidate(self, tool: str | None = None) -> int:
        """Drop the entries of ``tool`` (every entry for ``tool=None``): how many were dropped."""
        with self._lock:
            if tool is None:
                n = len(self._entries)
                self._entries.clear()
                return n
            stale = [k for k, entry in self._entries.items() if entry[0] == tool]
            for k in stale:
                del self._entries[k]
            return len(stale)

    # --- the call --------------------------------------------------------------------------
    def lookup(self, tool: str, args: Any, *, attribution: Attribution = NO_ATTRIBUTION,
               step: str | None = None) -> ToolHit | None:  # fmt: skip
        """:meth:`get`, and a hit recorded as an event; a miss counted. Never raises."""
        if not self.caches(tool):
            return None
        try:
            hit = self.get(tool, args, attribution=attribution)
        except Exception as e:  # noqa: BLE001 - our fault: a miss
            self._internal_error("lookup", e)
            return None
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        self.record_hit(tool, attribution=attribution, step=step)
        return hit

    def store(self, tool: str, args: Any, value: Any, *, attribution: Attribution = NO_ATTRIBUTION) -> None:
        """:meth:`put` that never raises."""
        if not self.caches(tool):
            return
        try:
            self.put(tool, args, value, attribution=attribution)
        except Exception as e:  # noqa: BLE001 - our fault: the result is simply not kept
            self._internal_error("store", e)

    def record_hit(self, tool: str, *, attribution: Attribution = NO_ATTRIBUTION, step: str | None = None) -> None:
        try:
            self.recorder.record(None, None, kind="tool", cache_hit=True, saved=self.cost.get(tool, _ZERO),
                                 step=step or tool, extra={"cache": "tool", "tool": tool},
                                 **attribution.as_dict())  # fmt: skip
        except Exception as e:  # noqa: BLE001
            self._internal_error("recording a hit", e)

    def call(self, tool: str, args: Any, run: Callable[[], T], *, attribution: Attribution = NO_ATTRIBUTION,
             keep: Callable[[Any], bool] | None = None) -> T:  # fmt: skip
        """The cached result of this call, or ``run()``'s (kept when ``keep(result)`` allows it).
        An exception from ``run`` is the caller's and nothing is kept."""
        hit = self.lookup(tool, args, attribution=attribution)
        if hit is not None:
            return hit.value  # type: ignore[no-any-return]
        value = run()
        if keep is None or keep(value):
            self.store(tool, args, value, attribution=attribution)
        return value

    async def acall(self, tool: str, args: Any, run: Callable[[], Awaitable[T]], *,
                    attribution: Attribution = NO_ATTRIBUTION, keep: Callable[[Any], bool] | None = None) -> T:  # fmt: skip
        """:meth:`call` for a coroutine."""
        hit = self.lookup(tool, args, attribution=attribution)
        if hit is not None:
            return hit.value  # type: ignore[no-any-return]
        value = await run()
        if keep is None or keep(value):
            self.store(tool, args, value, attribution=attribution)
        return value

    def _internal_error(self, where: str, exc: BaseException) -> None:
        self.internal_errors += 1
        logger.error("agentcost internal error in the tool cache (%s): %r", where, exc, exc_info=exc)
