"""Start several processes that wait at one barrier and report one outcome each (a helper module
beside conftest.py, not a test module)."""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable, Sequence


def run_together(target: Callable[..., None], args: Sequence[tuple[Any, ...]], *, start: str = "fork",
                 timeout: float = 60) -> list[Any]:  # fmt: skip
    """One process per ``args`` entry runs ``target(*entry, barrier, results)``; the barrier lets
    them go at once and each puts one outcome on ``results``. Returns the outcomes (in arrival
    order); every process is joined, and killed if it hangs, whatever happens."""
    ctx = multiprocessing.get_context(start)
    barrier, results = ctx.Barrier(len(args)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, results), daemon=True) for a in args]
    for p in procs:
        p.start()
    try:
        return [results.get(timeout=timeout) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - only when a worker hangs
                p.kill()
