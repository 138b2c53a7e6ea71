"""TieredMemory for LlamaIndex: a BaseMemory that budgets every model call by priority."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock  # noqa: E402
from llama_index.core.memory import BaseMemory  # noqa: E402
from pydantic import Field  # noqa: E402

import agentcost_llamaindex.memory as li_memory  # noqa: E402
from agentcost_core.context import ContextBudgetError, StructuredSummary  # noqa: E402
from agentcost_core.errors import ConfigurationError  # noqa: E402
from agentcost_core.ledger import Ledger  # noqa: E402
from agentcost_core.tokens import TokenCounter  # noqa: E402
from agentcost_llamaindex import TieredMemory, instrument  # noqa: E402
from agentcost_llamaindex.messages import to_core_messages  # noqa: E402
from agentcost_llamaindex.testing import ScriptedLLM  # noqa: E402

# FunctionAgent's constructor (workflows' step discovery) runs inspect.getmembers over pydantic
# objects, which warns; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COUNTER = TokenCounter.for_model(None)  # what TieredMemory counts with when no model is named
FILLER = "lorem ipsum dolor sit amet " * 30  # ~180 tokens


def tokens(messages: Sequence[ChatMessage]) -> int:
    """Tokens of a request, counted the way the memory (and ScriptedLLM's usage) counts them."""
    return COUNTER.count_messages(to_core_messages(messages)).tokens


def user(text: str, **extra: Any) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text, additional_kwargs=extra)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=text)


def call(call_id: str, tool: str = "lookup", **kwargs: Any) -> ChatMessage:
    return ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[ToolCallBlock(tool_call_id=call_id, tool_name=tool, tool_kwargs=kwargs)],
    )


def result(call_id: str, text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.TOOL, content=text, additional_kwargs={"tool_call_id": call_id})


def conversation(turns: int) -> list[ChatMessage]:
    """System prompt, then turns of: question, tool call, tool result, answer."""
    out = [ChatMessage(role=MessageRole.SYSTEM, content="You are a travel assistant.")]
    for t in range(turns):
        out += [
            user(f"question {t}: tell me about city {t}"),
            call(f"c{t}", city=f"city {t}"),
            result(f"c{t}", f"city {t}: {FILLER}"),
            assistant(f"answer {t}: city {t} is lovely."),
        ]
    return out


def assert_pairs_whole(messages: Sequence[ChatMessage]) -> None:
    """Every tool result follows the assistant message that called it; every call is answered."""
    open_calls: set[str] = set()
    answered: set[str] = set()
    for m in messages:
        if m.role == MessageRole.TOOL:
            cid = m.additional_kwargs["tool_call_id"]
            assert cid in open_calls, f"tool result {cid} without its call"
            open_calls.discard(cid)
            answered.add(cid)
        else:
            assert not open_calls, f"calls {open_calls} separated from their results"
        for b in m.blocks:
            if isinstance(b, ToolCallBlock):
                open_calls.add(b.tool_call_id)


def summary_json(**fields: Any) -> str:
    return json.dumps({"user_context": "a traveller", "task_state": "comparing cities", **fields})


class CapturingLLM(ScriptedLLM):
    """ScriptedLLM that keeps every message list it is sent."""

    seen: list[Any] = Field(default_factory=list)

    def _reply(self, messages: Sequence[ChatMessage]) -> Any:
        self.seen.append(list(messages))
        return super()._reply(messages)


# --- BaseMemory ---------------------------------------------------------------------------------
def test_is_a_llamaindex_memory_with_put_get_set_reset() -> None:
    memory = TieredMemory(10_000)
    assert isinstance(memory, BaseMemory)
    history = conversation(2)
    for m in history[:3]:
        memory.put(m)
    memory.put_messages(history[3:])
    got = memory.get()
    assert len(got) == len(history) and all(a is b for a, b in zip(got, history))  # the very objects
    assert memory.get_all() == history and memory.get_all() is not memory.get_all()
    assert memory.last_report is not None and memory.last_report.total == tokens(history)
    assert memory.last_report.total == memory.last_report.full_history  # nothing cut

    edited = [history[0], user("an edited question"), *history[2:]]  # same last message, edited middle
    memory.set(edited)
    assert memory.get() == edited and memory.get()[1].content == "an edited question"

    other = [user("a new conversation")]
    memory.set(other)
    assert memory.get_all() == other and memory.get() == other
    clone = copy.deepcopy(memory)
    assert clone.get_all() == other and clone.get_all()[0] is not other[0] and clone.max_tokens == 10_000
    memory.reset()
    assert memory.get_all() == [] and memory.get() == [] and memory.summary is None
    assert clone.get_all() == other


async def test_async_forms() -> None:
    memory = TieredMemory(10_000)
    history = conversation(2)
    await memory.aput(history[0])
    await memory.aput_messages(history[1:])
    assert await memory.aget_all() == history
    got = await memory.aget()
    assert all(a is b for a, b in zip(got, history)) and len(got) == len(history)
    await memory.aset(history[:3])
    assert await memory.aget() == history[:3]
    await memory.areset()
    assert await memory.aget_all() == [] and await memory.aget() == []


def test_from_defaults() -> None:
    history = conversation(1)
    memory = TieredMemory.from_defaults(chat_history=history, token_limit=5_000, recent_turns=2)
    assert memory.max_tokens == 5_000 and memory.recent_turns == 2
    assert memory.get_all() == history
    by_llm = TieredMemory.from_defaults(llm=ScriptedLLM())
    assert by_llm.max_tokens == int(ScriptedLLM().metadata.context_window * 0.75)
    with pytest.raises(ConfigurationError):
        TieredMemory.from_defaults()


def test_bad_configuration_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        TieredMemory(0)
    with pytest.raises(ConfigurationError):
        TieredMemory(1000, high_share=0.8, medium_share=0.5)
    with pytest.raises(ConfigurationError):
        TieredMemory(1000, summarizer="gpt-4o-mini")
    with pytest.raises(ConfigurationError):
        TieredMemory(1000, reserve=1000)
    with pytest.raises(ConfigurationError):
        TieredMemory(1000, on_overflow="ignore")


# --- the budget --------------------------------------------------------------------------------------
def test_compression_keeps_system_and_current_input_and_tool_pairs_within_budget() -> None:
    history = conversation(8) + [user("question 8: and the best one?")]
    assert tokens(history) > 1_500
    memory = TieredMemory(600, recent_turns=2)
    memory.put_messages(history)
    got = memory.get()
    report = memory.last_report
    assert report is not None
    assert report.total <= 600 and tokens(got) == report.total  # the report is what is sent
    assert report.full_history == tokens(history)
    assert report.dropped_turns > 0  # no summarizer: old turns archived and dropped
    assert got[0] is history[0]  # system prompt kept, first
    assert got[-1] is history[-1]  # the current input kept, last
    assert_pairs_whole(got)
    assert got == memory.fit(history)  # fit() is the same selection


def test_tool_call_blocks_are_counted_unlike_llamaindex_memory() -> None:
    tool_call = call("c1", "search_flights", origin="Paris", destination="Tokyo", passengers=2, cabin="business")
    item = li_memory.to_item(tool_call)
    assert "search_flights" in item.text and "Tokyo" in item.text
    assert item.role == "assistant" and item.tool_call_ids == ("c1",)
    res = li_memory.to_item(result("c1", "3 flights"))
    assert res.role == "tool" and res.tool_call_id == "c1"
    # OpenAI-style calls kept in additional_kwargs count and pair too
    legacy = ChatMessage(
        role=MessageRole.ASSISTANT,
        content="",
        additional_kwargs={"tool_calls": [{"id": "c2", "type": "function",
                                           "function": {"name": "search_hotels", "arguments": "{}"}}]},
    )  # fmt: skip
    assert li_memory.to_item(legacy).tool_call_ids == ("c2",) and "search_hotels" in li_memory.to_item(legacy).text

    memory = TieredMemory(10_000)
    memory.fit([user("fly me"), tool_call])
    counted = memory.last_report.full_history - tokens([user("fly me")])  # type: ignore[union-attr]
    assert counted == tokens([tool_call]) - 3 > 10  # the call's own tokens (priming counted once)

    from llama_index.core.memory import Memory

    theirs = Memory.from_defaults(token_limit=10_000)._estimate_token_count(tool_call)
    assert theirs == 0 < counted  # LlamaIndex's Memory skips ToolCallBlocks entirely


def test_priorities_pinned_and_high() -> None:
    pinned = user("My passport number is X123.", agentcost_priority="pinned")
    doc = user(f"Retrieved: {FILLER}", agentcost_priority="high")
    history = [ChatMessage(role=MessageRole.SYSTEM, content="sys"), pinned, *conversation(6)[1:], doc,
               user("question 6: anything else?")]  # fmt: skip
    memory = TieredMemory(500, recent_turns=1)
    memory.put_messages(history)
    got = memory.get()
    assert memory.last_report.total <= 500  # type: ignore[union-attr]
    assert got[:2] == [history[0], pinned]  # pinned: protected, in the stable prefix
    assert memory.last_n_stable == 2
    assert doc in got and got[-1] is history[-1]  # the retrieved document of the current turn stays


def test_protected_alone_over_budget_is_an_error_or_a_warning() -> None:
    big = [ChatMessage(role=MessageRole.SYSTEM, content=FILLER * 3), user("hi")]
    with pytest.raises(ContextBudgetError):
        TieredMemory(100).fit(big)
    memory = TieredMemory(100, on_overflow="warn")
    assert memory.fit(big) == big and memory.last_report.over_budget  # type: ignore[union-attr]


def test_latest_tool_output_is_clipped_as_a_copy() -> None:
    history = [user("look it up"), call("c1", city="Rome"), result("c1", FILLER * 4)]
    memory = TieredMemory(300)
    memory.put_messages(history)
    got = memory.get()
    assert memory.last_report.clipped_items == 1 and memory.last_report.total <= 300  # type: ignore[union-attr]
    assert got[0] is history[0] and got[1] is history[1]
    clipped = got[2]
    assert clipped is not history[2] and clipped.additional_kwargs == {"tool_call_id": "c1"}
    assert "clipped by agentcost" in clipped.content and len(clipped.content) < len(history[2].content)
    assert history[2].content == FILLER * 4  # the stored history is untouched
    assert memory.get_all()[2] is history[2]


def test_messages_put_after_a_read_are_in_the_next_view_once() -> None:
    history = conversation(5)
    memory = TieredMemory(100_000)
    memory.put_messages(history)
    assert memory.get() == history
    memory.put(user("one more"))
    memory.put(assistant("sure"))
    assert memory.get() == [*history, user("one more"), assistant("sure")]
    # the agent's aget(input=...) after tool calls: the input is already in memory, not added again
    view = memory.get(input="one more")
    assert [m.content for m in view].count("one more") == 1 and view[-1].content == "sure"
    assert memory.last_report.total == tokens(view)  # type: ignore[union-attr]


def test_input_not_in_memory_is_budgeted_but_not_returned() -> None:
    # chat engines call get(input=message) before putting the message, then send it themselves
    history = conversation(4)
    memory = TieredMemory(700, recent_turns=1)
    memory.put_messages(history)
    question = "question 4: " + "which city is the cheapest " * 30
    got = memory.get(input=question)
    assert all(m.content != question for m in got)
    assert tokens([*got, user(question)]) == memory.last_report.total <= 700  # type: ignore[union-attr]
    assert_pairs_whole(got)
    # ChatMemoryBuffer's initial_token_count is taken off the budget
    memory.get(initial_token_count=200)
    assert memory.last_report.budget == 500  # type: ignore[union-attr]


def test_set_with_the_same_conversation_extended_keeps_the_summary() -> None:
    firsts: list[int] = []

    def summarizer(previous: Any, transcript: list, first: int) -> StructuredSummary:
        firsts.append(first)
        return StructuredSummary(user_context="a traveller", decisions=[f"from turn {first}"])

    history = conversation(8) + [user("question 8")]
    memory = TieredMemory(700, summarizer=summarizer, recent_turns=1, summarize_every=3)
    memory.set(history)
    memory.get()
    assert firsts == [1] and memory.summary is not None
    covered = memory.summary.turns_covered
    # the caller rebuilds its chat_history (equal messages, new objects) and appends to it
    rebuilt = [m.model_copy() for m in history] + [assistant("answer 8"), user("question 9")]
    memory.set(rebuilt)
    held = memory.get_all()
    assert held == rebuilt  # the conversation as the caller set it
    memory.get()
    assert firsts[0] == 1 and all(f > covered for f in firsts[1:])  # summarized turns not summarized again
    assert memory.summary.turns_covered >= covered
    assert memory.get()[-1] == rebuilt[-1]
    memory.set([user("another conversation")])  # a different conversation: fresh context
    assert memory.get() == memory.get_all() and memory.summary is None


# --- the summarizer ------------------------------------------------------------------------------------
def test_summarizer_callable_summary_is_injected_as_system_message() -> None:
    seen: list[tuple[Any, list, int]] = []

    def summarizer(previous: Any, transcript: list, first: int) -> StructuredSummary:
        seen.append((previous, transcript, first))
        return StructuredSummary(user_context="a traveller", decisions=["compare cities"])

    history = conversation(8) + [user("question 8")]
    memory = TieredMemory(700, summarizer=summarizer, recent_turns=1, summarize_every=3)
    memory.put_messages(history)
    got = memory.get()
    report = memory.last_report
    assert report is not None and report.summary_calls == 1 and report.summarized_turns >= 3
    assert report.total <= 700 and tokens(got) == report.total
    assert got[0] is history[0]
    assert got[1].role == MessageRole.SYSTEM and "compare cities" in got[1].content
    assert memory.last_n_stable == 2
    assert seen[0][2] == 1 and any("lookup" in text for _, text in seen[0][1])  # tool calls are summarized too


def test_llm_summarizer_calls_are_ledger_events_with_feature_memory() -> None:
    ledger = Ledger("memory://", sync=True)
    cheap = CapturingLLM(script=[summary_json(decisions=["Tokyo first"])])
    memory = TieredMemory(700, summarizer=cheap, recent_turns=1, summarize_every=3, ledger=ledger)
    memory.put_messages(conversation(8) + [user("question 8")])
    got = memory.get()
    assert cheap.turn == 1 and "Summarize this part of a conversation" in cheap.seen[0][0].content
    assert any(m.role == MessageRole.SYSTEM and "Tokyo first" in m.content for m in got)
    events = ledger.events()
    assert len(events) == 1 and events[0].feature == "memory"
    assert events[0].model == cheap.model and events[0].usage.input == tokens(cheap.seen[0])


def test_llm_summarizer_goes_to_the_instrumented_handler_once() -> None:
    cheap = ScriptedLLM(script=[summary_json()])
    memory = TieredMemory(700, summarizer=cheap, recent_turns=1, summarize_every=3)  # no ledger of its own
    memory.put_messages(conversation(8) + [user("question 8")])
    with instrument("memory://", feature="support", user_id="u1") as h:
        memory.get()
    assert [e.feature for e in h.events] == ["memory"]  # the summary is tagged memory, not support
    assert h.events[0].user_id == "u1"


# --- a FunctionAgent run -----------------------------------------------------------------------------------
def lookup(city: str) -> str:
    """Look up facts about a city."""
    return f"{city}: {FILLER}"


async def test_function_agent_runs_within_budget_with_summary_and_memory_events() -> None:
    budget = 900
    system_prompt = "You are a concise travel assistant. Use the lookup tool for facts."
    ledger = Ledger("memory://", sync=True)
    cheap = CapturingLLM(script=[summary_json(decisions=["compare every city"])])
    memory = TieredMemory(budget, summarizer=cheap, recent_turns=1, summarize_every=2,
                          reserve=system_prompt, ledger=ledger)  # fmt: skip
    llm = CapturingLLM(script=[{"tool": "lookup", "args": {"city": "Paris"}},
                               {"tool": "lookup", "args": {"city": "Lyon"}}, "Both are lovely."])  # fmt: skip
    agent = FunctionAgent(tools=[lookup], llm=llm, system_prompt=system_prompt)

    with instrument(ledger) as h:  # the run is instrumented into the ledger the memory was given
        for run in range(6):
            response = await agent.run(f"run {run}: compare two cities", memory=memory)
            assert "lovely" in str(response)

    assert len(llm.seen) == 18  # three model calls per run
    for request in llm.seen:  # everything the model received, system prompt and tool steps included
        assert tokens(request) <= budget
        assert request[0].content == system_prompt
        assert request[-1].role in (MessageRole.USER, MessageRole.TOOL)
        assert_pairs_whole(request)
    assert max(tokens(r) for r in llm.seen) > budget * 0.7  # the budget was actually binding
    agent_events = [e for e in h.events if e.feature != "memory"]
    assert len(agent_events) == 18 and all(e.usage.input <= budget for e in agent_events)

    # the full history is kept, tool calls included; the view was summarized
    history = memory.get_all()
    assert len(history) == 6 * 6 and tokens(history) > 2 * budget
    assert sum(isinstance(b, ToolCallBlock) for m in history for b in m.blocks) == 12
    assert memory.summary is not None and "compare every city" in memory.summary.decisions
    late = llm.seen[-3]
    assert late[1].role == MessageRole.SYSTEM and "compare every city" in late[1].content  # summary injected
    assert late[-1].content == "run 5: compare two cities"  # the current input is never cut

    # the summarizer's calls are events with feature "memory", recorded once (by the run's handler)
    memory_events = [e for e in h.events if e.feature == "memory"]
    assert cheap.turn >= 1 and len(memory_events) == cheap.turn
    assert [e.id for e in ledger.events(feature="memory")] == [e.id for e in memory_events]
    assert len(ledger.events()) == 18 + cheap.turn


async def test_function_agent_summarizer_recorded_without_instrumentation() -> None:
    ledger = Ledger("memory://", sync=True)
    cheap = ScriptedLLM(script=[summary_json()])
    memory = TieredMemory(700, summarizer=cheap, recent_turns=1, summarize_every=2, ledger=ledger)
    llm = ScriptedLLM(script=[{"tool": "lookup", "args": {"city": "Nice"}}, "Nice is nice."])
    agent = FunctionAgent(tools=[lookup], llm=llm)
    for run in range(5):
        await agent.run(f"run {run}", memory=memory)
    events = ledger.events()
    assert cheap.turn >= 1 and len(events) == cheap.turn
    assert {e.feature for e in events} == {"memory"} and all(not e.estimated for e in events)
    assert memory.last_report is not None and memory.last_report.total <= 700
