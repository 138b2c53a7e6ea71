"""``agentcost dashboard --out`` against ``agentcost report`` on the same SQLite ledger, as a ratio.

    python tests/benchmarks/bench_dashboard.py [--quick] [--n 100000] [--rounds 3]

One ledger of N events (bench_ledger's realistic mix: 4 models, 4 features, 1,000 users, 5,000
sessions). Each round runs, in a shuffled order and in this process (imports already warm):
``agentcost report --format json``, ``agentcost report`` (table, to /dev/null) and
``agentcost dashboard --out FILE``; the medians are reported with the dashboard / report ratios.
The dashboard reads the ledger in one query and writes every call into the page (its filters and
drill-down need no server), so it does more than a report of ~4 rows; the earlier page's 9.9x
came from one query per session. Checked: the page's embedded costs sum exactly to the report's total.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # first: offline tiktoken
from bench_ledger import make_events

from agentcost_core import Ledger
from agentcost_core.cli import main as cli
from agentcost_core.dashboard import priced_spend


def _arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def _run(args: list[str]) -> tuple[float, str]:
    out = io.StringIO()
    start = _bench.perf()
    with contextlib.redirect_stdout(out):
        code = cli(args)
    elapsed = _bench.perf() - start
    if code != 0:
        raise SystemExit(f"agentcost {' '.join(args)} exited with {code}")
    return elapsed, out.getvalue()


def _page_total(html: str) -> Decimal:
    start = html.index('<script id="agentcost-data" type="application/json">') + len(
        '<script id="agentcost-data" type="application/json">'
    )
    return priced_spend(json.loads(html[start : html.index("</script>", start)]))


def main() -> int:
    quick = _bench.quick()
    n = _arg("--n", 10_000 if quick else 100_000)
    rounds = _arg("--rounds", 1 if quick else 3)
    print(f"{_bench.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'ledger.db')}"
        with Ledger(url, sync=True) as ledger:
            events = make_events(n)
            for i in range(0, n, 5_000):
                ledger.record_many(events[i : i + 5_000])
            del events
        page = os.path.join(tmp, "spend.html")
        variants = {
            "report --format json": ["report", "--ledger", url, "--format", "json"],
            "report (table)": ["report", "--ledger", url],
            "dashboard --out": ["dashboard", "--ledger", url, "--out", page],
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        outputs: dict[str, str] = {}
        rng = random.Random(1234)
        for _ in range(rounds):
            order = list(variants)
            rng.shuffle(order)
            for name in order:
                elapsed, printed = _run(variants[name])
                times[name].append(elapsed)
                outputs[name] = printed
        report_total = Decimal(json.loads(outputs["report --format json"])["total"]["cost"])
        html = Path(page).read_text(encoding="utf-8")
        page_total = _page_total(html)
        size_mb = len(html.encode()) / 1e6
    med = {k: _bench.median(v) for k, v in times.items()}
    print(f"ledger: {n:,} events in SQLite; {rounds} round(s), medians")
    rows = [
        [name, f"{med[name]:.3f} s", f"{med[name] / med['report --format json']:.2f}x"] for name in variants
    ]  # fmt: skip
    print(_bench.table(["command", "time", "vs report --format json"], rows))
    print(
        f"dashboard / report (table): {med['dashboard --out'] / med['report (table)']:.2f}x; page size {size_mb:.1f} MB"
    )
    ok = page_total == report_total
    print(f"page total {page_total} == report total {report_total}: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
