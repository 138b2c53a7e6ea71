"""A token count no column can hold is malformed usage: the call is estimated and flagged when it
is recorded, and the event is stored like any other (never dead-lettered by the database)."""

from __future__ import annotations

from typing import Any

from agentcost_core import Ledger
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.testing import ScriptedChatModel


class Oversized(ScriptedChatModel):
    def _usage(self, messages: Any, reply: Any) -> dict[str, Any]:
        usage = super()._usage(messages, reply)
        return {**usage, "input_tokens": 2**63, "total_tokens": 2**63 + usage["output_tokens"]}


def test_a_count_beyond_64_bits_is_estimated_flagged_and_stored(tmp_path: Any) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    handler = CostCallbackHandler(ledger)
    Oversized(script=["Paris."], model="gpt-4o").invoke("capital of France?", {"callbacks": [handler]})
    ledger.flush()
    (event,) = ledger.events()
    assert event.estimated and "2**63" in event.extra["usage_error"]
    assert 0 < event.usage.input < 1_000 and event.cost is not None and event.cost > 0
    status = ledger.status()
    assert (status.written, status.dead_lettered) == (1, 0)
    ledger.close()
