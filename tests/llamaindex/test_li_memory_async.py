"""LlamaIndex TieredMemory on an event loop: a summary is awaited with the LLM's ``achat`` and holds
neither the loop nor the memory (issue 12, defect 6a).

The summarizer LLM's sync ``chat`` blocks on a ``threading.Event``; its ``achat`` waits for the same
event without blocking the loop. Only a task on the loop releases it, after it has written to the
memory (``aput``) while the summary was in flight. Before, ``aget`` ran the sync ``chat`` in a
worker thread holding the memory's lock, so that ``aput`` blocked the loop: the summary then gave up
after a bounded wait and the test fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.base.llms.types import ChatMessage, MessageRole  # noqa: E402

from agentcost_llamaindex import TieredMemory  # noqa: E402
from agentcost_llamaindex.testing import ScriptedLLM  # noqa: E402

FILLER = "lorem ipsum dolor sit amet " * 30
BOUND = 10.0  # seconds a blocked summary waits before giving up (only reached when the loop is blocked)
REPLY = json.dumps({"user_context": "a traveller", "decisions": ["Tokyo first"]})


def conversation(turns: int) -> list[ChatMessage]:
    out = [ChatMessage(role=MessageRole.SYSTEM, content="You are a travel assistant.")]
    for t in range(turns):
        out += [
            ChatMessage(role=MessageRole.USER, content=f"question {t}: {FILLER}"),
            ChatMessage(role=MessageRole.ASSISTANT, content=f"answer {t}: city {t} is lovely."),
        ]
    return out + [ChatMessage(role=MessageRole.USER, content="and now?")]


class Gate:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.released_in_time: list[bool] = []
        self.used: list[str] = []

    def llm(self) -> ScriptedLLM:
        gate = self

        class GatedLLM(ScriptedLLM):
            def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
                gate.used.append("chat")
                gate.entered.set()
                gate.released_in_time.append(gate.release.wait(BOUND))
                return super().chat(messages, **kwargs)

            async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
                gate.used.append("achat")
                gate.entered.set()
                gate.released_in_time.append(await asyncio.to_thread(gate.release.wait, BOUND))
                return await super().achat(messages, **kwargs)

        return GatedLLM(script=[REPLY], model="gpt-4o-mini")


async def test_aget_summarizes_with_achat_while_the_loop_and_the_memory_stay_usable() -> None:
    gate = Gate()
    memory = TieredMemory(900, summarizer=gate.llm(), recent_turns=1, summarize_every=3, ledger="memory://")
    await memory.aput_messages(conversation(10))
    late = ChatMessage(role=MessageRole.USER, content="a message written while the summary runs")

    async def watch() -> None:
        seen = await asyncio.to_thread(gate.entered.wait, BOUND)
        await memory.aput(late)  # the memory is not locked by the summary in flight
        if seen:
            gate.release.set()

    watcher = asyncio.create_task(watch())
    view = await memory.aget()
    await watcher
    assert gate.used == ["achat"] and gate.released_in_time == [True]
    assert memory.summary is not None and memory.summary.decisions == ["Tokyo first"]
    assert any("Tokyo first" in (m.content or "") for m in view)
    assert (await memory.aget_all())[-1] is late
    assert memory.last_report is not None and memory.last_report.total <= 900


async def test_afit_awaits_the_summary_and_a_sync_get_uses_chat() -> None:
    gate = Gate()
    gate.release.set()  # no blocking here: which method each path uses
    memory = TieredMemory(900, summarizer=gate.llm(), recent_turns=1, summarize_every=3, ledger="memory://")
    await memory.afit(conversation(10))
    assert gate.used == ["achat"] and memory.summary is not None
    other = TieredMemory(900, summarizer=gate.llm(), recent_turns=1, summarize_every=3, ledger="memory://")
    other.put_messages(conversation(10))
    other.get()
    assert gate.used == ["achat", "chat"] and other.summary is not None
