"""Lookup latency of ``ResponseCache`` against LangChain's own caches, per backend, as ratios.

    python tests/benchmarks/bench_response_cache.py [--quick] [--entries N]

Each pair is filled with the same N entries (default 10,000; ``--quick`` 1,000): a three-message
prompt serialized the way ``BaseChatModel`` does it, a realistic ``llm_string``, and one
``ChatGeneration`` with usage. Then both answer the same shuffled sequence of lookups of stored
keys (hits), each timed alone (``perf_counter_ns``, wall clock), interleaved in rounds:

  memory   ``InMemoryCache``            vs ``ResponseCache("memory://")``
  sqlite   ``SQLiteCache`` (SQLAlchemy) vs ``ResponseCache("sqlite:///…")``
  redis    ``RedisCache``               vs ``ResponseCache("redis://…")``   (``AGENTCOST_REDIS_URL``)

A ``ResponseCache`` hit does more than return the stored value: it hashes the exact key over the
model, messages and parameters, scopes it, rebuilds the generations from their stored JSON (the
``InMemoryCache`` anchor hands back the very objects stored) and records the hit as a priced ledger
event with ``saved`` (a SQLite ledger with its background writer). No semantic layer here: the
embedding call would dominate and is a separate cost (the embedding model's own latency).
Redis unreachable: that pair is skipped with a note. Exit status 1 if a lookup missed.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench
from langchain_core.caches import InMemoryCache
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration

from agentcost_core import Ledger
from agentcost_langchain import ResponseCache

# langchain-community announces its sunset on import, and its caches' loads() warn on every hit
warnings.simplefilter("ignore")
from langchain_community.cache import RedisCache, SQLiteCache

LLM_STRING = (
    '{"lc": 1, "type": "constructor", "id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": '
    '{"model_name": "gpt-4o-mini", "temperature": 0.0, "openai_api_key": {"lc": 1, "type": "secret", "id": '
    '["OPENAI_API_KEY"]}, "max_retries": 2, "n": 1}, "name": "ChatOpenAI"}---[(\'_type\', \'openai-chat\'), '
    "('model', 'gpt-4o-mini'), ('model_name', 'gpt-4o-mini'), ('stop', None), ('stream', False), ('temperature', 0.0)]"
)


def prompt(i: int) -> str:
    return dumps([SystemMessage("You are a support agent for an online shop. Answer briefly."),
                  HumanMessage(f"My order #{100000 + i} has not arrived. Where is it?"),
                  AIMessage("Let me check."), HumanMessage(f"It was due on day {i % 28 + 1}.")])  # fmt: skip


def generation(i: int) -> list[ChatGeneration]:
    message = AIMessage(
        f"Order #{100000 + i} is in transit and should arrive tomorrow.",
        usage_metadata={"input_tokens": 120, "output_tokens": 18, "total_tokens": 138},
        response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
    )
    return [ChatGeneration(message=message)]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(pairs: dict[str, tuple[object, object]], entries: int, lookups: int, rounds: int) -> int:
    keys = [(prompt(i), LLM_STRING) for i in range(entries)]
    missed = 0
    for name, caches in pairs.items():
        for cache in caches:
            for i, (p, s) in enumerate(keys):
                cache.update(p, s, generation(i))  # type: ignore[attr-defined]
        samples: dict[int, list[float]] = {0: [], 1: []}
        rng = random.Random(7)
        for _ in range(rounds):
            order = rng.sample(keys, min(lookups, len(keys)))
            for side in rng.sample([0, 1], 2):
                cache = caches[side]
                out = samples[side]
                for p, s in order:
                    t0 = time.perf_counter_ns()
                    found = cache.lookup(p, s)  # type: ignore[attr-defined]
                    out.append((time.perf_counter_ns() - t0) / 1000)
                    missed += found is None
        a, b = samples[0], samples[1]
        print(f"{name:7s} anchor p50 {pct(a, .5):8.1f} µs  p99 {pct(a, .99):8.1f} µs | ResponseCache p50 "
              f"{pct(b, .5):8.1f} µs  p99 {pct(b, .99):8.1f} µs | ratio p50 {pct(b, .5) / pct(a, .5):5.2f}x  "
              f"p99 {pct(b, .99) / pct(a, .99):5.2f}x")  # fmt: skip
    return missed


def main() -> int:
    quick = _bench.quick()
    entries = 1_000 if quick else 10_000
    if "--entries" in sys.argv:
        entries = int(sys.argv[sys.argv.index("--entries") + 1])
    lookups, rounds = (500, 2) if quick else (2_000, 5)
    print(f"# response cache lookups (hits), {entries:,} entries per cache, {lookups:,} lookups x {rounds} rounds; "
          f"{_bench.machine()}; {_bench.load()}")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="agentcost-bench-cache-"))
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    redis_client = None
    try:
        pairs: dict[str, tuple[object, object]] = {
            "memory": (InMemoryCache(), ResponseCache("memory://?max_entries=1000000", ledger=ledger, scope=())),
            "sqlite": (SQLiteCache(str(tmp / "lc.db")), ResponseCache(f"sqlite:///{tmp / 'ours.db'}", ledger=ledger, scope=())),
        }  # fmt: skip
        url = os.environ.get("AGENTCOST_REDIS_URL", "redis://127.0.0.1:6379/9")
        try:
            import redis

            redis_client = redis.Redis.from_url(url)
            redis_client.ping()
            namespace = f"agentcost-bench:{uuid.uuid4().hex}"
            sep = "&" if "?" in url else "?"
            ours = ResponseCache(f"{url}{sep}namespace={namespace}", ledger=ledger, scope=())
            pairs["redis"] = (RedisCache(redis_client), ours)
        except Exception as e:  # noqa: BLE001 - no Redis here: that pair is skipped
            print(f"(redis pair skipped: {type(e).__name__}: {e})")
            redis_client = None
        missed = measure(pairs, entries, lookups, rounds)
        ledger.flush()
        if missed:
            print(f"!! {missed} lookups missed")
            return 1
        return 0
    finally:
        if redis_client is not None:
            for c in pairs.get("redis", ()):
                c.clear()  # type: ignore[attr-defined]
        ledger.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
