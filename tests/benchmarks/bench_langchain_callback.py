"""Per-model-call overhead of the LangChain callback handler, side by side with LangChain's own.

    python tests/benchmarks/bench_langchain_callback.py [--quick]

One process, the variants interleaved in many short rounds (shuffled order each round):

  (a) no handler
  (b) a no-op ``BaseCallbackHandler`` subclass  -> the cost of LangChain dispatching to any handler
  (c) ``langchain_core.callbacks.UsageMetadataCallbackHandler``
  (d) ``agentcost_langchain.CostCallbackHandler(ledger)``: parse usage, price it, attribute it,
      keep totals, enqueue the event for the real SQLite ledger (background writer)
  (d+) the same, but each timed block also waits for its events to be written (all-in cost)

The model is a minimal ``BaseChatModel`` whose ``_generate`` returns a prebuilt ``ChatResult``
with realistic ``usage_metadata`` (cache reads, reasoning) and a dated OpenAI model name, so what
varies between the variants is only the callback work.

Clock: CPU time of the calling thread (``time.thread_time``) — the hot path — with the wall clock
alongside. Statistics: the median over rounds and the 10th percentile (p10). On a shared machine,
interference only ever ADDS time, so p10 is the steadier estimate of what the code costs; the
overhead is reported both as the median of per-round paired differences and as p10 − p10.

Target (DESIGN.md): (ours − no-op) / (UsageMetadata − no-op) ≤ 1.0.

A second, smaller table times the hooks alone (``on_chat_model_start`` + ``on_llm_end`` called
directly), which isolates the handlers' own code from LangChain's dispatch.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _bench first: it points TIKTOKEN_CACHE_DIR at the offline cache before tiktoken loads anything.
import _bench
from agentcost_core import Ledger
from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult

from agentcost_langchain import CostCallbackHandler

MODEL_NAME = "gpt-4o-mini-2024-07-18"
USAGE = {
    "input_tokens": 1_234,
    "output_tokens": 187,
    "total_tokens": 1_421,
    "input_token_details": {"cache_read": 1_024},
    "output_token_details": {"reasoning": 64},
}


def _message() -> AIMessage:
    return AIMessage(
        content="Sure - your order #4417 shipped yesterday and should arrive on Thursday.",
        usage_metadata=dict(USAGE),  # type: ignore[arg-type]
        response_metadata={"model_name": MODEL_NAME, "finish_reason": "stop"},
    )


RESULT = ChatResult(generations=[ChatGeneration(message=_message())])


class PrebuiltChatModel(BaseChatModel):
    """Returns the same ``ChatResult`` every time: no tokenizing, no sleeping, no streaming."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "prebuilt-bench"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return RESULT


class NoOpHandler(BaseCallbackHandler):
    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        pass

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        pass


A = "(a) no handler"
B = "(b) no-op BaseCallbackHandler"
C = "(c) UsageMetadataCallbackHandler"
D = "(d) agentcost CostCallbackHandler"
D_ALL = "(d+) same, incl. its SQLite write"


def main() -> int:
    quick = _bench.quick()
    n, rounds = (20, 150) if quick else (20, 1_000)
    model = PrebuiltChatModel()
    tmp = tempfile.mkdtemp(prefix="agentcost-bench-")
    url = f"sqlite:///{tmp}/ledger.db"  # tmp is absolute: sqlite:////tmp/.../ledger.db
    ledger = Ledger(url)
    try:
        noop = NoOpHandler()
        usage_md = UsageMetadataCallbackHandler()
        ours = CostCallbackHandler(ledger, feature="bench")
        ours_calls = 0

        def run_with(cfg: dict[str, Any] | None):  # type: ignore[no-untyped-def]
            invoke = model.invoke
            if cfg is None:

                def run(k: int) -> None:
                    for _ in range(k):
                        invoke("hi")
            else:

                def run(k: int) -> None:
                    for _ in range(k):
                        invoke("hi", config=cfg)

            return run

        run_ours_inner = run_with({"callbacks": [ours]})

        def run_ours(k: int) -> None:
            nonlocal ours_calls
            ours_calls += k
            run_ours_inner(k)

        def run_ours_drained(k: int) -> None:
            # Same, but the timed block also waits for the block's events to be stored: with the
            # all-threads CPU clock this is the all-in cost when calls come back to back.
            run_ours(k)
            ledger.flush()

        variants = {
            A: run_with(None),
            B: run_with({"callbacks": [noop]}),
            C: run_with({"callbacks": [usage_md]}),
            D: run_ours,
            D_ALL: run_ours_drained,
        }
        print(f"LangChain callback overhead per model call — {_bench.machine()}, {_bench.load()}")
        print(f"{rounds} rounds × {n} calls per variant, interleaved; ledger {url}")
        print("The ledger is flushed between timed blocks, so one block's background writes never run on")
        print("another's clock; (d+) waits for its own writes inside its block.\n")
        samples = _bench.interleaved(variants, n=n, rounds=rounds, settle=ledger.flush)
        print(_bench.table(_bench.OVERHEAD_HEADERS, _bench.overhead_rows(samples, B)))
        all_cpu = samples["cpu_all"]
        print(
            f"(d+) all-thread CPU incl. the SQLite write: median {_bench.median(all_cpu[D_ALL]):.1f} µs, "
            f"over no-op {_bench.paired_overhead(all_cpu, D_ALL, B):+.1f} (median Δ), "
            f"{_bench.low_overhead(all_cpu, D_ALL, B):+.1f} (p10)"
        )

        cpu = samples["cpu"]
        print("\nratio (ours − no-op) / (UsageMetadata − no-op), calling-thread CPU:")
        ratios = {}
        for label, fn in (
            ("median of per-round Δ", _bench.paired_overhead),
            ("p10 (noise-robust)", _bench.low_overhead),
        ):
            o, lc = fn(cpu, D, B), fn(cpu, C, B)
            ratios[label] = o / lc if lc > 0 else float("inf")
            print(f"  {label:24s} {o:6.1f} / {lc:5.1f} = {ratios[label]:5.2f}")
        o, lc = _bench.low_overhead(all_cpu, D_ALL, B), _bench.low_overhead(all_cpu, C, B)
        print(
            f"  {'all-in (d+), p10':24s} {o:6.1f} / {lc:5.1f} = {o / lc if lc > 0 else float('inf'):5.2f}"
            "   (includes the background SQLite write)"
        )
        print("target ≤ 1.0: " + ", ".join(f"{k}: {_bench.verdict(r <= 1.0)}" for k, r in ratios.items()))

        # --- the hooks alone -----------------------------------------------------------
        hooks = _hook_costs(ledger, noop, usage_md, rounds=rounds, n=n * 5)
        print(
            "\nHooks alone (on_chat_model_start + on_llm_end called directly, no LangChain dispatch), "
            "calling-thread CPU:"
        )
        rows = [(name, f"{_bench.median(xs):.2f}", f"{_bench.low(xs):.2f}") for name, xs in hooks["cpu"].items()]
        print(_bench.table(("handler", "median µs/call", "p10 µs/call"), rows))

        # --- every event reached the ledger ----------------------------------------------
        t0 = _bench.perf()
        ledger.flush()
        flush_ms = (_bench.perf() - t0) * 1e3
        stored = ledger.count()
        expected = ours_calls + _HOOK_EVENTS[0]
        priced = all(e.priced and e.cost is not None and e.usage.cache_read == 1_024 for e in ours.events[:5])
        print(
            f"\nledger: {stored} events stored, {expected} expected, dropped={ledger.dropped}, "
            f"final flush {flush_ms:.1f} ms; priced={priced}, handler total ${ours.total_cost}"
        )
        print(_bench.load())
        if stored != expected or ledger.dropped or not priced or ours.recorder.internal_errors:
            print("ERROR: events missing, dropped, unpriced or internal errors", file=sys.stderr)
            return 1
        return 0
    finally:
        ledger.close()
        shutil.rmtree(tmp, ignore_errors=True)


_HOOK_EVENTS = [0]


def _hook_costs(ledger: Ledger, noop: Any, usage_md: Any, *, rounds: int, n: int) -> dict[str, dict[str, list[float]]]:
    """µs per start+end pair, calling the handler methods directly."""
    ours = CostCallbackHandler(ledger, feature="bench-hooks")
    messages = [[HumanMessage("hi")]]
    llm_result = LLMResult(generations=[[ChatGeneration(message=_message())]], llm_output=None)
    serialized: dict[str, Any] = {"name": "PrebuiltChatModel"}
    metadata = {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini", "ls_model_type": "chat"}
    invocation = {"model_name": "gpt-4o-mini", "_type": "prebuilt-bench"}
    run_ids = [uuid.uuid4() for _ in range(max(n, 1_000))]  # enough for the warm-up too

    def pair(h: Any):  # type: ignore[no-untyped-def]
        # LangChain falls back to on_llm_start for handlers without on_chat_model_start (it
        # raises NotImplementedError): UsageMetadataCallbackHandler is one; call what it runs.
        start = (
            h.on_llm_start
            if type(h).on_chat_model_start is BaseCallbackHandler.on_chat_model_start
            else h.on_chat_model_start
        )
        end = h.on_llm_end

        def run(k: int) -> None:
            for rid in run_ids[:k]:
                start(
                    serialized,
                    messages,
                    run_id=rid,
                    parent_run_id=None,
                    tags=[],
                    metadata=metadata,
                    invocation_params=invocation,
                    name=None,
                )
                end(llm_result, run_id=rid, parent_run_id=None, tags=[])

        return run

    run_ours = pair(ours)

    def counted(k: int) -> None:
        _HOOK_EVENTS[0] += k
        run_ours(k)

    variants = {
        "no-op": pair(noop),
        "UsageMetadataCallbackHandler": pair(usage_md),
        "agentcost CostCallbackHandler": counted,
    }
    return _bench.interleaved(variants, n=n, rounds=rounds, settle=ledger.flush)


if __name__ == "__main__":
    sys.exit(main())
