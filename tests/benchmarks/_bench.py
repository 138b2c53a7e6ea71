"""Small helpers shared by the ``bench_*.py`` scripts (not a test module: pytest never collects it).

* offline tiktoken: ``TIKTOKEN_CACHE_DIR`` defaults to ``<workspace>/shared/tiktoken-cache`` when present
* :func:`interleaved`: run several variants round by round in a shuffled order, so drift (CPU
  frequency, other processes, the ledger writer thread) hits every variant alike
* :func:`median`, :func:`table`, :func:`machine`: reporting
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _cand in (_HERE.parents[2] / "shared" / "tiktoken-cache", _HERE.parents[1] / "shared" / "tiktoken-cache"):
    if "TIKTOKEN_CACHE_DIR" not in os.environ and _cand.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(_cand)

perf = time.perf_counter


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def quick() -> bool:
    """``--quick`` (or ``BENCH_QUICK=1``): fewer rounds, for a smoke run."""
    return "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1"


CLOCKS = {
    "wall": time.perf_counter,  # what a user waits; sensitive to other processes on the machine
    "cpu": time.thread_time,  # CPU time of the calling thread: the hot path, robust to machine load
    "cpu_all": time.process_time,  # CPU time of every thread: the hot path plus background work
}


def interleaved(
    variants: dict[str, Callable[[int], object]],
    *,
    n: int,
    rounds: int,
    warmup: int = 200,
    seed: int = 1234,
    settle: Callable[[], None] | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Per-call µs of each variant in each round, on each clock of :data:`CLOCKS`.

    ``variants[name](n)`` runs ``n`` calls. Every round runs every variant once, in a freshly
    shuffled order, after a full garbage collection; ``settle()`` (e.g. a ledger flush, so
    background writes queued by one variant do not run on the next one's clock) runs before each
    timed block.
    Many short rounds beat a few long ones here: paired blocks run close together in time, so slow
    drift (other processes, CPU frequency) cancels in their difference.
    A variant may carry ``enter`` / ``leave`` attributes (e.g. attaching a handler to a global
    dispatcher and removing it): they run around each of its blocks, off the clocks, like the
    one-time set-up the other variants do at construction.
    Returns ``{clock: {variant: [µs per call, one per round]}}``.
    """
    rng = random.Random(seed)
    for fn in variants.values():
        _block(fn, warmup)
    out: dict[str, dict[str, list[float]]] = {c: {name: [] for name in variants} for c in CLOCKS}
    names = list(variants)
    wall, cpu, cpu_all = CLOCKS["wall"], CLOCKS["cpu"], CLOCKS["cpu_all"]
    for _ in range(rounds):
        rng.shuffle(names)
        gc.collect()
        for name in names:
            if settle is not None:
                settle()
            fn = variants[name]
            enter, leave = getattr(fn, "enter", None), getattr(fn, "leave", None)
            if enter is not None:
                enter()
            w0, c0, a0 = wall(), cpu(), cpu_all()
            fn(n)
            w1, c1, a1 = wall(), cpu(), cpu_all()
            if leave is not None:
                leave()
            out["wall"][name].append((w1 - w0) / n * 1e6)
            out["cpu"][name].append((c1 - c0) / n * 1e6)
            out["cpu_all"][name].append((a1 - a0) / n * 1e6)
    return out


def _block(fn: Callable[[int], object], n: int) -> None:
    """``fn(n)`` between its ``enter`` and ``leave`` hooks, when it has them."""
    enter, leave = getattr(fn, "enter", None), getattr(fn, "leave", None)
    if enter is not None:
        enter()
    try:
        fn(n)
    finally:
        if leave is not None:
            leave()


def pct(xs: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``xs``, nearest rank. ``pct(xs, 0.1)`` is the noise-robust
    figure: interference from other processes only ever adds time, so the fast rounds are the
    ones that measure the code."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def low(xs: Sequence[float]) -> float:
    return pct(xs, 0.1)


def paired_overhead(samples: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of (variant − base) measured in the same round."""
    return median([a - b for a, b in zip(samples[name], samples[base])])


def low_overhead(samples: dict[str, list[float]], name: str, base: str) -> float:
    """p10(variant) − p10(base)."""
    return low(samples[name]) - low(samples[base])


def overhead_rows(
    samples: dict[str, dict[str, list[float]]], base: str, labels: dict[str, str] | None = None
) -> list[list[object]]:
    """Rows: label, CPU median, CPU p10, overhead (paired median), overhead (p10), wall median."""
    rows: list[list[object]] = []
    cpu, wall = samples["cpu"], samples["wall"]
    for name in cpu:
        same = name == base
        rows.append(
            [
                (labels or {}).get(name, name),
                f"{median(cpu[name]):.1f}",
                f"{low(cpu[name]):.1f}",
                "—" if same else f"{paired_overhead(cpu, name, base):+.1f}",
                "—" if same else f"{low_overhead(cpu, name, base):+.1f}",
                f"{median(wall[name]):.1f}",
            ]
        )
    return rows


OVERHEAD_HEADERS = ("µs per call", "CPU median", "CPU p10", "over base (median Δ)", "over base (p10)", "wall median")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count()
    return f"python {platform.python_version()}, {platform.system()} {platform.machine()}, {cpus} CPU(s) usable"


def load() -> str:
    try:
        a, b, c = os.getloadavg()
        return f"load average {a:.2f} {b:.2f} {c:.2f}"
    except OSError:  # pragma: no cover
        return "load average n/a"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


# --- instruction counts (bench_*_instructions.py) -----------------------------------------------
def instructions_skipped() -> str | None:
    """Why an instruction-count run cannot or should not run now, or None."""
    import shutil

    if shutil.which("valgrind") is None:
        return "valgrind is not installed: no instruction counts (apt-get install valgrind)"
    if "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1":
        return "skipped with --quick: the processes under valgrind take a minute or two"
    return None


def instructions(script: Path, variant: str, calls: int) -> int:
    """Instructions executed by ``script --child variant calls`` under cachegrind. Fixed hash seed;
    one BLAS thread (numpy, imported by LlamaIndex, would otherwise spin worker threads whose
    instructions vary from run to run)."""
    import re
    import subprocess

    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, str(script), "--child", variant, str(calls)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stderr
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def instructions_per_call(script: Path, variants: Sequence[str], calls: int) -> dict[str, float]:
    """Per variant: (instructions with ``calls`` calls − with 0 calls) / ``calls``, each run in its
    own process, the runs in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(v, n) for v in variants for n in (0, calls)]
    with ThreadPoolExecutor(max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: instructions(script, *job), jobs)))
    return {v: (counts[(v, calls)] - counts[(v, 0)]) / calls for v in variants}
