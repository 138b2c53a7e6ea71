"""The ledger's side of prompt logging: :class:`PromptRecord` rows in their own table, written by
the ledger's background writer (on the caller's thread only in sync mode) and deleted after the
ledger's ``prompt_retention_days``.

Prompt records share the writer's queue with the events: :class:`PromptWrites` is the writer's
write function, and splits a batch into events (stored as always, with the fault handling of
:mod:`.faults`) and prompt records. Until the first prompt record is queued it hands batches on
untouched, so a ledger without prompt logging pays nothing. Prompt records are best effort: they
are not spooled nor dead-lettered; a batch the database refuses is logged (its error class only:
never the text) and counted in :attr:`PromptWrites.failed`."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import LedgerURLError
from ..prompt_log import PromptRecord
from .base import LedgerBackend

__all__ = ["DEFAULT_PROMPT_RETENTION_DAYS", "PromptWrites", "check_retention_days"]

logger = logging.getLogger("agentcost.ledger")

#: How long prompt records are kept unless the ledger says otherwise.
DEFAULT_PROMPT_RETENTION_DAYS = 30.0
#: How often the writer deletes expired prompt records while prompts are being written.
PRUNE_EVERY_S = 3600.0
_DAY_S = 86400.0


def check_retention_days(value: object) -> float:
    """``prompt_retention_days`` as a finite number of days > 0, else :class:`LedgerURLError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise LedgerURLError(f"prompt_retention_days must be a finite number of days > 0, got {value!r}")
    return float(value)


class PromptWrites:
    """The background writer's write function for a ledger: events to ``store_events``, prompt
    records to the backend's prompts table; prunes expired prompt records at most once per
    :data:`PRUNE_EVERY_S`."""

    def __init__(
        self,
        store_events: Callable[[Sequence[Any]], None],
        backend: LedgerBackend,
        *,
        retention_days: float = DEFAULT_PROMPT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store_events = store_events
        self.backend = backend
        self.retention_s = check_retention_days(retention_days) * _DAY_S
        self.clock = clock
        #: Set once a prompt record is queued: until then batches hold events only.
        self.queued = False
        self.written = 0
        self.failed = 0
        self._last_prune = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence[Any]) -> None:
        if not self.queued:
            self.store_events(batch)
            return
        events = [x for x in batch if type(x) is not PromptRecord]
        if events:
            self.store_events(events)
        if len(events) < len(batch):
            self.write([x for x in batch if type(x) is PromptRecord])

    def write(self, records: Sequence[PromptRecord]) -> None:
        """Store prompt records now (the writer's thread, or the caller's in sync mode)."""
        try:
            self.backend.write_prompts(records)
            self.written += len(records)
        except Exception as e:  # noqa: BLE001 - prompt records are best effort; never their text in a log
            self.failed += len(records)
            logger.warning("agentcost ledger: %d prompt record(s) not stored (%s)", len(records), type(e).__name__)
        if self.clock() - self._last_prune >= PRUNE_EVERY_S:
            self.prune_quietly()

    def prune(self, older_than_days: float | None = None) -> int:
        """Delete prompt records older than ``older_than_days`` (default: the retention); how many went."""
        keep_s = self.retention_s if older_than_days is None else check_retention_days(older_than_days) * _DAY_S
        with self._lock:
            self._last_prune = self.clock()
            return self.backend.prune_prompts(self._last_prune - keep_s)

    def prune_quietly(self) -> None:
        """:meth:`prune`, logging instead of raising (on open, and periodically from the writer)."""
        try:
            self.prune()
        except NotImplementedError:
            pass
        except Exception as e:  # noqa: BLE001 - a read-only file, a database away: retried next time
            logger.debug("agentcost ledger: expired prompt records not pruned (%s)", type(e).__name__)
