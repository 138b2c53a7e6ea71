"""TieredMemory's per-conversation state is bounded, and its SQLite history is safe with several
writers on one session (issue 12, build point 7)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agentcost_core import ConfigurationError
from agentcost_core.tokens import TokenCounter
from agentcost_langchain.memory import TieredMemory
from agentcost_langchain.messages import to_chat_messages
from agentcost_langchain.testing import ScriptedChatModel

FILLER = "the parcel left the depot and the carrier scanned it at the hub before the delay "


def tokens(messages: list[Any]) -> int:
    return TokenCounter.for_model("gpt-4o").count_messages(to_chat_messages(messages)).tokens


def test_per_thread_memory_state_is_bounded_with_many_thread_ids() -> None:
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    seen: list[int] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            seen.append(tokens(messages))
            return super()._generate(messages, stop, run_manager, **kw)

    memory = TieredMemory(600, model="gpt-4o", recent_turns=1, max_sessions=8)
    agent = create_agent(Recording(script=[f"answer {FILLER}"], model="gpt-4o"), tools=[], middleware=[memory],
                         checkpointer=InMemorySaver())  # fmt: skip
    for t in range(120):
        agent.invoke({"messages": [HumanMessage(f"hello {t}")]}, {"configurable": {"thread_id": f"t{t}"}})
    assert memory.conversations == 8
    # a forgotten thread comes back: its view is rebuilt from the agent's state, still in budget
    for k in range(8):
        out = agent.invoke({"messages": [HumanMessage(f"again {k}: {FILLER * 2}")]}, {"configurable": {"thread_id": "t0"}})
    assert len(out["messages"]) == 18 and max(seen) <= 600
    assert memory.conversations == 8


def test_history_sessions_are_bounded_and_a_forgotten_session_reloads_from_the_store(tmp_path: Any) -> None:
    memory = TieredMemory(2000, model="gpt-4o", max_sessions=4, store=f"sqlite:///{tmp_path}/m.db")
    for s in range(50):
        memory.history(f"s{s}").add_messages([HumanMessage(f"q{s}"), AIMessage(f"a{s}")])
        assert [m.content for m in memory.history(f"s{s}").messages] == [f"q{s}", f"a{s}"]
    assert memory.conversations == 4
    assert [m.content for m in memory.history("s0").full_messages] == ["q0", "a0"]


def test_max_sessions_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="max_sessions"):
        TieredMemory(1000, max_sessions=0)


@pytest.mark.parametrize("writers", ["two memories (as two processes)", "one memory, two history objects"])
def test_the_sqlite_history_is_safe_with_two_writers_on_one_session(tmp_path: Any, writers: str) -> None:
    store = f"sqlite:///{tmp_path}/shared.db"
    shared = TieredMemory(100_000, model="gpt-4o", store=store)
    memories = [TieredMemory(100_000, model="gpt-4o", store=store) for _ in range(2)]
    if writers.startswith("one memory"):
        memories = [shared, shared]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(name: str, memory: TieredMemory) -> None:
        try:
            history = memory.history("one-session")
            start.wait()
            for k in range(200):
                history.add_messages([HumanMessage(f"{name}-{k}")])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n, m)) for n, m in zip("ab", memories)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [m.content for m in TieredMemory(100_000, model="gpt-4o", store=store).history("one-session").full_messages]
    assert len(everything) == 400 and len(set(everything)) == 400
    for name in "ab":  # each writer's messages in the order it wrote them
        assert [c for c in everything if c.startswith(name)] == [f"{name}-{k}" for k in range(200)]
    for memory in memories:  # every reader sees the same order
        assert [m.content for m in memory.history("one-session").full_messages] == everything


def test_a_history_sees_messages_another_writer_added(tmp_path: Any) -> None:
    store = f"sqlite:///{tmp_path}/m.db"
    mine, theirs = TieredMemory(5000, store=store), TieredMemory(5000, store=store)
    mine.history("s").add_messages([SystemMessage("sys"), HumanMessage("q1")])
    theirs.history("s").add_messages([AIMessage("a1")])
    mine.history("s").add_messages([HumanMessage("q2")])
    assert [m.content for m in mine.history("s").messages] == ["sys", "q1", "a1", "q2"]
    mine.history("s").clear()
    assert mine.history("s").full_messages == []


def contents(history: Any) -> list[str]:
    return [m.content for m in history.full_messages]


@pytest.mark.parametrize("writers", ["two memories (as two processes)", "one memory, two history objects"])
def test_a_clear_by_another_writer_is_seen_by_the_first_and_later_appends_are_kept_once(
    tmp_path: Any, writers: str
) -> None:
    store = f"sqlite:///{tmp_path}/m.db"
    a = TieredMemory(4000, model="gpt-4o", store=store)
    b = a if writers.startswith("one memory") else TieredMemory(4000, model="gpt-4o", store=store)
    ha, hb = a.history("s1"), b.history("s1")
    ha.add_messages([HumanMessage("old 1"), AIMessage("old 2"), HumanMessage("old 3")])
    assert [m.content for m in hb.messages] == ["old 1", "old 2", "old 3"]  # B holds the old history
    ha.clear()
    ha.add_messages([HumanMessage("new 1"), AIMessage("new 2")])
    hb.add_messages([HumanMessage("from B")])
    expected = ["new 1", "new 2", "from B"]
    for history in (ha, hb, a.history("s1"), b.history("s1")):
        assert contents(history) == expected
        assert [m.content for m in history.messages] == expected  # the budgeted view too
    for k in range(3):  # appends after the clear, by both writers, each read once by both
        ha.add_messages([AIMessage(f"a{k}")])
        hb.add_messages([HumanMessage(f"b{k}")])
        expected += [f"a{k}", f"b{k}"]
        assert contents(ha) == contents(hb) == expected
    assert contents(TieredMemory(4000, model="gpt-4o", store=store).history("s1")) == expected


def _writer_b(store: str, holding: Any, cleared: Any, done: Any) -> None:
    """Process B: holds the old history, then (once A cleared and wrote) writes and reads again."""
    try:
        history = TieredMemory(4000, model="gpt-4o", store=store).history("s1")
        holding.put(contents(history))
        cleared.wait(60)
        history.add_messages([HumanMessage("from B")])
        done.put((contents(history), [m.content for m in history.messages]))
    except BaseException as e:  # noqa: BLE001 - reported to the test
        done.put(repr(e))


def test_a_clear_in_another_process_is_seen_by_a_reader_process(tmp_path: Any) -> None:
    import multiprocessing

    store = f"sqlite:///{tmp_path}/m.db"
    history = TieredMemory(4000, model="gpt-4o", store=store).history("s1")
    history.add_messages([HumanMessage("old 1"), AIMessage("old 2"), HumanMessage("old 3")])
    ctx = multiprocessing.get_context("fork")
    holding, done, cleared = ctx.Queue(), ctx.Queue(), ctx.Event()
    b = ctx.Process(target=_writer_b, args=(store, holding, cleared, done), daemon=True)
    b.start()
    try:
        assert holding.get(timeout=60) == ["old 1", "old 2", "old 3"]
        history.clear()
        history.add_messages([HumanMessage("new 1"), AIMessage("new 2")])
        cleared.set()
        expected = ["new 1", "new 2", "from B"]
        assert done.get(timeout=60) == (expected, expected)
        assert contents(history) == expected
    finally:
        b.join(timeout=30)
        if b.is_alive():  # pragma: no cover - only when B hangs
            b.kill()
