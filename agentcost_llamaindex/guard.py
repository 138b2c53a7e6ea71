"""``guard(agent)``: run a LlamaIndex agent under budgets, stuck detection, a kill switch and
circuit breakers, and get a result instead of an exception when a guard stops it.

Works with ``FunctionAgent``, ``ReActAgent`` (any ``BaseWorkflowAgent``) and ``AgentWorkflow``::

    guarded = guard(agent, budgets=Budget(usd="0.50"), stuck=True, kill_switch=True)
    result = await guarded.run("…")          # or guarded.run_sync("…") outside an event loop
    result.termination_reason   # None, or TerminationReason.BUDGET / REPEATED_TOOL / …
    result.output               # the agent's AgentOutput, or the best partial answer (a string)
    result.cost                 # Decimal USD of this run's model calls

Where the control sits. LlamaIndex instrumentation handlers cannot stop a run (the dispatcher
swallows their exceptions), so they only measure: each run gets its own
:class:`~agentcost_llamaindex.CostEventHandler` that keeps the events tagged with the run's id.
Control is in-band: ``guard()`` makes a guarded COPY of the agent once (the user's agent, its LLM
and its tools are never modified, and still run unguarded) and runs the copy:

* the copy's ``llm`` (each member agent's, in an ``AgentWorkflow``) is a thin delegating LLM.
  Every model call becomes a :class:`~agentcost_core.call.ModelCall` (messages, tool schemas,
  image parts, the LLM's ``max_tokens`` and ``additional_kwargs["service_tier"]``) run in the
  run guard's call scope: the kill switch, then the reservation of its worst case at the price of
  its service tier; a refusal raises :class:`AgentHalted` out of the agent's step, which ends the
  workflow. After the call its :class:`~agentcost_core.call.Outcome` (the provider's usage, read
  by the handler's parser; an estimate, marked, when it cannot be read) is settled, and the stuck
  monitor sees the model's text and requested tool calls. A pending nudge is appended to the next
  call's messages as a user message, shown once;
* the copy's class overrides ``_call_tool`` (a tool's own exception is turned into an error
  result by LlamaIndex, so a halt could not be raised from inside a tool): a halt is raised before
  the tool runs, an open circuit answers with an error result instead of calling the tool, and the
  result (or failure) goes to the stuck monitor and the circuit breaker;
* the run's stream events (``ToolCall``, ``ToolCallResult``, ``AgentOutput``) feed the guard only
  where the copy could not front them (a custom ``Workflow`` emitting the agent events); a halt
  found there ends the run with ``handler.cancel_run()``.

Budgets price with the same :class:`~agentcost_core.Accountant` as the run's ledger events
(``guard(..., catalog=...)`` prices both with the user's catalog).

Hard and graceful stops. Budget and kill-switch halts stop the run at once; the result
carries the best answer found so far. A stuck verdict (repeated tool, similar outputs, no progress,
iteration cap) ends gracefully by default (``wrap_up=True``): tool calls the agent asked for
meanwhile are not run (each answers that the agent is being stopped), and the agent's next model
call is sent without tools and with an instruction to answer now from what it has. Its answer ends
the run the normal way (its own ``AgentOutput``, memory updated); that call still passes the kill
switch and the budgets, and a model that asks for tools anyway is stopped hard. LlamaIndex's own
``early_stopping_method="generate"`` (reached through ``ctx.store["max_iterations"]``) is not used
for this: its final call sees only the memory, not the tool calls and results of the current run,
which ``FunctionAgent`` / ``ReActAgent`` keep in their scratchpad until the run finishes.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from decimal import Decimal
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from pydantic import Field

from agentcost_core import Ledger
from agentcost_core.accountant import Accountant
from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.budgets import ScopeContext
from agentcost_core.exporters import Exporters
from agentcost_core.guards.result import GuardedResult, stop_text
from agentcost_core.guards.run_guard import Controls
from agentcost_core.halts import AgentHalted
from agentcost_core.prompt_log import PromptLogging
from agentcost_core.recorder import resolve_ledger

from .attribution import RUN_ID_TAG
from .guarded_llm import guarded_copy
from .guarded_run import _ACTIVE, WRAP_UP_MESSAGE, _RunState  # noqa: F401 - WRAP_UP_MESSAGE: re-exported
from .handler import CostEventHandler

__all__ = ["GuardedAgent", "GuardedResult", "guard"]

_OPTIONS = frozenset(
    {"catalog", "log_prompts", "exporters", "anomalies", "user_id", "session_id", "feature", "agent_id", "task_id"}
)


# --- cost capture ---------------------------------------------------------------------------
class _RunCostHandler(CostEventHandler):
    """A :class:`CostEventHandler` that records only the LLM calls of one workflow run (the events
    the workflow tags with its run id), so concurrent guarded runs never record each other's."""

    run_id: Any = Field(default=None, exclude=True, repr=False)

    @classmethod
    def class_name(cls) -> str:
        return "GuardedRunCostHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        tags = getattr(event, "tags", None)
        if tags and tags.get(RUN_ID_TAG) == self.run_id:
            super().handle(event, **kwargs)


def _covered_elsewhere(ledger: Ledger) -> bool:
    """Is an ``instrument()`` handler already writing this process's LLM calls into ``ledger``?"""
    for h in get_dispatcher().event_handlers:
        if (
            isinstance(h, CostEventHandler)
            and not isinstance(h, _RunCostHandler)
            and getattr(getattr(h.recorder, "ledger", None), "backend", None) is ledger.backend
        ):  # (references to one shared ledger share its backend)
            return True
    return False


# --- the guarded agent ----------------------------------------------------------------------
def _text_of(output: Any) -> str | None:
    if output is None:
        return None
    if isinstance(output, str):
        return output
    response = getattr(output, "response", None)  # AgentOutput
    if response is not None:
        content = getattr(response, "content", None)
        return content if isinstance(content, str) else None
    return str(output)


def _halt_in(error: BaseException) -> AgentHalted | None:
    seen = 0
    e: BaseException | None = error
    while e is not None and seen < 16:
        if isinstance(e, AgentHalted):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


class GuardedAgent:
    """What ``guard()`` returns. ``await run(...)`` (or ``run_sync(...)``) gives a
    :class:`GuardedResult`; every run has its own guard state, cost capture and run id."""

    def __init__(
        self,
        agent: Any,
        controls: Controls,
        ledger: Ledger,
        wrap_up: bool,
        accountant: Accountant,
        attribution: Attribution,
        log_prompts: bool = False,
        exporters: Any = None,
    ) -> None:
        self.agent = agent  # the user's agent, never modified
        self.exporters = exporters
        #: The name of the run's ``invoke_agent`` span (exporters): the agent id, else the agent's name.
        self.name = attribution.agent_id or getattr(agent, "name", None) or type(agent).__name__
        self.log_prompts = log_prompts
        self.controls = controls
        self.ledger = ledger
        self.wrap_up = wrap_up
        self.accountant = accountant
        self.attribution = attribution
        self.guarded, self.llm_fronted, self.tools_fronted = guarded_copy(agent)
        #: Spend anomalies fed every call of a run (``guard(anomalies=...)`` or the budgets').
        self.anomalies: Any = controls.anomalies

    def _scope(self, run_id: str) -> ScopeContext:
        a = read_attribution(active_instrument_tags.get(), defaults=self.attribution)
        return ScopeContext(
            trace_id=run_id, session_id=a.session_id, user_id=a.user_id, feature=a.feature, agent_id=a.agent_id
        )

    async def run(
        self, user_msg: Any = None, *, on_event: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> GuardedResult:
        """Run the agent once (``user_msg`` and ``kwargs`` as for ``agent.run``: ``chat_history``,
        ``memory``, ``ctx``, ``max_iterations``, ``run_id`` …). ``on_event`` (sync or async) sees
        every stream event of the run."""
        run_id = str(kwargs.pop("run_id", None) or uuid.uuid4())
        state = _RunState(self.controls.start(self._scope(run_id)), self.wrap_up)
        state.llm_fronted, state.tools_fronted = self.llm_fronted, self.tools_fronted
        ledger = Ledger("memory://", sync=True) if _covered_elsewhere(self.ledger) else self.ledger
        anomalies = self.anomalies if ledger is self.ledger else None  # else instrument()'s handler feeds it
        costs = _RunCostHandler(ledger, accountant=self.accountant, log_prompts=self.log_prompts,
                                exporters=self.exporters, anomalies=anomalies, **self.attribution.as_dict())  # fmt: skip
        costs.run_id = run_id
        costs.recording.on_record = state.note_priced  # the budgets settle at the ledger's number
        exporters = state.exporters = costs.recorder.exporters
        state.attribution = costs.recorder.defaults
        # With exporters: the run's invoke_agent span, current while the workflow's tasks are created
        # (they keep it), so the run's model and tool spans are its children.
        with nullcontext(None) if exporters is None else exporters.agent_run(self.name, costs.recorder.defaults) as span:
            costs.attach()
            try:
                if user_msg is not None:
                    kwargs["user_msg"] = user_msg
                token = _ACTIVE.set(state)  # the workflow's tasks are created now and keep it
                try:
                    handler = self.guarded.run(run_id=run_id, **kwargs)
                finally:
                    _ACTIVE.reset(token)
                output, halt = await self._drive(state, handler, on_event)
            finally:
                costs.detach()
            result = self._result(costs, state, output, halt)
            if span is not None:
                span.finish(result.events, result.termination_reason)
        return result

    def run_sync(self, user_msg: Any = None, **kwargs: Any) -> GuardedResult:
        """``asyncio.run(self.run(...))``, for code that is not already inside an event loop."""
        return asyncio.run(self.run(user_msg, **kwargs))

    @staticmethod
    async def _drive(
        state: _RunState, handler: Any, on_event: Callable[[Any], Any] | None
    ) -> tuple[Any, AgentHalted | None]:
        halt: AgentHalted | None = None
        watch = not (state.llm_fronted and state.tools_fronted)
        try:
            async for ev in handler.stream_events():
                if on_event is not None:
                    out = on_event(ev)
                    if inspect.isawaitable(out):
                        await out
                if watch and halt is None:
                    try:
                        state.observe(ev)
                    except AgentHalted as e:  # seen after the fact: stop the workflow where it is
                        halt = e
                        await handler.cancel_run()
                        break
            output = await handler
        except AgentHalted as e:
            return None, e
        except Exception as e:
            found = halt or _halt_in(e)
            if found is None:
                raise
            return None, found
        finally:
            done = getattr(handler, "is_done", None)
            if callable(done) and not done():
                await handler.cancel_run()
        if halt is not None:
            return None, halt
        return output, None

    @staticmethod
    def _result(costs: CostEventHandler, state: _RunState, output: Any, halt: AgentHalted | None) -> GuardedResult:
        events = list(costs.events)
        cost = sum((e.cost for e in events if e.cost is not None), Decimal(0))
        run = state.run
        nudges = list(run.nudges)
        if halt is None:
            halt = state.halt  # a graceful stop: the workflow finished with the wrap-up answer
            if halt is None:
                return GuardedResult(output, None, cost, events, _text_of(output), nudges=nudges)
        best = halt.partial if halt.partial is not None else run.best_answer()
        answer = (_text_of(output) or best) if output is not None else best
        final = ChatMessage(role=MessageRole.ASSISTANT, content=stop_text(halt, answer))
        return GuardedResult(
            output if output is not None else answer, halt.reason, cost, events, answer, final, halt, nudges
        )


def guard(
    agent: Any,
    *,
    budgets: Any = None,
    stuck: Any = None,
    kill_switch: Any = None,
    breaker: Any = None,
    ledger: Any = None,
    wrap_up: bool = True,
    **options: Any,
) -> GuardedAgent:
    """Wrap a ``FunctionAgent``, ``ReActAgent`` or ``AgentWorkflow`` (or a workflow that streams
    the agent events).

    ``budgets``: a Budget, several, or a BudgetEnforcer; ``stuck``: a StuckDetector or True;
    ``kill_switch``: a KillSwitch or True (``AGENTCOST_KILL_SWITCH``); ``breaker``: a
    CircuitBreaker or True. ``wrap_up``: end a stuck agent with one final answer call (True) or at
    once (False). ``ledger`` (a Ledger, a URL or None for the default) and ``options`` (``catalog``,
    ``anomalies`` (a SpendAnomalies fed every call) and the attribution defaults ``user_id``, ``session_id``, ``feature``, ``agent_id``,
    ``task_id``; ``instrument_tags`` set around a run override them) are those of ``instrument()``.
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"guard() got unknown option(s) {sorted(unknown)}; use {sorted(_OPTIONS)}")
    if not callable(getattr(agent, "run", None)):
        raise TypeError(f"guard() takes a LlamaIndex agent or workflow, got {type(agent).__name__}")
    if not isinstance(wrap_up, bool):
        raise TypeError(f"wrap_up must be True or False, got {wrap_up!r}")
    controls = Controls(budgets=budgets, stuck=stuck, kill_switch=kill_switch, breaker=breaker)
    if not controls.active:
        raise TypeError("guard() needs at least one of budgets=, stuck=, kill_switch=, breaker=")
    resolved = resolve_ledger(ledger)
    attribution = Attribution.of(
        {k: v for k, v in options.items() if k not in ("catalog", "log_prompts", "exporters", "anomalies")}
    )
    exporters = options.get("exporters")
    Exporters.of(exporters)  # bad exporters fail here, not at the first run
    accountant = Accountant(options.get("catalog"))
    log_prompts = options.get("log_prompts", False)
    PromptLogging.of(log_prompts)  # a bad value fails here, not at the first run
    controls.attach(resolved, "llamaindex", accountant, log_prompts=log_prompts)  # the budgets price as the ledger does
    guarded = GuardedAgent(agent, controls, resolved, wrap_up, accountant, attribution, log_prompts, exporters)
    if options.get("anomalies") is not None:
        guarded.anomalies = options["anomalies"]
    return guarded
