"""``CachedTool`` on real LlamaIndex FunctionTools and a FunctionAgent (a scripted function-calling
LLM reporting realistic usage): one run per distinct call within the TTL, hits recorded with
``saved``, scoped per user through ``instrument_tags``, errors never kept."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context

from agentcost_core import ConfigurationError, Ledger
from agentcost_core.tool_cache import ToolCache
from agentcost_llamaindex import CachedTool, instrument
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RUNS: list[tuple[str, Any]] = []


def search_orders(order: str) -> str:
    """Look an order up by its number."""
    RUNS.append(("search_orders", order))
    return f"order {order}: shipped Tuesday"


def send_email(to: str) -> str:
    """Send an email (a side effect: never cached)."""
    RUNS.append(("send_email", to))
    return f"sent to {to}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    RUNS.clear()


def script(*calls: tuple[str, dict[str, Any]]) -> ScriptedLLM:
    return ScriptedLLM(script=[{"tool": name, "args": args} for name, args in calls] + ["All done."],
                       model="gpt-4o-mini-2024-07-18")  # fmt: skip


async def test_function_agent_runs_a_cached_tool_once_and_records_the_hit() -> None:
    ledger = Ledger("memory://", sync=True)
    search = CachedTool(FunctionTool.from_defaults(search_orders), ttl=300, cost="0.003", ledger=ledger)
    llm = script(("search_orders", {"order": "4417"}), ("send_email", {"to": "a@b.c"}),
                 ("search_orders", {"order": "4417"}), ("send_email", {"to": "a@b.c"}))  # fmt: skip
    agent = FunctionAgent(tools=[search, FunctionTool.from_defaults(send_email)], llm=llm)
    with instrument(ledger) as h:
        with instrument_tags({"user_id": "u1", "feature": "support"}):
            handler = agent.run("Where is order 4417?")
        result = await handler
    assert "All done." in str(result)
    assert RUNS == [("search_orders", "4417"), ("send_email", "a@b.c"), ("send_email", "a@b.c")]
    outputs = [c.tool_output for c in result.tool_calls]
    assert outputs[2].content == outputs[0].content == "order 4417: shipped Tuesday"
    assert outputs[2].raw_output == outputs[0].raw_output and not outputs[2].is_error
    [hit] = [e for e in ledger.events() if e.kind == "tool"]
    assert (hit.cache_hit, hit.cost, hit.saved, hit.user_id, hit.feature, hit.framework) == (
        True, Decimal(0), Decimal("0.003"), "u1", "support", "llamaindex")  # fmt: skip
    assert len(h.events) == 5 and all(e.kind == "llm" and e.cost > 0 for e in h.events)  # model calls unchanged


async def test_entries_are_scoped_per_user() -> None:
    search = CachedTool(FunctionTool.from_defaults(search_orders), ttl=300, ledger="memory://")
    for user in ("u1", "u2", "u1"):
        agent = FunctionAgent(tools=[search], llm=script(("search_orders", {"order": "7"})))
        with instrument_tags({"user_id": user}):
            handler = agent.run("order 7?")
        await handler
    assert RUNS == [("search_orders", "7"), ("search_orders", "7")]
    assert [(e.user_id, e.cache_hit) for e in search.cache.recorder.events] == [("u1", True)]


def test_sync_calls_hit_and_share_one_cache() -> None:
    shared = ToolCache({"search_orders": 60, "send_email": 0}, ledger="memory://")
    a = CachedTool(FunctionTool.from_defaults(search_orders), cache=shared)
    b = CachedTool(FunctionTool.from_defaults(search_orders), cache=shared)
    first, second = a.call(order="1"), b(order="1")
    assert (second.content, second.raw_input, second.tool_name) == (first.content, {"args": (), "kwargs": {"order": "1"}},
                                                                    "search_orders")  # fmt: skip
    assert a.metadata.name == "search_orders" and "order" in a.metadata.get_parameters_dict()["properties"]
    assert RUNS == [("search_orders", "1")] and shared.hits == 1


async def test_error_outputs_and_exceptions_are_never_kept() -> None:
    def flaky(query: str) -> str:
        """Fails every time."""
        RUNS.append(("flaky", query))
        raise TimeoutError("upstream timed out")

    cached = CachedTool(FunctionTool.from_defaults(flaky), ttl=60, ledger="memory://")
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await cached.acall(query="x")
    agent = FunctionAgent(tools=[cached], llm=script(("flaky", {"query": "y"}), ("flaky", {"query": "y"})))
    result = await agent.run("go")
    assert [c.tool_output.is_error for c in result.tool_calls] == [True, True]
    assert len(RUNS) == 4 and cached.cache.hits == 0


def test_configuration_errors() -> None:
    tool = FunctionTool.from_defaults(search_orders)
    with pytest.raises(ConfigurationError):
        CachedTool(tool)
    with pytest.raises(ConfigurationError):
        CachedTool(tool, cache=ToolCache({"other": 1}, ledger="memory://"))
    with pytest.raises(TypeError):
        CachedTool(tool, ttl=1, cache=ToolCache({"search_orders": 1}, ledger="memory://"))
    with pytest.raises(TypeError):
        CachedTool(search_orders, ttl=1)  # type: ignore[arg-type]

    async def with_state(ctx: Context, order: str) -> str:
        """Reads the run's state."""
        return order

    with_state.__annotations__["ctx"] = Context  # as without `from __future__ import annotations`
    assert FunctionTool.from_defaults(with_state).requires_context
    with pytest.raises(ConfigurationError):
        CachedTool(FunctionTool.from_defaults(with_state), ttl=1)


def test_changing_what_a_hit_returned_changes_no_later_hit() -> None:
    def lookup(order_id: str) -> dict[str, Any]:
        """Look an order up."""
        return {"order": order_id, "items": [1]}

    cached = CachedTool(FunctionTool.from_defaults(lookup, name="lookup_order"), ttl=60, ledger="memory://")
    with instrument_tags({"user_id": "alice"}):
        first = cached.call(order_id="1")
        first.raw_output["items"].append(999)  # the caller changes the real call's answer
        hit = cached.call(order_id="1")
        assert hit.raw_output == {"order": "1", "items": [1]}
        hit.raw_output["items"].append(998)  # and a hit's
        assert cached.call(order_id="1").raw_output == {"order": "1", "items": [1]}
