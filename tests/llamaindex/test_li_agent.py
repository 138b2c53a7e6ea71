"""A FunctionAgent run: one event per model call, the run id as trace, attribution from instrument_tags."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import ToolScriptLLM, expected_cost, openai_usage  # noqa: E402
from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock  # noqa: E402
from llama_index.core.instrumentation.dispatcher import instrument_tags  # noqa: E402

from agentcost_llamaindex import instrument  # noqa: E402

# FunctionAgent's constructor (workflows' step discovery) runs inspect.getmembers over pydantic
# objects, which warns; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SERVED = "gpt-4o-2024-08-06"


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _script() -> list:
    call = ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[ToolCallBlock(tool_call_id="call_1", tool_name="multiply", tool_kwargs={"a": 6, "b": 7})],
    )
    answer = ChatMessage(role=MessageRole.ASSISTANT, content="6 x 7 = 42")
    return [
        (call, {"id": "chatcmpl-a", "model": SERVED, "usage": openai_usage(420, 25)}),
        (answer, {"id": "chatcmpl-b", "model": SERVED, "usage": openai_usage(480, 12, cached=384)}),
    ]


COSTS = [
    expected_cost("gpt-4o", input=420, output=25),
    expected_cost("gpt-4o", input=96, cache_read=384, output=12),
]


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_run(streaming: bool) -> None:
    llm = ToolScriptLLM(model="gpt-4o", script=_script())
    agent = FunctionAgent(tools=[multiply], llm=llm, streaming=streaming)
    with instrument("memory://", feature="default-feature", agent_id="calculator") as h:
        with instrument_tags({"user_id": "u-7", "thread_id": "t-1", "feature": "math"}):
            run = agent.run("What is 6 times 7?")
        result = await run
    assert "42" in str(result)
    assert llm.turn == 2

    assert [e.cost for e in h.events] == COSTS
    assert h.total_cost == sum(COSTS)
    for e in h.events:
        assert e.model == SERVED and e.requested_model == "gpt-4o"
        assert e.trace_id == run.run_id
        assert e.user_id == "u-7"
        assert e.session_id == "t-1"  # thread_id is accepted for the session
        assert e.feature == "math"  # the tag wins over the constructor default
        assert e.agent_id == "calculator"  # constructor default where no tag is set
        assert e.step is not None and "run_agent_step" in e.step
        assert e.span_id.startswith("ToolScriptLLM.a")  # achat / astream_chat
        assert not e.estimated and e.error is None
    assert h.events[0].usage.input == 420 and h.events[1].usage.cache_read == 384
    assert not h.table.calls and not h.table.streams


async def test_two_runs_two_traces() -> None:
    with instrument("memory://") as h:
        for _ in range(2):
            llm = ToolScriptLLM(model="gpt-4o", script=_script())
            await FunctionAgent(tools=[multiply], llm=llm).run("What is 6 times 7?")
    assert len(h.events) == 4
    traces = [e.trace_id for e in h.events]
    assert traces[0] == traces[1] != traces[2] == traces[3]
    assert all(e.user_id is None for e in h.events)
