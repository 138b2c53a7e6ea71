"""LlamaIndex: an Anthropic response in ``ChatResponse.raw`` whose ``usage.iterations`` itemises a
compaction, sampling iterations and an advisor call on another model is billed from the iterations."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

import anthropic_iterations as AI
from li_fakes import RawChatLLM, user

from agentcost_core import Usage


def _check(handler) -> None:
    [event] = handler.events
    assert event.priced and not event.estimated and event.provider == "anthropic"
    assert event.model == AI.MODEL
    assert event.usage == Usage(**AI.SUM)
    assert event.cost == AI.COST
    assert [row["cost"] for row in event.extra["iterations"]] == AI.ITERATION_COSTS
    assert [row["model"] for row in event.extra["iterations"]] == [AI.MODEL, AI.MODEL, AI.ADVISOR, AI.MODEL]


def test_chat_bills_the_sum_of_iterations(handler) -> None:
    llm = RawChatLLM(model=AI.MODEL, text="Summary written.", raw=AI.message())
    llm.chat([user("Keep going.")])
    _check(handler)


async def test_achat_bills_the_sum_of_iterations(handler) -> None:
    llm = RawChatLLM(model=AI.MODEL, text="Summary written.", raw=AI.message())
    await llm.achat([user("Keep going.")])
    _check(handler)
