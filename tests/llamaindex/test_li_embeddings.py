"""LlamaIndex embedding calls: the real ``OpenAIEmbedding`` (llama-index-embeddings-openai) over the
real openai SDK and a mock wire sends EmbeddingStart / EmbeddingEnd events; each becomes an event of
kind ``embedding``, its chunks counted with the model's tokenizer (LlamaIndex keeps no usage: marked
estimated), and under guard() the run's budget is charged for it."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.embeddings.openai")

import tiktoken
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.tools import FunctionTool
from llama_index.embeddings.openai import OpenAIEmbedding

from agentcost_core import Budget, Usage
from agentcost_core.budgets import ScopeContext
from agentcost_llamaindex import guard
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODEL = "text-embedding-3-small"  # $0.02 per 1M input tokens
TEXTS = ["What is the refund policy?", "Shipping takes three to five business days.", "Hello"]


def tokens(texts: list[str]) -> int:
    enc = tiktoken.get_encoding("cl100k_base")
    return sum(len(enc.encode_ordinary(t)) for t in texts)


def cost_of(n: int) -> Decimal:
    return Decimal(n) * Decimal("0.02") / 1_000_000


class Wire:
    def __init__(self) -> None:
        self.inputs: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        batch = json.loads(request.content)["input"]
        self.inputs.append(batch)
        return httpx.Response(200, json={
            "object": "list", "model": MODEL,
            "data": [{"object": "embedding", "index": i, "embedding": [0.5, 0.25]} for i in range(len(batch))],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        })  # fmt: skip


def embedding(wire: Wire, **kwargs) -> OpenAIEmbedding:  # type: ignore[no-untyped-def]
    return OpenAIEmbedding(model=MODEL, api_key="sk-test", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(wire)),
                           async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(wire)), **kwargs)  # fmt: skip


def test_a_query_embedding_is_recorded_and_priced(handler) -> None:
    assert embedding(Wire()).get_query_embedding("refund policy") == [0.5, 0.25]
    [event] = handler.events
    n = tokens(["refund policy"])
    assert (event.kind, event.model, event.usage, event.estimated) == ("embedding", MODEL, Usage(input=n), True)
    assert event.cost == cost_of(n) and event.framework == "llamaindex"
    assert handler.total_cost == cost_of(n)


def test_each_batch_is_one_call(handler) -> None:
    wire = Wire()
    embedding(wire, embed_batch_size=2).get_text_embedding_batch(TEXTS)
    assert [len(b) for b in wire.inputs] == [2, 1]
    assert [e.usage.input for e in handler.events] == [tokens(TEXTS[:2]), tokens(TEXTS[2:])]
    assert handler.total_cost == cost_of(tokens(TEXTS))


async def test_async_embeddings_are_recorded(handler) -> None:
    await embedding(Wire()).aget_text_embedding("Hello")
    [event] = handler.events
    assert event.kind == "embedding" and event.usage == Usage(input=tokens(["Hello"]))


BATCH = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta", "iota kappa", "lambda mu and nu"]


async def test_async_batches_are_one_call_each_like_the_sync_batches(handler) -> None:
    # aget_text_embedding_batch sends every batch's start under one span id, then every end
    wire = Wire()
    await embedding(wire, embed_batch_size=2).aget_text_embedding_batch(BATCH)
    assert sorted(len(b) for b in wire.inputs) == [2, 2, 2]
    batches = [BATCH[0:2], BATCH[2:4], BATCH[4:6]]
    assert [e.usage.input for e in handler.events] == [tokens(b) for b in batches]
    embedding(Wire(), embed_batch_size=2).get_text_embedding_batch(BATCH)
    sync = handler.events[3:]
    assert [e.usage.input for e in sync] == [e.usage.input for e in handler.events[:3]]
    assert handler.total_cost == 2 * cost_of(tokens(BATCH))


async def test_under_guard_every_async_batch_is_charged() -> None:
    embed = embedding(Wire(), embed_batch_size=2)

    async def index(topic: str) -> str:
        """Index the help center."""
        await embed.aget_text_embedding_batch(BATCH)
        return "Indexed."

    llm = ScriptedLLM(model="gpt-4o", script=[{"tool": "index", "args": {"topic": "refunds"}}, "Done."])
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(async_fn=index)], llm=llm, streaming=False)
    guarded = guard(agent, budgets=Budget(usd=1, per="user_day"), user_id="indexer", ledger="memory://")
    result = await guarded.run("Index the refunds pages")
    assert result.termination_reason is None
    embeddings = [e for e in result.events if e.kind == "embedding"]
    assert len(embeddings) == 3 and sum(e.usage.input for e in embeddings) == tokens(BATCH)
    [spent] = guarded.controls.enforcer.spent(ScopeContext(user_id="indexer")).values()
    assert spent["usd"] == sum(e.cost for e in result.events if e.cost is not None) and spent["held_usd"] == 0


def test_an_embedding_carries_the_instrument_tags(handler) -> None:
    with instrument_tags({"user_id": "alice", "session_id": "s1", "feature": "rag"}):
        embedding(Wire()).get_query_embedding("refund policy")
    embedding(Wire()).get_query_embedding("no tags")
    tagged, plain = handler.events
    assert (tagged.user_id, tagged.session_id, tagged.feature) == ("alice", "s1", "rag")
    assert (plain.user_id, plain.session_id, plain.feature) == (None, None, None)


async def test_under_guard_the_runs_budget_is_charged_for_the_embedding() -> None:
    embed = embedding(Wire())

    def search(query: str) -> str:
        """Search the help center."""
        embed.get_query_embedding(query)
        return "Refunds within 30 days."

    llm = ScriptedLLM(
        model="gpt-4o", script=[{"tool": "search", "args": {"query": "refund policy"}}, "Within 30 days."]
    )
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(search)], llm=llm, streaming=False)
    guarded = guard(agent, budgets=Budget(usd=1, per="user_day"), user_id="u1", ledger="memory://")
    result = await guarded.run("Can I get a refund?")
    assert result.termination_reason is None
    kinds = [e.kind for e in result.events]
    assert kinds.count("embedding") == 1 and kinds.count("llm") == 2
    [emb] = [e for e in result.events if e.kind == "embedding"]
    assert emb.cost == cost_of(tokens(["refund policy"]))
    [spent] = guarded.controls.enforcer.spent(ScopeContext(user_id="u1")).values()
    assert spent["usd"] == sum(e.cost for e in result.events if e.cost is not None) and spent["held_usd"] == 0
