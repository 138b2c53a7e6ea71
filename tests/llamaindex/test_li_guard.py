"""guard() for LlamaIndex agents: stuck agents are nudged then stopped with their best answer,
productive ones are left alone, budgets and the kill switch stop runs before the next call, and
the user's agent is left exactly as it was."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import (
    AgentOutput,
    AgentWorkflow,
    FunctionAgent,
    ReActAgent,
    ToolCall,
    ToolCallResult,
)
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.tools import ToolOutput
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step
from pydantic import Field

from agentcost_core import Budget, BudgetExceeded, CircuitBreaker, KillSwitch, Ledger, StuckDetector
from agentcost_core.halts import TerminationReason
from agentcost_llamaindex import GuardedResult, guard, instrument
from agentcost_llamaindex.testing import ScriptedLLM

# Workflows' step discovery runs inspect.getmembers over pydantic objects, which warns.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WRAP_UP = "Stop working on the task now"
QUESTION = "What is the capital of France?"
FACT = "Paris is the capital of France."
SAME_CALL = {"tool": "lookup", "args": {"q": "capital of France"}}


class RecordingLLM(ScriptedLLM):
    """ScriptedLLM that keeps every input it got and answers a wrap-up instruction the way a
    compliant model does (with ``final``), without moving on in its script."""

    inputs: list[Any] = Field(default_factory=list)
    final: str = "The capital of France is Paris."

    def _reply(self, messages: Any) -> Any:
        self.inputs.append(list(messages))
        if WRAP_UP in (messages[-1].content or ""):
            script, turn = self.script, self.turn
            self.script, self.turn = [self.final], 0
            try:
                return super()._reply(messages)
            finally:
                self.script, self.turn = script, turn
        return super()._reply(messages)


class Lookups:
    """A lookup tool that counts its calls."""

    def __init__(self, answer: Any = FACT) -> None:
        self.calls: list[str] = []
        self.answer = answer

    def __call__(self, q: str) -> str:
        """Look something up."""
        self.calls.append(q)
        return self.answer(q) if callable(self.answer) else self.answer

    def tool(self) -> Any:
        def lookup(q: str) -> str:
            """Look something up."""
            return self(q)

        return lookup


def _assert_untouched(agent: Any, llm: Any) -> None:
    assert agent.llm is llm
    assert type(agent) in (FunctionAgent, ReActAgent)


def _event_cost(result: GuardedResult) -> Decimal:
    return sum((e.cost for e in result.events if e.cost is not None), Decimal(0))


# --- stuck agents ------------------------------------------------------------------------------
@pytest.mark.parametrize("streaming", [False, True])
async def test_repeating_agent_is_nudged_once_then_wrapped_up(streaming: bool) -> None:
    tool = Lookups()
    llm = RecordingLLM(script=[SAME_CALL])
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=streaming)

    result = await guard(agent, stuck=StuckDetector(), ledger="memory://").run(QUESTION)

    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert result.halt is not None and result.halt.details["tool"] == "lookup"
    # nudged at the 3rd identical call, halted at the 4th (which is not run), then one final answer
    assert len(tool.calls) == 3  # well within 7 tool calls
    assert len(result.nudges) == 1
    nudged = [i for i, msgs in enumerate(llm.inputs) if any("repeating yourself" in (m.content or "") for m in msgs)]
    assert nudged == [3]  # shown once, to the call after the nudge
    assert llm.inputs[3][-1].content == "[agentcost] " + result.nudges[0]
    wrap_up = llm.inputs[4]
    assert WRAP_UP in wrap_up[-1].content and len(llm.inputs) == 5
    assert any("Not run: the agent is being stopped" in (m.content or "") for m in wrap_up)
    # the wrap-up answer ends the run the normal way
    assert isinstance(result.output, AgentOutput)
    assert result.answer == "The capital of France is Paris."
    assert isinstance(result.final_message, ChatMessage)
    assert "repeated_tool" in result.final_message.content and result.answer in result.final_message.content
    # cost: every model call of the run, priced
    assert len(result.events) == 5 and all(e.trace_id == result.events[0].trace_id for e in result.events)
    assert result.cost == _event_cost(result) > 0
    _assert_untouched(agent, llm)


@pytest.mark.parametrize("streaming", [False, True])
async def test_hard_stop_returns_best_answer_so_far(streaming: bool) -> None:
    tool = Lookups()
    llm = RecordingLLM(script=[SAME_CALL])
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=streaming)

    result = await guard(agent, stuck=True, ledger="memory://", wrap_up=False).run(QUESTION)

    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(tool.calls) == 3 and llm.turn == 4  # the 4th identical call never ran
    assert result.output == result.answer == FACT  # the latest tool result: the model wrote no text
    assert result.halt is not None and result.halt.partial == FACT
    assert "repeated_tool" in result.final_message.content and FACT in result.final_message.content
    assert len(result.nudges) == 1
    assert len(result.events) == 4 and result.cost == _event_cost(result) > 0
    _assert_untouched(agent, llm)


async def test_model_that_ignores_the_wrap_up_is_stopped_hard() -> None:
    tool = Lookups()
    llm = ScriptedLLM(script=[SAME_CALL])  # answers the wrap-up instruction with the same tool call
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=False)

    result = await guard(agent, stuck=True, ledger="memory://").run(QUESTION)

    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(tool.calls) == 3 and llm.turn == 5  # the wrap-up call was made, its tool call was not run
    assert result.output == result.answer == FACT
    _assert_untouched(agent, llm)


async def test_productive_agent_calling_one_tool_is_not_halted() -> None:
    tool = Lookups(answer=lambda q: f"page {q}: {len(q)} facts")
    script: list[Any] = [{"tool": "lookup", "args": {"q": f"topic {i}"}} for i in range(8)]
    llm = RecordingLLM(script=[*script, "Done: I read all eight pages."])
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=False)

    result = await guard(agent, stuck=True, ledger="memory://").run("Summarise the topics.")

    assert result.termination_reason is None and not result.stopped
    assert result.nudges == [] and result.halt is None and result.final_message is None
    assert len(tool.calls) == 8
    assert result.answer == "Done: I read all eight pages."
    assert isinstance(result.output, AgentOutput)
    assert len(result.events) == 9 and result.cost == _event_cost(result) > 0
    _assert_untouched(agent, llm)


async def test_react_agent_loop_is_stopped() -> None:
    tool = Lookups()
    react_call = 'Thought: I need to look this up.\nAction: lookup\nAction Input: {"q": "capital of France"}'
    llm = RecordingLLM(script=[react_call], final="Thought: I can answer now.\nAnswer: Paris")
    agent = ReActAgent(tools=[tool.tool()], llm=llm, streaming=False)

    result = await guard(agent, stuck=True, ledger="memory://").run(QUESTION)

    assert result.termination_reason in (TerminationReason.REPEATED_TOOL, TerminationReason.SIMILARITY_LOOP)
    assert 1 <= len(tool.calls) <= 7
    assert len(result.nudges) == 1
    assert WRAP_UP in llm.inputs[-1][-1].content
    assert result.answer == "Paris"  # ReActAgent strips "Answer:" from its final output
    assert result.cost == _event_cost(result) > 0 and len(result.events) == llm.turn + 1
    _assert_untouched(agent, llm)


async def test_agent_workflow_loop_is_stopped() -> None:
    tool = Lookups()
    llm = RecordingLLM(script=[SAME_CALL])
    researcher = FunctionAgent(name="researcher", description="Looks things up.", tools=[tool.tool()], llm=llm)
    workflow = AgentWorkflow(agents=[researcher], root_agent="researcher")

    result = await guard(workflow, stuck=True, ledger="memory://").run(QUESTION)

    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(tool.calls) == 3 and len(result.nudges) == 1
    assert result.answer == "The capital of France is Paris."
    assert result.cost == _event_cost(result) > 0
    assert researcher.llm is llm and type(workflow) is AgentWorkflow


# --- budgets -------------------------------------------------------------------------------------
async def test_budget_stops_a_looping_agent_within_its_cap() -> None:
    tool = Lookups(answer=lambda q: f"result for {q}")
    llm = RecordingLLM(
        model="gpt-4o-2024-08-06", max_tokens=512,
        script=[{"tool": "lookup", "args": {"q": f"query {i}"}} for i in range(500)],
    )  # fmt: skip
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=False)
    cap = Decimal("0.05")

    result = await guard(agent, budgets=Budget(usd=cap, per="run"), ledger="memory://").run(
        QUESTION, max_iterations=500
    )

    assert result.termination_reason is TerminationReason.BUDGET
    assert isinstance(result.halt, BudgetExceeded)
    assert Decimal(0) < result.cost <= cap
    assert result.cost == _event_cost(result)
    assert 2 <= llm.turn < 500 and len(result.events) == llm.turn  # the refused call was never made
    assert result.answer == f"result for query {llm.turn - 1}"  # the latest tool result
    _assert_untouched(agent, llm)


async def test_budget_scopes_follow_the_run_and_instrument_tags() -> None:
    llm = RecordingLLM(script=["Paris."])
    agent = FunctionAgent(tools=[], llm=llm, streaming=False)
    per_run = guard(agent, budgets=Budget(model_calls=1, per="run"), ledger="memory://")
    assert [(await per_run.run(QUESTION)).termination_reason for _ in range(2)] == [None, None]

    per_session = guard(agent, budgets=Budget(model_calls=1, per="session"), ledger="memory://")
    with instrument_tags({"session_id": "s1"}):
        first = await per_session.run(QUESTION)
        second = await per_session.run(QUESTION)
    with instrument_tags({"thread_id": "s2"}):
        other = await per_session.run(QUESTION)
    assert first.termination_reason is None and first.answer == "Paris."
    assert second.termination_reason is TerminationReason.BUDGET and second.events == []
    assert other.termination_reason is None
    assert llm.turn == 4


# --- kill switch ---------------------------------------------------------------------------------
async def test_kill_switch_stops_before_the_next_model_call(tmp_path: Path) -> None:
    switch = tmp_path / "kill"
    tool = Lookups()

    def lookup(q: str) -> str:
        """Look something up."""
        if len(tool.calls) == 1:
            switch.write_text("1")  # an operator flips the switch while the 2nd tool call runs
        return tool(q)

    llm = RecordingLLM(script=[{"tool": "lookup", "args": {"q": f"q{i}"}} for i in range(10)])
    agent = FunctionAgent(tools=[lookup], llm=llm, streaming=False)

    result = await guard(agent, kill_switch=KillSwitch(env=None, file=switch, ttl=0), ledger="memory://").run(QUESTION)

    assert result.termination_reason is TerminationReason.KILL_SWITCH
    assert len(tool.calls) == 2 and llm.turn == 2  # no model call after the switch was flipped
    assert result.answer == FACT
    assert len(result.events) == 2
    _assert_untouched(agent, llm)


async def test_kill_switch_stops_before_the_next_tool_call(tmp_path: Path) -> None:
    switch = tmp_path / "kill"
    tool = Lookups()

    class FlippingLLM(RecordingLLM):
        def _reply(self, messages: Any) -> Any:
            if self.turn == 1:
                switch.write_text("1")  # flipped while the model writes its 2nd tool call
            return super()._reply(messages)

    llm = FlippingLLM(script=[{"tool": "lookup", "args": {"q": f"q{i}"}} for i in range(10)])
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=False)

    result = await guard(agent, kill_switch=KillSwitch(env=None, file=switch, ttl=0), ledger="memory://").run(QUESTION)

    assert result.termination_reason is TerminationReason.KILL_SWITCH
    assert llm.turn == 2 and tool.calls == ["q0"]  # the 2nd tool call never ran
    _assert_untouched(agent, llm)


async def test_kill_switch_already_on_stops_before_any_call(tmp_path: Path) -> None:
    switch = tmp_path / "kill"
    switch.write_text("1")
    llm = RecordingLLM(script=["Paris."])
    agent = FunctionAgent(tools=[], llm=llm, streaming=True)

    result = await guard(agent, kill_switch=KillSwitch(env=None, file=switch, ttl=0), ledger="memory://").run(QUESTION)

    assert result.termination_reason is TerminationReason.KILL_SWITCH
    assert llm.turn == 0 and result.events == [] and result.cost == 0
    assert result.output is None and result.answer is None
    assert "I found no answer yet" in result.final_message.content


# --- circuit breaker -----------------------------------------------------------------------------
async def test_open_circuit_answers_instead_of_calling_the_tool() -> None:
    attempts: list[str] = []

    def flaky(q: str) -> str:
        """A tool whose backend is down."""
        attempts.append(q)
        raise ConnectionError("backend down")

    script: list[Any] = [{"tool": "flaky", "args": {"q": f"q{i}"}} for i in range(3)]
    llm = RecordingLLM(script=[*script, "I could not reach the backend."])
    agent = FunctionAgent(tools=[flaky], llm=llm, streaming=False)

    result = await guard(agent, breaker=CircuitBreaker(failure_threshold=2), ledger="memory://").run(QUESTION)

    assert result.termination_reason is None
    assert attempts == ["q0", "q1"]  # the 3rd call met the open circuit
    last_tool_result = [m for m in llm.inputs[3] if m.role == "tool"][-1]
    assert "It may be retried" in last_tool_result.content and "flaky" in last_tool_result.content
    assert result.answer == "I could not reach the backend."


# --- cost capture and isolation ------------------------------------------------------------------
async def test_concurrent_runs_record_only_their_own_calls() -> None:
    ledger = Ledger("memory://", sync=True)
    loop_llm = RecordingLLM(script=[SAME_CALL])
    quick_llm = RecordingLLM(script=[{"tool": "lookup", "args": {"q": "France"}}, "Paris."])
    looping = FunctionAgent(tools=[Lookups().tool()], llm=loop_llm, streaming=False)
    quick = FunctionAgent(tools=[Lookups().tool()], llm=quick_llm, streaming=True)

    a, b = await asyncio.gather(
        guard(looping, stuck=True, ledger=ledger, wrap_up=False).run(QUESTION),
        guard(quick, stuck=True, ledger=ledger).run(QUESTION),
    )

    assert a.termination_reason is TerminationReason.REPEATED_TOOL and b.termination_reason is None
    assert len(a.events) == loop_llm.turn == 4 and len(b.events) == quick_llm.turn == 2
    assert {e.trace_id for e in a.events}.isdisjoint({e.trace_id for e in b.events})
    assert ledger.count(kind="llm") == 6  # each call once in the ledger


async def test_no_duplicate_ledger_rows_under_instrument() -> None:
    ledger = Ledger("memory://", sync=True)
    llm = RecordingLLM(script=[{"tool": "lookup", "args": {"q": "France"}}, "Paris."])
    agent = FunctionAgent(tools=[Lookups().tool()], llm=llm, streaming=False)
    with instrument(ledger) as h:
        result = await guard(agent, stuck=True, ledger=ledger).run(QUESTION)
    assert len(h.events) == len(result.events) == 2
    assert ledger.count(kind="llm") == 2
    assert result.cost == h.total_cost > 0


async def test_guarded_agent_is_transparent_outside_its_runs() -> None:
    llm = RecordingLLM(script=[SAME_CALL])
    tool = Lookups()
    agent = FunctionAgent(tools=[tool.tool()], llm=llm, streaming=False)
    guarded = guard(agent, stuck=True, ledger="memory://", wrap_up=False)
    assert (await guarded.run(QUESTION)).stopped
    # the same agent, unguarded, runs into LlamaIndex's own iteration cap as it would have before
    with pytest.raises(Exception, match="Max iterations"):
        await agent.run(QUESTION, max_iterations=6)
    assert len(tool.calls) == 3 + 5
    _assert_untouched(agent, llm)


def test_run_sync() -> None:
    llm = RecordingLLM(script=["Paris."])
    agent = FunctionAgent(tools=[], llm=llm, streaming=False)
    result = guard(agent, stuck=True, ledger="memory://").run_sync(QUESTION)
    assert result.answer == "Paris." and result.termination_reason is None and result.cost > 0


# --- a workflow without an LLM to front: the stream events are watched -----------------------
class Tick(Event):
    n: int


class ToolLoop(Workflow):
    """Streams the agent events of an agent that repeats one tool call, up to 200 times."""

    @step
    async def begin(self, ev: StartEvent) -> Tick:
        return Tick(n=0)

    @step
    async def tick(self, ctx: Context, ev: Tick) -> Tick | StopEvent:
        if ev.n >= 200:
            return StopEvent(result="ran to the end")
        call = ToolCall(tool_name="lookup", tool_kwargs={"q": "same"}, tool_id=f"t{ev.n}")
        ctx.write_event_to_stream(call)
        output = ToolOutput(tool_name="lookup", content="same result", raw_input={"q": "same"})
        ctx.write_event_to_stream(
            ToolCallResult(tool_name="lookup", tool_kwargs={"q": "same"}, tool_id=f"t{ev.n}",
                           tool_output=output, return_direct=False)
        )  # fmt: skip
        return Tick(n=ev.n + 1)


async def test_stream_events_stop_a_workflow_the_fronts_cannot_reach() -> None:
    seen: list[str] = []
    result = await guard(ToolLoop(timeout=30), stuck=True, ledger="memory://").run(
        on_event=lambda ev: seen.append(type(ev).__name__)
    )
    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(result.nudges) == 1
    assert result.answer == "same result"
    assert seen.count("ToolCall") >= 4  # the halt came from the 4th identical call seen on the stream


# --- construction --------------------------------------------------------------------------------
def test_guard_needs_a_control_and_known_options() -> None:
    agent = FunctionAgent(tools=[], llm=RecordingLLM())
    with pytest.raises(TypeError, match="at least one"):
        guard(agent)
    with pytest.raises(TypeError, match="unknown option"):
        guard(agent, stuck=True, colour="red")
    with pytest.raises(TypeError, match="agent or workflow"):
        guard(object(), stuck=True)
