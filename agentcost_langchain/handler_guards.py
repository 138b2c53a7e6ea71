"""The guard half of the LangChain cost handlers (:class:`~agentcost_langchain.CostCallbackHandler`):
one :class:`~agentcost_core.guards.run_guard.RunGuard` per run (by trace), the tool hooks that check
and count tool calls, the settling of a guarded model call, and the giving up of calls whose end
LangChain never reports (a cancelled task), so that no reservation outlives its call.

A mixin of the handler's shared body: it reads the handler's state (``controls``, ``recorder``,
``_guarded``, ``_tools``, ``_runs``, ``_lock`` …) and never builds a model call or an event itself.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import UUID

from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.budgets import BudgetStoreUnavailable, ScopeContext
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.guards.run_guard import RunGuard
from agentcost_core.halts import AgentHalted, passes_through

__all__ = ["GuardedRuns", "scope_of"]

logger = logging.getLogger("agentcost")

_MAX_RUNS = 10_000  # a bound on remembered runs, for hosts whose runs never end in our sight


def scope_of(trace: str, attribution: Attribution) -> ScopeContext:
    """The budget scope of a run from its trace and attribution."""
    return ScopeContext(trace_id=trace, session_id=attribution.session_id, user_id=attribution.user_id,
                        feature=attribution.feature, agent_id=attribution.agent_id)  # fmt: skip


class GuardedRuns:
    """Run guards, tool hooks, settling and abandoned calls for the cost handlers (see the module docstring)."""

    # the handler's state this half reads (set by the handler's constructor)
    controls: Any
    recorder: Any
    fixed_run: RunGuard | None
    call_timeout: float

    def _run_guard(self, trace: str, attribution: Attribution) -> RunGuard:
        """The guard of the run ``trace`` (one per run, even when its first calls start at once)."""
        if self.fixed_run is not None:
            return self.fixed_run
        with self._lock:
            run = self._guarded.get(trace)
            if run is None:
                run = self._guarded[trace] = self.controls.start(scope_of(trace, attribution))  # type: ignore[union-attr]
                if len(self._guarded) > _MAX_RUNS:
                    self._guarded.popitem(last=False)
            return run

    def _tool_start(self, serialized: Any, input_str: str, run_id: UUID, parent_run_id: UUID | None,
                    metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:  # fmt: skip
        if self._first_chunks is not None:  # exporters: the tool call's span starts now
            name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
            a = read_attribution(metadata, defaults=self.recorder.defaults)
            self._tool_starts[run_id] = (name, a, time.time_ns())
        if self.controls is None:
            return
        try:
            name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
            trace, _ = self._trace_of(run_id, parent_run_id)
            run = self._run_guard(trace, read_attribution(metadata, defaults=self.recorder.defaults))
            self._tools[run_id] = (name, run)
            args = kwargs.get("inputs")
            run.before_tool(name, args if args is not None else input_str, check_breaker=False, call_id=run_id)
        except (AgentHalted, BudgetStoreUnavailable):
            self._tools.pop(run_id, None)
            raise
        except Exception as e:
            self.recorder.note_internal_error("on_tool_start", e)

    def _tool_end(self, run_id: UUID, output: Any, error: BaseException | None) -> None:
        started = self._tool_starts.pop(run_id, None) if self._tool_starts else None
        if started is not None and self.recorder.exporters is not None:
            failed = error if error is not None and not passes_through(error) else None
            self.recorder.exporters.tool(started[0], started[2], time.time_ns(), error=failed, attribution=started[1])
        entry = self._tools.pop(run_id, None) if self._tools else None
        if entry is None:
            return
        try:
            name, run = entry
            if error is not None and passes_through(error):  # an interrupt: the tool did not fail, nor run yet
                run.tool_interrupted(name, call_id=run_id)  # it runs again on resume: counted then
                return
            run.after_tool(name, getattr(output, "content", output), error, call_id=run_id)
        except Exception as e:
            self.recorder.note_internal_error("on_tool_end", e)

    def _forget_abandoned(self) -> None:
        """Give up the oldest pending calls once they are older than ``call_timeout``: LangChain
        never calls ``on_llm_error`` for a call whose asyncio task was cancelled, so without this
        their reservations would be held (and renewed) as long as the handler lives."""
        if not self._runs:
            return
        limit = self._clock() - self.call_timeout
        while self._runs:
            run_id, state = next(iter(self._runs.items()))
            if state[0] > limit:
                return
            if self._runs.pop(run_id, None) is None:
                continue
            if self._first_chunks:
                self._first_chunks.pop(run_id, None)
            if self._langsmith is not None:  # a LangSmith tracer's end that waited for ours goes now
                self._langsmith.ended(run_id)
            guard = state[3]
            logger.warning("agentcost: a model call never reported its end within %.0f s; its reservation is released",
                           self.call_timeout)  # fmt: skip
            if guard is not None:
                try:
                    guard[0].model_failed(guard[1])
                except Exception as e:
                    self.recorder.note_internal_error("release", e)

    def _close_guarded(self, guard: tuple[RunGuard, Any, bool], call: ModelCall, outcome: Outcome, cost: Any) -> None:
        run, res, seen = guard
        try:
            run.close_call(res, call, outcome, cost)
        except Exception as e:
            self.recorder.note_internal_error("settle", e)
        if not seen and self.fixed_run is None:  # a run we never saw the chain of (a handler on the model)
            with self._lock:
                self._guarded.pop(call.trace_id, None)
