"""Putting dead letters back into the ledger once their cause is gone (``agentcost ledger
retry-dead-letters``, :meth:`Ledger.retry_dead_letters`).

The dead-letter file is first moved aside (writers that dead-letter meanwhile start a new one);
its events are stored in batches with the ledger's usual policy, skipping every event whose id is
already stored (a retry run twice, or stopped half-way, never stores a row twice). What still
cannot be stored goes back into the dead-letter file with its current reason, as does a line that
is not an event; the claimed file is then deleted. A retry that stopped half-way (its process
killed) leaves its claimed file, which the next retry adopts."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..events import CostEvent
from .faults import BatchStore
from .jsonlines import DeadLetters, event_from_dict

__all__ = ["DeadLetterRetry", "retry_dead_letters"]

logger = logging.getLogger("agentcost.ledger")

_BATCH = 2_000


@dataclass(frozen=True)
class DeadLetterRetry:
    """What one retry of a ledger's dead letters did."""

    stored: int  # stored now
    already_stored: int  # were in the ledger already (a duplicate entry, an earlier retry): removed
    still_dead: int  # could not be stored yet: back in the file with their current reason
    unreadable: int  # lines that are not an event: kept in the file as they were
    dead_letter_file: str | None


class _Collected(DeadLetters):
    """The dead letters of a retry, kept in memory to go back into the file."""

    def __init__(self) -> None:
        super().__init__(None)
        self.entries: list[tuple[CostEvent, str]] = []

    def add(self, event: CostEvent, reason: str) -> None:
        self.count += 1
        self.entries.append((event, reason))


def _read(paths: list[Path]) -> tuple[dict[str, CostEvent], list[str]]:
    events: dict[str, CostEvent] = {}
    unreadable: list[str] = []
    for path in paths:
        for line in path.read_text(encoding="ascii", errors="backslashreplace").splitlines():
            if not line.strip():
                continue
            try:
                event = event_from_dict(json.loads(line)["event"])
            except (ValueError, KeyError, TypeError, ArithmeticError):  # a truncated or edited line: kept
                unreadable.append(line)
                continue
            events.setdefault(event.id, event)
    return events, unreadable


def retry_dead_letters(store: BatchStore) -> DeadLetterRetry:
    """Store the dead letters of ``store``'s ledger; see the module docstring."""
    dead_letters = store.dead_letters
    where = None if dead_letters.path is None else str(dead_letters.path)
    claimed = dead_letters.claim()
    if not claimed:
        return DeadLetterRetry(0, 0, 0, 0, where)
    events, unreadable = _read(claimed)
    entries = list(events.values())
    failed = _Collected()
    before = store.written
    store.probe_now()
    for start in range(0, len(entries), _BATCH):
        store(entries[start : start + _BATCH], dedupe=True, dead_letters=failed)
    stored = store.written - before
    try:
        for event, reason in failed.entries:
            dead_letters.put_back(event, reason)
        for line in unreadable:
            dead_letters.put_back_line(line)
    except OSError as e:  # the claimed files stay: the next retry adopts them (stored ones are skipped)
        kept = ", ".join(str(path) for path in claimed)
        logger.error(
            "agentcost cannot write the dead-letter file %s (%s); the retried events stay in %s", where, e, kept
        )
        return DeadLetterRetry(stored, len(entries) - stored - failed.count, failed.count, len(unreadable), where)
    for path in claimed:
        path.unlink(missing_ok=True)
    if failed.count:
        logger.warning(
            "agentcost ledger: %d dead-lettered event(s) still cannot be stored; kept in %s with their current reason",
            failed.count, where,
        )  # fmt: skip
    return DeadLetterRetry(stored, len(entries) - stored - failed.count, failed.count, len(unreadable), where)
