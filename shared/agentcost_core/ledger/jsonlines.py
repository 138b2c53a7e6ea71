"""Events as JSON lines, for the files beside a ledger (the write-ahead spool and the dead letters).

The encoding is lossless: Decimals as strings, and every character, even a lone surrogate or a NUL
that no database column stores, as a JSON ``\\u`` escape (``ensure_ascii``), so a line is ASCII."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..events import CostEvent, text_ids
from ..usage import Usage

__all__ = ["DeadLetters", "event_from_json", "event_to_json"]

logger = logging.getLogger("agentcost.ledger")

_FIELDS = tuple(f for f in CostEvent.__slots__ if f != "usage")  # type: ignore[attr-defined]


def event_to_dict(event: CostEvent) -> dict[str, Any]:
    d = {f: getattr(text_ids(event), f) for f in _FIELDS}
    d["usage"] = event.usage.as_dict()
    d["cost"] = None if event.cost is None else str(event.cost)
    d["saved"] = None if event.saved is None else str(event.saved)
    return d


def event_to_json(event: CostEvent) -> str:
    return json.dumps(event_to_dict(event), ensure_ascii=True, default=str)


def event_from_dict(d: dict[str, Any]) -> CostEvent:
    d = dict(d)
    d["usage"] = Usage(**d.get("usage", {}))
    for money in ("cost", "saved"):
        if d.get(money) is not None:
            d[money] = Decimal(d[money])
    return CostEvent(**{k: v for k, v in d.items() if k in _FIELDS or k == "usage"})


def event_from_json(line: str) -> CostEvent:
    return event_from_dict(json.loads(line))


class DeadLetters:
    """Events that could not be stored, one JSON line each: ``{"at", "reason", "event"}``.

    ``path`` None (a ledger with no place on disk, e.g. ``memory://`` or a custom backend): the
    events are only counted and logged."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0  # this process's dead letters
        self.unwritable = 0  # of which the file could not take

    def add(self, event: CostEvent, reason: str) -> None:
        self.count += 1
        if self.path is None:
            return
        line = json.dumps(
            {"at": time.time(), "reason": reason, "event": event_to_dict(event)}, ensure_ascii=True, default=str
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="ascii") as f:
                f.write(line + "\n")
        except OSError as e:
            self.unwritable += 1
            if self.unwritable == 1:
                logger.error(
                    "agentcost cannot write the dead-letter file %s (%s); dead letters are only counted", self.path, e
                )


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    """Every entry of a dead-letter file (``event`` decoded to a :class:`CostEvent`)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="ascii").splitlines():
        if line.strip():
            entry = json.loads(line)
            entry["event"] = event_from_dict(entry["event"])
            out.append(entry)
    return out
