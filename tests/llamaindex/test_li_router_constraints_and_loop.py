"""RouterLLM: a cascade's escalation goes through the policy's constraints (a free user capped at
nano is not escalated; the answer stands and its route says why), an escalated call records the
documented reason, and the async call forms never block the event loop to decide (a
``SemanticPolicy`` over an embedding model that does blocking I/O decides in a worker thread).
The blocking calls wait on a gate that only a heartbeat on the running loop opens
(``tests/loop_gate.py``)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import user
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.instrumentation.dispatcher import instrument_tags
from loop_gate import Gate, run_watched
from pydantic import PrivateAttr

from agentcost_core.routing import CascadePolicy, SemanticPolicy, UserTierCap
from agentcost_llamaindex import RouterLLM, instrument
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MINI, BIG = "gpt-4o-mini", "gpt-4o"
NOT_SURE, REFUND = "I am not sure.", "You can get a refund within 30 days."
MODES = ["chat", "achat", "stream_chat", "astream_chat", "achat_with_tools"]


def cascade_router() -> tuple[RouterLLM, dict[str, ScriptedLLM]]:
    tiers = {"nano": ScriptedLLM(model=MINI, script=[NOT_SURE]), "frontier": ScriptedLLM(model=BIG, script=[REFUND])}
    cascade = CascadePolicy(("nano", "frontier"), validator=lambda text: "refund" in text or "no refund mentioned")
    return RouterLLM(tiers, cascade | UserTierCap({"free": "nano"})), tiers


async def ask(router: RouterLLM, mode: str, text: str = "Can I get my money back?") -> str:
    msgs = [user(text)]
    if mode == "chat":
        return router.chat(msgs).message.content
    if mode == "achat":
        return (await router.achat(msgs)).message.content
    if mode == "stream_chat":
        return "".join(c.delta or "" for c in router.stream_chat(msgs))
    if mode == "astream_chat":
        return "".join([c.delta or "" async for c in await router.astream_chat(msgs)])
    if mode == "complete":
        return router.complete(text).text
    if mode == "acomplete":
        return (await router.acomplete(text)).text
    if mode == "astream_complete":
        return "".join([c.delta or "" async for c in await router.astream_complete(text)])
    if mode == "achat_with_tools":
        return (await router.achat_with_tools([], user_msg=text)).message.content
    raise AssertionError(mode)


def llm_events(h: Any) -> list[Any]:
    return [e for e in h.events if e.kind == "llm"]


@pytest.mark.parametrize("mode", MODES)
async def test_router_llm_does_not_escalate_a_free_user_past_the_cap(mode: str) -> None:
    router, tiers = cascade_router()
    with instrument("memory://") as h, instrument_tags({"user_tier": "free"}):
        assert await ask(router, mode) == NOT_SURE
    assert tiers["frontier"].turn == 0
    assert [(e.tier, e.extra["route_reason"]) for e in llm_events(h)] == [
        ("nano", "cascade: try nano first; no escalation past nano: user plan 'free' is capped at nano")
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_router_llm_escalated_call_records_the_documented_reason(mode: str) -> None:
    router, _ = cascade_router()
    with instrument("memory://") as h, instrument_tags({"user_tier": "pro"}):
        assert await ask(router, mode) == REFUND
    nano, frontier = llm_events(h)
    assert nano.extra["route_reason"] == "cascade: try nano first"
    assert (
        frontier.extra["route_reason"] == "cascade: nano answer rejected (no refund mentioned); escalated to frontier"
    )


def vector(text: str) -> list[float]:
    return [float("refund" in text), float("code" in text), 1.0]


class NetworkEmbedding(BaseEmbedding):
    """Stands for a hosted embedding model: the sync methods block (on the gate) like an HTTP call."""

    _gate: Gate = PrivateAttr()

    def __init__(self, gate: Gate) -> None:
        super().__init__(model_name="network-embedding")
        self._gate = gate

    def _get_query_embedding(self, query: str) -> list[float]:
        self._gate.block()
        return vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        self._gate.block()
        return vector(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        self._gate.block()
        return [vector(t) for t in texts]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return vector(query)


@pytest.mark.parametrize("mode", ["achat", "astream_chat", "acomplete", "astream_complete", "achat_with_tools"])
async def test_router_llm_semantic_policy_embeds_off_the_event_loop(mode: str) -> None:
    gate = Gate()
    tiers = {
        "nano": ScriptedLLM(model=MINI, script=["nano answer"]),
        "frontier": ScriptedLLM(model=BIG, script=["big"]),
    }
    policy = SemanticPolicy({"nano": ["refund status"], "frontier": ["write code"]}, NetworkEmbedding(gate))
    router = RouterLLM(tiers, policy)
    with instrument("memory://") as h:
        await run_watched(gate, ask(router, mode, "where is my refund"))
    assert [e.tier for e in llm_events(h)] == ["nano"]
    assert len(gate.released) == 2 and gate.loop_kept_running  # the examples, then the request
