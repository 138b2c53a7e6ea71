"""The engine over every backend: exact hits, scopes, TTL, tags, stats, and failures as misses."""

from __future__ import annotations

import threading

import pytest

from agentcost_core.attribution import Attribution
from agentcost_core.errors import ConfigurationError
from agentcost_core.response_cache import CacheEngine, default_cache_url
from agentcost_core.usage import Usage


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ask(
    engine: CacheEngine,
    user: str | None = "u1",
    *,
    messages: str = '["hi"]',
    params: str = "{}",
    model: str = "gpt-4o-mini",
    **kw,
):  # type: ignore[no-untyped-def]
    return engine.request(model=model, messages=messages, params=params, attribution=Attribution(user_id=user), **kw)


def test_an_exact_hit_returns_what_was_stored_with_model_and_usage(store_url: str) -> None:
    engine = CacheEngine(store_url)
    request = ask(engine)
    assert engine.lookup(request) is None
    assert engine.store(request, '{"answer": 42}', model="gpt-4o-mini-2024-07-18", usage=Usage(input=12, output=3))
    hit = engine.lookup(ask(engine))
    assert hit is not None and hit.layer == "exact"
    assert hit.entry.payload == '{"answer": 42}'
    assert hit.entry.model == "gpt-4o-mini-2024-07-18"
    assert hit.entry.usage == Usage(input=12, output=3)
    assert engine.stats.as_dict()["exact"] == {"hits": 1, "misses": 1, "errors": 0}


@pytest.mark.parametrize("change", [{"messages": '["hi", "again"]'}, {"params": '{"temperature": 0.5}'},
                                    {"model": "gpt-4o"}])  # fmt: skip
def test_any_difference_in_messages_params_or_model_is_a_miss(store_url: str, change: dict[str, str]) -> None:
    engine = CacheEngine(store_url)
    engine.store(ask(engine), "stored", model="gpt-4o-mini", usage=None)
    assert engine.lookup(ask(engine, **change)) is None


def test_scopes_never_share_entries(store_url: str) -> None:
    engine = CacheEngine(store_url)
    engine.store(ask(engine, "alice"), "alice's answer", model="m", usage=None)
    assert engine.lookup(ask(engine, "bob")) is None
    assert engine.lookup(ask(engine, None)) is None
    assert engine.lookup(ask(engine, "alice")).entry.payload == "alice's answer"  # type: ignore[union-attr]


def test_an_empty_scope_shares_entries_between_users(store_url: str) -> None:
    engine = CacheEngine(store_url, scope=())
    engine.store(ask(engine, "alice"), "shared", model="m", usage=None)
    assert engine.lookup(ask(engine, "bob")).entry.payload == "shared"  # type: ignore[union-attr]


def test_scope_by_feature_and_user(store_url: str) -> None:
    engine = CacheEngine(store_url, scope=("user_id", "feature"))
    a = engine.request(model="m", messages="[]", params="", attribution=Attribution(user_id="u", feature="search"))
    b = engine.request(model="m", messages="[]", params="", attribution=Attribution(user_id="u", feature="chat"))
    engine.store(a, "search answer", model="m", usage=None)
    assert engine.lookup(b) is None
    assert engine.lookup(a) is not None


def test_entries_expire_after_their_ttl(store_url: str) -> None:
    clock = Clock()
    engine = CacheEngine(store_url, ttl=60, clock=clock)
    engine.store(ask(engine), "fresh", model="m", usage=None)
    clock.now += 59
    assert engine.lookup(ask(engine)) is not None
    clock.now += 2
    assert engine.lookup(ask(engine)) is None


def test_len_counts_the_unexpired_entries_in_every_store(store_url: str) -> None:
    clock = Clock()  # ahead of the real time: Redis keeps the keys, the entries expire by this clock
    engine = CacheEngine(store_url, ttl=60, clock=clock)
    for question in ("a", "b", "c"):
        engine.store(ask(engine, messages=f'["{question}"]'), question, model="m", usage=None)
    clock.now += 30
    engine.store(ask(engine, messages='["late"]'), "late", model="m", usage=None)
    assert len(engine) == 4
    clock.now += 30
    assert len(engine) == 1  # the first three expired at 60 s, whether or not anyone looked them up
    clock.now += 30
    assert len(engine) == 0


def test_invalidation_by_tag_drops_only_tagged_entries(store_url: str) -> None:
    engine = CacheEngine(store_url)
    engine.store(ask(engine, messages='["docs"]', tags=["docs-v1"]), "docs answer", model="m", usage=None)
    engine.store(ask(engine, "u2", messages='["docs"]', tags=["docs-v1"]), "docs answer 2", model="m", usage=None)
    engine.store(ask(engine, messages='["other"]'), "other answer", model="m", usage=None)
    assert engine.invalidate("docs-v1") == 2
    assert engine.lookup(ask(engine, messages='["docs"]')) is None
    assert engine.lookup(ask(engine, "u2", messages='["docs"]')) is None
    assert engine.lookup(ask(engine, messages='["other"]')) is not None


def test_constructor_tags_go_on_every_entry(store_url: str) -> None:
    engine = CacheEngine(store_url, tags="release-7")
    engine.store(ask(engine), "a", model="m", usage=None)
    assert engine.invalidate("release-7") == 1
    assert engine.lookup(ask(engine)) is None


def test_concurrent_writers_of_many_tenants_never_see_each_others_entries(store_url: str) -> None:
    engine = CacheEngine(store_url)
    users = [f"user-{i}" for i in range(16)]
    start = threading.Barrier(len(users))
    wrong: list[str] = []

    def tenant(user: str) -> None:
        start.wait()
        for n in range(20):
            engine.store(ask(engine, user, messages=f'["q{n}"]'), f"{user}:{n}", model="m", usage=None)
            hit = engine.lookup(ask(engine, user, messages=f'["q{n}"]'))
            if hit is None or hit.entry.payload != f"{user}:{n}":
                wrong.append(f"{user} q{n} -> {hit and hit.entry.payload}")

    threads = [threading.Thread(target=tenant, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert engine.stats["exact"].errors == 0


def test_a_store_that_fails_is_a_counted_miss_never_an_error() -> None:
    engine = CacheEngine("redis://127.0.0.1:1/0")  # nothing listens there
    request = ask(engine)
    assert engine.lookup(request) is None
    assert engine.store(request, "x", model="m", usage=None) is False
    stats = engine.stats["exact"]
    assert (stats.errors, stats.misses, stats.hits) == (2, 1, 0)


def test_memory_backend_is_bounded_least_recently_used_first() -> None:
    engine = CacheEngine("memory://?max_entries=2")
    for q in ("a", "b"):
        engine.store(ask(engine, messages=q), q, model="m", usage=None)
    assert engine.lookup(ask(engine, messages="a")) is not None  # "a" is now the most recent
    engine.store(ask(engine, messages="c"), "c", model="m", usage=None)
    assert len(engine) == 2
    assert engine.lookup(ask(engine, messages="b")) is None
    assert engine.lookup(ask(engine, messages="a")) is not None


def test_the_default_store_is_a_sqlite_file_beside_the_default_ledger(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AGENTCOST_LEDGER", f"sqlite:///{tmp_path / 'costs' / 'ledger.db'}")
    assert default_cache_url() == f"sqlite:///{tmp_path / 'costs' / 'response_cache.db'}"
    engine = CacheEngine()
    engine.store(ask(engine), "kept", model="m", usage=None)
    assert (tmp_path / "costs" / "response_cache.db").exists()
    assert CacheEngine().lookup(ask(engine)).entry.payload == "kept"  # type: ignore[union-attr]


@pytest.mark.parametrize("kwargs", [{"scope": ("user",)}, {"ttl": 0}, {"ttl": "1h"}, {"threshold": 1.5},
                                    {"store": "ftp://x"}, {"store": "sqlite:/x"}, {"tags": [""]},
                                    {"store": "memory://?max_entries=0"}])  # fmt: skip
def test_bad_configuration_fails_at_construction(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigurationError):
        CacheEngine(**{"store": "memory://", **kwargs})
