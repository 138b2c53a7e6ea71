"""Usage a provider reports in a shape that cannot be read (a list, a string, a digit-like "²",
only a total) is estimated and marked with the reason, never a crash and never a priced $0;
under a guard the run goes on and nothing stays held."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import RawChatLLM
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from pydantic import Field

from agentcost_core import Budget
from agentcost_core.budgets import ScopeContext
from agentcost_llamaindex import guard
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MALFORMED = {
    "a list": [1, 2, 3],
    "a string": "12 tokens",
    "a digit-like count": {"prompt_tokens": "²", "completion_tokens": 5},
    "only a total": {"total_tokens": 30},
}


def _raw(usage: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06", "usage": usage}


@pytest.mark.parametrize("usage", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_usage_is_recorded_as_an_estimate_with_its_reason(handler: Any, usage: Any) -> None:
    llm = RawChatLLM(model="gpt-4o", text="Paris is the capital.", raw=_raw(usage))
    response = llm.chat([ChatMessage(role=MessageRole.USER, content="Capital of France?")])

    assert response.message.content == "Paris is the capital."
    assert handler.internal_errors == 0
    [event] = handler.events
    assert event.estimated and event.extra["usage_error"]
    assert event.usage.input > 0 and event.usage.output > 0
    assert event.cost is not None and event.cost > 0


class MalformedUsageLLM(ScriptedLLM):
    """Answers like ScriptedLLM, with the usage replaced by a malformed one."""

    usage: Any = Field(default=None)

    def _reply(self, messages: Any) -> Any:
        message, raw = super()._reply(messages)
        return message, {**raw, "usage": self.usage}


@pytest.mark.parametrize("usage", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_usage_under_a_guard_settles_an_estimate_and_holds_nothing(usage: Any, budget_store: Any) -> None:
    llm = MalformedUsageLLM(
        model="gpt-4o-2024-08-06", max_tokens=200, usage=usage,
        script=[{"tool": "lookup", "args": {"q": "France"}}, "Paris."],
    )  # fmt: skip

    def lookup(q: str) -> str:
        """Look something up."""
        return "Paris is the capital of France."

    agent = FunctionAgent(tools=[lookup], llm=llm, streaming=False)
    guarded = guard(agent, budgets=Budget(usd="1", per="user_day", store=budget_store), user_id="u1",
                    ledger="memory://")  # fmt: skip

    result = await guarded.run("What is the capital of France?")

    assert result.termination_reason is None and result.answer == "Paris."  # the run went on
    assert len(result.events) == 2
    assert all(e.estimated and e.extra["usage_error"] and e.cost > 0 for e in result.events)
    [status] = guarded.controls.enforcer.spent(ScopeContext(user_id="u1")).values()
    assert status["held_usd"] == 0
    assert status["usd"] == result.cost > Decimal(0)  # the estimate was settled, not a $0
