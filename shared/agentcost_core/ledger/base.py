"""The storage interface every ledger backend implements, and the row layout they share."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..events import CostEvent
from ..usage import Usage

__all__ = ["COLUMNS", "COLUMNS_V1", "FILTERABLE", "LedgerBackend", "event_to_row", "row_to_event", "top_model_of"]

#: Column order of the ``events`` table in every SQL backend.
COLUMNS = (
    "id", "ts", "kind", "model", "provider", "requested_model", "service_tier",
    "input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning",
    "cost", "priced", "estimated", "cache_hit", "saved",
    "user_id", "session_id", "feature", "agent_id", "task_id", "step",
    "trace_id", "span_id", "parent_id", "latency_s", "error", "framework", "tier", "extra",
    "price_source",
)  # fmt: skip
#: The columns of schema version 1 (before ``price_source``), which an upgrade starts from.
COLUMNS_V1 = COLUMNS[:-1]

#: Columns a query may filter or group on.
FILTERABLE = frozenset(
    {"kind", "model", "provider", "service_tier", "user_id", "session_id", "feature", "agent_id",
     "task_id", "step", "trace_id", "framework", "tier", "requested_model"}
)  # fmt: skip


def top_model_of(e: CostEvent) -> str | None:
    """The top tier's model a router recorded in ``extra`` (schema version 4 keeps it in its own
    ``top_model`` column, so a rollup values routing savings without reading JSON)."""
    top = (e.extra or {}).get("top_model")
    return str(top) if top else None


def event_to_row(e: CostEvent) -> tuple[Any, ...]:
    u = e.usage
    return (
        e.id, e.ts, e.kind, e.model, e.provider, e.requested_model, e.service_tier,
        u.input, u.cache_read, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning,
        None if e.cost is None else str(e.cost), 1 if e.priced else 0, 1 if e.estimated else 0,
        1 if e.cache_hit else 0,
        None if e.saved is None else str(e.saved),
        e.user_id, e.session_id, e.feature, e.agent_id, e.task_id, e.step,
        e.trace_id, e.span_id, e.parent_id, e.latency_s, e.error, e.framework, e.tier,
        None if not e.extra else json.dumps(e.extra, default=str), e.price_source,
    )  # fmt: skip


def _dec(v: Any) -> Decimal | None:
    if v is None:
        return None
    return v if isinstance(v, Decimal) else Decimal(v)


def row_to_event(r: Sequence[Any]) -> CostEvent:
    return CostEvent(
        id=r[0], ts=float(r[1]), kind=r[2], model=r[3], provider=r[4], requested_model=r[5],
        service_tier=r[6],
        usage=Usage(int(r[7]), int(r[8]), int(r[9]), int(r[10]), int(r[11]), int(r[12])),
        cost=_dec(r[13]), priced=bool(r[14]), estimated=bool(r[15]), cache_hit=bool(r[16]),
        saved=_dec(r[17]), user_id=r[18], session_id=r[19], feature=r[20], agent_id=r[21],
        task_id=r[22], step=r[23], trace_id=r[24], span_id=r[25], parent_id=r[26],
        latency_s=r[27], error=r[28], framework=r[29], tier=r[30],
        extra=(json.loads(r[31]) if isinstance(r[31], str) else dict(r[31])) if r[31] else None,
        price_source=r[32] if len(r) > 32 else None,
    )  # fmt: skip


def where_clause(
    since: float | None, until: float | None, filters: dict[str, Any], param: str
) -> tuple[str, list[Any]]:
    """SQL ``WHERE`` for a time window and equality filters (``param`` is ``?`` or ``%s``)."""
    parts: list[str] = []
    args: list[Any] = []
    if since is not None:
        parts.append(f"ts >= {param}")
        args.append(since)
    if until is not None:
        parts.append(f"ts < {param}")
        args.append(until)
    for k, v in filters.items():
        if k not in FILTERABLE:
            raise ValueError(f"cannot filter on {k!r}; choose from {sorted(FILTERABLE)}")
        if v is None:
            parts.append(f"{k} IS NULL")
        else:
            parts.append(f"{k} = {param}")
            args.append(v)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


class LedgerBackend(ABC):
    """Where events are stored. Implementations: memory, SQLite, PostgreSQL."""

    url: str

    @abstractmethod
    def write_many(self, events: Sequence[CostEvent]) -> None:
        """Append a batch atomically."""

    @abstractmethod
    def query(self, since: float | None = None, until: float | None = None, **filters: Any) -> Iterator[CostEvent]:
        """Events in ``[since, until)`` matching every equality filter, oldest first."""

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        return sum(1 for _ in self.query(since, until, **filters))

    def clear(self) -> None:
        """Delete every event (tests and demos)."""
        raise NotImplementedError

    def prune(self, before_ts: float) -> int:
        """Delete the events (and logged prompts) older than ``before_ts`` (epoch seconds); how many events went."""
        raise NotImplementedError(f"{type(self).__name__} cannot prune")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    # --- prompt logging (see ..prompt_log and .prompts) -----------------------------------------
    def write_prompts(self, records: Sequence[Any]) -> None:
        """Store :class:`~agentcost_core.prompt_log.PromptRecord` rows (one per event id: a second
        record for the same event replaces the first)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no prompt records")

    def prompt(self, event_id: str) -> Any:
        """The stored prompt record of ``event_id``, or None."""
        return None

    def prune_prompts(self, before_ts: float) -> int:
        """Delete prompt records older than ``before_ts`` (epoch seconds); how many went."""
        raise NotImplementedError(f"{type(self).__name__} keeps no prompt records")

    # --- under faults (see faults.py) ---------------------------------------------------------
    def is_transient(self, error: Exception) -> bool:
        """True when ``error`` is the connection's fault (retry after :meth:`reconnect`), False when
        the events themselves were refused (the batch is split)."""
        return False

    def reconnect(self) -> None:
        """Replace a broken connection (raises when the database is still unreachable)."""

    def stored_ids(self, events: Sequence[CostEvent]) -> set[str]:
        """Which of ``events`` are already stored (by id): a retry or a replay skips them."""
        ids = {e.id for e in events}
        return {e.id for e in self.query() if e.id in ids}

    def state_path(self) -> Path | None:
        """Where this ledger's side files live: ``<state_path>.deadletter.jsonl`` and the spool folder
        ``<state_path>.spool/``. None: the ledger has no place on disk (dead letters are only counted)."""
        return None

    def _iter(self, rows: Iterable[Sequence[Any]]) -> Iterator[CostEvent]:
        for r in rows:
            yield row_to_event(r)
