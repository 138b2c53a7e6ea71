"""Machine instructions per LangChain model call: agentcost's callback vs ``UsageMetadataCallbackHandler``.

    python tests/benchmarks/bench_langchain_instructions.py [--calls N]   (~1–2 minutes; skipped with --quick)

A diagnostic beside ``bench_langchain_callback.py`` (which measures time, the target's unit):
instructions do not depend on the machine's load or clock, so this figure is the same on every
run. Each variant of that benchmark (``none``, ``noop``, ``usage_md``, ``ours``: the same
``model.invoke("hi", config={"callbacks": [h]})`` on the same prebuilt model) runs in its own
process under ``valgrind --tool=cachegrind``, once with 0 and once with N calls after the same
warm-up; the difference divided by N is the instructions per call. Every 20 calls, as in the
timing benchmark's rounds, ours stores its queued events in an in-memory ledger and drops them
with its kept events. The ratio is the timing benchmark's: (ours − no-op) / (UsageMetadata − no-op).
Needs valgrind; prints a notice and exits 0 without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
VARIANTS = ("none", "noop", "usage_md", "ours")


def child(variant: str, calls: int) -> None:
    sys.path.insert(0, str(HERE.parent))
    import _bench  # noqa: F401  (offline tiktoken cache)
    import bench_langchain_callback as B
    from langchain_core.callbacks import UsageMetadataCallbackHandler

    from agentcost_core import Ledger
    from agentcost_langchain import CostCallbackHandler

    # The background writer thread never runs (a batch and an interval it never reaches): every 20
    # calls this thread stores the queued events in memory and drops them.
    ledger = Ledger("memory://", sync=False, batch_size=10_000_000, max_queue=10_000_000, flush_interval_s=86_400)
    model = B.PrebuiltChatModel()
    settle = None
    config = None
    if variant == "noop":
        config = {"callbacks": [B.NoOpHandler()]}
    elif variant == "usage_md":
        config = {"callbacks": [UsageMetadataCallbackHandler()]}
    elif variant == "ours":
        handler = CostCallbackHandler(ledger, feature="bench")
        config = {"callbacks": [handler]}

        def settle() -> None:
            ledger.flush()
            ledger.backend.clear()
            handler.recorder.events.clear()

    for n in (200, calls):  # warm-up, then the counted calls (the 0-call run stops after the first)
        for i in range(n):
            model.invoke("hi", config=config)
            if settle is not None and i % 20 == 19:
                settle()
    sys.stdout.flush()
    os._exit(0)  # no exit flush: only the calls are counted


def main() -> int:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        child(sys.argv[i + 1], int(sys.argv[i + 2]))
        return 0
    sys.path.insert(0, str(HERE.parent))
    import _bench

    skipped = _bench.instructions_skipped()
    if skipped is not None:
        print(skipped)
        return 0
    calls = int(sys.argv[sys.argv.index("--calls") + 1]) if "--calls" in sys.argv else 1_000
    per_call = _bench.instructions_per_call(HERE, VARIANTS, calls)
    print(f"LangChain: instructions per model call (cachegrind, {calls} calls after 200 warm-up)")
    for v in VARIANTS:
        over = "" if v in ("none", "noop") else f"  (+{per_call[v] - per_call['noop']:,.0f} above the no-op handler)"
        print(f"  {v:8s} {per_call[v]:>10,.0f}{over}")
    ours, anchor = per_call["ours"] - per_call["noop"], per_call["usage_md"] - per_call["noop"]
    print(f"(ours − no-op) / (UsageMetadata − no-op), instructions: {ours / anchor:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
