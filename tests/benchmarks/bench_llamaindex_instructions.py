"""Machine instructions per LlamaIndex LLM call: agentcost's handler vs ``TokenCountingHandler``.

    python tests/benchmarks/bench_llamaindex_instructions.py [--calls N]   (~2 minutes; skipped with --quick)

A diagnostic beside ``bench_llamaindex_handler.py`` (which measures time, the target's unit):
instructions do not depend on the machine's load or clock, so this figure is the same on every
run. Each variant of that benchmark's usage-present scenario (``none``, ``tch``, ``ours``) runs
in its own process under ``valgrind --tool=cachegrind``, once with 0 and once with N timed calls
after the same warm-up; the difference divided by N is the instructions per call. Every 20 calls,
as in the timing benchmark, each side's bookkeeping is reset (ours: the queued events are stored in
an in-memory ledger, counted, and dropped). Needs valgrind; prints a notice and exits 0 without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
VARIANTS = ("none", "tch", "ours")


def child(variant: str, calls: int) -> None:
    sys.path.insert(0, str(HERE.parent))
    import _bench  # noqa: F401  (offline tiktoken cache)
    import bench_llamaindex_handler as B
    import tiktoken
    from agentcost_core import Ledger
    from agentcost_llamaindex import instrument
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

    # The background writer thread never runs (a batch and an interval it never reaches): every 20
    # calls, as the timing benchmark's settle(), this thread stores the queued events in memory and
    # drops them with our kept events, or resets TokenCountingHandler's counts, so neither side
    # piles up objects for the garbage collector to walk.
    ledger = Ledger("memory://", sync=False, batch_size=10_000_000, max_queue=10_000_000, flush_interval_s=86_400)
    llm = B.BenchLLM(response=B.response(True))
    settle = None
    if variant == "tch":
        tch = TokenCountingHandler(tokenizer=tiktoken.encoding_for_model(B.MODEL).encode)
        llm = B.BenchLLM(response=B.response(True), callback_manager=CallbackManager([tch]))
        settle = tch.reset_counts
    elif variant == "ours":
        handler = instrument(ledger, feature="bench")

        def settle() -> None:
            ledger.flush()
            ledger.backend.clear()
            handler.recorder.events.clear()

    conversation = B.base_conversation()
    for n in (200, calls):  # warm-up, then the counted calls (the 0-call run stops after the first)
        for i in range(n):
            llm.chat(conversation)
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
    print(f"LlamaIndex, usage present: instructions per LLM call (cachegrind, {calls} calls after 200 warm-up)")
    for v in VARIANTS:
        over = "" if v == "none" else f"  (+{per_call[v] - per_call['none']:,.0f} above no handler)"
        print(f"  {v:5s} {per_call[v]:>10,.0f}{over}")
    ours, tch = per_call["ours"] - per_call["none"], per_call["tch"] - per_call["none"]
    print(f"ours / TokenCountingHandler, added instructions: {ours / tch:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
