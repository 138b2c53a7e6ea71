"""Start several threads that wait at one barrier and report one outcome each (a helper module
beside conftest.py, not a test module)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_threads_together(target: Callable[[], Any], n: int) -> list[Any]:
    """``n`` threads wait at one barrier, then each runs ``target()``. Returns each thread's result,
    or the name of the exception it raised, in the order they finished; every thread is joined."""
    start = threading.Barrier(n)
    outcomes: list[Any] = []

    def run() -> None:
        start.wait()
        try:
            outcomes.append(target())
        except Exception as e:  # noqa: BLE001 - reported as the outcome
            outcomes.append(type(e).__name__)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes
