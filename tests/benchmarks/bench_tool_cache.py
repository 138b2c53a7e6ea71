"""Tool-result cache: what answering a tool call from the cache costs, side by side with LangGraph's
node ``CachePolicy`` (the one tool-result cache LangChain users have), in one run.

    python tests/benchmarks/bench_tool_cache.py [--quick]

µs per call, calling-thread CPU (``_bench.interleaved``: rounds of n calls per variant, shuffled
order; median and p10 over rounds), wall median alongside. Every cached variant answers from its
cache on every timed call (the entry is written in the warm-up); the tool itself is trivial, so a
hit's cost is all bookkeeping.

  LangChain tool      ``@tool`` ``search(query)`` invoked with ``{"query": ...}`` (no cache)
  cached_tool hit     ``cached_tool(search, ttl=300)`` invoked the same way: LangChain's tool
                      pipeline, our lookup (canonical-JSON key, sha256, LRU) and the hit recorded as
                      an event (a ``memory://`` ledger, synchronous)
  LangGraph node      a ``StateGraph`` with one node running the same function, ``invoke``
  CachePolicy hit     the same graph with ``cache_policy=CachePolicy(ttl=300)``, compiled with
                      ``InMemoryCache()``: LangGraph's own node cache
  ToolCache.lookup    the core call alone (key, LRU, the hit recorded)
  ToolCache.get       the core lookup without recording

Reported: each hit's cost as a ratio to its own framework's uncached call (what a hit costs
relative to running a free tool there), and ours against LangGraph's: the absolute hit cost ratio.
The benchmark never fails on a timing; it exits 1 when a "hit" ran the tool or recorded nothing.
"""

import sys
from pathlib import Path
from typing import TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench
from langchain_core.tools import tool
from langgraph.cache.memory import InMemoryCache
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from agentcost_core import Ledger
from agentcost_core.tool_cache import ToolCache
from agentcost_langchain import cached_tool

RUNS = [0]


def lookup_order(query: str) -> str:
    RUNS[0] += 1
    return f"order {query}: shipped Tuesday"


@tool
def search(query: str) -> str:
    """Search the order database."""
    return lookup_order(query)


class State(TypedDict, total=False):
    query: str
    result: str


def search_node(state: State) -> State:
    return {"result": lookup_order(state["query"])}


def graph(cached: bool):  # type: ignore[no-untyped-def]
    g = StateGraph(State)
    g.add_node("search", search_node, cache_policy=CachePolicy(ttl=300) if cached else None)
    g.add_edge(START, "search")
    g.add_edge("search", END)
    return g.compile(cache=InMemoryCache() if cached else None)


def main() -> int:
    quick = _bench.quick()
    n, rounds = (20, 40) if quick else (20, 400)
    ledger = Ledger("memory://", sync=True)
    ours = cached_tool(search, ttl=300, ledger=ledger)
    core = ToolCache({"search": 300}, ledger=ledger)
    core.put("search", {"query": "4417"}, "order 4417: shipped Tuesday")
    plain_graph, cached_graph = graph(False), graph(True)
    args, state = {"query": "4417"}, {"query": "4417"}

    def block(fn):  # type: ignore[no-untyped-def]
        def run(k: int) -> None:
            for _ in range(k):
                fn()

        return run

    variants = {
        "lc_tool": block(lambda: search.invoke(args)),
        "lc_hit": block(lambda: ours.invoke(args)),
        "lg_node": block(lambda: plain_graph.invoke(state)),
        "lg_hit": block(lambda: cached_graph.invoke(state)),
        "core_lookup": block(lambda: core.lookup("search", args)),
        "core_get": block(lambda: core.get("search", args)),
    }
    labels = {
        "lc_tool": "LangChain tool (no cache)",
        "lc_hit": "cached_tool hit (ours)",
        "lg_node": "LangGraph node (no cache)",
        "lg_hit": "CachePolicy hit (LangGraph)",
        "core_lookup": "ToolCache.lookup hit",
        "core_get": "ToolCache.get hit",
    }
    # Warm-up writes each cache's entry; from here on a "hit" that runs the tool is a failure.
    for fn in (ours.invoke, cached_graph.invoke):
        fn(args)
    before, hits_before = RUNS[0], core.hits
    samples = _bench.interleaved({k: v for k, v in variants.items()}, n=n, rounds=rounds, warmup=50)
    cpu, wall = samples["cpu"], samples["wall"]
    uncached_runs = 2 * (rounds * n + 50)  # lc_tool and lg_node run the tool every time
    ran_on_hits = RUNS[0] - before - uncached_runs
    recorded = sum(1 for e in ledger.events() if e.cache_hit)

    print(f"# tool-result cache hit vs LangGraph CachePolicy — {_bench.machine()}, {_bench.load()}")
    print(f"# {rounds} rounds x {n} calls per variant, calling-thread CPU\n")
    rows = [[labels[k], f"{_bench.median(cpu[k]):.1f}", f"{_bench.low(cpu[k]):.1f}", f"{_bench.median(wall[k]):.1f}"]
            for k in variants]  # fmt: skip
    print(_bench.table(("µs per call", "CPU median", "CPU p10", "wall median"), rows))
    med = {k: _bench.median(cpu[k]) for k in variants}
    print()
    print(f"hit / uncached call, ours (cached_tool vs @tool):          {med['lc_hit'] / med['lc_tool']:.2f}x")
    print(f"hit / uncached call, LangGraph (CachePolicy vs plain node): {med['lg_hit'] / med['lg_node']:.2f}x")
    print(f"our hit / LangGraph's hit (absolute):                       {med['lc_hit'] / med['lg_hit']:.2f}x")
    print(
        f"core lookup incl. recording the hit: {med['core_lookup']:.1f} µs (without recording: {med['core_get']:.1f} µs)"
    )

    ok = ran_on_hits == 0 and recorded >= rounds * n and core.hits > hits_before
    if not ok:
        print(f"!! functional check failed: tool ran {ran_on_hits} times on hits; {recorded} hits recorded")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
