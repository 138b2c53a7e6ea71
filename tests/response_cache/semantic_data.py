"""The labelled semantic pairs, their committed vectors, and three matching rules applied to them.

Shared by tests/response_cache/test_semantic_matching.py and tests/benchmarks/bench_semantic_rules.py.
Each pair is a stored query ``a`` and a new query ``b``; a rule says whether ``b`` would be served
``a``'s answer. The vectors are all-MiniLM-L6-v2 embeddings computed once by
tests/data/make_semantic_vectors.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agentcost_core.response_cache.semantic import SemanticCandidate, SemanticMatcher, SemanticQuery, cosine

DATA = Path(__file__).resolve().parents[1] / "data"
PAIR_FILES = ("semantic_pairs.jsonl", "semantic_pairs_multiturn.jsonl")
Vector = tuple[float, ...]


@dataclass(frozen=True)
class Side:
    text: str
    history: tuple[tuple[str, str], ...]
    system: str
    model: str


@dataclass(frozen=True)
class Pair:
    id: str
    kind: str
    expect_hit: bool
    a: Side
    b: Side
    source: str | None


def _side(raw: dict) -> Side:
    history = tuple((turn["role"], turn["content"]) for turn in raw["history"])
    return Side(text=raw["text"], history=history, system=raw["system"], model=raw["model"])


@cache
def load_pairs() -> tuple[Pair, ...]:
    pairs = []
    for name in PAIR_FILES:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                raw = json.loads(line)
                pairs.append(
                    Pair(
                        id=raw["id"],
                        kind=raw["kind"],
                        expect_hit=raw["expect_hit"],
                        a=_side(raw["a"]),
                        b=_side(raw["b"]),
                        source=raw.get("source"),
                    )
                )
    return tuple(pairs)


def _decode(encoded: str) -> Vector:
    raw = base64.b64decode(encoded)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


@cache
def load_vectors() -> tuple[dict[str, Vector], dict[tuple[str, str], Vector]]:
    """(query text -> vector, (pair id, side) -> whole-prompt vector)."""
    queries: dict[str, Vector] = {}
    prompts: dict[tuple[str, str], Vector] = {}
    for line in (DATA / "semantic_vectors.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["kind"] == "query":
            queries[row["text"]] = _decode(row["f32"])
        elif row["kind"] == "prompt":
            prompts[(row["pair"], row["side"])] = _decode(row["f32"])
    return queries, prompts


def model_family(model: str) -> str:
    return model.split("-", 1)[0]


def context_fingerprint(side: Side) -> str:
    """What the engine hashes: system prompt, conversation before the last message, model family."""
    payload = json.dumps([side.system, side.history, model_family(side.model)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --- the rules ----------------------------------------------------------------------------------

Rule = Callable[[Pair], bool]


def ours(matcher: SemanticMatcher) -> Rule:
    """agentcost: the query text's vector, context fingerprint, threshold and guards."""
    queries, _ = load_vectors()

    def rule(pair: Pair) -> bool:
        stored = SemanticCandidate(
            key=pair.id, text=pair.a.text, vector=queries[pair.a.text], context=context_fingerprint(pair.a), ts=0.0
        )
        query = SemanticQuery(
            text=pair.b.text, vector=queries[pair.b.text], context=context_fingerprint(pair.b), ts=1.0
        )
        return matcher.match(query, [stored]) is not None

    return rule


GPTCACHE_SIMILARITY_THRESHOLD = 0.8  # gptcache.config.Config(similarity_threshold=0.8)
GPTCACHE_MAX_DISTANCE = 4.0  # SearchDistanceEvaluation(max_distance=4.0): range() == (0.0, 4.0)


def gptcache_default(pair: Pair) -> bool:
    """GPTCache's defaults: ``last_content`` pre-processing (the last message only, no model or context),
    faiss L2 search (squared distance), ``SearchDistanceEvaluation``: rank = 4.0 - distance, a hit when
    rank >= (4.0 - 0.0) * similarity_threshold (adapter.py), i.e. squared L2 <= 0.8, cosine >= 0.6."""
    queries, _ = load_vectors()
    a, b = queries[pair.a.text], queries[pair.b.text]
    squared_l2 = sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
    rank = GPTCACHE_MAX_DISTANCE - min(max(squared_l2, 0.0), GPTCACHE_MAX_DISTANCE)
    return rank >= GPTCACHE_MAX_DISTANCE * GPTCACHE_SIMILARITY_THRESHOLD


LANGCHAIN_REDIS_DISTANCE_THRESHOLD = 0.2  # RedisSemanticCache(distance_threshold=0.2)


def langchain_redis_default(pair: Pair) -> bool:
    """langchain-redis ``RedisSemanticCache``: embeds the whole prompt string LangChain passes to the
    cache (``dumps`` of the messages), RedisVL cosine distance <= 0.2, then keeps results whose
    ``llm_string`` (the model and its parameters) is the same."""
    _, prompts = load_vectors()
    distance = 1.0 - cosine(prompts[(pair.id, "a")], prompts[(pair.id, "b")])
    return distance <= LANGCHAIN_REDIS_DISTANCE_THRESHOLD and pair.a.model == pair.b.model


@dataclass(frozen=True)
class Score:
    true_hits: int
    false_hits: int
    missed: int
    correct_misses: int

    @property
    def precision(self) -> float:
        served = self.true_hits + self.false_hits
        return self.true_hits / served if served else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_hits + self.missed
        return self.true_hits / wanted if wanted else 1.0


def score(rule: Rule, pairs: Iterable[Pair]) -> Score:
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for pair in pairs:
        hit = rule(pair)
        counts[("t" if hit == pair.expect_hit else "f") + ("p" if hit else "n")] += 1
    return Score(true_hits=counts["tp"], false_hits=counts["fp"], missed=counts["fn"], correct_misses=counts["tn"])
