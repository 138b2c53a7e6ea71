"""The semantic layer over every backend: a paraphrase in the same scope and context hits; another
tenant, another context or an unrelated question does not; every embedding call is billed once."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from langchain_core.embeddings import Embeddings
from langchain_providers import load_providers

from agentcost_core import Ledger, PriceCatalog, Usage
from agentcost_core.attribution import Attribution
from agentcost_core.recorder import CostRecorder
from agentcost_core.response_cache import CacheEngine

P = load_providers()

CAPITAL = "What is the capital of France?"
PARAPHRASE = "Tell me the capital city of France"
UNRELATED = "How do I reset my password?"


def _vec(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle), 0.0]


#: Fixed vectors: the paraphrase is at cosine 0.98 from the question, the unrelated one at 0.0.
VECTORS = {CAPITAL: _vec(0.0), PARAPHRASE: _vec(math.acos(0.98)), UNRELATED: [0.0, 0.0, 1.0]}


class TableEmbedder:
    """A callable embedder naming its model (so its calls are priced)."""

    model = "text-embedding-3-small"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> list[float]:
        self.calls.append(text)
        return VECTORS[text]


class TableEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` over the same table."""

    model: str = "text-embedding-3-small"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [VECTORS[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return VECTORS[text]


def engine_for(store_url: str, ledger: Ledger, embed: object, **kw) -> CacheEngine:  # type: ignore[no-untyped-def]
    return CacheEngine(store_url, semantic=embed, recorder=CostRecorder(ledger), **kw)


def ask(engine: CacheEngine, text: str, user: str = "u1", system: str = "You are a geography tutor."):  # type: ignore[no-untyped-def]
    return engine.request(model="gpt-4o-mini", messages=f'["{system}", "{text}"]', params="{}", text=text,
                          system=system, attribution=Attribution(user_id=user))  # fmt: skip


@pytest.fixture
def ledger():  # type: ignore[no-untyped-def]
    ledger = Ledger("memory://", sync=True)
    yield ledger
    ledger.close()


def test_a_paraphrase_in_the_same_scope_and_context_is_a_semantic_hit(store_url: str, ledger: Ledger) -> None:
    engine = engine_for(store_url, ledger, TableEmbedder())
    first = ask(engine, CAPITAL)
    assert engine.lookup(first) is None
    engine.store(first, "Paris.", model="gpt-4o-mini", usage=Usage(input=20, output=2))
    hit = engine.lookup(ask(engine, PARAPHRASE))
    assert hit is not None and hit.layer == "semantic" and hit.entry.payload == "Paris."
    assert hit.similarity == pytest.approx(0.98)
    assert engine.stats["semantic"].hits == 1


def test_no_semantic_hit_across_tenants_contexts_or_topics(store_url: str, ledger: Ledger) -> None:
    engine = engine_for(store_url, ledger, TableEmbedder())
    engine.store(ask(engine, CAPITAL), "Paris.", model="gpt-4o-mini", usage=None)
    assert engine.lookup(ask(engine, PARAPHRASE, user="u2")) is None
    assert engine.lookup(ask(engine, PARAPHRASE, system="You are a travel agent.")) is None
    assert engine.lookup(ask(engine, UNRELATED)) is None


def test_the_threshold_is_respected(store_url: str, ledger: Ledger) -> None:
    engine = engine_for(store_url, ledger, TableEmbedder(), threshold=0.99)
    engine.store(ask(engine, CAPITAL), "Paris.", model="gpt-4o-mini", usage=None)
    assert engine.lookup(ask(engine, PARAPHRASE)) is None  # 0.98 < 0.99


def test_each_call_embeds_its_query_once_and_the_embedding_is_billed(ledger: Ledger) -> None:
    embed = TableEmbedder()
    engine = engine_for("memory://", ledger, embed)
    request = ask(engine, CAPITAL, user="carol")
    engine.lookup(request)
    engine.store(request, "Paris.", model="gpt-4o-mini", usage=None)
    assert embed.calls == [CAPITAL]
    (event,) = ledger.events()
    assert event.extra == {"cache": "embedding"} and event.user_id == "carol" and event.estimated
    assert event.model == "text-embedding-3-small"
    price = PriceCatalog.default().get("text-embedding-3-small")
    assert event.cost == price.cost(event.usage) > Decimal(0)  # type: ignore[union-attr]


def test_an_embedder_that_fails_is_a_counted_miss(ledger: Ledger) -> None:
    def broken(text: str) -> list[float]:
        raise RuntimeError("embedding service down")

    engine = engine_for("memory://", ledger, broken)
    assert engine.lookup(ask(engine, CAPITAL)) is None
    assert engine.stats["semantic"].errors == 1


def test_langchain_face_serves_a_paraphrase_from_a_real_chatopenai_answer(ledger: Ledger) -> None:
    from agentcost_langchain import ResponseCache

    mock = P.MockProvider(lambda body, _r: P.openai_chat_completion("gpt-4o-mini-2024-07-18", 30, 3, text="Paris."))
    llm = P.chat_openai(
        mock, "gpt-4o-mini", cache=ResponseCache("memory://", semantic=TableEmbeddings(), ledger=ledger)
    )
    config = {"metadata": {"user_id": "u1"}}
    assert llm.invoke(CAPITAL, config=config).content == "Paris."
    assert llm.invoke(PARAPHRASE, config=config).content == "Paris."
    assert mock.calls == 1
    assert llm.invoke(PARAPHRASE, config={"metadata": {"user_id": "u2"}}).content == "Paris."
    assert mock.calls == 2  # another tenant asks the provider
    hits = [e for e in ledger.events() if e.cache_hit]
    assert [(e.user_id, e.extra["cache"]) for e in hits] == [("u1", "semantic")]  # type: ignore[index]
    assert hits[0].saved and hits[0].saved > 0
