"""One agent run under control: budgets, stuck detection, kill switch and circuit breakers.

:class:`Controls` is the configuration (shared by every run); :meth:`Controls.start` gives a
:class:`RunGuard` for one run, which the adapters drive around each model and tool call::

    run = controls.start(ScopeContext(trace_id=..., session_id=..., agent_id=...))
    res = run.before_model(model, input_tokens, max_tokens)   # kill switch, pending halt, budget
    ... the model call ...        (on error or cancellation: run.model_failed(res))
    run.after_model(res, usage, model=..., text=..., tool_calls=[(name, args), ...])
    blocked = run.before_tool(name, args)   # None, or the tool result to give instead (open circuit)
    ... the tool call ...
    run.after_tool(name, result, error=None)
    nudge = run.take_nudge()                # a message to show the model once, or None

A stuck verdict never raises in ``after_*``: a nudge is queued for the next model call, and a halt
is raised by the next ``before_*`` (so a graceful adapter can end the run with a final answer
instead). Deliberate halts are :class:`AgentHalted` (budget ones :class:`BudgetExceeded`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from ..accountant import served_tier
from ..budgets import Reservation, ScopeContext
from ..call import ModelCall, Outcome
from ..events import CostEvent
from ..halts import AgentHalted, BudgetExceeded
from ..privacy import private_guard_details
from ..usage import Usage
from .controls import ON_INTERNAL_ERROR, Controls

__all__ = ["ON_INTERNAL_ERROR", "CallScope", "Controls", "RunGuard"]

logger = logging.getLogger("agentcost")
_COUNTED = 64  # running calls remembered per (tool, call id): a bound for adapters that never report an end


class RunGuard:
    """The state of one run under :class:`Controls`."""

    def __init__(self, controls: Controls, ctx: ScopeContext) -> None:
        self.controls = controls
        self.ctx = ctx
        self.monitor = controls.stuck.start() if controls.stuck is not None else None
        self.halt: AgentHalted | None = None  # set by a stuck verdict, raised by the next before_*
        self.termination: AgentHalted | None = None  # the halt that ended the run, once raised
        self._nudge: str | None = None
        self.nudges: list[str] = []
        self.cost = Decimal(0)
        self._last_text: str | None = None  # latest model text
        self._last_answer: str | None = None  # latest model text that came without tool calls
        self._last_result: str | None = None
        self.model_calls = 0
        self.tool_calls = 0
        #: What each running tool call counted at its start, by (name, call_id), until it ends.
        self._counted: dict[tuple[str, Any], deque[tuple[Reservation | None, Any]]] = {}
        self._lock = threading.Lock()

    # --- model calls ----------------------------------------------------------------------
    def before_model(
        self,
        model: str | None,
        input_tokens: int = 0,
        max_tokens: int | None = None,
        *,
        service_tier: str | None = None,
        estimated: bool = False,
    ) -> Reservation | None:
        self._gate()
        enforcer = self.controls.enforcer
        if enforcer is None:
            return None
        try:
            return enforcer.reserve(
                self.ctx, model=model, input_tokens=input_tokens, max_tokens=max_tokens,
                service_tier=service_tier, estimated=estimated,
            )  # fmt: skip
        except BudgetExceeded as e:
            raise self._halted(e) from None

    async def abefore_model(
        self,
        model: str | None,
        input_tokens: int = 0,
        max_tokens: int | None = None,
        *,
        service_tier: str | None = None,
        estimated: bool = False,
    ) -> Reservation | None:
        """:meth:`before_model` for async code: the reservation runs in a worker thread when a budget
        store does I/O (never on the loop), and one made after the awaiting task was cancelled is
        released by the enforcer."""
        self._gate()
        enforcer = self.controls.enforcer
        if enforcer is None:
            return None
        try:
            return await enforcer.areserve(
                self.ctx, model=model, input_tokens=input_tokens, max_tokens=max_tokens,
                service_tier=service_tier, estimated=estimated,
            )  # fmt: skip
        except BudgetExceeded as e:
            raise self._halted(e) from None

    def after_model(
        self,
        res: Reservation | None,
        usage: Usage | None,
        *,
        model: str | None = None,
        service_tier: str | None = None,
        cost: Decimal | None = None,
        text: str = "",
        tool_calls: Sequence[tuple[str, Any]] = (),
        observe: bool = True,
    ) -> None:
        """Settle the call's reservation; with ``observe`` (a model's answer, not an embedding) feed
        its output to the stuck detector."""
        self.model_calls += 1
        if text and text.strip():
            self._last_text = text
            if not tool_calls:
                self._last_answer = text
        if res is not None and self.controls.enforcer is not None:
            counted = self.controls.enforcer.settle(res, usage, model=model, service_tier=service_tier, cost=cost)
            self.cost += counted or 0
        elif cost is not None:
            self.cost += cost
        if self.monitor is not None and observe:
            self.monitor.record_model_output(text or "", tuple(tool_calls))
            self._verdict()

    def model_failed(self, res: Reservation | None) -> None:
        if res is not None and self.controls.enforcer is not None:
            self.controls.enforcer.release(res)

    # --- one model call, as core values ----------------------------------------------------
    def open_call(self, call: ModelCall) -> Reservation | None:
        """Before ``call``: the kill switch, a pending halt, then the reservation of its worst case
        (every billed input part, ``max_tokens`` or the model's maximum output, for each completion
        the call asks for). Raises a halt
        (:class:`AgentHalted`) to refuse the call. An internal error of ours here refuses the call
        under hard budgets (:class:`CallRefused`) unless ``on_internal_error="allow"``."""
        counted = self._billed(call)
        if counted is None:
            return None
        return self.before_model(call.model, counted[0], counted[2], service_tier=call.service_tier,
                                 estimated=counted[1])  # fmt: skip

    async def aopen_call(self, call: ModelCall) -> Reservation | None:
        """:meth:`open_call` for async code: store I/O runs in a worker thread, never on the loop."""
        counted = self._billed(call)
        if counted is None:
            return None
        return await self.abefore_model(call.model, counted[0], counted[2], service_tier=call.service_tier,
                                        estimated=counted[1])  # fmt: skip

    def _billed(self, call: ModelCall) -> tuple[int, bool, int] | None:
        """The gates, then (input tokens, estimated, output tokens) for the reservation; None when
        there is no budget to reserve for (or our own error was let through by ``on_internal_error="allow"``)."""
        self._gate()
        enforcer = self.controls.enforcer
        if enforcer is None:
            return None
        try:
            tokens, estimated = enforcer.accountant.input_of(call)
            return tokens, estimated, enforcer.accountant.output_of(call)
        except Exception as e:
            self.controls.internal_error_before_call(e)
            return None

    def _settlement(self, call: ModelCall | None, outcome: Outcome, cost: Decimal | None
                    ) -> tuple[Usage | None, str | None, str | None, Decimal | None]:  # fmt: skip
        """(usage, served model, tier, cost) an outcome settles at: its usage or our estimate,
        priced once by the accountant unless the recorder already priced it (``cost``)."""
        model = outcome.model or (call.model if call is not None else None)
        tier = served_tier(call, outcome)
        usage = outcome.usage
        accountant = self.controls.accountant
        if accountant is not None:
            usage, _ = accountant.usage_of(call, outcome)
            if cost is None and call is not None:  # the one pricing of a call: tokens, tool fees, cache hits
                cost = accountant.event(call, outcome)[1]
            elif cost is None:
                cost = accountant.budget_cost(usage, model, service_tier=tier, cache_hit=outcome.cache_hit)
        return usage, model, tier, cost

    def close_call(self, res: Reservation | None, call: ModelCall | None, outcome: Outcome,
                   cost: Decimal | None = None) -> None:  # fmt: skip
        """After the call: settle at ``cost`` (the recorder's budget cost) or the accountant's price
        of the outcome, and feed the stuck detector. A failed outcome releases instead."""
        if outcome.error is not None:
            self.model_failed(res)
            return
        usage, model, tier, cost = self._settlement(call, outcome, cost)
        self.after_model(res, usage, model=model, service_tier=tier, cost=cost, text=outcome.text,
                         tool_calls=outcome.tool_calls, observe=call is None or call.kind == "llm")  # fmt: skip

    async def aclose_call(self, res: Reservation | None, call: ModelCall | None, outcome: Outcome,
                          cost: Decimal | None = None) -> None:  # fmt: skip
        """:meth:`close_call` for async code: the settle's store I/O runs in a worker thread, never on
        the loop, and completes even if this task is cancelled meanwhile."""
        enforcer = self.controls.enforcer
        if outcome.error is not None:
            await self.amodel_failed(res)
            return
        if res is None or enforcer is None or enforcer.local:
            self.close_call(res, call, outcome, cost)
            return
        usage, model, tier, cost = self._settlement(call, outcome, cost)
        counted = await enforcer.asettle(res, usage, model=model, service_tier=tier, cost=cost)
        self.after_model(None, usage, model=model, service_tier=tier, cost=counted, text=outcome.text,
                         tool_calls=outcome.tool_calls, observe=call is None or call.kind == "llm")  # fmt: skip

    async def amodel_failed(self, res: Reservation | None) -> None:
        enforcer = self.controls.enforcer
        if res is None or enforcer is None:
            return
        if enforcer.local:
            enforcer.release(res)
        else:
            await enforcer.arelease(res)

    @contextmanager
    def call(self, call: ModelCall) -> Iterator[CallScope]:
        """The whole call as a context manager: open (may raise a halt), then settle when the body
        sets ``scope.outcome``, release on an error, a cancellation or no outcome."""
        res = self.open_call(call)
        scope = CallScope(call)
        try:
            yield scope
        except BaseException:
            self.model_failed(res)
            raise
        if scope.outcome is None:
            self.model_failed(res)
        else:
            self.close_call(res, call, scope.outcome, scope.cost)

    @asynccontextmanager
    async def acall(self, call: ModelCall) -> AsyncIterator[CallScope]:
        """:meth:`call` for async code; a release after a cancellation is shielded from it."""
        res = await self.aopen_call(call)
        scope = CallScope(call)
        try:
            yield scope
        except BaseException:
            await asyncio.shield(self.amodel_failed(res))
            raise
        if scope.outcome is None:
            await asyncio.shield(self.amodel_failed(res))
        else:
            await asyncio.shield(self.aclose_call(res, call, scope.outcome, scope.cost))

    # --- tool calls -----------------------------------------------------------------------
    def before_tool(self, name: str, args: Any = None, *, check_breaker: bool = True, call_id: Any = None
                    ) -> str | None:  # fmt: skip
        """Raise on a halt; return the tool result to use instead when the tool's circuit is open.
        ``call_id`` (the framework's id of this tool call, if any) pairs it with
        :meth:`after_tool` / :meth:`tool_interrupted`."""
        self._gate()
        if check_breaker:
            blocked = self.tool_blocked(name)
            if blocked is not None:
                return blocked
        self.tool_calls += 1
        res = token = None
        enforcer = self.controls.enforcer
        if enforcer is not None and any(b.tool_calls is not None for b in enforcer.budgets):
            try:
                res = enforcer.reserve_tool(self.ctx, name)
                enforcer.settle(res)
            except BudgetExceeded as e:
                raise self._halted(e) from None
        if self.monitor is not None:
            token = self.monitor.record_tool_call(name, args)
        with self._lock:
            self._counted.setdefault((name, call_id), deque(maxlen=_COUNTED)).append((res, token))
        if self.monitor is not None:
            self._verdict()
        return None

    def tool_interrupted(self, name: str, *, call_id: Any = None) -> None:
        """The tool call started by :meth:`before_tool` was interrupted before it ran (a LangGraph
        ``interrupt()``: the run pauses, and the call runs again on resume). What its start counted
        is given back: its tool-call count on the budgets, and its place in the stuck detector."""
        entry = self._take_counted(name, call_id, last=True)
        if entry is None:
            return
        self.tool_calls -= 1
        res, token = entry
        enforcer = self.controls.enforcer
        if res is not None and enforcer is not None:
            enforcer.uncount_tool(res)
        if token is not None and self.monitor is not None:
            self.monitor.retract_tool_call(token)

    def _take_counted(self, name: str, call_id: Any, *, last: bool = False) -> tuple[Any, Any] | None:
        with self._lock:
            calls = self._counted.get((name, call_id))
            if not calls:
                return None
            entry = calls.pop() if last else calls.popleft()
            if not calls:
                del self._counted[(name, call_id)]
            return entry

    def tool_blocked(self, name: str) -> str | None:
        """The tool result to give the agent instead of calling ``name`` while its circuit is open."""
        breaker = self.controls.breaker
        if breaker is None or breaker.allow(name):
            return None
        message = breaker.unavailable_message(name)
        self._event("guard.circuit_open", {"tool": name, "message": message})
        return message

    def after_tool(self, name: str, result: Any = None, error: BaseException | None = None, *,
                   call_id: Any = None) -> None:  # fmt: skip
        self._take_counted(name, call_id)
        breaker = self.controls.breaker
        if breaker is not None:
            if error is None:
                breaker.record_success(name)
            else:
                breaker.record_failure(name, error)
        if error is None and result is not None:
            self._last_result = result if isinstance(result, str) else str(result)
        if self.monitor is not None and error is None:
            self.monitor.record_tool_result(name, result)
            self._verdict()

    # --- nudges and halts -----------------------------------------------------------------
    def take_nudge(self) -> str | None:
        """The nudge to show the model before its next call (once), or None."""
        nudge, self._nudge = self._nudge, None
        return nudge

    def best_answer(self) -> str | None:
        """The best answer found so far: the latest model answer (text without tool calls), else the
        latest tool result (what the agent found), else the latest model text."""
        return self._last_answer or self._last_result or self._last_text

    def check(self) -> None:
        """Raise the pending halt (kill switch, stuck) if there is one."""
        self._gate()

    def _gate(self) -> None:
        if self.termination is not None:
            raise self.termination
        ks = self.controls.kill_switch
        if ks is not None:
            try:
                ks.check(self.ctx.agent_id, self.ctx.feature)
            except AgentHalted as e:
                raise self._halted(e) from None
        if self.halt is not None:
            raise self._halted(self.halt)

    def _verdict(self) -> None:
        verdict = self.monitor.check()  # type: ignore[union-attr]
        if verdict.action == "nudge":
            self._nudge = verdict.message
            self.nudges.append(verdict.message)
            self._event("guard.nudge", {"reason": str(verdict.reason), "message": verdict.message, **verdict.details})
        elif verdict.action == "halt" and self.halt is None:
            self.halt = self.monitor.halt_error(verdict)  # type: ignore[union-attr]
            self.halt.partial = self.best_answer()  # what the agent found, not its looping chatter

    def _halted(self, err: AgentHalted) -> AgentHalted:
        if err.partial is None:
            err.partial = self.best_answer()
        if self.termination is None:
            self.termination = err
            self._event("halt", {"reason": str(err.reason), "message": str(err), **_plain(err.details)})
        return err

    def _event(self, kind: str, extra: dict[str, Any]) -> None:
        ledger = self.controls.ledger
        if ledger is None:
            return
        c = self.ctx
        try:
            ledger.record(
                CostEvent(
                    None, kind=kind, user_id=c.user_id, session_id=c.session_id, feature=c.feature,
                    agent_id=c.agent_id, trace_id=c.trace_id, framework=self.controls.framework,
                    extra=private_guard_details(extra, log_prompts=bool(self.controls.log_prompts)),
                )
            )  # fmt: skip
        except Exception as e:  # pragma: no cover - defensive
            logger.error("agentcost: could not record a %s event: %r", kind, e)


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in details.items()}




@dataclass(slots=True)
class CallScope:
    """What :meth:`RunGuard.call` yields: set ``outcome`` (and, when a recorder priced the call,
    ``cost``, so the budget settles at the ledger's number) before the block ends."""

    call: ModelCall
    outcome: Outcome | None = None
    cost: Decimal | None = None
