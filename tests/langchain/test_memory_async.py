"""TieredMemory under async agents: a summary never blocks the event loop (issue 12, defect 6a).

The summarizer is a chat model whose sync ``_generate`` blocks on a ``threading.Event`` that only a
task on the event loop sets, after it observed the summary in flight. Run on the loop (the old
``invoke``), the summary would hold the loop and the event would never be set by it: ``_generate``
gives up after a bounded wait and the test fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from test_memory import conversation

from agentcost_langchain.memory import TieredMemory
from agentcost_langchain.testing import ScriptedChatModel

REPLY = '{"user_context": "customer", "decisions": ["refund offered"], "key_facts": [{"fact": "order 4417", "turn": 1}]}'
BOUND = 10.0  # seconds a blocked summary waits before giving up (only reached when the loop is blocked)


class Gate:
    """A summary in flight (``entered``) held until the loop-side watcher ``release``s it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.released_in_time: list[bool] = []
        self.ticks = 0

    def summarizer(self) -> ScriptedChatModel:
        gate = self

        class BlockingSummarizer(ScriptedChatModel):
            def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
                gate.entered.set()
                gate.released_in_time.append(gate.release.wait(BOUND))
                return super()._generate(messages, stop, run_manager, **kw)

        return BlockingSummarizer(script=[REPLY], model="gpt-4o-mini")

    async def watch(self) -> None:
        """On the loop: wait (off the loop) until the summary is in flight, prove the loop turns, release."""
        seen = await asyncio.to_thread(self.entered.wait, BOUND)
        for _ in range(3):
            await asyncio.sleep(0)  # yields to the loop; only counts turns, not used to wait for anything
            self.ticks += 1
        if seen:
            self.release.set()


@pytest.mark.parametrize("mode", ["view", "rewrite"])
async def test_async_agent_summarizes_without_blocking_the_event_loop(mode: str) -> None:
    from langchain.agents import create_agent

    gate = Gate()
    memory = TieredMemory(1500, model="gpt-4o", recent_turns=3, summarize_every=8, mode=mode,
                          summarizer=gate.summarizer(), ledger="memory://")  # fmt: skip
    agent = create_agent(ScriptedChatModel(script=["All done."], model="gpt-4o"), tools=[], middleware=[memory])
    watcher = asyncio.create_task(gate.watch())
    out = await agent.ainvoke({"messages": conversation(40)})
    await watcher
    assert gate.released_in_time == [True]  # the loop ran the watcher while the summary was in flight
    assert gate.ticks == 3
    assert out["messages"][-1].content == "All done."
    assert memory.summary is not None and memory.summary.decisions == ["refund offered"]
    assert [e.feature for e in memory.summarizer_handler.events] == ["memory"]


async def test_afit_summarizes_without_blocking_the_event_loop() -> None:
    gate = Gate()
    memory = TieredMemory(1500, model="gpt-4o", recent_turns=3, summarize_every=8, summarizer=gate.summarizer(),
                          ledger="memory://")  # fmt: skip
    watcher = asyncio.create_task(gate.watch())
    view = await memory.afit(conversation(40))
    await watcher
    assert gate.released_in_time == [True]
    assert memory.last_report is not None and memory.last_report.summary_calls == 1
    assert any("order 4417" in str(m.content) for m in view)


async def test_async_history_summarizes_without_blocking_the_event_loop(tmp_path: Any) -> None:
    gate = Gate()
    memory = TieredMemory(1500, model="gpt-4o", recent_turns=3, summarize_every=8, summarizer=gate.summarizer(),
                          ledger="memory://", store=f"sqlite:///{tmp_path}/m.db")  # fmt: skip
    history = memory.history("s1")
    await history.aadd_messages(conversation(40)[1:])
    watcher = asyncio.create_task(gate.watch())
    view = await history.aget_messages()
    await watcher
    assert gate.released_in_time == [True]
    assert any("order 4417" in str(m.content) for m in view)


async def test_a_cancelled_async_summary_folds_nothing_and_the_next_fit_summarizes() -> None:
    gate = Gate()
    memory = TieredMemory(1500, model="gpt-4o", recent_turns=3, summarize_every=8, summarizer=gate.summarizer(),
                          ledger="memory://")  # fmt: skip
    history = conversation(40)
    task = asyncio.create_task(memory.afit(history))
    await asyncio.to_thread(gate.entered.wait, BOUND)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert memory.summary is None
    gate.release.set()  # the abandoned worker finishes; its answer is dropped
    view = await memory.afit(history)
    assert memory.summary is not None and memory.last_report.summary_calls == 1
    assert any("order 4417" in str(m.content) for m in view)
