"""RouterLLM: each call decided by a core Router and served by the chosen tier, measured once.

Tiers are offline fakes with OpenAI-shaped usage (``ScriptedLLM``), so routed calls are priced
at their tier's model. Every model call is one ``llm`` ledger event carrying ``event.tier`` and
the route's reason; every decision is one ``route`` event whose ``parent_id`` is that call's span.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import CompletionOnlyLLM, RawChatLLM, expected_cost, user
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.tools import FunctionTool
from pydantic import Field

from agentcost_core.errors import ConfigurationError
from agentcost_core.routing import HeuristicPolicy, Policy, RoutingDecision, RoutingError, StaticPolicy
from agentcost_llamaindex import RouterLLM, instrument
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MINI, BIG = "gpt-4o-mini", "gpt-4o"
SIMPLE = "Classify this ticket as billing or shipping: my parcel is late."
HARD = (
    "Explain why our checkout service times out under load, compare a queue versus a cache, "
    "then design a step by step plan and write a function that implements the retry."
)


class SpyLLM(ScriptedLLM):
    """A ScriptedLLM that counts the responses it was asked to parse for tool calls."""

    parsed: int = 0

    def get_tool_calls_from_response(self, response: Any, error_on_no_tool_call: bool = True, **kwargs: Any) -> Any:
        self.parsed += 1
        return super().get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


class LLMEventCounter(BaseEventHandler):
    """Counts the LLM start / end events the dispatcher sends, by the class that sent them."""

    starts: list[str] = Field(default_factory=list)
    ends: int = 0

    @classmethod
    def class_name(cls) -> str:
        return "LLMEventCounter"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, (LLMChatStartEvent, LLMCompletionStartEvent)):
            self.starts.append(event.span_id)
        elif isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            self.ends += 1


@pytest.fixture
def counter() -> Iterator[LLMEventCounter]:
    d = get_dispatcher()
    c = LLMEventCounter()
    d.add_event_handler(c)
    try:
        yield c
    finally:
        d.event_handlers = [h for h in d.event_handlers if h is not c]


def _tiers(**scripts: Any) -> dict[str, ScriptedLLM]:
    return {
        "nano": SpyLLM(model=MINI, script=scripts.get("nano", ["nano says hi"])),
        "frontier": SpyLLM(model=BIG, script=scripts.get("frontier", ["frontier says hi"])),
    }


def _split(h: Any) -> tuple[list[Any], list[Any]]:
    llm = [e for e in h.events if e.kind == "llm"]
    routes = [e for e in h.events if e.kind == "route"]
    return llm, routes


def _check_linked(h: Any, tiers: list[str]) -> None:
    """One llm event per call (tier + reason) and one route event per decision, linked."""
    calls, routes = _split(h)
    assert [e.tier for e in calls] == tiers
    assert [r.tier for r in routes] == tiers
    for call, route in zip(calls, routes):
        assert route.parent_id == call.span_id
        assert route.id == call.extra["route_id"] == route.extra["id"]
        assert call.extra["route_reason"] == route.extra["reason"] and call.extra["route_reason"]
        assert call.extra["top_tier"] == "frontier" and call.extra["top_model"] == BIG
        assert route.extra["model"] == (MINI if route.tier == "nano" else BIG)
        assert route.cost is None and route.model is None and route.trace_id == call.trace_id
        assert call.priced and not call.error
        assert call.cost == expected_cost(call.model, input=call.usage.input, output=call.usage.output)
        assert call.model == (MINI if call.tier == "nano" else BIG)
        assert call.span_id.startswith("SpyLLM.")  # the tier's span, not the router's


# --- chat / achat / stream_chat / astream_chat ----------------------------------------------
async def _call(router: RouterLLM, mode: str, text: str) -> str:
    msgs = [user(text)]
    if mode == "chat":
        return router.chat(msgs).message.content
    if mode == "achat":
        return (await router.achat(msgs)).message.content
    if mode == "stream_chat":
        return "".join(c.delta or "" for c in router.stream_chat(msgs))
    out = ""
    async for c in await router.astream_chat(msgs):
        out += c.delta or ""
    return out


MODES = ["chat", "achat", "stream_chat", "astream_chat"]


@pytest.mark.parametrize("mode", MODES)
async def test_heuristic_policy_routes_each_call(mode: str, counter: LLMEventCounter) -> None:
    tiers = _tiers()
    router = RouterLLM(tiers, HeuristicPolicy(("nano", "frontier")))
    with instrument("memory://") as h:
        assert await _call(router, mode, SIMPLE) == "nano says hi"
        assert await _call(router, mode, HARD) == "frontier says hi"
    assert tiers["nano"].turn == 1 and tiers["frontier"].turn == 1
    _check_linked(h, ["nano", "frontier"])
    calls, routes = _split(h)
    assert calls[0].extra["route_reason"].startswith("complexity ")
    assert routes[0].extra["policy"] == "heuristic" and routes[1].extra["score"] >= 0.5
    assert set(routes[1].extra["features"]) >= {"reasoning", "code_task"}
    # instrumentation fired once per call, from the tier (the router emits nothing of its own)
    assert len(counter.starts) == 2 and counter.ends == 2
    assert all(s.startswith("SpyLLM.") for s in counter.starts)
    assert h.total_cost == sum(e.cost for e in calls)
    assert not h.table.calls and not h.table.streams


@pytest.mark.parametrize("mode", MODES)
async def test_static_policy_routes_by_tag(mode: str) -> None:
    router = RouterLLM(_tiers(), StaticPolicy({"classify": "nano"}, default="frontier"))
    with instrument("memory://") as h:
        with instrument_tags({"tags": ["classify"], "user_id": "u-1", "thread_id": "t-9"}):
            await _call(router, mode, HARD)  # the tag wins over the text
        await _call(router, mode, SIMPLE)
    _check_linked(h, ["nano", "frontier"])
    calls, routes = _split(h)
    assert calls[0].extra["route_reason"] == "tag 'classify' routes to nano"
    assert calls[1].extra["route_reason"] == "static default frontier"
    # attribution tags survive the merge with the route tag, on both events
    assert calls[0].user_id == routes[0].user_id == "u-1" and calls[0].session_id == "t-9"
    assert calls[1].user_id is None


async def test_step_tag_and_completion_paths() -> None:
    router = RouterLLM(_tiers(), StaticPolicy({"summarise": "nano"}, default="frontier"))
    with instrument("memory://") as h:
        with instrument_tags({"step": "summarise"}):
            assert router.complete("hello").text == "hello"
            assert (await router.acomplete("hello")).text == "hello"
            assert "".join(c.delta for c in router.stream_complete("hi")) == "hi"
        out = ""
        async for c in await router.astream_complete("yo"):
            out += c.delta
        assert out == "yo"
    calls, routes = _split(h)
    assert [e.tier for e in calls] == ["nano", "nano", "nano", "frontier"]
    assert [e.requested_model for e in calls] == [MINI, MINI, MINI, BIG]
    assert calls[0].extra["route_reason"] == "step 'summarise' routes to nano"
    assert [r.parent_id for r in routes] == [e.span_id for e in calls]


async def test_lazy_stream_tier_is_tagged() -> None:
    """CustomLLM.astream_chat starts its inner call inside the stream: still tagged and counted once."""
    lazy = CompletionOnlyLLM(model=BIG)
    router = RouterLLM({"nano": SpyLLM(model=MINI), "frontier": lazy}, StaticPolicy({}, default="frontier"))
    with instrument("memory://") as h:
        text = ""
        async for c in await router.astream_chat([user("hi")]):
            text += c.delta or ""
    assert text.replace(" ", "") == lazy.text.replace(" ", "") and lazy.calls == 1
    calls, routes = _split(h)
    assert len(calls) == 1 and len(routes) == 1
    assert calls[0].tier == "frontier" and calls[0].estimated and routes[0].parent_id == calls[0].span_id


# --- agents ---------------------------------------------------------------------------------
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class PlanThenAnswer(Policy):
    """The first turn (only the user's message) plans on the frontier tier; follow-ups go to nano."""

    name = "plan-then-answer"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def tier_names(self) -> Any:
        return ("nano", "frontier")

    def choose(self, request: Any, tiers: Any) -> RoutingDecision:
        self.seen.append(request)
        tier = "frontier" if request.messages == 1 else "nano"
        return RoutingDecision(tier, f"{request.messages} message(s)", self.name)


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_on_the_router(streaming: bool, counter: LLMEventCounter) -> None:
    tiers = _tiers(frontier=[{"tool": "add", "args": {"a": 2, "b": 3}}], nano=["2 + 3 = 5"])
    policy = PlanThenAnswer()
    router = RouterLLM(tiers, policy)
    assert router.metadata.is_function_calling_model
    agent = FunctionAgent(tools=[add], llm=router, streaming=streaming)
    with instrument("memory://") as h:
        with instrument_tags({"user_id": "u-3"}):
            run = agent.run("What is 2 plus 3?")
        result = await run
    assert "5" in str(result)
    assert tiers["frontier"].turn == 1 and tiers["nano"].turn == 1
    # each response's tool calls were parsed by the tier that served it
    assert tiers["frontier"].parsed >= 1 and tiers["nano"].parsed >= 1
    assert [r.tools for r in policy.seen] == [1, 1]
    assert [r.text for r in policy.seen] == ["What is 2 plus 3?"] * 2
    _check_linked(h, ["frontier", "nano"])
    calls, routes = _split(h)
    assert len(counter.starts) == 2 and counter.ends == 2
    for e in h.events:
        assert e.trace_id == run.run_id and e.user_id == "u-3"
        assert e.step is not None and "run_agent_step" in e.step
    assert [r.step for r in routes] == [c.step for c in calls]
    assert [r.extra["policy"] for r in routes] == ["plan-then-answer"] * 2


async def test_react_agent_on_the_router() -> None:
    answer = "Thought: I can answer without using any more tools.\nAnswer: 42"
    tiers = _tiers(nano=[answer], frontier=[answer])
    router = RouterLLM(tiers, StaticPolicy({}, default="nano"))
    agent = ReActAgent(tools=[add], llm=router)
    with instrument("memory://") as h:
        result = await agent.run("What is six times seven?")
    assert "42" in str(result)
    assert tiers["nano"].turn == 1 and tiers["frontier"].turn == 0
    _check_linked(h, ["nano"])


async def test_query_engine_on_the_router() -> None:
    from llama_index.core import Document, SummaryIndex

    tiers = _tiers(nano=["Paris."], frontier=["Paris, because the document says so."])
    router = RouterLLM(tiers, HeuristicPolicy(("nano", "frontier")))
    index = SummaryIndex.from_documents([Document(text="Paris is the capital of France.")])
    with instrument("memory://") as h:
        assert str(index.as_query_engine(llm=router).query("What is the capital?")) == "Paris."
        hard = await index.as_query_engine(llm=router).aquery("Explain why, compare the options step by step.")
        assert "because" in str(hard)
        streamed = index.as_query_engine(llm=router, streaming=True).query("Capital?")
        assert "".join(streamed.response_gen) == "Paris."
    _check_linked(h, ["nano", "frontier", "nano"])
    assert [e.step for e in _split(h)[0]] == ["RouterLLM.predict", "RouterLLM.apredict", "RouterLLM.stream"]


def test_predict_and_call_and_prepared_kwargs() -> None:
    """The function-calling helpers: predict_and_call, and _prepare_chat_with_tools + chat."""
    tiers = _tiers(
        frontier=[{"tool": "add", "args": {"a": 1, "b": 1}}], nano=[{"tool": "add", "args": {"a": 4, "b": 4}}]
    )
    router = RouterLLM(tiers, HeuristicPolicy(("nano", "frontier")))
    tool = FunctionTool.from_defaults(fn=add)
    with instrument("memory://") as h:
        out = router.predict_and_call([tool], user_msg=HARD)
        assert out.response == "2" and tiers["frontier"].parsed == 1
        prepared = router._prepare_chat_with_tools([tool], user_msg=SIMPLE)
        assert prepared["tools"] == [tool]  # the tier's own format
        response = router.chat(**prepared)  # the decision made while preparing is the one used
        assert [t.tool_kwargs for t in router.get_tool_calls_from_response(response)] == [{"a": 4, "b": 4}]
    assert tiers["nano"].parsed == 1
    _check_linked(h, ["frontier", "nano"])


# --- errors and configuration ------------------------------------------------------------------
class Rogue(Policy):
    name = "rogue"

    def choose(self, request: Any, tiers: Any) -> RoutingDecision:
        return RoutingDecision("ultra", "always ultra", self.name)


async def test_unknown_tier_raises_a_routing_error() -> None:
    tiers = _tiers()
    router = RouterLLM(tiers, Rogue())
    with instrument("memory://") as h:
        with pytest.raises(RoutingError, match=r"'ultra'.*\['nano', 'frontier'\]"):
            router.chat([user("hi")])
        with pytest.raises(RoutingError):
            await router.achat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="hi")
    assert not h.events and tiers["nano"].turn == tiers["frontier"].turn == 0
    with pytest.raises(ConfigurationError, match="ultra"):
        RouterLLM(_tiers(), StaticPolicy({"x": "ultra"}))  # a named tier is checked up front
    with pytest.raises(ConfigurationError):
        RouterLLM({}, StaticPolicy({}))
    with pytest.raises(ConfigurationError, match="LlamaIndex LLM"):
        RouterLLM({"nano": object()}, StaticPolicy({}))


def test_unpriced_tier_is_warned_and_unpriced(caplog: pytest.LogCaptureFixture) -> None:
    tiers = {"nano": SpyLLM(model=MINI), "inhouse": SpyLLM(model="acme-inhouse-7b", script=["ok"])}
    with caplog.at_level(logging.WARNING, logger="agentcost.routing"):
        router = RouterLLM(tiers, StaticPolicy({"private": "inhouse"}, default="nano"))
    assert any("'inhouse'" in r.getMessage() and "no catalog price" in r.getMessage() for r in caplog.records)
    with instrument("memory://") as h:
        with instrument_tags({"tags": "private"}):
            router.chat([user("hi")])
        router.chat([user("hi")])
    calls, routes = _split(h)
    assert [e.tier for e in calls] == ["inhouse", "nano"]
    assert not calls[0].priced and calls[0].cost is None and calls[0].model == "acme-inhouse-7b"
    assert calls[1].priced
    assert h.unpriced_calls == 1  # the route events are not calls
    assert len(routes) == 2


def test_failed_call_keeps_its_route() -> None:
    boom = RawChatLLM(model=BIG, error=RuntimeError("provider down"))
    router = RouterLLM({"nano": SpyLLM(model=MINI), "frontier": boom}, StaticPolicy({}, default="frontier"))
    with instrument("memory://") as h, pytest.raises(RuntimeError, match="provider down"):
        router.chat([user("hi")])
    calls, routes = _split(h)
    assert len(calls) == 1 and calls[0].error and calls[0].tier == "frontier"
    assert routes[0].parent_id == calls[0].span_id and calls[0].extra["route_id"] == routes[0].id


def test_metadata_reports_the_top_tier() -> None:
    router = RouterLLM(_tiers(), StaticPolicy({}, default="nano"))
    md = router.metadata
    assert md.model_name == BIG and md.is_function_calling_model and md.is_chat_model
    assert md.context_window == _tiers()["frontier"].metadata.context_window
    mixed = RouterLLM(
        {"nano": SpyLLM(model=MINI), "frontier": RawChatLLM(model=BIG)}, StaticPolicy({}, default="frontier")
    )
    assert not mixed.metadata.is_function_calling_model
    with pytest.raises(ConfigurationError, match="not a function-calling LLM"):
        mixed.chat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg=HARD, tool_required=False)
    assert [t.name for t in router.router.tiers] == ["nano", "frontier"]
    assert router.decide([user(SIMPLE)]).tier == "nano"
