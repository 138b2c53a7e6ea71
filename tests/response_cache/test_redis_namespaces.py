"""Namespaces sharing one Redis: clearing, counting or invalidating in one never touches another, even
one whose name extends it (``ns:staging``, ``ns:e``, ``ns:t``, ``ns:p:x``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from langchain_providers import load_providers

from agentcost_core import Ledger
from agentcost_core.response_cache import CacheEngine
from agentcost_langchain import ResponseCache

P = load_providers()
NEIGHBOURS = ("staging", "e", "t", "p:x")


def embed(text: str) -> tuple[float, ...]:
    return (1.0, float(len(text)), 0.5)


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A namespace of its own; every key under it and under the names that extend it dropped after."""
    import redis

    name = f"agentcost-test:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    names = list(client.scan_iter(match=f"{name}*", count=1000))
    if names:
        client.delete(*names)
    client.close()


def url(redis_url: str, namespace: str) -> str:
    return f"{redis_url}{'&' if '?' in redis_url else '?'}namespace={namespace}"


def engine(redis_url: str, namespace: str) -> CacheEngine:
    return CacheEngine(url(redis_url, namespace), semantic=embed, scope=())  # semantic: partition lists too


def store(cache: CacheEngine, question: str, *tags: str) -> None:
    request = cache.request(model="m", messages=question, params="p", text=question, tags=tags)
    assert cache.store(request, f"answer to {question}", model="m", usage=None)


def hits(cache: CacheEngine, question: str) -> bool:
    return cache.lookup(cache.request(model="m", messages=question, params="p")) is not None


def test_clearing_a_namespace_leaves_the_namespaces_that_extend_its_name(redis_url: str, namespace: str) -> None:
    mine = engine(redis_url, namespace)
    others = {suffix: engine(redis_url, f"{namespace}:{suffix}") for suffix in NEIGHBOURS}
    store(mine, "What is the refund policy?", "release", "t:release")
    for other in others.values():
        store(other, "What is the refund policy?", "release")
        store(other, "How long does shipping take?")
    mine.clear()
    assert len(mine) == 0
    assert not hits(mine, "What is the refund policy?")
    for suffix, other in others.items():
        assert len(other) == 2, suffix
        assert hits(other, "What is the refund policy?"), suffix
        assert other.invalidate("release") == 1, suffix  # its tag list is intact
        assert not hits(other, "What is the refund policy?"), suffix
        assert hits(other, "How long does shipping take?"), suffix
        assert len(other) == 1, suffix


def test_len_counts_only_the_namespaces_own_entries(redis_url: str, namespace: str) -> None:
    mine = engine(redis_url, namespace)
    others = [engine(redis_url, f"{namespace}:{suffix}") for suffix in NEIGHBOURS]
    store(mine, "What is the refund policy?")
    for other in others:
        store(other, "What is the refund policy?")
        store(other, "How long does shipping take?")
    assert len(mine) == 1
    assert [len(other) for other in others] == [2] * len(NEIGHBOURS)


def test_invalidating_a_tag_drops_only_the_namespaces_own_entries(redis_url: str, namespace: str) -> None:
    # the tag "t:docs" of ns and the tag "docs" of ns:t are one Redis key name: ns:t:t:docs
    mine, other = engine(redis_url, namespace), engine(redis_url, f"{namespace}:t")
    store(mine, "What is the refund policy?", "t:docs")
    store(other, "What is the refund policy?", "docs")
    assert mine.invalidate("t:docs") == 1
    assert not hits(mine, "What is the refund policy?")
    assert hits(other, "What is the refund policy?")
    assert other.invalidate("docs") == 1
    assert not hits(other, "What is the refund policy?")


def test_clearing_keeps_another_namespaces_entries_under_the_same_tag_name(redis_url: str, namespace: str) -> None:
    mine, other = engine(redis_url, namespace), engine(redis_url, f"{namespace}:t")
    store(mine, "What is the refund policy?", "t:docs")
    store(other, "What is the refund policy?", "docs")
    mine.clear()
    assert other.invalidate("docs") == 1


def test_a_langchain_response_cache_clears_only_its_namespace(redis_url: str, namespace: str) -> None:
    mock = P.MockProvider(lambda body, _req: P.openai_chat_completion("gpt-4o-mini-2024-07-18", 100, 20))
    ledger = Ledger("memory://", sync=True)
    mine = ResponseCache(url(redis_url, namespace), ledger=ledger)
    staging = ResponseCache(url(redis_url, f"{namespace}:staging"), ledger=ledger)
    P.chat_openai(mock, "gpt-4o-mini", cache=mine).invoke("Plan my week")
    P.chat_openai(mock, "gpt-4o-mini", cache=staging).invoke("Plan my week")
    assert (len(mine), len(staging)) == (1, 1)
    mine.clear()
    assert (len(mine), len(staging)) == (0, 1)
    P.chat_openai(mock, "gpt-4o-mini", cache=staging).invoke("Plan my week")
    assert mock.calls == 2  # staging's entry still answers
    ledger.close()


def test_a_redis_store_that_would_decode_replies_is_refused_at_construction(redis_url: str) -> None:
    from agentcost_core.coalesce import Coalescer
    from agentcost_core.errors import ConfigurationError
    from agentcost_langchain import ResponseCache

    url = redis_url + ("&" if "?" in redis_url else "?") + "decode_responses=true"
    with pytest.raises(ConfigurationError, match="decode_responses"):
        ResponseCache(url)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        Coalescer(redis=url)
    import redis

    with pytest.raises(ConfigurationError, match="decode_responses"):
        Coalescer(redis=redis.Redis.from_url(redis_url, decode_responses=True))
