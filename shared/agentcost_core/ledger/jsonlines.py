"""Events as JSON lines, for the files beside a ledger (the write-ahead spool and the dead letters).

The encoding is lossless: Decimals as strings, and every character, even a lone surrogate or a NUL
that no database column stores, as a JSON ``\\u`` escape (``ensure_ascii``), so a line is ASCII."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..events import CostEvent
from ..usage import Usage

__all__ = ["DeadLetters", "event_from_json", "event_to_json"]

logger = logging.getLogger("agentcost.ledger")

_FIELDS = frozenset(CostEvent.__slots__)  # type: ignore[attr-defined]


def event_to_json(event: CostEvent) -> str:
    return json.dumps(event.as_dict(), ensure_ascii=True, default=str)


def event_from_dict(d: dict[str, Any]) -> CostEvent:
    d = dict(d)
    d["usage"] = Usage(**d.get("usage", {}))
    for money in ("cost", "saved"):
        if d.get(money) is not None:
            d[money] = Decimal(d[money])
    return CostEvent(**{k: v for k, v in d.items() if k in _FIELDS})


def event_from_json(line: str) -> CostEvent:
    return event_from_dict(json.loads(line))


class DeadLetters:
    """Events that could not be stored, one JSON line each: ``{"at", "reason", "event"}``.

    ``path`` None (a ledger with no place on disk, e.g. ``memory://`` or a custom backend): the
    events are only counted and logged. :meth:`claim` moves the file aside for a retry
    (:mod:`.dead_letter_retry`); writers meanwhile start a new one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0  # this process's dead letters
        self.unwritable = 0  # of which the file could not take

    def add(self, event: CostEvent, reason: str) -> None:
        self.count += 1
        if self.path is None:
            return
        try:
            self.put_back(event, reason)
        except OSError as e:
            self.unwritable += 1
            if self.unwritable == 1:
                logger.error(
                    "agentcost cannot write the dead-letter file %s (%s); dead letters are only counted", self.path, e
                )

    def put_back(self, event: CostEvent, reason: str) -> None:
        """Append ``event`` with ``reason`` without counting it (a retry returning what still fails)."""
        line = json.dumps(
            {"at": time.time(), "reason": reason, "event": event.as_dict()}, ensure_ascii=True, default=str
        )
        self.put_back_line(line)

    def put_back_line(self, line: str) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="ascii", errors="backslashreplace") as f:
            f.write(line + "\n")

    def claim(self) -> list[Path]:
        """Move the dead-letter file aside for this process to retry, with any a retry that stopped
        half-way left (its process is gone); returns the claimed files (delete them when done)."""
        if self.path is None:
            return []
        mine = f"{self.path.name}.retrying-{os.getpid()}-"
        claimed: list[Path] = []
        candidates = [self.path, *self.path.parent.glob(f"{self.path.name}.retrying-*")]
        for path in candidates:
            if path != self.path and (path.name.startswith(mine) or _owner_alive(path)):
                continue  # this process's own, or another live retry's
            target = path.with_name(mine + uuid.uuid4().hex[:8])
            try:
                os.replace(path, target)  # atomic: a writer appending now starts a new file
            except FileNotFoundError:
                continue
            claimed.append(target)
        return claimed


def _owner_alive(path: Path) -> bool:
    """Whether the process named in a ``….retrying-<pid>-<tag>`` file still runs."""
    try:
        pid = int(path.name.rsplit(".retrying-", 1)[1].split("-", 1)[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process
        return True
    return True
