"""TieredMemory for LangChain: fit(), the create_agent middleware, RunnableWithMessageHistory with
SQLite persistence, and a chat-model summarizer recorded as feature "memory"."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from agentcost_core import ConfigurationError, Ledger
from agentcost_core.tokens import TokenCounter
from agentcost_langchain.memory import TieredMemory, to_item
from agentcost_langchain.messages import to_chat_messages
from agentcost_langchain.testing import ScriptedChatModel

FILLER = "the parcel left the depot and the carrier scanned it at the hub before the delay "


def conversation(turns: int) -> list[Any]:
    msgs: list[Any] = [SystemMessage("You are a support agent.")]
    for t in range(turns):
        msgs.append(HumanMessage(f"question {t}: {FILLER * 2}"))
        msgs.append(AIMessage("", tool_calls=[{"name": "lookup", "args": {"t": t}, "id": f"c{t}"}]))
        msgs.append(ToolMessage(f"result {t}: {FILLER * 3}", tool_call_id=f"c{t}"))
        msgs.append(AIMessage(f"answer {t}: {FILLER}"))
    msgs.append(HumanMessage("What is the status now?"))
    return msgs


def tokens(messages: list[Any]) -> int:
    return TokenCounter.for_model("gpt-4o").count_messages(to_chat_messages(messages)).tokens


def test_fit_returns_langchain_messages_within_budget_with_pairs_whole() -> None:
    memory = TieredMemory(1500, model="gpt-4o", recent_turns=3)
    history = conversation(40)
    view = memory.fit(history)
    assert tokens(view) <= 1500 and memory.last_report.total == tokens(view)
    assert view[0] is history[0] and view[-1] is history[-1]  # same objects, system and current input
    ids = {m.tool_call_id for m in view if isinstance(m, ToolMessage)}
    calls = {c["id"] for m in view if isinstance(m, AIMessage) for c in m.tool_calls}
    assert ids == calls
    assert memory.last_report.full_history > 3 * memory.last_report.total


def test_pinned_messages_survive_and_sit_in_the_stable_prefix() -> None:
    history = conversation(30)
    pinned = HumanMessage("Customer is on the premium plan.", additional_kwargs={"agentcost_priority": "pinned"})
    history.insert(5, pinned)
    view = TieredMemory(1200, model="gpt-4o").fit(history)
    assert view[1] is pinned
    assert to_item(pinned).priority == "pinned"


def test_chat_model_summarizer_is_called_and_recorded_as_feature_memory() -> None:
    ledger = Ledger("memory://", sync=True)
    reply = '{"user_context": "customer with a delayed parcel", "decisions": ["offered refund"], ' \
            '"task_state": "waiting for carrier", "open_items": [], "key_facts": [{"fact": "order 4417", "turn": 2}]}'
    summarizer = ScriptedChatModel(script=[reply], model="gpt-4o-mini")
    memory = TieredMemory(1500, model="gpt-4o", summarizer=summarizer, recent_turns=3, summarize_every=8, ledger=ledger)
    view = memory.fit(conversation(40))
    assert memory.summary is not None and memory.summary.decisions == ["offered refund"]
    summary_msgs = [m for m in view if isinstance(m, SystemMessage) and "order 4417" in m.content]
    assert len(summary_msgs) == 1 and view[1] is summary_msgs[0]
    events = [e for e in ledger.events() if e.kind == "llm"]
    assert events and {e.feature for e in events} == {"memory"} and all(e.priced for e in events)
    assert memory.last_report.summarized_turns > 0 and tokens(view) <= 1500


def test_create_agent_middleware_keeps_full_state_and_sends_a_budgeted_view() -> None:
    from langchain.agents import create_agent

    seen: list[int] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            seen.append(tokens(messages))
            return super()._generate(messages, stop, run_manager, **kw)

    @tool
    def lookup(t: int) -> str:
        """Look something up."""
        return f"result {t}: {FILLER * 3}"

    script: list[Any] = [AIMessage("", tool_calls=[{"name": "lookup", "args": {"t": i}, "id": f"x{i}"}]) for i in range(25)]
    model = Recording(script=[*script, "All done."], model="gpt-4o")
    memory = TieredMemory(1200, model="gpt-4o", recent_turns=2)
    agent = create_agent(model, tools=[lookup], system_prompt="You are a support agent.", middleware=[memory])
    out = agent.invoke({"messages": conversation(20)}, {"recursion_limit": 200})
    assert out["messages"][-1].content == "All done."
    assert len(out["messages"]) > 80 + 50  # the state keeps everything
    assert max(seen) <= 1200 and len(seen) == 26


@pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")
def test_runnable_with_message_history_persists_everything_and_sends_the_view(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables.history import RunnableWithMessageHistory

    sent: list[int] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            sent.append(tokens(messages))
            return super()._generate(messages, stop, run_manager, **kw)

    store = f"sqlite:///{tmp_path}/memory.db"
    memory = TieredMemory(700, model="gpt-4o", recent_turns=2, store=store)
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    chain = RunnableWithMessageHistory(
        prompt | Recording(script=[f"answer: {FILLER}"], model="gpt-4o"), memory.history,
        input_messages_key="question", history_messages_key="history",
    )  # fmt: skip
    for t in range(40):
        chain.invoke({"question": f"q{t} {FILLER * 3}"}, config={"configurable": {"session_id": "s1"}})
    full = memory.history("s1").full_messages  # a new history object: reloaded from SQLite
    assert len(full) == 80
    assert max(sent) <= 700 + 70  # the view (700) plus the new question
    assert sent[-1] * 3 < tokens(full)
    with pytest.raises(ConfigurationError):
        TieredMemory(500, store="redis://x").history("s")



def test_anthropic_request_carries_breakpoints_on_the_stable_prefix_and_a_timestamp_is_a_breaker() -> None:
    pytest.importorskip("langchain_anthropic")
    pytest.importorskip("httpx2")
    from langchain_providers import load_providers

    providers = load_providers()
    reply = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Your parcel is on its way."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 40, "output_tokens": 9, "cache_read_input_tokens": 1200, "cache_creation_input_tokens": 0},
    }  # fmt: skip
    mock = providers.MockProvider.always(reply)
    llm = providers.chat_anthropic(mock, "claude-sonnet-4-5")
    memory = TieredMemory(3000, model="claude-sonnet-4-5", cache_ttl="1h", recent_turns=2)
    manual = "You are the support agent of Acme. Follow the refund policy and quote it. " * 30
    history: list[Any] = [SystemMessage(f"{manual}\nCurrent time: 2026-11-24T09:15:02Z")]
    for t in range(12):
        history += [HumanMessage(f"question {t}: {FILLER}"), AIMessage(f"answer {t}: {FILLER}")]
    history.append(HumanMessage("Where is my parcel?"))
    llm.invoke(memory.fit(history))
    body = mock.requests[-1]
    system_blocks = body["system"] if isinstance(body["system"], list) else []
    assert system_blocks and system_blocks[-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert all("cache_control" not in str(m) for m in body["messages"])  # the volatile tail has none
    assert memory.cache_breakers == []
    history[0] = SystemMessage(f"{manual}\nCurrent time: 2026-11-24T09:16:47Z")  # the planted timestamp moves
    llm.invoke(memory.fit(history))
    breakers = memory.cache_breakers
    assert len(breakers) == 1 and breakers[0].kind == "timestamp" and breakers[0].position == 0
    assert breakers[0].cost_per_call is not None and breakers[0].cost_per_call > 0


def test_rewrite_mode_replaces_state_like_summarization_middleware_and_carries_the_summary() -> None:
    from langchain.agents import create_agent

    seen: list[int] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            seen.append(tokens(messages))
            return super()._generate(messages, stop, run_manager, **kw)

    reply = '{"user_context": "customer", "decisions": ["refund offered"], "key_facts": [{"fact": "order 4417", "turn": 1}]}'
    memory = TieredMemory(1200, model="gpt-4o", recent_turns=2, summarize_every=4, mode="rewrite",
                          summarizer=ScriptedChatModel(script=[reply], model="gpt-4o-mini"), ledger="memory://")  # fmt: skip
    agent = create_agent(Recording(script=["ok, noted."], model="gpt-4o"), tools=[], middleware=[memory])
    state: dict[str, Any] = {"messages": conversation(20)}
    for t in range(6):
        state = agent.invoke({"messages": [*state["messages"], HumanMessage(f"follow-up {t}: {FILLER}")]})
    marked = [m for m in state["messages"] if "agentcost_summary" in (m.additional_kwargs or {})]
    assert len(marked) == 1 and "order 4417" in marked[0].content
    assert tokens(state["messages"]) <= 1200 + 60  # the state itself stays bounded (view + the reply)
    assert max(seen) <= 1200
    with pytest.raises(ConfigurationError, match="mode"):
        TieredMemory(1000, mode="squash")


def test_a_new_history_object_per_invocation_keeps_the_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agentcost_core.context import StructuredSummary

    calls: list[int] = []

    def summarizer(previous, transcript, first):  # type: ignore[no-untyped-def]
        calls.append(first)
        return StructuredSummary(decisions=[f"turn {first}"])

    memory = TieredMemory(1500, model="gpt-4o", summarizer=summarizer, recent_turns=2, summarize_every=4,
                          store=f"sqlite:///{tmp_path}/m.db")  # fmt: skip
    h = memory.history("s1")
    for t in range(12):
        h.add_messages([HumanMessage(f"q{t} {FILLER}"), AIMessage(f"a{t} {FILLER}")])
    _ = h.messages
    n = len(calls)
    assert n >= 1
    _ = memory.history("s1").messages  # RunnableWithMessageHistory asks for a new history object each time
    assert len(calls) == n
    fresh = TieredMemory(1500, model="gpt-4o", store=f"sqlite:///{tmp_path}/m.db")
    assert len(fresh.history("s1").full_messages) == 24  # persisted: a new memory reloads it from SQLite
