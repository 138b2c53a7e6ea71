"""The write-ahead spool of ``Ledger(url, durability="spool")``.

``record()`` appends the event as one JSON line to this process's spool file with one unbuffered
``write`` (no fsync) before queueing it, so a process killed at any moment (SIGKILL, OOM) leaves
every recorded event in the file: the kernel keeps what was written. When the writer has stored
the queue to the last event, the file is emptied. A power failure can still lose the page cache.

Spool files live in ``<state_path>.spool/`` (beside a SQLite ledger; for PostgreSQL see
:meth:`~.postgres.PostgresBackend.state_path`), one per live ledger, each held with an exclusive
``flock``. The next ledger opened on the same URL replays every file no live process holds:
events already stored (same id) are skipped, so a replay can run twice without duplicates.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from ..events import CostEvent
from .jsonlines import event_from_json, event_to_json

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("agentcost.ledger")

__all__ = ["Spool", "pending_spool_entries", "replay_spools"]


def spool_folder(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".spool")


class Spool:
    """This process's spool file for one ledger."""

    def __init__(self, folder: Path) -> None:
        if fcntl is None:  # pragma: no cover
            raise OSError("the spool needs fcntl.flock (POSIX)")
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{os.getpid()}-{os.urandom(4).hex()}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.lock = threading.Lock()  # held by record() around append + enqueue, and by truncate
        self._dirty = False

    def append(self, event: CostEvent) -> None:
        os.write(self._fd, (event_to_json(event) + "\n").encode("ascii"))
        self._dirty = True

    def truncate_if(self, empty: Callable[[], bool]) -> None:
        """Empty the file when ``empty()`` holds under the spool's lock (every appended event is
        stored); skipped, until next time, when a producer holds the lock."""
        if not self._dirty or not self.lock.acquire(blocking=False):
            return
        try:
            if empty():
                os.ftruncate(self._fd, 0)
                self._dirty = False
        finally:
            self.lock.release()

    def close(self) -> None:
        """After the queue is stored: remove the file."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)


def _unheld(folder: Path) -> list[tuple[Path, int]]:
    """Spool files in ``folder`` no live process holds, each opened and locked by us."""
    out = []
    if fcntl is None or not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live ledger's spool
            continue
        out.append((path, fd))
    return out


def _read(path: Path) -> list[CostEvent]:
    events = []
    for line in path.read_bytes().decode("ascii", "replace").splitlines():
        try:
            events.append(event_from_json(line))
        except Exception:  # a line cut short by the crash: never acknowledged, nothing to replay
            continue
    return events


def replay_spools(folder: Path, store: Callable[..., None], batch_size: int) -> int:
    """Store the events of every spool file no live process holds (skipping stored ids), then
    remove the file. Returns how many events were read."""
    total = 0
    for path, fd in _unheld(folder):
        try:
            events = _read(path)
            for start in range(0, len(events), batch_size):
                store(events[start : start + batch_size], dedupe=True)
            total += len(events)
            path.unlink(missing_ok=True)
        except Exception:  # the file stays for the next open; opening this ledger still works
            logger.exception("agentcost ledger could not replay the spool file %s", path)
        finally:
            os.close(fd)
    if total:
        logger.warning("agentcost ledger replayed %d event(s) from the spool of a process that stopped", total)
    return total


def pending_spool_entries(folder: Path) -> tuple[int, int]:
    """(entries in files no live process holds: replayed by the next open, entries in the files of
    live ledgers: not yet stored). Reads only."""
    stale = live = 0
    unheld = _unheld(folder)
    try:
        held_by_nobody = {p for p, _ in unheld}
        for path in folder.glob("*.jsonl") if folder.is_dir() else ():
            try:
                n = sum(1 for line in path.read_bytes().splitlines() if line.strip())
            except FileNotFoundError:
                continue
            if path in held_by_nobody:
                stale += n
            else:
                live += n
    finally:
        for _, fd in unheld:
            os.close(fd)
    return stale, live
