"""Embedding calls take the one call path: an :class:`EmbeddingCall` is counted, reserved, priced by
the accountant and recorded as a ledger event of kind ``embedding``, and budgets settle at its cost."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest
import tiktoken

from agentcost_core import Budget, BudgetExceeded, CostRecorder, Ledger, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.budgets import ScopeContext
from agentcost_core.call import EmbeddingCall, Outcome
from agentcost_core.guards.run_guard import Controls
from agentcost_core.parsers import from_embeddings
from agentcost_core.rollup import rollup

MODEL = "text-embedding-3-small"  # $0.02 per 1M input tokens (genai-prices)
TEXTS = ["What is the refund policy?", "Shipping takes three to five business days."]
CTX = ScopeContext(trace_id="run-1", session_id="s-1")


def cl100k(texts: list[str]) -> int:
    enc = tiktoken.get_encoding("cl100k_base")  # text-embedding-3-*'s tokenizer
    return sum(len(enc.encode_ordinary(t)) for t in texts)


def embeddings_response(prompt_tokens: int, n: int = 2) -> dict:
    """An ``embeddings.create`` response as https://platform.openai.com/docs/api-reference/embeddings/object."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1, -0.2, 0.3]} for i in range(n)],
        "model": MODEL,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def test_the_texts_are_counted_with_the_models_tokenizer_and_reserved_without_output() -> None:
    call = EmbeddingCall(MODEL, texts=TEXTS)
    assert call.input_tokens().tokens == cl100k(TEXTS) and call.input_tokens().exact
    worst = Accountant().worst_case(call)
    assert (worst.input_tokens, worst.output_tokens, worst.estimated) == (cl100k(TEXTS), 0, False)
    assert worst.usd == Decimal(cl100k(TEXTS)) * Decimal("0.02") / 1_000_000


def test_the_real_openai_sdks_usage_prices_the_call_exactly() -> None:
    client = openai.OpenAI(
        api_key="sk-test", http_client=httpx.Client(transport=httpx.MockTransport(
            lambda req: httpx.Response(200, json=embeddings_response(1_234)))),
    )  # fmt: skip
    response = client.embeddings.create(model=MODEL, input=TEXTS)
    usage = from_embeddings(response.usage)
    assert usage == Usage(input=1_234)
    recorder = CostRecorder("memory://", feature="search")
    event, budget = recorder.record_outcome(
        EmbeddingCall(MODEL, texts=TEXTS), Outcome(usage=usage, model=response.model)
    )
    assert event.kind == "embedding" and not event.estimated and event.feature == "search"
    assert event.cost == budget == Decimal("0.00002468")  # 1,234 x $0.02 / 1M
    assert event.price_source and event.price_source.startswith("genai-prices")
    assert recorder.total_cost == Decimal("0.00002468")
    assert recorder.usage_by_model == {MODEL: Usage(input=1_234)}


def test_without_usage_the_tokens_are_counted_and_marked_estimated() -> None:
    recorder = CostRecorder("memory://")
    event, _ = recorder.record_outcome(EmbeddingCall(MODEL, texts=TEXTS), Outcome(model=MODEL))
    assert event.estimated and event.usage == Usage(input=cl100k(TEXTS))
    assert event.cost == Decimal(cl100k(TEXTS)) * Decimal("0.02") / 1_000_000


def test_recorded_by_keywords_it_is_priced_too() -> None:
    recorder = CostRecorder("memory://")
    event = recorder.record(MODEL, Usage(input=50_000), kind="embedding", estimated=True)
    assert (event.kind, event.cost, event.estimated) == ("embedding", Decimal("0.001"), True)


def test_an_unknown_embedding_model_is_unpriced_never_zero() -> None:
    recorder = CostRecorder("memory://")
    event, budget = recorder.record_outcome(EmbeddingCall("house-embedder", texts=TEXTS),
                                            Outcome(usage=Usage(input=100), model="house-embedder"))  # fmt: skip
    assert event.cost is None and not event.priced and budget > 0  # budgets use the fallback price


def test_the_ledger_keeps_the_kind_and_reports_count_it_as_a_call(tmp_path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", sync=True)
    recorder = CostRecorder(ledger)
    recorder.record_outcome(EmbeddingCall(MODEL, texts=TEXTS), Outcome(usage=Usage(input=1_000_000), model=MODEL))
    [stored] = ledger.events()
    assert (stored.kind, stored.cost, stored.usage.input) == ("embedding", Decimal("0.02"), 1_000_000)
    total = rollup(ledger.events(), by=("model",))
    assert total.total.calls == 1 and total.total.cost == Decimal("0.02")
    ledger.close()


def test_a_budget_is_charged_for_an_embedding_and_refuses_one_that_does_not_fit() -> None:
    controls = Controls(budgets=Budget(usd="0.03", per="run"))
    recorder = CostRecorder("memory://")
    controls.attach(recorder.ledger, "test", recorder.accountant)
    run = controls.start(CTX)
    with run.call(EmbeddingCall(MODEL, texts=TEXTS)) as scope:
        scope.outcome = Outcome(usage=Usage(input=1_000_000), model=MODEL)
        _, scope.cost = recorder.record_outcome(scope.call, scope.outcome)
    assert controls.enforcer.spent(CTX)[controls.enforcer.budgets[0].name]["usd"] == Decimal("0.02")
    assert run.monitor is None and run.cost == Decimal("0.02")
    # 0.01 left: an embedding whose input alone costs more is refused before it runs
    big = EmbeddingCall(MODEL, texts=["word " * 600_000])
    with pytest.raises(BudgetExceeded), run.call(big):
        pytest.fail("the call ran")
    assert controls.enforcer.spent(CTX)[controls.enforcer.budgets[0].name]["held_usd"] == 0
