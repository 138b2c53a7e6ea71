"""What a hard budget adds to one LangChain model call, on the in-process and the Redis store.

    python tests/benchmarks/bench_budget_call.py [--quick]

One process, the variants interleaved in many short rounds (shuffled order each round), every one
``model.invoke("hi", config={"callbacks": [...]})`` through LangChain's real callback machinery on
the same minimal ``BaseChatModel`` as ``bench_langchain_callback.py`` (a prebuilt ``ChatResult``
with realistic usage and a dated OpenAI model name):

  (a) no handler                                   -> the baseline
  (b) ``UsageMetadataCallbackHandler``             -> LangChain's own handler, the anchor
  (c) ``CostCallbackHandler(ledger)``              -> ours, recording only
  (d) ``CostCallbackHandler(ledger, budgets=Budget(usd="1000000", per="session", store=MemoryStore()))``
                                                   -> ours, budgeted in-process: kill switch and stuck
                                                      checks, the worst case reserved before the call,
                                                      settled after it, one event recorded
  (e) the same with a ``RedisStore`` (``AGENTCOST_REDIS_URL``, default ``redis://127.0.0.1:6379/9``)
                                                   -> ours, budgeted on Redis: one round trip to reserve
                                                      (a Lua script) and one to settle, per call

Every handler runs in one session (``session_id="bench-session"``), so the budgeted calls share one
counter, as the calls of one conversation do. The ledger is a real SQLite file in a temporary folder (background writer), shared by (c)–(e) and
flushed between timed blocks, so one block's writes never run on another's clock. The Redis store
uses a prefix of its own, deleted at the end. The cap is never reached: what is timed is the
bookkeeping of an admitted call.

Clock: CPU time of the calling thread (``time.thread_time``), as in the other benchmarks. For (e) it
hides the network: while the calling thread waits on Redis's socket it uses no CPU. So the wall clock is
reported as well, with its own overheads and ratio; on the wall clock, (e)'s added time is mostly two
loopback round trips plus Redis running the scripts. Statistics: median over rounds and 10th percentile
(p10); overheads as the median of per-round paired differences and as p10 − p10.

Redis unreachable: (e) is skipped with a printed note; the rest still runs.
The script exits 1 when something is functionally wrong: events missing from the ledger, a budget
that did not see every call, a hold left over after the run, or internal errors.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _bench first: it points TIKTOKEN_CACHE_DIR at the offline cache before tiktoken loads anything.
import _bench
from agentcost_core import Budget, BudgetStoreUnavailable, Ledger
from agentcost_core.budgets import MemoryStore
from agentcost_core.budgets.stores.redis import RedisStore
from bench_langchain_callback import PrebuiltChatModel
from langchain_core.callbacks import UsageMetadataCallbackHandler

from agentcost_langchain import CostCallbackHandler

A = "(a) no handler"
B = "(b) UsageMetadataCallbackHandler"
C = "(c) ours, recording only"
D = "(d) ours, budget in-process"
E = "(e) ours, budget on Redis"

SESSION = "bench-session"  # every call in one session: one counter, as in a real conversation
REDIS_URL = os.environ.get("AGENTCOST_REDIS_URL") or "redis://127.0.0.1:6379/9"


def _budget(store: Any) -> Budget:
    return Budget(usd="1000000", per="session", store=store, name=f"bench-{uuid.uuid4().hex[:8]}")


def _redis_store() -> RedisStore | None:
    store = RedisStore(REDIS_URL, prefix=f"agentcost:bench:{uuid.uuid4().hex[:12]}:", timeout=1.0)
    try:
        store.ping()
    except BudgetStoreUnavailable as e:
        print(f"NOTE: Redis variant skipped, {REDIS_URL} is unreachable ({e})\n")
        store.close()
        return None
    return store


def _invoker(model: PrebuiltChatModel, handler: Any, counter: list[int]):  # type: ignore[no-untyped-def]
    invoke = model.invoke
    if handler is None:

        def run(k: int) -> None:
            for _ in range(k):
                invoke("hi")

        return run
    cfg = {"callbacks": [handler]}

    def run_with(k: int) -> None:
        counter[0] += k
        for _ in range(k):
            invoke("hi", config=cfg)

    return run_with


def _rows(samples: dict[str, dict[str, list[float]]], base: str) -> list[list[object]]:
    rows: list[list[object]] = []
    cpu, wall = samples["cpu"], samples["wall"]
    for name in cpu:
        same = name == base
        rows.append(
            [
                name,
                f"{_bench.median(cpu[name]):.1f}",
                f"{_bench.low(cpu[name]):.1f}",
                "—" if same else f"{_bench.paired_overhead(cpu, name, base):+.1f}",
                "—" if same else f"{_bench.low_overhead(cpu, name, base):+.1f}",
                f"{_bench.median(wall[name]):.1f}",
                "—" if same else f"{_bench.paired_overhead(wall, name, base):+.1f}",
                "—" if same else f"{_bench.low_overhead(wall, name, base):+.1f}",
            ]
        )
    return rows


HEADERS = (
    "µs per call",
    "CPU median",
    "CPU p10",
    "CPU added (median Δ)",
    "CPU added (p10)",
    "wall median",
    "wall added (median Δ)",
    "wall added (p10)",
)


def _ratio(o: float, anchor: float) -> str:
    return f"{o / anchor:5.2f}" if anchor > 0 else "  inf"


def main() -> int:
    quick = _bench.quick()
    n, rounds = (20, 150) if quick else (20, 1_000)
    model = PrebuiltChatModel()
    tmp = tempfile.mkdtemp(prefix="agentcost-bench-")
    ledger = Ledger(f"sqlite:///{tmp}/ledger.db")
    redis = _redis_store()
    try:
        budgets = {D: _budget(MemoryStore())}
        if redis is not None:
            budgets[E] = _budget(redis)
        ours = {C: CostCallbackHandler(ledger, feature="bench", session_id=SESSION)}
        for name, budget in budgets.items():
            ours[name] = CostCallbackHandler(ledger, feature="bench", session_id=SESSION, budgets=budget)
        calls = {name: [0] for name in ours}
        variants = {
            A: _invoker(model, None, [0]),
            B: _invoker(model, UsageMetadataCallbackHandler(), [0]),
        }
        for name, handler in ours.items():
            variants[name] = _invoker(model, handler, calls[name])

        print(f"Budgeted model call, added cost per call — {_bench.machine()}, {_bench.load()}")
        print(f"{rounds} rounds × {n} calls per variant, interleaved; SQLite ledger in {tmp}")
        print(f"Redis store: {REDIS_URL if redis is not None else 'skipped'}\n")
        samples = _bench.interleaved(variants, n=n, rounds=rounds, settle=ledger.flush)
        print(_bench.table(HEADERS, _rows(samples, A)))

        print("\nratio (variant − no handler) / (UsageMetadata − no handler):")
        print(f"  {'':30s} {'CPU median Δ':>12s} {'CPU p10':>8s} {'wall median Δ':>13s} {'wall p10':>8s}")
        for name in ours:
            cells = []
            for clock in ("cpu", "wall"):
                s = samples[clock]
                for fn in (_bench.paired_overhead, _bench.low_overhead):
                    cells.append(_ratio(fn(s, name, A), fn(s, B, A)))
            print(f"  {name:30s} {cells[0]:>12s} {cells[1]:>8s} {cells[2]:>13s} {cells[3]:>8s}")
        cpu = samples["cpu"]
        print("\nadded by the budget alone (budgeted − recording only), CPU median Δ / p10:")
        for name in budgets:
            print(
                f"  {name:30s} {_bench.paired_overhead(cpu, name, C):+6.1f} / {_bench.low_overhead(cpu, name, C):+6.1f} µs"
                f"   wall {_bench.paired_overhead(samples['wall'], name, C):+6.1f} / "
                f"{_bench.low_overhead(samples['wall'], name, C):+6.1f} µs"
            )

        # --- every call was recorded, and every budgeted call reserved and settled -----------
        ledger.flush()
        ok = True
        stored, expected = ledger.count(), sum(c[0] for c in calls.values())
        print(f"\nledger: {stored} events stored, {expected} expected, dropped={ledger.dropped}")
        ok &= stored == expected and not ledger.dropped
        for name, budget in budgets.items():
            st = budget.status(session_id=SESSION)
            print(f"{name}: {st.model_calls} calls counted of {calls[name][0]}, spent ${st.spent}, held ${st.held}")
            ok &= st.model_calls == calls[name][0] and st.held == Decimal(0) and st.spent > 0
        for name, handler in ours.items():
            if handler.recorder.internal_errors:
                print(f"{name}: {handler.recorder.internal_errors} internal errors")
                ok = False
        print(_bench.load())
        if not ok:
            print("ERROR: events missing, calls not counted, holds left or internal errors", file=sys.stderr)
            return 1
        return 0
    finally:
        if redis is not None:
            redis.reset()
            redis.close()
        ledger.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
