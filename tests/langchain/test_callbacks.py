"""One event per model call, whatever the run mode; attribution, trace and step; failure modes."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from agentcost_core import Usage  # noqa: E402
from agentcost_langchain import AsyncCostCallbackHandler, CostCallbackHandler, track_costs  # noqa: E402
from agentcost_langchain.testing import ScriptedChatModel  # noqa: E402

PROMPT = ChatPromptTemplate.from_messages([("system", "You answer briefly."), ("human", "{q}")])


def make_chain():
    return PROMPT | ScriptedChatModel(script=["The answer is forty two, as always."], cached_share=0.5)


QUESTIONS = [f"Question number {i}: what is the meaning of life? " * 20 for i in range(3)]


def _summary(h):
    return (len(h.events), h.total_cost, sum((e.usage for e in h.events), Usage()))


async def _ainvoke(chain, h):
    for q in QUESTIONS:
        await chain.ainvoke({"q": q}, config={"callbacks": [h]})


async def _astream(chain, h):
    for q in QUESTIONS:
        async for _ in chain.astream({"q": q}, config={"callbacks": [h]}):
            pass


def run_mode(mode: str, handler_cls=CostCallbackHandler):
    h = handler_cls("memory://")
    chain = make_chain()
    if mode == "invoke":
        for q in QUESTIONS:
            chain.invoke({"q": q}, config={"callbacks": [h]})
    elif mode == "stream":
        for q in QUESTIONS:
            list(chain.stream({"q": q}, config={"callbacks": [h]}))
    elif mode == "batch":
        chain.batch([{"q": q} for q in QUESTIONS], config={"callbacks": [h], "max_concurrency": 3})
    elif mode == "ainvoke":
        asyncio.run(_ainvoke(chain, h))
    elif mode == "astream":
        asyncio.run(_astream(chain, h))
    elif mode == "abatch":
        asyncio.run(chain.abatch([{"q": q} for q in QUESTIONS], config={"callbacks": [h]}))
    elif mode == "nested":
        outer = RunnableLambda(lambda x: x) | RunnableLambda(lambda x: chain.invoke(x))
        for q in QUESTIONS:
            outer.invoke({"q": q}, config={"callbacks": [h]})
    return h


MODES = ["invoke", "stream", "batch", "ainvoke", "astream", "abatch", "nested"]


def test_every_run_mode_gives_one_event_per_call_and_identical_totals():
    reference = _summary(run_mode("invoke"))
    assert reference[0] == 3 and reference[1] > 0
    assert reference[2].cache_read > 0
    for mode in MODES[1:]:
        assert _summary(run_mode(mode)) == reference, mode


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "astream", "batch"])
def test_async_handler_gives_the_same_totals(mode):
    assert _summary(run_mode(mode, AsyncCostCallbackHandler)) == _summary(run_mode("invoke"))


def test_events_are_exactly_priced_from_usage():
    h = run_mode("invoke")
    for e in h.events:
        expected = (e.usage.input * Decimal("0.15") + e.usage.cache_read * Decimal("0.075") + e.usage.output * Decimal("0.60")) / 10**6
        assert e.cost == expected and e.model == "gpt-4o-mini-2024-07-18" and not e.estimated


def test_attribution_defaults_and_per_run_metadata():
    h = CostCallbackHandler("memory://", user_id="default-user", feature="default-feature", agent_id="bot")
    chain = make_chain()
    chain.invoke({"q": "a"})  # no handler: nothing recorded
    chain.invoke({"q": "a"}, config={"callbacks": [h]})
    chain.invoke(
        {"q": "b"},
        config={"callbacks": [h], "metadata": {"user_id": "u-7", "thread_id": "th-1", "feature": "search", "task_id": 12}},
    )
    chain.invoke({"q": "c"}, config={"callbacks": [h], "metadata": {"conversation_id": "conv-9"}})
    first, second, third = h.events
    assert (first.user_id, first.feature, first.agent_id, first.session_id) == ("default-user", "default-feature", "bot", None)
    assert (second.user_id, second.session_id, second.feature, second.task_id, second.agent_id) == ("u-7", "th-1", "search", "12", "bot")
    assert third.session_id == "conv-9"


class RunIds(BaseCallbackHandler):
    """Keeps a weak reference to the id of every run LangChain starts."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Any]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, **kw: Any) -> None:
        self.refs.append(weakref.ref(run_id))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any, **kw: Any) -> None:
        self.refs.append(weakref.ref(run_id))


def test_trace_is_the_root_run_and_step_the_enclosing_chain():
    h = CostCallbackHandler("memory://")
    run_ids = RunIds()
    model = ScriptedChatModel(script=["x"])
    inner = (PROMPT | model).with_config(run_name="summarize")
    outer = (RunnableLambda(lambda x: x) | inner).with_config(run_name="pipeline")
    outer.invoke({"q": "hello"}, config={"callbacks": [h, run_ids]})
    outer.invoke({"q": "hello"}, config={"callbacks": [h, run_ids]})
    a, b = h.events
    assert a.step == "summarize" and a.trace_id != b.trace_id
    assert a.parent_id is not None and a.span_id != a.parent_id
    # the handler forgets finished runs: nothing keeps any of their run ids alive
    gc.collect()
    assert len(run_ids.refs) >= 8 and all(ref() is None for ref in run_ids.refs)


def test_langgraph_node_is_the_step_and_thread_id_the_session():
    langgraph = pytest.importorskip("langgraph.graph")
    from typing import TypedDict

    class S(TypedDict):
        q: str
        a: str

    model = ScriptedChatModel(script=["planned", "written"])

    def plan(s):
        return {"a": model.invoke(s["q"]).content}

    def write(s):
        return {"a": model.invoke(s["a"]).content}

    g = langgraph.StateGraph(S)
    g.add_node("plan", plan)
    g.add_node("write", write)
    g.add_edge(langgraph.START, "plan")
    g.add_edge("plan", "write")
    g.add_edge("write", langgraph.END)
    app = g.compile()
    h = CostCallbackHandler("memory://")
    app.invoke({"q": "go"}, config={"callbacks": [h], "configurable": {"thread_id": "t-42"}})
    assert [e.step for e in h.events] == ["plan", "write"]
    assert {e.session_id for e in h.events} == {"t-42"}
    assert len({e.trace_id for e in h.events}) == 1


def _agent_script():
    return [
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": "A1"}, "id": "c1", "type": "tool_call"}]),
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": "B2"}, "id": "c2", "type": "tool_call"}]),
        AIMessage(content="Both orders shipped."),
    ]


def test_create_agent_one_event_per_model_call_same_totals_invoke_and_stream():
    agents = pytest.importorskip("langchain.agents")
    from langchain_core.tools import tool

    @tool
    def lookup(order: str) -> str:
        """Look up an order."""
        return f"order {order}: shipped"

    def run(stream: bool):
        agent = agents.create_agent(ScriptedChatModel(script=_agent_script()), tools=[lookup])
        h = CostCallbackHandler("memory://", feature="orders")
        cfg = {"callbacks": [h], "metadata": {"user_id": "u1"}}
        inputs = {"messages": [("user", "Where are orders A1 and B2?")]}
        if stream:
            list(agent.stream(inputs, config=cfg))
        else:
            out = agent.invoke(inputs, config=cfg)
            assert out["messages"][-1].content == "Both orders shipped."
        return h

    a, b = run(False), run(True)
    assert len(a.events) == 3 == len(b.events)
    assert a.total_cost == b.total_cost > 0
    assert [e.usage for e in a.events] == [e.usage for e in b.events]
    assert a.events[2].usage.input > a.events[0].usage.input  # the context grew with the tool results
    assert {e.step for e in a.events} == {"model"} and {e.user_id for e in a.events} == {"u1"}


def test_track_costs_attaches_to_every_run_in_the_block_only():
    chain = make_chain()
    with track_costs("memory://", feature="batch-job") as h:
        chain.invoke({"q": "one"})
        asyncio.run(chain.ainvoke({"q": "two"}))
    chain.invoke({"q": "after"})
    assert len(h.events) == 2 and {e.feature for e in h.events} == {"batch-job"}


class Boom(Exception):
    pass


def test_a_failing_call_is_recorded_with_its_error_and_no_cost():
    class Failing(ScriptedChatModel):
        def _generate(self, *a, **k):
            raise Boom("provider down")

    h = CostCallbackHandler("memory://")
    with pytest.raises(Boom):
        (PROMPT | Failing()).invoke({"q": "x"}, config={"callbacks": [h]})
    [e] = h.events
    assert e.error == "Boom" and e.cost is None and e.usage == Usage()  # its message only with log_prompts
    assert h.total_cost == 0 and h.unpriced_calls == 0


def test_our_internal_error_never_breaks_the_chain(monkeypatch, caplog):
    h = CostCallbackHandler("memory://")

    def broken(*a, **k):
        raise RuntimeError("bug in agentcost")

    monkeypatch.setattr(h.recorder, "record_outcome", broken)
    with caplog.at_level(logging.ERROR, logger="agentcost"):
        out = make_chain().invoke({"q": "still works"}, config={"callbacks": [h]})
    assert out.content.startswith("The answer")
    assert h.recorder.internal_errors == 1 and "bug in agentcost" in caplog.text


def test_missing_usage_is_estimated_and_flagged():
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    h = CostCallbackHandler("memory://")
    model = GenericFakeChatModel(messages=iter([AIMessage(content="a reply of several words", response_metadata={"model_name": "gpt-4o"})]))
    model.invoke("count me " * 50, config={"callbacks": [h]})
    [e] = h.events
    assert e.estimated and e.usage.input > 100 and e.usage.output > 0 and e.cost is not None


def test_events_reach_the_ledger():
    h = run_mode("invoke")
    h.ledger.flush()
    assert h.ledger.count() == 3
    assert {e.id for e in h.ledger.events()} == {e.id for e in h.events}


def test_event_ids_are_the_run_ids_as_text_in_the_handler_and_the_sqlite_ledger(tmp_path):
    """Every reader (the handler, the ledger) sees the run id as the same text id."""
    from agentcost_core import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path}/ids.db")
    h = CostCallbackHandler(ledger)
    model = ScriptedChatModel(script=["ok"])
    model.invoke("a bare model call: its own trace", config={"callbacks": [h], "run_id": None})
    make_chain().invoke({"q": "in a chain"}, config={"callbacks": [h]})
    events = h.events
    for e in events:
        assert type(e.id) is str and type(e.span_id) is str and type(e.trace_id) is str
        assert e.id == e.span_id and len(e.id) == 36 and e.id.count("-") == 4
    assert events[0].trace_id == events[0].span_id  # a call outside any chain is its own trace
    assert events[1].trace_id != events[1].span_id
    ledger.flush()
    stored = {e.id: e for e in ledger.events()}
    assert set(stored) == {e.id for e in events}
    assert all(type(s.span_id) is str and s.trace_id == stored[s.id].trace_id for s in stored.values())
    assert h.events[0].as_dict()["id"] == events[0].id
    ledger.close()


def test_total_cost_follows_the_events_even_when_their_owner_clears_them():
    h = run_mode("invoke")
    each = h.events[0].cost
    assert h.total_cost == 3 * each
    h.events.clear()  # the list is the caller's to manage
    assert h.total_cost == 0
    make_chain().invoke({"q": QUESTIONS[0]}, config={"callbacks": [h]})
    assert h.total_cost == each and len(h.events) == 1


def test_the_handler_skips_events_it_has_no_use_for_but_sees_tools_and_chains():
    h = CostCallbackHandler("memory://")
    assert not (h.ignore_llm or h.ignore_chat_model or h.ignore_chain or h.ignore_agent)  # agent gates tools
    assert h.ignore_retriever and h.ignore_retry and h.ignore_custom_event


def test_totals_and_text_ids_survive_the_events_list_being_cleared_and_refilled():
    h = run_mode("invoke")  # 3 calls
    each = h.events[0].cost
    h.events.clear()
    for q in QUESTIONS + QUESTIONS:  # refilled past its old length before the next read
        make_chain().invoke({"q": q}, config={"callbacks": [h]})
    assert len(h.events) == 6 and h.total_cost == 6 * each
    assert all(type(e.id) is str and type(e.span_id) is str for e in h.events)


def test_a_users_own_ledger_backend_and_ledger_subclass_get_text_ids_and_keep_their_record():
    import json

    from agentcost_core import Ledger
    from agentcost_core.ledger.memory import MemoryBackend

    class JsonLines(MemoryBackend):
        def __init__(self):
            super().__init__("memory://jsonl")
            self.lines = []

        def write_many(self, events):
            self.lines += [json.dumps({"id": e.id, "span": e.span_id, "trace": e.trace_id}) for e in events]
            super().write_many(events)

    class Teed(Ledger):
        seen = 0

        def record(self, event):
            Teed.seen += 1
            super().record(event)

    for ledger in (Ledger(backend=JsonLines(), sync=True), Teed(backend=JsonLines())):
        h = CostCallbackHandler(ledger)
        make_chain().invoke({"q": "hi"}, config={"callbacks": [h]})
        ledger.flush()
        [line] = ledger.backend.lines
        assert json.loads(line)["id"] == h.events[0].id and h.recorder.internal_errors == 0
        ledger.close()
    assert Teed.seen == 1


@pytest.mark.parametrize("handler_cls", [CostCallbackHandler, AsyncCostCallbackHandler])
def test_keep_events_false_keeps_running_totals_only(handler_cls):
    kept = run_mode("invoke", handler_cls)
    h = handler_cls("memory://", keep_events=False)
    chain = make_chain()
    for q in QUESTIONS:
        if handler_cls is CostCallbackHandler:
            chain.invoke({"q": q}, config={"callbacks": [h]})
        else:
            asyncio.run(chain.ainvoke({"q": q}, config={"callbacks": [h]}))
    assert h.events == []  # nothing piles up in a handler that lives as long as the process
    assert h.total_cost == kept.total_cost > 0
    assert h.usage_by_model == kept.usage_by_model
    h.ledger.flush()
    assert h.ledger.count() == 3 and {e.cost for e in h.ledger.events()} == {e.cost for e in kept.events}
