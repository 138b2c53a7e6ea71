"""``agentcost profile`` and ``agentcost replay`` against ``agentcost report`` on the same SQLite ledger.

    python tests/benchmarks/bench_profile_replay.py [--quick] [--n 100000] [--rounds 3]

Each command runs through the CLI's ``main`` (JSON output to a buffer), round by round in a
shuffled order; medians of wall time. The ledger holds N events in sessions of 20 calls whose
prompts grow step by step (two models of the packaged catalog, a few tool events, one long
session), so every finding and every replay change has work to do. ``replay`` runs a remap, a
prompt delta, a context cap and a session budget at once (the most work one replay does).

Reported as ratios to ``report`` (the anchor: one pass over the same events). No target; the
numbers go in the README's Performance table.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.cli import main
from agentcost_core.prices import PriceCatalog


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def build(url: str, n: int) -> None:
    catalog = PriceCatalog.default()
    events = []
    for i in range(n):
        session, step = divmod(i, 20)
        if i >= n - n // 50:  # the last 2% of events: one long session, the runaway
            session, step = n, i - (n - n // 50)
        model = "gpt-4o" if session % 3 else "gpt-4o-mini"
        if step % 7 == 6:
            events.append(CostEvent(None, Usage(), Decimal(0), kind="tool", priced=True, step="search",
                                    session_id=f"s{session}", feature=f"f{session % 5}", ts=1.79e9 + i))  # fmt: skip
            continue
        usage = Usage(input=400 * (step + 1), cache_read=(i % 3) * 256, output=20 + (i * 13) % 400)
        events.append(CostEvent(model, usage, catalog.cost(model, usage), priced=True, provider="openai",
                                session_id=f"s{session}", feature=f"f{session % 5}", step=("classify", "answer")[i % 2],
                                tier="frontier" if model == "gpt-4o" else "nano", ts=1.79e9 + i))  # fmt: skip
    with Ledger(url, sync=True) as ledger:
        for k in range(0, n, 5000):
            ledger.record_many(events[k : k + 5000])


def run(argv: list[str]) -> float:
    buf = io.StringIO()
    t = _bench.perf()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    elapsed = _bench.perf() - t
    if rc != 0:
        raise SystemExit(f"agentcost {' '.join(argv)} exited {rc}")
    return elapsed


def bench() -> None:
    n = _arg("--n", 10_000 if _bench.quick() else 100_000)
    rounds = _arg("--rounds", 1 if _bench.quick() else 3)
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/ledger.db"
        build(url, n)
        common = ["--ledger", url, "--format", "json"]
        variants = {
            "report": ["report", *common],
            "profile": ["profile", *common],
            "replay (remap + prompt delta + context cap + session cap)": [
                "replay", *common, "--remap", "gpt-4o=gpt-4o-mini@f1", "--prompt-delta", "200",
                "--context-cap", "4000", "--session-cap", "0.05"],
            "replay (every price from a file)": ["replay", *common, "--prices", str(Path(d) / "prices.json")],
        }  # fmt: skip
        Path(d, "prices.json").write_text(
            '{"gpt-4o": {"input": "5", "cache_read": "2.5", "output": "20"},'
            ' "gpt-4o-mini": {"input": "0.3", "cache_read": "0.15", "output": "1.2"}}'
        )
        times: dict[str, list[float]] = {k: [] for k in variants}
        rng = random.Random(7)
        names = list(variants)
        for _ in range(rounds):
            rng.shuffle(names)
            for name in names:
                times[name].append(run(variants[name]))
    anchor = _bench.median(times["report"])
    print(f"# profile / replay vs report, SQLite ledger of {n:,} events, {rounds} round(s), median wall time")
    print(f"{'command':<60} {'seconds':>9} {'x report':>9}")
    for name in variants:
        m = _bench.median(times[name])
        print(f"{name:<60} {m:>9.2f} {m / anchor:>9.2f}")


if __name__ == "__main__":
    bench()
