"""Routing: what a decision costs, and what dispatching a call through ``ModelRouter`` adds, side by
side with LangChain's own dispatch primitives, in one run.

    python tests/benchmarks/bench_routing.py [--quick]

**1. Decision time** — ``Router.route(request)`` (what ``ModelRouter`` runs before every call: the
policy, the tier check and the decision record), timed call by call with ``time.perf_counter_ns``,
p50 / p90 / p99 / max over every decision. Tiers ``nano = gpt-5-nano``, ``frontier = gpt-5``.

  static       ``StaticPolicy`` (5 steps, default ``frontier``): requests cycle through a step hit,
               a tag hit and a miss (the default)
  heuristic    ``HeuristicPolicy(("nano", "frontier"))`` over the 240 labelled prompts of
               ``tests/data/routing_prompts.jsonl``, cycling (5 to ~280 words; some with pasted logs,
               code, contracts)
  semantic     ``SemanticPolicy`` with a local, deterministic embedding: a hashed bag of words (crc32 of
               each lower-cased word -> one of 256 dimensions, signed), 10 example prompts per tier
               taken from the labelled set (every 13th / 10th of each label), k = 3, numpy mat-vec.
               Reported excluding the embedding call (the decision's own ``embed_ms`` subtracted per
               call) and including it; the embedding call alone is shown too
  chain        ``StaticPolicy({"classify", "extract": "nano"}) | HeuristicPolicy | BudgetDowngrade``
               with a stub enforcer (a set lookup; 2 of 8 sessions are over their downgrade
               threshold): one request in four is a static hit, the rest are the labelled prompts
  timer floor  the same loop around a no-op, to read the others against

The variants run interleaved: many rounds, each variant one pass of 240 decisions per round, in a
freshly shuffled order, after a full garbage collection. The per-call clock is the wall clock (a
per-call CPU clock costs a syscall, more than some decisions); the mean CPU time of the calling
thread per decision (``time.thread_time`` over each block) is shown alongside.

**2. Dispatch per call** — µs per ``invoke``, calling-thread CPU (``_bench.interleaved``: rounds of
n calls per variant, shuffled order; median and p10 over rounds; overheads as the median of
per-round paired differences and as p10 − p10), no callbacks attached:

  LangChain  ``RunnableBranch((cond, RunnableLambda(identity)), RunnableLambda(identity)).invoke(x)``
             minus ``RunnableLambda(identity).invoke(x)``
  LangChain  ``ScriptedChatModel(model="gpt-5-nano").configurable_alternatives(ConfigurableField(
             id="tier"), default_key="nano", frontier=ScriptedChatModel(model="gpt-5"))`` invoked with
             ``config={"configurable": {"tier": ...}}`` minus the plain ``ScriptedChatModel.invoke``
  agentcost  ``ModelRouter(tiers={nano, frontier}, policy=StaticPolicy(...))`` (tier picked by a tag)
             and ``policy=StaticPolicy(...) | HeuristicPolicy(...)`` (tier picked by the prompt),
             minus the plain ``ScriptedChatModel.invoke``. ``ModelRouter`` is a real chat model
             (issue 12): a call is two LangChain model runs, the router's and the tier's, so this
             includes a second ``BaseChatModel`` pipeline (about +150 µs CPU on the 2-core VM)

Every model variant gets the same two prompts, alternating (an easy one the heuristic sends to nano,
a hard one it sends to frontier), and the tier-picking variants alternate tiers the same way, so each
variant pays the same prompt tokenization (``ScriptedChatModel`` counts its usage with tiktoken).

Targets (DESIGN.md, the routing issue): heuristic decision p99 ≤ 50 µs; semantic ≤ 1 ms plus one
embedding call. Timings never fail the script. It exits 1 on functional errors only: heuristic
agreement with the labels < 0.85, a decision outside the tiers or from the wrong policy, the budget
downgrade not applied (or applied where it should not be), a dispatch variant answering from the
wrong tier.
"""

from __future__ import annotations

import gc
import json
import random
import re
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _bench first: it points TIKTOKEN_CACHE_DIR at the offline cache before tiktoken loads anything.
import _bench
import langchain_core
from langchain_core.runnables import ConfigurableField, RunnableBranch, RunnableLambda

from agentcost_core.budgets import ScopeContext
from agentcost_core.routing import (
    BudgetDowngrade,
    HeuristicPolicy,
    Router,
    RouteRequest,
    SemanticPolicy,
    StaticPolicy,
)
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel

QUICK = _bench.quick()
DECISION_ROUNDS = 15 if QUICK else 100  # × 240 decisions per variant
DISPATCH_ROUNDS, DISPATCH_N = (60, 10) if QUICK else (400, 20)

DATA = Path(__file__).resolve().parents[1] / "data" / "routing_prompts.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
TIERS = {"nano": "gpt-5-nano", "frontier": "gpt-5"}
HEURISTIC_TARGET_US = 50.0
SEMANTIC_TARGET_US = 1000.0
MIN_AGREEMENT = 0.85

# --- the local embedding -------------------------------------------------------------------------
DIMS = 256
_WORD = re.compile(r"[a-z0-9]+")


def hashed_bow(text: str) -> list[float]:
    """A deterministic 256-dimension hashed bag of words (crc32, signed): no model, no network."""
    v = [0.0] * DIMS
    for word in _WORD.findall(text.lower()):
        h = zlib.crc32(word.encode())
        v[h & (DIMS - 1)] += 1.0 if h & DIMS else -1.0
    return v


def semantic_examples() -> dict[str, list[str]]:
    """10 labelled prompts per tier, spread over the file (every 13th nano, every 10th frontier)."""
    nano = [r["prompt"] for r in ROWS if r["label"] == "nano"][::13][:10]
    frontier = [r["prompt"] for r in ROWS if r["label"] == "frontier"][::10][:10]
    return {"nano": nano, "frontier": frontier}


class StubEnforcer:
    """What ``BudgetDowngrade`` asks a ``BudgetEnforcer``; here a set lookup (no store round trip)."""

    def __init__(self, over: set[str]) -> None:
        self.over = over

    def downgrade_requested(self, ctx: ScopeContext) -> bool:
        return ctx.session_id in self.over


# --- 1. decision time ----------------------------------------------------------------------------
def decision_variants() -> tuple[dict[str, tuple[Callable[[RouteRequest], Any], list[RouteRequest]]], dict[str, Any]]:
    static_routes = {
        "classify": "nano",
        "extract": "nano",
        "summarise": "nano",
        "analyse": "frontier",
        "plan": "frontier",
    }
    static = Router(TIERS, StaticPolicy(static_routes, default="frontier"))
    static_reqs = []
    for i, r in enumerate(ROWS):
        step = list(static_routes)[i % 5]
        kind = i % 3  # a step hit, a tag hit, a miss (the default)
        static_reqs.append(
            RouteRequest(
                r["prompt"], step=step if kind == 0 else "other", tags=(("lc", step) if kind == 1 else ("lc",))
            )
        )
    heuristic = Router(TIERS, HeuristicPolicy(("nano", "frontier")))
    heuristic_reqs = [RouteRequest(r["prompt"]) for r in ROWS]
    semantic_policy = SemanticPolicy(semantic_examples(), hashed_bow, k=3).prepare()
    semantic = Router(TIERS, semantic_policy)
    over = {"s0", "s1"}
    chain = Router(
        TIERS,
        StaticPolicy({"classify": "nano", "extract": "nano"})
        | HeuristicPolicy(("nano", "frontier"))
        | BudgetDowngrade(StubEnforcer(over)),
    )
    chain_reqs = [
        RouteRequest(
            r["prompt"],
            step=("classify" if i % 8 == 0 else "extract") if i % 4 == 0 else "agent",
            scope=ScopeContext(trace_id=f"t{i}", session_id=f"s{i % 8}", feature="bench"),
        )
        for i, r in enumerate(ROWS)
    ]

    def noop(req: RouteRequest) -> None:
        return None

    variants = {
        "timer floor (no-op)": (noop, heuristic_reqs),
        "StaticPolicy": (static.route, static_reqs),
        "HeuristicPolicy": (heuristic.route, heuristic_reqs),
        "SemanticPolicy": (semantic.route, heuristic_reqs),
        "chain: static | heuristic | budget": (chain.route, chain_reqs),
    }
    return variants, {"over": over, "semantic": semantic_policy}


def time_decisions(
    variants: dict[str, tuple[Callable[[RouteRequest], Any], list[RouteRequest]]], rounds: int
) -> dict[str, Any]:
    """Per-decision wall µs (and, for the semantic policy, its embed µs), interleaved rounds."""
    pc, tt = time.perf_counter_ns, time.thread_time
    wall: dict[str, list[float]] = {n: [] for n in variants}
    embed: dict[str, list[float]] = {n: [] for n in variants}
    cpu: dict[str, list[float]] = {n: [] for n in variants}
    decisions: dict[str, list[Any]] = {n: [] for n in variants}
    for name, (fn, reqs) in variants.items():  # warm-up: regex caches, numpy, first-call paths
        decisions[name] = [fn(r) for r in reqs]
    rng = random.Random(1234)
    names = list(variants)
    for _ in range(rounds):
        rng.shuffle(names)
        gc.collect()
        for name in names:
            fn, reqs = variants[name]
            out_w, out_e = wall[name], embed[name]
            c0 = tt()
            for req in reqs:
                t0 = pc()
                d = fn(req)
                t1 = pc()
                out_w.append((t1 - t0) / 1e3)
                if d is not None and "embed_ms" in d.features:
                    out_e.append(d.features["embed_ms"] * 1e3)
            cpu[name].append((tt() - c0) / len(reqs) * 1e6)
    return {"wall": wall, "embed": embed, "cpu": cpu, "decisions": decisions}


def time_embedding(rounds: int) -> list[float]:
    pc = time.perf_counter_ns
    texts = [r["prompt"] for r in ROWS]
    out = []
    for _ in range(rounds):
        for t in texts:
            t0 = pc()
            hashed_bow(t)
            out.append((pc() - t0) / 1e3)
    return out


def dist(xs: list[float]) -> tuple[float, float, float, float]:
    return _bench.pct(xs, 0.5), _bench.pct(xs, 0.9), _bench.pct(xs, 0.99), max(xs)


def check_decisions(res: dict[str, Any], extra: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Functional checks on the warm-up decisions; returns (errors, facts to print)."""
    errors: list[str] = []
    facts: dict[str, Any] = {}
    d = res["decisions"]
    for name, ds in d.items():
        if name.startswith("timer"):
            continue
        bad = [x for x in ds if x is None or x.tier not in TIERS]
        if bad:
            errors.append(f"{name}: {len(bad)} decisions outside the tiers {list(TIERS)}")
    heur = [x.tier for x in d["HeuristicPolicy"]]
    labels = [r["label"] for r in ROWS]
    agree = sum(t == lab for t, lab in zip(heur, labels)) / len(ROWS)
    missed_hard = sum(t == "nano" and lab == "frontier" for t, lab in zip(heur, labels))
    facts["heuristic"] = (agree, missed_hard, labels.count("frontier"))
    if agree < MIN_AGREEMENT:
        errors.append(f"heuristic agreement with the labels {agree:.3f} < {MIN_AGREEMENT}")
    examples = {t for ts in extra["semantic"].routes.values() for t in ts}
    sem = d["SemanticPolicy"]
    if any(x.policy != "semantic" or "embed_ms" not in x.features for x in sem):
        errors.append("SemanticPolicy: some decisions did not come from the semantic policy")
    held = [(x.tier, r["label"]) for x, r in zip(sem, ROWS) if r["prompt"] not in examples]
    facts["semantic"] = (sum(t == lab for t, lab in held) / len(held), len(held))
    chain = d["chain: static | heuristic | budget"]
    counts = {"static": 0, "heuristic": 0, "downgraded": 0}
    plain = {id(r): t for r, t in zip(ROWS, heur)}
    for i, (x, r) in enumerate(zip(chain, ROWS)):
        over = f"s{i % 8}" in extra["over"]
        if i % 4 == 0:
            ok = x.policy == "static" and x.tier == "nano" and not x.adjustments
            counts["static"] += 1
        else:
            want = "nano" if over else plain[id(r)]
            moved = over and plain[id(r)] == "frontier"
            ok = x.policy == "heuristic" and x.tier == want and bool(x.adjustments) == moved
            counts["heuristic"] += 1
            counts["downgraded"] += moved
        if not ok:
            errors.append(f"chain: request {i} decided {x.tier} by {x.policy} (adjustments {x.adjustments})")
            break
    facts["chain"] = counts
    return errors, facts


# --- 2. dispatch per call ------------------------------------------------------------------------
EASY = "Classify this ticket as billing or shipping: 'I was charged twice for order A-1001'"
HARD = (
    "Compare the trade-offs of event sourcing versus CRUD for our billing system and design a migration plan "
    "step by step, explaining why each step is needed."
)
NANO_REPLY, FRONTIER_REPLY = "billing", "A careful multi-step analysis."


def nano_model() -> ScriptedChatModel:
    return ScriptedChatModel(script=[NANO_REPLY], model=TIERS["nano"])


def frontier_model() -> ScriptedChatModel:
    return ScriptedChatModel(script=[FRONTIER_REPLY], model=TIERS["frontier"])


def dispatch_variants() -> tuple[dict[str, Callable[[int], object]], list[str]]:
    prompts = [EASY, HARD]
    tiers = ["nano", "frontier"]
    ident = RunnableLambda(lambda x: x)
    branch = RunnableBranch((lambda x: x["tier"] == "nano", RunnableLambda(lambda x: x)), RunnableLambda(lambda x: x))
    inputs = [{"tier": t, "text": p} for t, p in zip(tiers, prompts)]
    plain = nano_model()
    alternatives = nano_model().configurable_alternatives(
        ConfigurableField(id="tier"), default_key="nano", frontier=frontier_model()
    )
    alt_configs = [{"configurable": {"tier": t}} for t in tiers]
    static_router = ModelRouter(
        tiers={"nano": nano_model(), "frontier": frontier_model()},
        policy=StaticPolicy({"classify": "nano", "analyse": "frontier"}),
    )
    tag_configs = [{"tags": ["classify"]}, {"tags": ["analyse"]}]
    chain_router = ModelRouter(
        tiers={"nano": nano_model(), "frontier": frontier_model()},
        policy=StaticPolicy({"classify": "nano", "extract": "nano"}) | HeuristicPolicy(("nano", "frontier")),
    )

    def direct(k: int) -> None:
        for i in range(k):
            ident.invoke(inputs[i & 1])

    def branched(k: int) -> None:
        for i in range(k):
            branch.invoke(inputs[i & 1])

    def plain_model(k: int) -> None:
        for i in range(k):
            plain.invoke(prompts[i & 1])

    def configurable(k: int) -> None:
        for i in range(k):
            alternatives.invoke(prompts[i & 1], config=alt_configs[i & 1])

    def router_static(k: int) -> None:
        for i in range(k):
            static_router.invoke(prompts[i & 1], config=tag_configs[i & 1])

    def router_chain(k: int) -> None:
        for i in range(k):
            chain_router.invoke(prompts[i & 1])

    errors = []
    for name, runnable in (("RunnableLambda", ident), ("RunnableBranch", branch)):
        got = [runnable.invoke(x) for x in inputs]
        if got != inputs:
            errors.append(f"{name} returned {got!r}, expected its input back")
    for name, got in (
        ("configurable_alternatives", [alternatives.invoke(p, config=c).content for p, c in zip(prompts, alt_configs)]),
        (
            "ModelRouter(StaticPolicy)",
            [static_router.invoke(p, config=c).content for p, c in zip(prompts, tag_configs)],
        ),
        ("ModelRouter(static | heuristic)", [chain_router.invoke(p).content for p in prompts]),
    ):
        if got != [NANO_REPLY, FRONTIER_REPLY]:
            errors.append(f"{name} answered {got!r}, expected the nano reply then the frontier reply")
    variants = {
        "RunnableLambda.invoke (direct)": direct,
        "RunnableBranch.invoke": branched,
        "ScriptedChatModel.invoke (plain)": plain_model,
        "configurable_alternatives.invoke": configurable,
        "ModelRouter.invoke, StaticPolicy": router_static,
        "ModelRouter.invoke, static | heuristic": router_chain,
    }
    return variants, errors


DISPATCH_BASE = {
    "RunnableLambda.invoke (direct)": None,
    "RunnableBranch.invoke": "RunnableLambda.invoke (direct)",
    "ScriptedChatModel.invoke (plain)": None,
    "configurable_alternatives.invoke": "ScriptedChatModel.invoke (plain)",
    "ModelRouter.invoke, StaticPolicy": "ScriptedChatModel.invoke (plain)",
    "ModelRouter.invoke, static | heuristic": "ScriptedChatModel.invoke (plain)",
}
DISPATCH_WHO = {
    "RunnableLambda.invoke (direct)": "LangChain",
    "RunnableBranch.invoke": "LangChain",
    "ScriptedChatModel.invoke (plain)": "LangChain",
    "configurable_alternatives.invoke": "LangChain",
    "ModelRouter.invoke, StaticPolicy": "agentcost",
    "ModelRouter.invoke, static | heuristic": "agentcost",
}


def heuristic_decision_us(rounds: int) -> float:
    """Median µs of ``Router.route`` with the static | heuristic chain on the dispatch prompts."""
    router = Router(
        TIERS, StaticPolicy({"classify": "nano", "extract": "nano"}) | HeuristicPolicy(("nano", "frontier"))
    )
    reqs = [RouteRequest(EASY), RouteRequest(HARD)]
    pc, out = time.perf_counter_ns, []
    for _ in range(rounds):
        for req in reqs:
            t0 = pc()
            router.route(req)
            out.append((pc() - t0) / 1e3)
    return statistics.median(out)


def main() -> int:
    print(f"Routing: decision time and dispatch overhead — {_bench.machine()}, {_bench.load()}")
    print(f"langchain-core {langchain_core.__version__}; {len(ROWS)} labelled prompts; tiers {TIERS}")
    t_start = time.perf_counter()
    errors: list[str] = []

    # --- 1. decisions ---------------------------------------------------------------------------
    variants, extra = decision_variants()
    res = time_decisions(variants, DECISION_ROUNDS)
    embed_alone = time_embedding(max(5, DECISION_ROUNDS // 4))
    errs, facts = check_decisions(res, extra)
    errors += errs
    wall, cpu = res["wall"], res["cpu"]
    sem_total = wall["SemanticPolicy"]
    sem_excl = [t - e for t, e in zip(sem_total, res["embed"]["SemanticPolicy"])]
    n_dec = len(wall["HeuristicPolicy"])
    print(f"\n1. Decision time: Router.route(request), µs per decision (wall, per call; {DECISION_ROUNDS} rounds × 240")
    print(f"   decisions per variant, interleaved: {n_dec:,} each). CPU mean = calling-thread CPU per decision.")
    rows = []
    targets = {
        "HeuristicPolicy": f"p99 ≤ {HEURISTIC_TARGET_US:.0f}",
        "SemanticPolicy, excl. embedding": f"p99 ≤ {SEMANTIC_TARGET_US:.0f}",
        "SemanticPolicy, incl. embedding": "≤ 1,000 + embedding",
    }

    def row(label: str, xs: list[float], cpu_mean: float | None) -> None:
        p50, p90, p99, mx = dist(xs)
        rows.append([label, f"{p50:.1f}", f"{p90:.1f}", f"{p99:.1f}", f"{mx:.0f}",
                     "—" if cpu_mean is None else f"{cpu_mean:.1f}", targets.get(label, "")])  # fmt: skip

    for name in variants:
        if name == "SemanticPolicy":
            row("SemanticPolicy, excl. embedding", sem_excl, None)
            row("SemanticPolicy, incl. embedding", sem_total, statistics.median(cpu[name]))
            row("  the embedding call alone (hashed BoW)", res["embed"]["SemanticPolicy"], None)
        else:
            row(name, wall[name], statistics.median(cpu[name]))
    row("  hashed BoW called directly (no policy)", embed_alone, None)
    print(_bench.table(("policy", "p50", "p90", "p99", "max", "CPU mean", "target (µs)"), rows))

    h_p99 = _bench.pct(wall["HeuristicPolicy"], 0.99)
    s_excl_p99 = _bench.pct(sem_excl, 0.99)
    s_incl_p99 = _bench.pct(sem_total, 0.99)
    emb_p99 = _bench.pct(res["embed"]["SemanticPolicy"], 0.99)
    agree, missed, frontier_n = facts["heuristic"]
    s_agree, held = facts["semantic"]
    c = facts["chain"]
    print(
        f"\nheuristic agreement with the labels: {agree:.3f} (required ≥ {MIN_AGREEMENT}); frontier prompts sent to "
        f"nano: {missed}/{frontier_n}"
    )
    print(
        f"semantic agreement on the {held} held-out prompts (information only; a hashed bag of words is no real "
        f"embedding): {s_agree:.3f}"
    )
    print(
        f"chain: {c['static']} static hits, {c['heuristic']} heuristic decisions, {c['downgraded']} moved to nano "
        "by the budget downgrade, as expected"
        if not any(e.startswith("chain") for e in errs)
        else "chain: decisions NOT as expected"
    )
    print("verdicts:")
    print(
        f"  heuristic p99 {h_p99:.1f} µs ≤ {HEURISTIC_TARGET_US:.0f} µs: {_bench.verdict(h_p99 <= HEURISTIC_TARGET_US)}"
    )
    print(
        f"  semantic p99 excl. embedding {s_excl_p99:.1f} µs ≤ {SEMANTIC_TARGET_US:.0f} µs: "
        f"{_bench.verdict(s_excl_p99 <= SEMANTIC_TARGET_US)}"
    )
    print(
        f"  semantic p99 incl. embedding {s_incl_p99:.1f} µs ≤ 1,000 µs + embedding p99 {emb_p99:.1f} µs: "
        f"{_bench.verdict(s_incl_p99 <= SEMANTIC_TARGET_US + emb_p99)}"
    )

    # --- 2. dispatch ----------------------------------------------------------------------------
    dvariants, errs = dispatch_variants()
    errors += errs
    print(
        f"\n2. Dispatch per call: µs per invoke, no callbacks ({DISPATCH_ROUNDS} rounds × {DISPATCH_N} calls per "
        "variant, interleaved)"
    )
    samples = _bench.interleaved(dvariants, n=DISPATCH_N, rounds=DISPATCH_ROUNDS)
    scpu, swall = samples["cpu"], samples["wall"]
    drows = []
    for name in dvariants:
        base = DISPATCH_BASE[name]
        drows.append([
            DISPATCH_WHO[name], name, f"{_bench.median(scpu[name]):.1f}", f"{_bench.low(scpu[name]):.1f}",
            "—" if base is None else f"{_bench.paired_overhead(scpu, name, base):+.1f}",
            "—" if base is None else f"{_bench.low_overhead(scpu, name, base):+.1f}",
            f"{_bench.median(swall[name]):.1f}",
        ])  # fmt: skip
    print(_bench.table(("", "µs per call", "CPU median", "CPU p10", "over base (median Δ)", "over base (p10)",
                        "wall median"), drows))  # fmt: skip
    print("base: RunnableBranch over the direct RunnableLambda; the others over the plain ScriptedChatModel.")

    def over(name: str) -> tuple[float, float]:
        base = DISPATCH_BASE[name]
        return _bench.paired_overhead(scpu, name, base), _bench.low_overhead(scpu, name, base)  # type: ignore[arg-type]

    br, cfg = over("RunnableBranch.invoke"), over("configurable_alternatives.invoke")
    rs, rc = over("ModelRouter.invoke, StaticPolicy"), over("ModelRouter.invoke, static | heuristic")
    print("\nadded per call (calling-thread CPU, median Δ / p10):")
    print(f"  LangChain RunnableBranch               {br[0]:+7.1f} / {br[1]:+7.1f} µs")
    print(f"  LangChain configurable_alternatives    {cfg[0]:+7.1f} / {cfg[1]:+7.1f} µs")
    print(f"  agentcost ModelRouter, StaticPolicy    {rs[0]:+7.1f} / {rs[1]:+7.1f} µs")
    decide = heuristic_decision_us(DISPATCH_ROUNDS)
    print(
        f"  agentcost ModelRouter, static|heuristic{rc[0]:+7.1f} / {rc[1]:+7.1f} µs"
        f"   (its heuristic decision on these two prompts alone: {decide:.1f} µs median)"
    )
    if cfg[1] > 0:
        print(f"  ModelRouter (static) / configurable_alternatives, p10: {rs[1] / cfg[1]:.2f}×")
    print(f"\n{_bench.load()}; {time.perf_counter() - t_start:.0f} s")
    if errors:
        for e in errors:
            print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
