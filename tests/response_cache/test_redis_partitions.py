"""The Redis store's semantic partition lists (``<namespace>:p:…``) and tag lists (``<namespace>:t:…``)
live as long as their longest-lived entry: Redis' own expiry of the keys, never a key that outlives
every entry it lists."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from agentcost_core.response_cache import CacheEngine


def embed(text: str) -> tuple[float, ...]:
    return (1.0, float(len(text)), 0.5)


@pytest.fixture
def client(redis_url: str) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def engine(store: str, ttl: float | None) -> CacheEngine:
    return CacheEngine(store, semantic=embed, scope=(), ttl=ttl)


def store(cache: CacheEngine, question: str, history: tuple[str, ...] = ("human:hello",)) -> None:
    request = cache.request(model="m", messages=question, params="p", text=question, history=history)
    assert cache.store(request, f"answer to {question}", model="m", usage=None)


def partition_ttls(client: object, cache: CacheEngine) -> list[int]:
    """Redis' remaining lifetime (ms; -1 = none) of each partition list of ``cache``'s namespace."""
    names = sorted(client.scan_iter(match=f"{cache.backend.namespace}:p:*", count=1000))  # type: ignore[attr-defined]
    return [client.pttl(name) for name in names]  # type: ignore[attr-defined]


def test_a_partition_list_expires_with_its_latest_entry(redis_cache_store: str, client: object) -> None:
    short, long, shorter = engine(redis_cache_store, 30), engine(redis_cache_store, 60), engine(redis_cache_store, 10)
    store(short, "What is the refund policy?")
    (ttl,) = partition_ttls(client, short)
    assert 0 < ttl <= 30_001  # it lives as long as its entry, not forever
    store(long, "How long does shipping take?")
    (ttl,) = partition_ttls(client, short)
    assert 30_001 < ttl <= 60_001  # extended to the later entry
    store(shorter, "Do you ship abroad?")
    (ttl,) = partition_ttls(client, short)
    assert 30_001 < ttl <= 60_001  # never shortened below an entry it lists


def test_a_partition_listing_an_entry_without_expiry_never_expires(redis_cache_store: str, client: object) -> None:
    timed, forever = engine(redis_cache_store, 30), engine(redis_cache_store, None)
    store(timed, "What is the refund policy?")
    store(forever, "How long does shipping take?")
    assert partition_ttls(client, timed) == [-1]
    store(timed, "Do you ship abroad?")
    assert partition_ttls(client, timed) == [-1]
    store(forever, "Is there a warranty?", history=("human:another conversation",))
    assert sorted(partition_ttls(client, timed)) == [-1, -1]


def test_a_partition_list_is_gone_once_its_entries_expired(redis_cache_store: str, client: object) -> None:
    cache = engine(redis_cache_store, 0.05)
    for conversation in ("human:first", "human:second", "human:third"):
        store(cache, "What is the refund policy?", history=(conversation,))
    assert len(partition_ttls(client, cache)) == 3
    deadline, tick = time.monotonic() + 10, threading.Event()
    while len(cache) and time.monotonic() < deadline:  # polled until Redis expired every entry
        tick.wait(0.01)
    assert len(cache) == 0
    assert partition_ttls(client, cache) == []  # no list is left behind, nobody has to prune it


def test_a_tag_list_lives_as_long_as_its_longest_lived_entry(redis_cache_store: str, client: object) -> None:
    short = CacheEngine(redis_cache_store, scope=(), ttl=30, tags=("faq",))
    long = CacheEngine(redis_cache_store, scope=(), ttl=60, tags=("faq",))
    forever = CacheEngine(redis_cache_store, scope=(), ttl=None, tags=("pricing",))
    store(short, "What is the refund policy?")
    tag = f"{short.backend.namespace}:t:faq"
    assert 0 < client.pttl(tag) <= 30_001  # type: ignore[attr-defined]
    store(long, "How long does shipping take?")
    assert 30_001 < client.pttl(tag) <= 60_001  # type: ignore[attr-defined]
    store(short, "Do you ship abroad?")
    assert 30_001 < client.pttl(tag) <= 60_001  # type: ignore[attr-defined]
    store(forever, "How much is the premium plan?")
    assert client.pttl(f"{short.backend.namespace}:t:pricing") == -1  # type: ignore[attr-defined]
    assert short.invalidate("faq") == 3  # invalidation by tag still finds every entry
