"""Storing a batch of events when things go wrong: :class:`BatchStore`.

* A connection failure (the backend's :meth:`~.base.LedgerBackend.is_transient` says so) is
  retried after a reconnect, with backoff (0.05 s doubling to 2 s) for up to ``retry_s`` seconds.
  A retry first asks which of the batch's events are already stored (the commit may have landed
  before the link broke), so nothing is written twice. When the window is over, the batch is
  dead-lettered with the reason; while the backend stays unreachable, a later batch gets one
  reconnect attempt before it is dead-lettered — unless the previous attempt ended less than its
  own duration ago (a stalled server makes each attempt take the connect deadline: batches in
  between are dead-lettered at once, so a flush of many batches costs one attempt, not one each).
  The first successful write ends the outage. A call that gets no answer within the backend's
  deadline (``timeout_s``: a stalled server) fails like a dropped link, so a batch returns within
  about ``retry_s`` + one call deadline + one connect deadline.
* Any other failure splits the batch in halves until only the events that cannot be stored fail.
  Such an event is made storable when only its text is in the way (a lone surrogate or a NUL:
  escaped as ``\\udc80`` / ``\\x00``, the fields listed in ``extra["agentcost_repaired"]``); a
  token count beyond the 64-bit column range, or anything else the database refuses, is
  dead-lettered with the reason. (The dead-letter file keeps the event exactly as recorded.)

Nothing is lost silently: every event is stored, dead-lettered (counted in :attr:`dead_lettered`)
or was dropped by the writer's full queue (``Ledger.dropped``). A :class:`BatchStore` never raises.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..events import CostEvent, text_ids
from .base import LedgerBackend
from .jsonlines import DeadLetters

logger = logging.getLogger("agentcost.ledger")

__all__ = ["BatchStore", "out_of_range", "repaired"]

_INT_MAX = 2**63 - 1
_TEXT_FIELDS = (
    "id", "kind", "model", "provider", "requested_model", "service_tier", "user_id", "session_id",
    "feature", "agent_id", "task_id", "step", "trace_id", "span_id", "parent_id", "error", "framework", "tier",
)  # fmt: skip


class _Unreachable(Exception):
    """The backend stayed unreachable for the whole retry window."""


def out_of_range(event: CostEvent) -> str | None:
    """Why ``event`` cannot be stored as it is because of a number, or None."""
    for bucket, n in event.usage.as_dict().items():
        if not -_INT_MAX - 1 <= n <= _INT_MAX:
            return f"usage.{bucket} = {n} is beyond the 64-bit integer column range"
    return None


def _storable(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _fix(value: Any) -> Any:
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, dict):
        return {_fix(k): _fix(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix(v) for v in value]
    return value


def repaired(event: CostEvent) -> CostEvent | None:
    """A copy of ``event`` whose text every database stores, its changed fields listed in
    ``extra["agentcost_repaired"]``; None when no text needed a change."""
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(event, name)
        if isinstance(value, str) and _storable(value) != value:
            changes[name] = _storable(value)
    extra = event.extra
    if extra:
        plain = json.loads(json.dumps(extra, default=str))
        fixed = _fix(plain)
        if fixed != plain:
            changes["extra"] = extra = fixed
    if not changes:
        return None
    extra = dict(extra or {})
    extra["agentcost_repaired"] = sorted(changes)
    changes["extra"] = extra
    return dataclasses.replace(event, **changes)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]


class BatchStore:
    """Stores batches on ``backend`` under the policy of the module docstring."""

    def __init__(self, backend: LedgerBackend, dead_letters: DeadLetters, *, retry_s: float = 30.0) -> None:
        self.backend = backend
        self.dead_letters = dead_letters
        self.retry_s = retry_s
        self.written = 0
        self.retries = 0
        self.repaired = 0
        self._down_since: float | None = None
        self._next_probe = 0.0  # while down: no reconnect attempt before this (monotonic)
        self._lock = threading.Lock()  # one batch at a time (the writer, a sync record, a replay)

    @property
    def dead_lettered(self) -> int:
        return self.dead_letters.count

    def __call__(
        self, events: Sequence[CostEvent], *, dedupe: bool = False, dead_letters: DeadLetters | None = None
    ) -> None:
        """Store ``events``: each is stored or dead-lettered into this ledger's dead letters (logged
        here), or into ``dead_letters`` when given: the caller keeps and reports those (a retry puts
        them back into the file). ``dedupe``: skip events already stored."""
        for e in events:
            text_ids(e)
        sink = self.dead_letters if dead_letters is None else dead_letters
        with self._lock:
            before = sink.count
            self._store(list(events), dedupe, sink)
            failed = sink.count - before
        if failed and dead_letters is None:
            where = sink.path or "(no dead-letter file for this ledger; counted only)"
            logger.error(
                "agentcost ledger write failed for %d of %d event(s); kept in %s (Ledger.status() counts them)",
                failed, len(events), where,
            )  # fmt: skip

    def probe_now(self) -> None:
        """Let the next batch try a reconnect even if the ledger was found unreachable a moment
        ago (a deliberate retry: the user says the cause is gone)."""
        self._next_probe = 0.0

    def _store(self, events: list[CostEvent], dedupe: bool, sink: DeadLetters) -> None:
        try:
            self._write(events, dedupe)
        except _Unreachable as e:
            for event in events:
                sink.add(event, f"ledger unreachable: {e}")
        except Exception as e:
            if len(events) == 1:
                self._store_one(events[0], e, sink)
            else:
                middle = len(events) // 2
                self._store(events[:middle], dedupe, sink)
                self._store(events[middle:], dedupe, sink)

    def _store_one(self, event: CostEvent, error: Exception, sink: DeadLetters) -> None:
        reason = out_of_range(event)
        fixed = None if reason else repaired(event)
        if fixed is not None:
            try:
                self._write([fixed], dedupe=False)
                self.repaired += 1
                return
            except _Unreachable as e:
                reason = f"ledger unreachable: {e}"
            except Exception as e:
                error = e
        sink.add(event, reason or _describe(error))

    def _write(self, events: list[CostEvent], dedupe: bool) -> None:
        """Write, retrying connection failures; raises the data error, or :class:`_Unreachable`."""
        window = self.retry_s if self._down_since is None else 0.0
        deadline = time.monotonic() + window
        delay = 0.05
        reconnected = False  # a reconnect was attempted for this batch
        ours = 0 if dedupe else len(events)  # stored by this call even if a failed attempt committed late
        while True:
            try:
                if dedupe:
                    stored = self.backend.stored_ids(events)
                    events = [e for e in events if e.id not in stored]
                if events:
                    self.backend.write_many(events)
                self.written += max(ours, len(events))
                if self._down_since is not None:
                    logger.warning("agentcost ledger reachable again after %.1f s", time.monotonic() - self._down_since)
                    self._down_since = None
                return
            except Exception as e:
                if not self.backend.is_transient(e):
                    raise
                now = time.monotonic()
                if now >= deadline:
                    # the window is over: one reconnect attempt (a probe while down) unless this
                    # batch has had one, or the last probe of the outage ended too recently
                    if reconnected or now < self._next_probe or not self._reconnect():
                        if self._down_since is None:
                            self._down_since = now
                            logger.error("agentcost ledger unreachable for %.1f s: %s", window, _describe(e))
                        raise _Unreachable(_describe(e)) from None
                    reconnected = True  # one more try on the new connection
                    dedupe = True
                    continue
                self.retries += 1
                time.sleep(min(delay, max(0.0, deadline - now)))  # backoff, on the writer's thread
                delay = min(delay * 2, 2.0)
                self._reconnect()
                reconnected = True
                dedupe = True

    def _reconnect(self) -> bool:
        started = time.monotonic()
        try:
            self.backend.reconnect()
            return True
        except Exception as e:
            ended = time.monotonic()
            self._next_probe = ended + (ended - started)  # probing takes at most half the time
            logger.debug("agentcost ledger reconnect failed: %s", _describe(e))
            return False
