"""What a guarded LlamaIndex call reserves before it runs: the price of its service tier and every
billed input part (image parts included), so concurrent calls on a hard cap never spend over it
and nothing stays held afterwards, on every budget store."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from pydantic import Field

from agentcost_core import Budget
from agentcost_core.budgets import ScopeContext
from agentcost_core.halts import TerminationReason
from agentcost_llamaindex import guard
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LONG_ANSWER = " ".join(["Paris"] * 400)  # about as many tokens as max_tokens allows


class Gate:
    """Holds every model call until each of ``runs`` runs has either reached the model or ended
    (refused): then all reservations are made before any call settles."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.entered = 0
        self.ended = 0
        self.open = asyncio.Event()

    def check(self) -> None:
        if self.entered + self.ended >= self.runs:
            self.open.set()

    def run_ended(self, _: Any) -> None:
        self.ended += 1
        self.check()


class GatedLLM(ScriptedLLM):
    gate: Any = Field(default=None, exclude=True)

    async def achat(self, messages: Any, **kwargs: Any) -> Any:
        self.gate.entered += 1
        self.gate.check()
        await self.gate.open.wait()
        return await super().achat(messages, **kwargs)


def _status(guarded: Any, user: str) -> dict[str, Any]:
    [status] = guarded.controls.enforcer.spent(ScopeContext(user_id=user)).values()
    return status


async def test_priority_tier_calls_on_a_hard_cap_never_spend_over_it(budget_store: Any) -> None:
    gate = Gate(runs=10)
    llm = GatedLLM(
        model="gpt-4o", script=[LONG_ANSWER], max_tokens=400, gate=gate,
        additional_kwargs={"service_tier": "priority"},  # the provider serves (and bills) the priority tier
    )  # fmt: skip
    agent = FunctionAgent(tools=[], llm=llm, streaming=False)
    cap = Decimal("0.017")
    guarded = guard(agent, budgets=Budget(usd=cap, per="user_day", store=budget_store), user_id="u1",
                    ledger="memory://")  # fmt: skip

    runs = [asyncio.ensure_future(guarded.run("What is the capital of France?")) for _ in range(10)]
    for run in runs:
        run.add_done_callback(gate.run_ended)
    results = await asyncio.gather(*runs)

    finished = [r for r in results if r.termination_reason is None]
    refused = [r for r in results if r.termination_reason is TerminationReason.BUDGET]
    assert finished and refused and len(finished) + len(refused) == 10
    assert all(e.service_tier == "priority" for r in finished for e in r.events)
    spent = sum((r.cost for r in finished), Decimal(0))
    status = _status(guarded, "u1")
    assert status["usd"] == spent <= cap
    assert status["held_usd"] == 0


def _with_images(n: int) -> ChatMessage:
    blocks: list[Any] = [TextBlock(text="What is in these pictures?")]
    blocks += [ImageBlock(url=f"https://example.com/picture-{i}.png") for i in range(n)]
    return ChatMessage(role=MessageRole.USER, blocks=blocks)


async def test_image_parts_are_counted_in_the_reservation(budget_store: Any) -> None:
    llm = ScriptedLLM(model="gpt-4o", script=["A cat."], max_tokens=20)
    agent = FunctionAgent(tools=[], llm=llm, streaming=False)
    # the text and 20 output tokens fit in $0.002; one image part is billed up to ~1,445 tokens ($0.0036)
    guarded = guard(agent, budgets=Budget(usd="0.002", per="run", store=budget_store), ledger="memory://")

    text_only = await guarded.run(_with_images(0))
    with_image = await guarded.run(_with_images(1))

    assert text_only.termination_reason is None and text_only.answer == "A cat."
    assert with_image.termination_reason is TerminationReason.BUDGET
    assert with_image.events == [] and llm.turn == 1  # refused before the call: the model never saw it


async def test_every_completion_a_call_asks_for_is_part_of_the_reservation(budget_store: Any) -> None:
    def guarded(n: int) -> tuple[Any, ScriptedLLM]:
        llm = ScriptedLLM(model="gpt-4o", script=["A tagline."], max_tokens=200, additional_kwargs={"n": n})
        agent = FunctionAgent(tools=[], llm=llm, streaming=False)
        # one answer of up to 200 tokens ($0.002) fits in $0.004; three ($0.006) do not
        return guard(agent, budgets=Budget(usd="0.004", per="run", store=budget_store), ledger="memory://"), llm

    one, one_llm = guarded(1)
    three, three_llm = guarded(3)
    ran = await one.run("Write a tagline")
    refused = await three.run("Write a tagline")
    assert ran.termination_reason is None and one_llm.turn == 1
    assert refused.termination_reason is TerminationReason.BUDGET and three_llm.turn == 0  # never called
