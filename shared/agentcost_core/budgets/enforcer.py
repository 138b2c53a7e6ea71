"""Enforcing budgets around each call: reserve the worst case → settle the real cost / release.

:class:`BudgetEnforcer` is what the adapters drive::

    res = enforcer.reserve(ctx, model="gpt-4o", input_tokens=1200, max_tokens=500)  # may raise
    try:
        response = call_the_model()
    except BaseException:                 # errors and asyncio.CancelledError alike
        enforcer.release(res)
        raise
    enforcer.settle(res, usage, model=response_model)

The async forms (``areserve``, ``asettle``, ``arelease``, ``areserve_tool``, ``adowngrade_requested``,
``aspent``) never do store I/O on the event loop, and are safe to cancel: a reservation a worker
makes after its awaiting task was cancelled is released as the worker finishes, and a cancelled
settle still settles. A reservation made inside an asyncio task that ends without settling or
releasing it is released. In a shared store every reservation is a lease of ``lease_seconds``
(default 120 s), renewed while the call runs: a process that dies mid-call holds nothing for
longer than that (see :mod:`agentcost_core.budgets.leases`).

The worst case is the input tokens (counted before the call; ``estimate_margin`` is added when the
count is an estimate) plus ``max_tokens`` of output (or ``default_max_tokens``) at the model's
price for its service tier, long-context tier included; a model the catalog does not know is
priced at ``fallback`` (by default the catalog's most expensive input and output prices).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ..accountant import Accountant
from ..alerts.alert import sinks_of
from ..errors import ConfigurationError
from ..prices import PriceCatalog
from ..prices.model_price import BucketPrices
from ..usage import Usage
from .alerts import AlertSink
from .budget import Budget, ScopeContext
from .enforcer_reads import BudgetReads
from .leases import OpenReservations, leased, release_claims
from .notices import BudgetNotices, limits_of
from .off_loop import in_background, off_loop
from .outage_log import OUTAGES
from .reservation import Reservation
from .stores.base import (
    BudgetStoreUnavailable,
    Claim,
    Counters,
    CounterStore,
    read_counters,
    usd_to_units,
)
from .stores.memory import MemoryStore

__all__ = ["BudgetEnforcer", "Reservation"]

logger = logging.getLogger("agentcost.budgets")
_USD, _TOKENS, _CALLS, _TOOLS = range(4)


class BudgetEnforcer(BudgetReads):
    """Reserve / settle / release for a set of budgets, with thresholds, actions and alerts."""

    def __init__(
        self,
        budgets: Budget | Iterable[Budget],
        *,
        catalog: PriceCatalog | None = None,
        ledger: Any = None,
        alerts: AlertSink | Sequence[AlertSink] | None = None,
        anomalies: Any = None,
        default_max_tokens: int = 4096,
        estimate_margin: float = 0.1,
        fallback: BucketPrices | None = None,
        accountant: Accountant | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 120.0,
    ) -> None:
        self.budgets: tuple[Budget, ...] = (budgets,) if isinstance(budgets, Budget) else tuple(budgets)
        for b in self.budgets:
            if not isinstance(b, Budget):
                raise ConfigurationError(f"budgets= takes Budget objects, got {type(b).__name__}")
        names = [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"two budgets share a name {names}: give them distinct name= values")
        if accountant is None:
            accountant = Accountant(catalog, fallback=fallback, default_max_tokens=default_max_tokens,
                                    estimate_margin=estimate_margin)  # fmt: skip
        elif catalog is not None or fallback is not None:
            raise ConfigurationError("pass either accountant= or catalog= / fallback=, not both")
        #: Prices every reservation and settlement: the same accountant as the ledger's when the
        #: adapters attach one (see :meth:`use_accountant`).
        self.accountant = accountant
        self._own_accountant = catalog is None and fallback is None
        sinks = sinks_of(alerts)
        #: Spend anomalies (a :class:`~agentcost_core.alerts.SpendAnomalies`) for the recorder of the
        #: adapter this enforcer is attached to: it watches every recorded model call.
        self.anomalies = anomalies
        self.clock = clock
        #: Alerts and ledger events for thresholds and refusals.
        self.notices = BudgetNotices(sinks, ledger)
        self._groups: list[tuple[CounterStore, list[Budget]]] = []
        for b in self.budgets:
            if b.per == "request":
                continue
            for store, members in self._groups:
                if store is b.store:
                    members.append(b)
                    break
            else:
                self._groups.append((b.store, [b]))
        self._request_budgets = [b for b in self.budgets if b.per == "request"]
        #: Only in-process counters: the async forms run inline (no thread hop for microseconds of work).
        self.local = all(isinstance(store, MemoryStore) for store, _ in self._groups)
        if (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, (int, float))
            or not math.isfinite(lease_seconds)
            or lease_seconds < 1
        ):
            raise ConfigurationError(f"lease_seconds must be a number of seconds >= 1, got {lease_seconds!r}")
        #: How long a hold in a shared store outlives its call when nothing renews it (a dead process).
        self.lease_seconds = float(lease_seconds)
        self.leased = any(leased(store) for store, _ in self._groups)
        self.open = OpenReservations(self.lease_seconds, clock, self._abandoned)

    @property
    def ledger(self) -> Any:
        """Where budget events go (a Ledger; the adapters hand theirs over)."""
        return self.notices.ledger

    @ledger.setter
    def ledger(self, ledger: Any) -> None:
        self.notices.ledger = ledger

    @property
    def framework(self) -> str | None:
        return self.notices.framework

    @framework.setter
    def framework(self, framework: str | None) -> None:
        self.notices.framework = framework

    @property
    def sinks(self) -> tuple[AlertSink, ...]:
        return self.notices.sinks

    def __repr__(self) -> str:
        return f"BudgetEnforcer({list(self.budgets)!r})"

    # --- pricing (the accountant's) ----------------------------------------------------------
    @property
    def catalog(self) -> PriceCatalog:
        return self.accountant.catalog

    @property
    def fallback(self) -> BucketPrices:
        return self.accountant.fallback

    def use_accountant(self, accountant: Accountant) -> None:
        """Price with the adapter's accountant (its catalog) unless this enforcer was given prices of
        its own, so the ledger and the budgets count the same dollars."""
        if self._own_accountant:
            accountant = Accountant(accountant.catalog, fallback=accountant.fallback,
                                    default_max_tokens=self.accountant.default_max_tokens,
                                    estimate_margin=self.accountant.estimate_margin)  # fmt: skip
            self.accountant = accountant
            self._own_accountant = False

    def worst_case(
        self, model: str | None, input_tokens: int, max_tokens: int | None, service_tier: str | None = None
    ) -> Decimal:
        """USD of ``input_tokens`` in and ``max_tokens`` out (the model's maximum output when None),
        at the model's applicable rates."""
        return self.accountant.worst_case_of(model, input_tokens, max_tokens, service_tier=service_tier).usd

    def actual_cost(self, usage: Usage, model: str | None, service_tier: str | None = None) -> Decimal:
        return self.accountant.budget_cost(usage, model, service_tier=service_tier)

    # --- reserve ---------------------------------------------------------------------------
    def reserve(
        self,
        ctx: ScopeContext,
        *,
        model: str | None,
        input_tokens: int,
        max_tokens: int | None = None,
        service_tier: str | None = None,
        estimated: bool = False,
    ) -> Reservation:
        """Hold the call's worst case on every budget, or raise :class:`BudgetExceeded`."""
        res, claims_by_group = self._prepare_model(ctx, model, input_tokens, max_tokens, service_tier, estimated)
        for store, claims, budgets in claims_by_group:
            self._reserve_group(res, store, claims, budgets, ctx)
        self._check_seconds(res)
        self.open.track_task(res)
        return res

    async def areserve(
        self,
        ctx: ScopeContext,
        *,
        model: str | None,
        input_tokens: int,
        max_tokens: int | None = None,
        service_tier: str | None = None,
        estimated: bool = False,
    ) -> Reservation:
        """:meth:`reserve` for async code: inline with in-process stores, in a worker thread when a
        store does I/O. Cancelling it never leaves a hold behind (see the module docstring)."""
        kw = {"model": model, "input_tokens": input_tokens, "max_tokens": max_tokens,
              "service_tier": service_tier, "estimated": estimated}  # fmt: skip
        if self.local:
            return self.reserve(ctx, **kw)
        res: Reservation = await off_loop(lambda: self.reserve(ctx, **kw), undo=self.release)
        self.open.track_task(res)  # the worker had no task to tie it to
        return res

    def reserve_tool(self, ctx: ScopeContext, tool: str | None = None) -> Reservation:
        """Count one tool call (``tool_calls`` limits); settle it after the tool runs."""
        res, groups = self._prepare(ctx, None, (0, 0, 0, 1), Decimal(0), what=f"tool call {tool!r}" if tool else None)
        for store, claims, budgets in groups:
            self._reserve_group(res, store, claims, budgets, ctx)
        self._check_seconds(res)
        self.open.track_task(res)
        return res

    def uncount_tool(self, res: Reservation) -> None:
        """Give back the tool call ``res`` counted: released while still held, else one settle of
        -1 tool call on the same counters (one atomic step in every store). For a call that was
        interrupted before it ran (a LangGraph ``interrupt()``): it runs again on resume. Once per call."""
        held = self.open.close(res)
        for store, claims, _ in res.groups:
            try:
                if held:
                    release_claims(store, claims, res.lease_id)
                else:
                    store.settle([replace(c, amounts=(0, 0, 0, 0)) for c in claims], (0, 0, 0, -res.amounts[_TOOLS]))
            except Exception as e:
                OUTAGES.call_failed(store, "could not give back an interrupted tool call: it stays counted", e)

    async def areserve_tool(self, ctx: ScopeContext, tool: str | None = None) -> Reservation:
        """:meth:`reserve_tool` for async code (off the event loop when a store does I/O)."""
        if self.local:
            return self.reserve_tool(ctx, tool)
        res: Reservation = await off_loop(self.reserve_tool, ctx, tool, undo=self.release)
        self.open.track_task(res)
        return res

    def _prepare_model(
        self,
        ctx: ScopeContext,
        model: str | None,
        input_tokens: int,
        max_tokens: int | None,
        service_tier: str | None,
        estimated: bool,
    ) -> tuple[Reservation, list[tuple[CounterStore, list[Claim], list[Budget]]]]:
        worst = self.accountant.worst_case_of(model, input_tokens, max_tokens, service_tier=service_tier,
                                              estimated=estimated)  # fmt: skip
        return self._prepare(ctx, model, (usd_to_units(worst.usd), worst.tokens, 1, 0), worst.usd)

    def _prepare(
        self, ctx: ScopeContext, model: str | None, amounts: tuple[int, int, int, int], usd: Decimal, what: Any = None
    ) -> tuple[Reservation, list[tuple[CounterStore, list[Claim], list[Budget]]]]:
        res = Reservation(ctx, model, amounts, usd)
        if self.leased:
            res.lease_id = self.open.new_lease_id()
        for b in self._request_budgets:  # one call alone: no counters to keep
            limits = limits_of(b)
            for i, limit in enumerate(limits):
                if limit is not None and amounts[i] > limit:
                    key = f"request:{ctx.trace_id or '-'}"
                    if b.hard:
                        raise self.notices.refusal(b, key, i, Counters(), amounts[i], ctx, model=model)
                    self.notices.threshold(b, key, i, limit, amounts[i], amounts[i] / limit, "exceeded", b.on_exceed, ctx)
        now = self.clock()
        groups = []
        for store, budgets in self._groups:
            claims = []
            for b in budgets:
                key, ttl = b.scope_key(ctx, now)
                claims.append(Claim(key, limits_of(b), amounts, ttl, b.hard))
            groups.append((store, claims, budgets))
        return res, groups

    def _reserve_group(
        self, res: Reservation, store: CounterStore, claims: list[Claim], budgets: list[Budget], ctx: ScopeContext
    ) -> None:
        now = self.clock()
        try:
            if res.lease_id is not None and leased(store):
                result = store.reserve(claims, now, self.open.lease(res, now))
            else:
                result = store.reserve(claims, now)
        except BudgetStoreUnavailable as e:
            self._store_failed(res, store, e)
            return
        except BaseException:
            self._undo(res)
            raise
        OUTAGES.answered(store)
        self._admit_or_refuse(res, store, claims, budgets, result, ctx)

    def _admit_or_refuse(
        self,
        res: Reservation,
        store: CounterStore,
        claims: list[Claim],
        budgets: list[Budget],
        result: Any,
        ctx: ScopeContext,
    ) -> None:
        if result.admitted:
            res.groups.append((store, claims, budgets))
            return
        i = result.refused
        self._undo(res)
        raise self.notices.refusal(budgets[i], claims[i].key, result.dimension, result.counters[i],
                                   claims[i].amounts[result.dimension], ctx, model=res.model)  # fmt: skip

    def _check_seconds(self, res: Reservation) -> None:
        now = self.clock()
        for store, claims, budgets in res.groups:
            for claim, b in zip(claims, budgets):
                if b.seconds is None or not b.hard:
                    continue
                try:
                    started = read_counters(store, claim.key, now).started
                except BudgetStoreUnavailable as e:
                    if store.failure_mode == "fail_open":
                        OUTAGES.failed(store, "call allowed (fail_open)", e)
                        res.store_errors.append(str(e))
                        continue
                    self._undo(res)
                    raise
                if started is not None and now - started > b.seconds:
                    self._undo(res)
                    raise self.notices.refusal(b, claim.key, None, Counters(started=started), 0, res.ctx,
                                               model=res.model, elapsed=now - started)  # fmt: skip

    def _store_failed(self, res: Reservation, store: CounterStore, e: BudgetStoreUnavailable) -> None:
        if store.failure_mode == "fail_open":
            OUTAGES.failed(store, "call allowed (fail_open)", e)  # one line per store per minute
            res.store_errors.append(str(e))
            return
        self._undo(res)
        raise BudgetStoreUnavailable(
            f"{e} — the call was refused because the budget store is fail_closed "
            "(pass failure_mode='fail_open' to the store to let calls through unbudgeted)"
        ) from e

    def _undo(self, res: Reservation) -> None:
        """Release what this reservation already holds (a later group refused or failed)."""
        groups, res.groups = res.groups, []
        for store, claims, _ in groups:
            try:
                release_claims(store, claims, res.lease_id)
            except Exception as e:  # pragma: no cover - store down between two calls
                OUTAGES.call_failed(store, "could not release a reservation (its lease still ends it)", e)

    # --- settle / release ------------------------------------------------------------------
    def settle(
        self,
        res: Reservation,
        usage: Usage | None = None,
        *,
        model: str | None = None,
        service_tier: str | None = None,
        cost: Decimal | None = None,
    ) -> Decimal:
        """Count the call's real cost (from ``cost``, else priced from ``usage``); exactly once."""
        if not self.open.close(res):
            return res.cost or Decimal(0)
        actual = self._actual(res, usage, model, service_tier, cost)
        for store, claims, budgets in res.groups:
            try:
                if res.lease_id is not None and leased(store):
                    after = store.settle(claims, actual, res.lease_id)
                else:
                    after = store.settle(claims, actual)
            except Exception as e:
                OUTAGES.call_failed(store, "could not settle a reservation: its spend is not counted", e)
                continue
            self.notices.after_settle(budgets, claims, after, res.ctx)
        return res.cost  # type: ignore[return-value]

    async def asettle(
        self,
        res: Reservation,
        usage: Usage | None = None,
        *,
        model: str | None = None,
        service_tier: str | None = None,
        cost: Decimal | None = None,
    ) -> Decimal:
        """:meth:`settle` for async code; a cancelled ``asettle`` still settles (in its worker)."""
        kw = {"model": model, "service_tier": service_tier, "cost": cost}
        if self.local:
            return self.settle(res, usage, **kw)
        self.open.untrack(res)  # ended here: the end of the task must not release it instead
        return await off_loop(lambda: self.settle(res, usage, **kw))  # type: ignore[no-any-return]

    def _actual(
        self, res: Reservation, usage: Usage | None, model: str | None, tier: str | None, cost: Decimal | None
    ) -> tuple[int, int, int, int]:
        if res.amounts[_TOOLS]:
            res.cost = Decimal(0)
            return (0, 0, 0, res.amounts[_TOOLS])
        if cost is None:
            cost = self.actual_cost(usage, model or res.model, tier) if usage is not None else Decimal(0)
        res.cost = cost
        return (usd_to_units(cost), usage.total if usage is not None else 0, 1, 0)

    def release(self, res: Reservation) -> None:
        """Drop the reservation (the call failed or was cancelled); exactly once."""
        if not self.open.close(res):
            return
        for store, claims, _ in res.groups:
            try:
                release_claims(store, claims, res.lease_id)
            except Exception as e:  # its lease (shared stores) still ends the hold
                OUTAGES.call_failed(store, "could not release a reservation (its lease still ends it)", e)

    async def arelease(self, res: Reservation) -> None:
        """:meth:`release` for async code; a cancelled ``arelease`` still releases (in its worker)."""
        if self.local:
            self.release(res)
        else:
            self.open.untrack(res)
            await off_loop(self.release, res)

    def _abandoned(self, loop: Any, reservations: list[Reservation]) -> None:
        """Release the reservations of a task that ended without ending them (called on the loop:
        in-process stores inline, others off the loop)."""

        def release_all() -> None:
            for res in reservations:
                self.release(res)

        if self.local:
            release_all()
        else:
            in_background(loop, release_all)

    def renew_leases(self) -> int:
        """Renew the lease of every call still running (the renewer thread does this every
        ``lease_seconds / 3``); returns how many holds were renewed."""
        return self.open.renew()

    def close(self) -> None:
        """Stop renewing leases (the enforcer's calls are over)."""
        self.open.stop()
