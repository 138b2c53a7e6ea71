"""Semantic lookups among many entries, in every backend: the partition index finds the right entry,
decides exactly as the matcher does over the whole scope, and never crosses a scope or a context."""

from __future__ import annotations

import math
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from array import array
from pathlib import Path

import pytest
from semantic_data import load_pairs, load_vectors

from agentcost_core.attribution import Attribution
from agentcost_core.response_cache import CacheEngine
from agentcost_core.response_cache.semantic import SemanticCandidate, SemanticMatcher, SemanticQuery

SYSTEM = "You are the support agent of an online shop."


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class TableEmbedder:
    """A callable embedder over a fixed table of vectors; counts its calls."""

    def __init__(self, table: dict[str, tuple[float, ...]]) -> None:
        self.table = table
        self.calls = 0

    def __call__(self, text: str) -> tuple[float, ...]:
        self.calls += 1
        return self.table[text]


def ask(
    engine: CacheEngine, text: str, *, user: str = "u1", system: str = SYSTEM, history=(), model="gpt-4o-mini", tags=()
):  # type: ignore[no-untyped-def]
    return engine.request(model=model, messages=repr((system, tuple(history), text)), params="{}", text=text,
                          system=system, history=list(history), attribution=Attribution(user_id=user), tags=tags)  # fmt: skip


def near_duplicates(n: int, dim: int = 16, seed: int = 3) -> dict[str, tuple[float, ...]]:
    """``n`` order-status questions whose vectors are all within cosine ~0.99 of each other (so every
    stored one is above the threshold for every query), and for each a paraphrase close to it."""
    rng = random.Random(seed)
    table: dict[str, tuple[float, ...]] = {}
    for i in range(n):
        stored = [1.0] + [rng.gauss(0.0, 0.02) for _ in range(dim - 1)]
        asked = [x + rng.gauss(0.0, 0.002) for x in stored]
        table[f"Status of order {10_000 + i}?"] = tuple(stored)
        table[f"What is the status of order {10_000 + i}?"] = tuple(asked)
    return table


def fill(engine: CacheEngine, table: dict[str, tuple[float, ...]], n: int, **kw) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        engine.store(
            ask(engine, f"Status of order {10_000 + i}?", **kw), f"answer {i}", model="gpt-4o-mini", usage=None
        )


def test_the_right_entry_is_served_among_thousands_of_near_duplicates(store_url: str) -> None:
    n = 2_000
    table = near_duplicates(n)
    engine = CacheEngine(store_url, semantic=TableEmbedder(table))
    fill(engine, table, n)
    for i in (0, 777, n - 1):
        hit = engine.lookup(ask(engine, f"What is the status of order {10_000 + i}?"))
        assert hit is not None and hit.layer == "semantic" and hit.entry.payload == f"answer {i}"
        assert hit.similarity is not None and hit.similarity > 0.99
    table["What is the status of order 99999?"] = table["What is the status of order 10005?"]
    assert engine.lookup(ask(engine, "What is the status of order 99999?")) is None  # a number no entry has


def test_among_many_entries_another_tenant_or_context_never_hits(store_url: str) -> None:
    n = 500
    table = near_duplicates(n)
    engine = CacheEngine(store_url, semantic=TableEmbedder(table))
    fill(engine, table, n, user="alice")
    fill(engine, table, n, user="alice", system="You are a pirate.")
    question = "What is the status of order 10042?"
    assert engine.lookup(ask(engine, question, user="bob")) is None
    assert engine.lookup(ask(engine, question, user="alice", system="You are a travel agent.")) is None
    assert engine.lookup(ask(engine, question, user="alice", history=["user: hi", "assistant: hello"])) is None
    assert engine.lookup(ask(engine, question, user="alice", model="claude-sonnet-4-5")) is None
    hit = engine.lookup(ask(engine, question, user="alice", system="You are a pirate."))
    assert hit is not None and hit.entry.payload == "answer 42" and hit.entry.context is not None
    assert engine.stats["semantic"].errors == 0


def _unit(vector: tuple[float, ...]) -> tuple[float, ...]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return tuple(x / norm for x in vector)


def test_the_index_decides_like_the_matcher_over_the_whole_scope_on_the_labelled_pairs(store_url: str) -> None:
    """Every stored query of the 439 labelled pairs in one scope (with its own conversation, system
    prompt and model), then every query looked up: the hit is the one the matcher picks among all
    the scope's entries, the way a lookup scanned the scope before the index."""
    queries, _ = load_vectors()
    engine = CacheEngine(store_url, semantic=TableEmbedder(queries))
    stored: dict[str, SemanticCandidate] = {}
    for pair in load_pairs():
        side = pair.a
        request = ask(engine, side.text, system=side.system, model=side.model,
                      history=[f"{role}: {content}" for role, content in side.history])  # fmt: skip
        engine.store(request, request.key, model=side.model, usage=None)
        stored.setdefault(request.key, SemanticCandidate(key=request.key, text=side.text, vector=_unit(queries[side.text]),
                                                         context=request.context or "", ts=engine.clock()))  # fmt: skip
    matcher = SemanticMatcher()
    candidates = list(stored.values())
    served = 0
    for pair in load_pairs():
        for side in (pair.b, pair.a):
            request = ask(engine, side.text, system=side.system, model=side.model,
                          history=[f"{role}: {content}" for role, content in side.history])  # fmt: skip
            if request.key in stored:
                continue  # an exact hit: the semantic layer is not asked
            expected = matcher.match(SemanticQuery(text=side.text, vector=_unit(queries[side.text]),
                                                   context=request.context or "", ts=engine.clock()), candidates)  # fmt: skip
            hit = engine.lookup(request)
            assert (hit and hit.entry.payload) == (expected and expected.key), pair.id
            served += hit is not None
    assert served > 100  # the comparison covers hits, not only misses


def test_entries_written_by_another_instance_are_found_and_invalidations_seen(store_url: str) -> None:
    if store_url.startswith("memory"):
        pytest.skip("a memory store belongs to one process")
    n = 300
    table = near_duplicates(n)
    reader = CacheEngine(store_url, semantic=TableEmbedder(table))
    writer = CacheEngine(store_url, semantic=TableEmbedder(table))
    fill(writer, table, n // 2)
    assert reader.lookup(ask(reader, "What is the status of order 10010?")).entry.payload == "answer 10"  # type: ignore[union-attr]
    writer.store(ask(writer, f"Status of order {10_000 + n - 1}?", tags=["late"]), "late answer", model="m", usage=None)
    hit = reader.lookup(ask(reader, f"What is the status of order {10_000 + n - 1}?"))
    assert hit is not None and hit.entry.payload == "late answer"  # written after the reader indexed the partition
    assert writer.invalidate("late") == 1
    assert reader.lookup(ask(reader, f"What is the status of order {10_000 + n - 1}?")) is None
    writer.clear()
    assert reader.lookup(ask(reader, "What is the status of order 10010?")) is None
    writer.store(ask(writer, "Status of order 10010?"), "after the clear", model="m", usage=None)
    assert reader.lookup(ask(reader, "What is the status of order 10010?")).entry.payload == "after the clear"  # type: ignore[union-attr]


def test_an_expired_entry_is_never_served_semantically(store_url: str) -> None:
    table = near_duplicates(20)
    clock = Clock()
    engine = CacheEngine(store_url, semantic=TableEmbedder(table), ttl=60, clock=clock)
    fill(engine, table, 20)
    clock.now += 59
    assert engine.lookup(ask(engine, "What is the status of order 10003?")) is not None
    clock.now += 2
    assert engine.lookup(ask(engine, "What is the status of order 10003?")) is None
    engine.store(ask(engine, "Status of order 10003?"), "renewed", model="m", usage=None)
    assert engine.lookup(ask(engine, "What is the status of order 10003?")).entry.payload == "renewed"  # type: ignore[union-attr]


def test_a_sqlite_file_written_before_the_index_is_searched_after_it(tmp_path: Path) -> None:
    table = near_duplicates(5)
    maker = CacheEngine("memory://", semantic=TableEmbedder(table))
    request = ask(maker, "Status of order 10002?")
    maker.lookup(request)  # embeds the query
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema and a row as an earlier version wrote them
        db.execute("CREATE TABLE entries (scope TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, model TEXT, "
                   "usage TEXT, created REAL NOT NULL, expires REAL, text TEXT, context TEXT, vector BLOB, "
                   "PRIMARY KEY (scope, key))")  # fmt: skip
        db.execute("CREATE TABLE entry_tags (tag TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, "
                   "PRIMARY KEY (tag, scope, key))")  # fmt: skip
        db.execute("INSERT INTO entries VALUES (?, ?, 'old answer', 'm', NULL, 1.0, NULL, ?, ?, ?)",
                   (request.scope, request.key, request.text, request.context,
                    array("d", request.vector or ()).tobytes()))  # fmt: skip
    engine = CacheEngine(f"sqlite:///{path}", semantic=TableEmbedder(table))
    hit = engine.lookup(ask(engine, "What is the status of order 10002?"))
    assert hit is not None and hit.entry.payload == "old answer"
    engine.store(ask(engine, "Status of order 10003?"), "new answer", model="m", usage=None)
    assert engine.lookup(ask(engine, "What is the status of order 10003?")).entry.payload == "new answer"  # type: ignore[union-attr]


def test_without_numpy_the_semantic_layer_decides_the_same(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    script = textwrap.dedent(f"""
        import sys
        sys.modules["numpy"] = None  # the core installed without numpy
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_semantic_index import CacheEngine, TableEmbedder, ask, fill, near_duplicates
        for url in ("memory://", "sqlite:///{db}"):
            table = near_duplicates(300)
            engine = CacheEngine(url, semantic=TableEmbedder(table))
            fill(engine, table, 300)
            hit = engine.lookup(ask(engine, "What is the status of order 10123?"))
            assert hit.entry.payload == "answer 123", hit
            assert engine.lookup(ask(engine, "What is the status of order 10123?", user="u2")) is None
            assert "numpy" not in sys.modules or sys.modules["numpy"] is None
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_concurrent_tenants_storing_and_asking_only_ever_get_their_own_answers(store_url: str) -> None:
    n, tenants = 60, 8
    table = near_duplicates(n)
    engine = CacheEngine(store_url, semantic=TableEmbedder(table))
    start = threading.Barrier(tenants)
    wrong: list[str] = []

    def tenant(user: str) -> None:
        start.wait()
        for i in range(n):
            engine.store(ask(engine, f"Status of order {10_000 + i}?", user=user), f"{user}:{i}", model="m", usage=None)
            hit = engine.lookup(ask(engine, f"What is the status of order {10_000 + i}?", user=user))
            if hit is None or hit.entry.payload != f"{user}:{i}":
                wrong.append(f"{user} {i} -> {hit and hit.entry.payload}")

    threads = [threading.Thread(target=tenant, args=(f"tenant-{t}",)) for t in range(tenants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert engine.stats["semantic"].errors == 0 and engine.stats["semantic"].hits == n * tenants


def test_a_partition_being_read_from_the_store_holds_up_only_its_own_lookups() -> None:
    """A first read of a large partition takes seconds (SQLite, Redis): other partitions' lookups in
    the same process go on meanwhile; the same partition's next lookup waits for the read and sees it."""
    from agentcost_core.response_cache.vector_index import PartitionCache

    cache = PartitionCache()
    started, release = threading.Event(), threading.Event()

    def slow_fill(index) -> None:  # type: ignore[no-untyped-def]
        started.set()
        assert release.wait(timeout=30)
        index.add("a-1", [1.0, 0.0], "first", None)

    def quick_fill(index) -> None:  # type: ignore[no-untyped-def]
        if not len(index):
            index.add("b-1", [0.0, 1.0], "second", None)

    found: list[list[str]] = []

    def other_lookup() -> None:
        found.append(cache.get("tenant-b", "ctx", 0, quick_fill).search([0.0, 1.0], floor=0.99, now=0.0))

    reader = threading.Thread(target=cache.get, args=("tenant-a", "ctx", 0, slow_fill))
    reader.start()
    try:
        assert started.wait(timeout=30)
        other = threading.Thread(target=other_lookup)
        other.start()
        other.join(timeout=10)  # returns while tenant-a's read is still going
        assert found == [["b-1"]] and reader.is_alive()
    finally:
        release.set()
    reader.join(timeout=30)
    same = cache.get("tenant-a", "ctx", 0, lambda index: None)
    assert same.search([1.0, 0.0], floor=0.99, now=0.0) == ["a-1"]
