"""What a budget is: limits, the scope they apply to, and what happens at the thresholds.

``Budget(usd=None, tokens=None, model_calls=None, tool_calls=None, seconds=None, *, per="session",
warn_at=0.7, escalate_at=1.2, on_exceed="block", store=None)``. Scopes (periods are UTC calendar periods):

==============  ===========================================================================
``request``     one model call: caps what any single call may cost (its worst case)
``run``         one top-level invocation (the trace: a LangChain root run, a LlamaIndex
                workflow run, one ``guard()``-ed ``invoke``)
``session``     ``session_id`` (LangGraph ``thread_id`` / ``conversation_id``); without one,
                the run
``user_day``    ``user_id`` per UTC day
``feature_month`` ``feature`` per UTC month
``agent``       ``agent_id``, no period
``global_day``  everything, per UTC day
==============  ===========================================================================

Actions at 100%: ``block`` (refuse the call: :class:`BudgetExceeded`), ``wrap_up`` (refuse the
call; the agent adapters end the run gracefully with what it has), ``downgrade`` (from ``warn_at``
the router moves calls to a cheaper tier; at the limit the call is refused), ``notify`` (soft:
alert only). ``block``, ``wrap_up`` and ``downgrade`` are hard limits: a reservation that does not
fit is refused, never shrunk. Alerts escalate: ``warning`` at ``warn_at``, ``exceeded`` at the
limit, and for a ``notify`` budget (which lets spend run past its limit) ``escalated`` at
``escalate_at`` — each once per scope and period.

``budget.status(user_id=..., session_id=..., feature=..., agent_id=..., trace_id=... / run_id=...)``
reads where one scope stands, from whichever store the budget uses: a :class:`BudgetStatus` with
``spent`` and ``held`` in Decimal USD (``held``: what calls in flight have reserved; expired leases
are swept first), the limit and what remains, and the counts.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .off_loop import off_loop
from .stores.base import read_counters, units_to_usd

if TYPE_CHECKING:
    from .stores.base import CounterStore

__all__ = ["ACTIONS", "SCOPES", "Budget", "BudgetStatus", "ScopeContext"]

SCOPES = ("request", "run", "session", "user_day", "feature_month", "agent", "global_day")
ACTIONS = ("notify", "downgrade", "wrap_up", "block")
HARD_ACTIONS = frozenset({"downgrade", "wrap_up", "block"})

_DAY = 86_400
_GRACE = 3_600  # keys outlive their period by an hour, so a late settle still finds them


@dataclass(frozen=True, slots=True)
class ScopeContext:
    """Who and what a call belongs to: the attribution a budget scope is keyed by."""

    trace_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    feature: str | None = None
    agent_id: str | None = None


#: The keywords of :meth:`Budget.status`: the attribution a scope is keyed by.
STATUS_KEYWORDS = ("user_id", "session_id", "feature", "agent_id", "trace_id", "run_id")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where one budget scope stands (see :meth:`Budget.status`). Money is Decimal USD."""

    budget: str  # the budget's name
    key: str  # the counter key of the scope
    spent: Decimal  # settled
    held: Decimal  # reserved by calls in flight
    limit: Decimal | None  # the usd limit, if any
    remaining: Decimal | None  # limit - spent - held (never below 0), if there is a usd limit
    tokens: int
    model_calls: int
    tool_calls: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scope_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and name == "seconds":
            return int(value)
        raise ConfigurationError(f"Budget {name}= must be a whole number >= 0, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"Budget {name}= must be >= 0, got {value}")
    return value


def _usd(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise ConfigurationError(
            f"Budget usd= takes a Decimal, str or int (money is never a float), got {value!r}: "
            f"write usd={str(value)!r}" if isinstance(value, float) else f"Budget usd= got {value!r}"
        )
    try:
        d = Decimal(value) if isinstance(value, (Decimal, int, str)) else None
    except (InvalidOperation, ValueError):
        d = None
    if d is None or not d.is_finite():
        raise ConfigurationError(f"Budget usd= must be a number (Decimal, str or int), got {value!r}")
    if d < 0:
        raise ConfigurationError(f"Budget usd= must be >= 0, got {value}")
    return d


class Budget:
    """Limits on one scope, enforced by reserve → settle / release (see the module docstring)."""

    __slots__ = ("usd", "tokens", "model_calls", "tool_calls", "seconds", "per", "warn_at", "escalate_at", "on_exceed",
                 "store", "name")  # fmt: skip

    def __init__(
        self,
        usd: Decimal | str | int | None = None,
        tokens: int | None = None,
        model_calls: int | None = None,
        tool_calls: int | None = None,
        seconds: int | float | None = None,
        *,
        per: str = "session",
        warn_at: float | None = 0.7,
        escalate_at: float | None = 1.2,
        on_exceed: str = "block",
        store: CounterStore | str | None = None,
        name: str | None = None,
    ) -> None:
        self.usd = _usd(usd)
        self.tokens = _count("tokens", tokens)
        self.model_calls = _count("model_calls", model_calls)
        self.tool_calls = _count("tool_calls", tool_calls)
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf
        ):  # NaN fails every comparison: it could never trigger
            raise ConfigurationError(f"Budget seconds= must be a finite number >= 0 (None: no limit), got {seconds!r}")
        self.seconds = None if seconds is None else float(seconds)
        if all(v is None for v in (self.usd, self.tokens, self.model_calls, self.tool_calls, self.seconds)):
            raise ConfigurationError("Budget needs at least one limit: usd, tokens, model_calls, tool_calls or seconds")
        if per not in SCOPES:
            raise ConfigurationError(f"unknown budget scope per={per!r}; choose from {', '.join(SCOPES)}")
        self.per = per
        if warn_at is not None and (
            isinstance(warn_at, bool) or not isinstance(warn_at, (int, float)) or not 0 < warn_at < 1
        ):
            raise ConfigurationError(f"Budget warn_at= must be a fraction between 0 and 1 (or None), got {warn_at!r}")
        self.warn_at = None if warn_at is None else float(warn_at)
        if escalate_at is not None and (
            isinstance(escalate_at, bool) or not isinstance(escalate_at, (int, float)) or not 1 < escalate_at < math.inf
        ):
            raise ConfigurationError(f"Budget escalate_at= must be a fraction above 1 (or None), got {escalate_at!r}")
        #: A soft budget (``notify``, ``downgrade``) announces ``escalated`` once past this fraction.
        self.escalate_at = None if escalate_at is None else float(escalate_at)
        if on_exceed not in ACTIONS:
            raise ConfigurationError(f"unknown budget action on_exceed={on_exceed!r}; choose from {', '.join(ACTIONS)}")
        self.on_exceed = on_exceed
        if self.per == "request" and (self.model_calls is not None or self.seconds is not None):
            raise ConfigurationError("a per='request' budget covers one call: limit usd, tokens or tool_calls there")
        from .stores import open_store  # late: stores import this module

        self.store = open_store(store)
        self.name = name or self._default_name()

    @property
    def hard(self) -> bool:
        """True when a call that does not fit is refused (``block`` and ``wrap_up``)."""
        return self.on_exceed in HARD_ACTIONS

    def limits(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("usd", "tokens", "model_calls", "tool_calls", "seconds")
            if getattr(self, k) is not None
        }

    def _default_name(self) -> str:
        # Stable across processes: the same configuration shares the same counters.
        spec = ",".join(f"{k}={v}" for k, v in self.limits().items())
        digest = hashlib.sha1(f"{self.per}|{spec}|{self.on_exceed}".encode()).hexdigest()[:8]
        return f"{self.per}-{digest}"

    def __repr__(self) -> str:
        limits = ", ".join(f"{k}={str(v)!r}" if k == "usd" else f"{k}={v}" for k, v in self.limits().items())
        return f"Budget({limits}, per={self.per!r}, on_exceed={self.on_exceed!r}, name={self.name!r})"

    # --- reading a scope -------------------------------------------------------------------
    def status(self, *, now: float | None = None, **scope: str | None) -> BudgetStatus:
        """Where the scope named by ``scope`` stands, read from this budget's store.

        ``scope``: the attribution keywords (``user_id=``, ``session_id=``, ``feature=``,
        ``agent_id=``, and ``trace_id=`` or its alias ``run_id=`` for ``per="run"``); the ones
        this budget's scope does not use are ignored, a missing one reads the calls that had none.
        ``now``: the time to read at (default: the wall clock; it picks the day / month period).
        Raises :class:`ConfigurationError` for an unknown keyword or a ``per="request"`` budget (it
        keeps no counters), :class:`BudgetStoreUnavailable` when a shared store cannot be reached.
        """
        key, now = self._status_key(now, scope)
        return self._status_of(key, read_counters(self.store, key, now))

    async def astatus(self, *, now: float | None = None, **scope: str | None) -> BudgetStatus:
        """:meth:`status` for async code: a store that does I/O is read in a worker thread."""
        if not self.store.shared:
            return self.status(now=now, **scope)
        key, now = self._status_key(now, scope)
        return self._status_of(key, await off_loop(read_counters, self.store, key, now))

    def _status_key(self, now: float | None, scope: dict[str, Any]) -> tuple[str, float]:
        unknown = sorted(set(scope) - set(STATUS_KEYWORDS))
        if unknown:
            raise ConfigurationError(
                f"Budget.status() got unknown scope keyword(s) {', '.join(unknown)}; "
                f"use {', '.join(k + '=' for k in STATUS_KEYWORDS)}"
            )
        if self.per == "request":
            raise ConfigurationError("a per='request' budget caps each call alone: it keeps no counters to read")
        if scope.get("trace_id") is not None and scope.get("run_id") is not None and scope["trace_id"] != scope["run_id"]:
            raise ConfigurationError("Budget.status() takes trace_id= or run_id= (the same thing), not two values")
        ctx = ScopeContext(
            trace_id=_scope_text(scope["trace_id"] if scope.get("trace_id") is not None else scope.get("run_id")),
            session_id=_scope_text(scope.get("session_id")),
            user_id=_scope_text(scope.get("user_id")),
            feature=_scope_text(scope.get("feature")),
            agent_id=_scope_text(scope.get("agent_id")),
        )
        now = time.time() if now is None else now
        return self.scope_key(ctx, now)[0], now

    def _status_of(self, key: str, c: Any) -> BudgetStatus:
        spent, held = units_to_usd(c.spent[0]), units_to_usd(c.held[0])
        remaining = None if self.usd is None else max(self.usd - spent - held, Decimal(0))
        return BudgetStatus(self.name, key, spent, held, self.usd, remaining, c.spent[1], c.spent[2], c.spent[3])

    # --- scope keys ------------------------------------------------------------------------
    def scope_key(self, ctx: ScopeContext, now: float) -> tuple[str, int | None]:
        """(counter key, seconds until the key may expire) for a call in ``ctx`` at ``now``."""
        dt = datetime.fromtimestamp(now, tz=timezone.utc)
        per = self.per
        if per == "run":
            return f"{self.name}:run:{ctx.trace_id or '-'}", _DAY
        if per == "session":
            sid = ctx.session_id or (f"run:{ctx.trace_id}" if ctx.trace_id else "-")
            return f"{self.name}:session:{sid}", 7 * _DAY
        if per == "user_day":
            end = datetime(dt.year, dt.month, dt.day, tzinfo=timezone.utc) + timedelta(days=1)
            return f"{self.name}:user:{ctx.user_id or '-'}:{dt:%Y-%m-%d}", int(end.timestamp() - now) + _GRACE
        if per == "feature_month":
            nxt = datetime(dt.year + dt.month // 12, dt.month % 12 + 1, 1, tzinfo=timezone.utc)
            return f"{self.name}:feature:{ctx.feature or '-'}:{dt:%Y-%m}", int(nxt.timestamp() - now) + _GRACE
        if per == "agent":
            return f"{self.name}:agent:{ctx.agent_id or '-'}", None
        if per == "global_day":
            end = datetime(dt.year, dt.month, dt.day, tzinfo=timezone.utc) + timedelta(days=1)
            return f"{self.name}:global:{dt:%Y-%m-%d}", int(end.timestamp() - now) + _GRACE
        raise AssertionError(per)  # request scope is checked without a store
