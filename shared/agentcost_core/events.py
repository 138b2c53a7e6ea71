"""The record of one model call (and, later, of tool calls, cache hits, routing and halts)."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .attribution import ATTRIBUTION_FIELDS
from .usage import Usage

__all__ = ["ATTRIBUTION_FIELDS", "CostEvent", "new_event_id", "text_ids"]


_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_event_id() -> str:
    """A unique id, cheap enough for the hot path: a random per-process prefix and a counter."""
    return f"{_PREFIX}{next(_COUNTER):010x}"


def _reseed_after_fork() -> None:
    global _PREFIX, _COUNTER
    _PREFIX = os.urandom(6).hex()
    _COUNTER = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)


@dataclass(slots=True)
class CostEvent:
    """One append-only ledger entry.

    ``cost`` is exact USD, or ``None`` when the model has no catalog price (``priced`` is then
    False: never a silent $0). ``estimated`` means the tokens were counted by us because the
    provider reported none. A cache hit costs $0 and ``saved`` holds what the call would have cost.
    """

    model: str | None
    usage: Usage = field(default_factory=Usage)
    cost: Decimal | None = None
    provider: str | None = None
    kind: str = "llm"
    priced: bool = False
    estimated: bool = False
    cache_hit: bool = False
    saved: Decimal | None = None
    requested_model: str | None = None
    service_tier: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    agent_id: str | None = None
    task_id: str | None = None
    step: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_id: str | None = None
    latency_s: float | None = None
    error: str | None = None
    framework: str | None = None
    tier: str | None = None
    extra: dict[str, Any] | None = None
    #: Which price data priced it: "genai-prices 0.2.3", "genai-prices 0.2.3 + overlay 2026-11-23",
    #: "overlay 2026-11-23", "genai-prices data 2026-12-04T10:00Z" (after ``agentcost prices update``),
    #: "user" or "litellm"; None when unpriced. A later re-pricing can use the same data.
    price_source: str | None = None
    ts: float = field(default_factory=time.time)
    id: str = field(default_factory=new_event_id)

    @property
    def tokens(self) -> int:
        return self.usage.total

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: Decimals as strings, usage as a dict of buckets."""
        d = {k: getattr(text_ids(self), k) for k in self.__slots__}  # type: ignore[attr-defined]
        d["usage"] = self.usage.as_dict()
        d["cost"] = None if self.cost is None else str(self.cost)
        d["saved"] = None if self.saved is None else str(self.saved)
        return d


def text_ids(event: CostEvent) -> CostEvent:
    """``event`` with its ids as text, in place.

    The LangChain handler hands the recorder the run's ``UUID`` as the event's id and span (and
    trace, for a call outside any chain): formatting a UUID costs about as much as pricing the
    call, so it is done here — by the ledger writer as it stores events and by ``handler.events``
    as it hands them out — rather than once per model call on the caller's thread.
    """
    if type(event.id) is not str:
        event.id = str(event.id)
    if event.span_id is not None and type(event.span_id) is not str:
        event.span_id = str(event.span_id)
    if event.trace_id is not None and type(event.trace_id) is not str:
        event.trace_id = str(event.trace_id)
    if event.parent_id is not None and type(event.parent_id) is not str:
        event.parent_id = str(event.parent_id)
    return event
