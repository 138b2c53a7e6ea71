"""Each example records into its own SQLite ledger, ``.agentcost/<example>.db``, started afresh on every
run: its report shows this run only, and the file stays for ``agentcost report --ledger ...`` afterwards.
(Your own code would normally share one ledger: ``.agentcost/ledger.db`` by default, or ``AGENTCOST_LEDGER``.)"""

from __future__ import annotations

from pathlib import Path


def fresh_ledger(example: str) -> str:
    """The URL of ``.agentcost/<example>.db`` (relative to the working directory), emptied of earlier runs."""
    path = Path(".agentcost") / f"{example}.db"
    for leftover in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{path.as_posix()}"
