"""Tool-result caching on real ``create_agent`` agents (a scripted chat model reporting realistic
usage): ``ToolCacheMiddleware`` and ``@cached_tool``, sync and async, scoped per user."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool, ToolException, tool

from agentcost_core import ConfigurationError, Ledger
from agentcost_core.tool_cache import ToolCache
from agentcost_langchain import CostCallbackHandler, ToolCacheMiddleware, cached_tool
from agentcost_langchain.testing import ScriptedChatModel

RUNS: list[tuple[str, Any]] = []


@tool
def search(query: str) -> str:
    """Search the order database."""
    RUNS.append(("search", query))
    return f"order {query}: shipped Tuesday (lookup #{len(RUNS)})"


@tool
def send_email(to: str) -> str:
    """Send an email (a side effect: never cached)."""
    RUNS.append(("send_email", to))
    return f"sent to {to}"


def _flaky(query: str) -> str:
    """Fails every time."""
    RUNS.append(("flaky", query))
    raise ToolException("upstream 503")


flaky = StructuredTool.from_function(_flaky, name="flaky", handle_tool_error=True)  # answers with an error message


@pytest.fixture(autouse=True)
def _clear() -> None:
    RUNS.clear()


def calls(*tool_calls: tuple[str, dict[str, Any]]) -> ScriptedChatModel:
    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{i}"}])
        for i, (name, args) in enumerate(tool_calls)
    ]
    return ScriptedChatModel(script=[*script, "done"], model="gpt-4o-mini", max_tokens=256)


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def test_middleware_runs_a_listed_tool_once_and_records_the_hit() -> None:
    ledger = Ledger("memory://", sync=True)
    handler = CostCallbackHandler(ledger)
    mw = ToolCacheMiddleware({"search": 300}, cost={"search": "0.002"}, ledger=ledger)
    model = calls(("search", {"query": "4417"}), ("send_email", {"to": "a@b.c"}),
                  ("search", {"query": "4417"}), ("send_email", {"to": "a@b.c"}))  # fmt: skip
    agent = create_agent(model, tools=[search, send_email], middleware=[mw])
    result = agent.invoke({"messages": [HumanMessage("where is order 4417?")]},
                          config={"callbacks": [handler], "metadata": {"user_id": "u1", "feature": "support"}})  # fmt: skip
    assert RUNS == [("search", "4417"), ("send_email", "a@b.c"), ("send_email", "a@b.c")]
    answers = tool_messages(result)
    assert [m.tool_call_id for m in answers] == ["call_0", "call_1", "call_2", "call_3"]
    assert answers[2].content == answers[0].content and answers[2].name == "search" and answers[2].status == "success"
    [hit] = [e for e in ledger.events() if e.kind == "tool"]
    assert (hit.cache_hit, hit.cost, hit.saved, hit.user_id, hit.feature) == (
        True,
        0,
        Decimal("0.002"),
        "u1",
        "support",
    )
    llm = [e for e in ledger.events() if e.kind == "llm"]
    assert len(llm) == 5 and all(e.cost and e.cost > 0 and not e.cache_hit for e in llm)  # model calls unchanged


def test_middleware_never_shares_results_across_users() -> None:
    mw = ToolCacheMiddleware({"search": 300}, ledger="memory://")
    for user in ("u1", "u2", "u1"):
        agent = create_agent(calls(("search", {"query": "4417"})), tools=[search], middleware=[mw])
        agent.invoke({"messages": [HumanMessage("order 4417?")]}, config={"metadata": {"user_id": user}})
    assert RUNS == [("search", "4417"), ("search", "4417")]
    assert [(e.user_id, e.cache_hit) for e in mw.cache.recorder.events] == [("u1", True)]


def test_middleware_async_agent_hits_too() -> None:
    mw = ToolCacheMiddleware({"search": 300}, ledger="memory://")
    agent = create_agent(calls(("search", {"query": "1"}), ("search", {"query": "1"}), ("search", {"query": "2"})),
                         tools=[search], middleware=[mw])  # fmt: skip
    result = asyncio.run(agent.ainvoke({"messages": [HumanMessage("orders")]}))
    assert RUNS == [("search", "1"), ("search", "2")]
    assert [m.tool_call_id for m in tool_messages(result)] == ["call_0", "call_1", "call_2"]
    assert mw.cache.hits == 1


def test_middleware_does_not_keep_error_results() -> None:
    mw = ToolCacheMiddleware({"flaky": 300}, ledger="memory://")
    agent = create_agent(calls(("flaky", {"query": "x"}), ("flaky", {"query": "x"})), tools=[flaky], middleware=[mw])
    result = agent.invoke({"messages": [HumanMessage("go")]})
    assert RUNS == [("flaky", "x"), ("flaky", "x")]
    assert [m.status for m in tool_messages(result)] == ["error", "error"]
    assert mw.cache.hits == 0


def test_middleware_shares_one_cache_with_the_decorator() -> None:
    shared = ToolCache({"search": 300}, ledger="memory://")
    cached_search = cached_tool(search, cache=shared)
    assert cached_search.invoke({"query": "7"}) == cached_search.invoke({"query": "7"})
    agent = create_agent(
        calls(("search", {"query": "7"})), tools=[search], middleware=[ToolCacheMiddleware(cache=shared)]
    )
    agent.invoke({"messages": [HumanMessage("order 7?")]})
    assert RUNS == [("search", "7")] and shared.hits == 2


def test_cached_tool_decorator_inside_an_agent_without_middleware() -> None:
    ledger = Ledger("memory://", sync=True)

    @cached_tool(ttl=60, cost="0.01", ledger=ledger)
    @tool
    def weather(city: str) -> str:
        """Current weather for a city."""
        RUNS.append(("weather", city))
        return f"{city}: 18C"

    assert weather.name == "weather" and "city" in weather.args
    agent = create_agent(calls(("weather", {"city": "Oslo"}), ("weather", {"city": "Oslo"})), tools=[weather])
    result = agent.invoke({"messages": [HumanMessage("weather?")]}, config={"metadata": {"user_id": "u9"}})
    assert RUNS == [("weather", "Oslo")]
    assert [m.content for m in tool_messages(result)] == ["Oslo: 18C", "Oslo: 18C"]
    [hit] = ledger.events()
    assert (hit.kind, hit.cache_hit, hit.saved, hit.user_id) == ("tool", True, Decimal("0.01"), "u9")


def test_cached_tool_on_a_plain_function_async_and_with_artifacts() -> None:
    @cached_tool(ttl=60, ledger="memory://")
    def lookup(order: int) -> str:
        """Look an order up."""
        RUNS.append(("lookup", order))
        return f"order {order}"

    @cached_tool(ttl=60, ledger="memory://")
    @tool(response_format="content_and_artifact")
    def rows(table: str) -> tuple[str, list[int]]:
        """Rows of a table."""
        RUNS.append(("rows", table))
        return "3 rows", [1, 2, 3]

    async def main() -> list[Any]:
        return [await lookup.ainvoke({"order": 5}), await lookup.ainvoke({"order": 5})]

    assert asyncio.run(main()) == ["order 5", "order 5"]
    call = {"name": "rows", "args": {"table": "t"}, "id": "c1", "type": "tool_call"}
    first, second = rows.invoke(call), rows.invoke({**call, "id": "c2"})
    assert (second.content, second.artifact, second.tool_call_id) == ("3 rows", [1, 2, 3], "c2")
    assert first.artifact == second.artifact
    assert RUNS == [("lookup", 5), ("rows", "t")]


def test_cached_tool_keeps_errors_as_errors_and_uncached() -> None:
    handled = cached_tool(flaky, ttl=60, ledger="memory://")
    call = {"name": "flaky", "args": {"query": "x"}, "id": "c1", "type": "tool_call"}
    answers = [handled.invoke(call), handled.invoke(call)]
    assert [a.status for a in answers] == ["error", "error"] and "upstream 503" in answers[0].content
    raising = cached_tool(StructuredTool.from_function(_flaky, name="flaky"), ttl=60, ledger="memory://")
    with pytest.raises(ToolException, match="upstream 503"):
        raising.invoke({"query": "y"})
    assert len(RUNS) == 3


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        ToolCacheMiddleware()
    with pytest.raises(ConfigurationError):
        cached_tool(search)
    with pytest.raises(ConfigurationError):
        cached_tool(search, cache=ToolCache({"other": 1}, ledger="memory://"))
    with pytest.raises(TypeError):
        ToolCacheMiddleware({"search": 1}, cache=ToolCache({"search": 1}, ledger="memory://"))


def test_stuck_detection_listed_before_the_cache_still_sees_every_repeated_call() -> None:
    from agentcost_core import TerminationReason
    from agentcost_core.guards import StuckDetector
    from agentcost_langchain.middleware import StuckMiddleware, termination_of

    ask = AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": "4417"}, "id": "c"}])
    model = ScriptedChatModel(script=[ask] * 50 + ["done"], model="gpt-4o-mini", max_tokens=256)
    cache = ToolCacheMiddleware({"search": 300}, ledger="memory://")
    agent = create_agent(model, tools=[search], middleware=[StuckMiddleware(StuckDetector()), cache])
    out = agent.invoke({"messages": [HumanMessage("Where is my order?")]}, {"recursion_limit": 120})
    assert termination_of(out["messages"]) is TerminationReason.REPEATED_TOOL  # the loop is still caught
    assert RUNS == [("search", "4417")] and cache.cache.hits >= 2  # while the tool itself ran once


def test_a_langgraph_interrupt_in_a_cached_tool_passes_through_and_is_not_kept() -> None:
    from langgraph.errors import GraphInterrupt

    @cached_tool(ttl=60, ledger="memory://")
    def approve(order: int) -> str:
        """Ask a human to approve an order."""
        RUNS.append(("approve", order))
        raise GraphInterrupt(())

    for _ in range(2):
        with pytest.raises(GraphInterrupt):
            approve.invoke({"order": 7})
    assert RUNS == [("approve", 7), ("approve", 7)]  # asked again: an interrupt is never a cached answer


def test_changing_a_hit_artifact_changes_no_later_hit() -> None:
    @cached_tool(ttl=60, ledger="memory://")
    @tool(response_format="content_and_artifact")
    def table_rows(table: str) -> tuple[str, list[int]]:
        """Rows of a table."""
        return "3 rows", [1, 2, 3]

    call = {"name": "table_rows", "args": {"table": "t"}, "id": "c1", "type": "tool_call"}
    table_rows.invoke(call).artifact.append(999)  # the caller changes the real call's artifact
    hit = table_rows.invoke({**call, "id": "c2"})
    assert hit.artifact == [1, 2, 3]
    hit.artifact.append(998)  # and a hit's
    assert table_rows.invoke({**call, "id": "c3"}).artifact == [1, 2, 3]
