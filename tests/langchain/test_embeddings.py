"""``CostTrackedEmbeddings`` around the real ``langchain_openai.OpenAIEmbeddings`` (mock wire): exact
usage from the responses, an estimate for an ``Embeddings`` that reports none, budgets charged and
enforced, the enclosing chain's trace and attribution, and the user's own call never broken by us."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("langchain_openai")

import httpx
import tiktoken
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.runnables import RunnableLambda
from langchain_openai import OpenAIEmbeddings

from agentcost_core import Budget, BudgetExceeded, Usage
from agentcost_core.budgets import ScopeContext
from agentcost_langchain import CostCallbackHandler, CostTrackedEmbeddings

MODEL = "text-embedding-3-small"  # $0.02 per 1M input tokens
TEXTS = ["What is the refund policy?", "Shipping takes three to five business days.", "Hello"]


class Wire:
    """The embeddings endpoint: answers each request with one vector per input and the usage given."""

    def __init__(self, prompt_tokens: list[int], *, status: int = 200) -> None:
        self.prompt_tokens = list(prompt_tokens)
        self.status = status
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        self.requests += 1
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "boom", "type": "server_error"}})
        n = len(json.loads(request.content)["input"])
        return httpx.Response(200, json={
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": [0.5, 0.25, -0.125]} for i in range(n)],
            "model": MODEL,
            "usage": {"prompt_tokens": self.prompt_tokens.pop(0), "total_tokens": 0},
        })  # fmt: skip


def openai_embeddings(wire: Wire, **kwargs) -> OpenAIEmbeddings:  # type: ignore[no-untyped-def]
    return OpenAIEmbeddings(
        model=MODEL, api_key="sk-test", max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(wire)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(wire)), **kwargs,
    )  # fmt: skip


def cost_of(tokens: int) -> Decimal:
    return Decimal(tokens) * Decimal("0.02") / 1_000_000


def test_documents_and_query_are_priced_from_the_reported_usage() -> None:
    wire = Wire([1_500, 7])
    handler = CostCallbackHandler("memory://", feature="search")
    emb = CostTrackedEmbeddings(openai_embeddings(wire), handler=handler)
    vectors = emb.embed_documents(TEXTS)
    assert vectors == [[0.5, 0.25, -0.125]] * 3
    assert emb.embed_query("refunds?") == [0.5, 0.25, -0.125]
    docs, query = handler.events
    assert (docs.kind, docs.model, docs.usage, docs.estimated) == ("embedding", MODEL, Usage(input=1_500), False)
    assert docs.cost == Decimal("0.00003") and query.cost == Decimal("0.00000014")
    assert docs.feature == "search" and docs.framework == "langchain" and docs.latency_s is not None
    assert handler.total_cost == Decimal("0.00003014")


def test_several_requests_of_one_call_are_summed() -> None:
    wire = Wire([100, 200])
    handler = CostCallbackHandler("memory://")
    CostTrackedEmbeddings(openai_embeddings(wire, chunk_size=2), handler=handler).embed_documents(TEXTS)
    assert wire.requests == 2
    [event] = handler.events
    assert event.usage == Usage(input=300) and event.cost == cost_of(300)


def test_async_calls_are_priced_the_same() -> None:
    wire = Wire([40, 9])
    handler = CostCallbackHandler("memory://")
    emb = CostTrackedEmbeddings(openai_embeddings(wire), handler=handler)

    async def main() -> None:
        await emb.aembed_documents(TEXTS[:2])
        await emb.aembed_query("x")

    asyncio.run(main())
    assert [e.usage.input for e in handler.events] == [40, 9]
    assert [e.estimated for e in handler.events] == [False, False]


def test_the_users_model_object_is_left_unchanged() -> None:
    inner = openai_embeddings(Wire([5]))
    client = inner.client
    CostTrackedEmbeddings(inner, handler=CostCallbackHandler("memory://")).embed_query("x")
    assert inner.client is client


def test_an_embeddings_without_usage_is_estimated_with_the_tokenizer() -> None:
    handler = CostCallbackHandler("memory://")
    emb = CostTrackedEmbeddings(DeterministicFakeEmbedding(size=4), handler=handler, model=MODEL)
    assert len(emb.embed_documents(TEXTS)) == 3
    [event] = handler.events
    enc = tiktoken.get_encoding("cl100k_base")
    tokens = sum(len(enc.encode_ordinary(t)) for t in TEXTS)
    assert event.estimated and event.usage == Usage(input=tokens) and event.cost == cost_of(tokens)


def test_a_budget_is_charged_and_refuses_an_embedding_that_does_not_fit() -> None:
    wire = Wire([1_000_000, 1])
    handler = CostCallbackHandler("memory://", budgets=Budget(usd="0.03", per="session"), session_id="s-1")
    emb = CostTrackedEmbeddings(openai_embeddings(wire, check_embedding_ctx_length=False), handler=handler)
    emb.embed_query("first")
    enforcer = handler.controls.enforcer
    ctx = ScopeContext(trace_id=handler.events[0].trace_id, session_id="s-1")
    assert enforcer.spent(ctx)[enforcer.budgets[0].name]["usd"] == Decimal("0.02")
    with pytest.raises(BudgetExceeded):
        emb.embed_documents(["word " * 600_000])  # its input alone would cost more than the $0.01 left
    assert wire.requests == 1  # the refused call never reached the provider
    assert enforcer.spent(ctx)[enforcer.budgets[0].name]["held_usd"] == 0


def test_a_provider_error_is_the_users_exception_and_releases_the_reservation() -> None:
    wire = Wire([], status=500)
    handler = CostCallbackHandler("memory://", budgets=Budget(usd=1, per="session"), session_id="s-1")
    emb = CostTrackedEmbeddings(openai_embeddings(wire), handler=handler)
    import openai

    with pytest.raises(openai.InternalServerError):
        emb.embed_query("x")
    [event] = handler.events
    assert event.kind == "embedding" and event.error and event.cost is None
    enforcer = handler.controls.enforcer
    ctx = ScopeContext(trace_id=event.trace_id, session_id="s-1")
    assert enforcer.spent(ctx)[enforcer.budgets[0].name] == {
        "usd": 0, "tokens": 0, "model_calls": 0, "tool_calls": 0, "held_usd": 0,
    }  # fmt: skip


def test_inside_a_chain_it_joins_the_chains_trace_step_and_attribution() -> None:
    wire = Wire([12])
    handler = CostCallbackHandler("memory://")
    emb = CostTrackedEmbeddings(openai_embeddings(wire), handler=handler)
    chain = RunnableLambda(lambda q: emb.embed_query(q), name="retrieve")
    chain.invoke("refunds?", config={"callbacks": [handler], "metadata": {"user_id": "u-7"}})
    [event] = handler.events
    assert event.user_id == "u-7" and event.step == "retrieve"
    assert event.trace_id == event.parent_id  # the chain is the root run


def test_our_own_fault_never_breaks_the_users_call() -> None:
    handler = CostCallbackHandler("memory://")
    handler.recorder.record_outcome = None  # type: ignore[method-assign]  # recording fails: our fault
    emb = CostTrackedEmbeddings(openai_embeddings(Wire([3])), handler=handler)
    assert emb.embed_query("x") == [0.5, 0.25, -0.125]
    assert handler.internal_errors == 1


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="Embeddings"):
        CostTrackedEmbeddings(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handler"):
        CostTrackedEmbeddings(DeterministicFakeEmbedding(size=2), handler=object())  # type: ignore[arg-type]
    assert isinstance(CostTrackedEmbeddings(DeterministicFakeEmbedding(size=2), handler=CostCallbackHandler("memory://")),
                      Embeddings)  # fmt: skip
