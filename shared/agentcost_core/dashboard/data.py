"""The dashboard's data: one JSON document read from the ledger in a single pass.

Every call (``llm``, ``embedding``, ``tool`` events) is kept, column by column; the page sums them itself,
so its filters (time window, user, feature, model) change every number without asking the ledger
again, and the self-contained file needs no server. Money stays exact: each cost is an integer count
of ``10**-scale`` dollars (a decimal string, summed in the page with ``BigInt``), where ``scale`` is the
most decimal places any cost in the document has. Strings repeat (a feature, a model, a session id on
thousands of calls), so each is stored once in ``strings`` and the columns hold its index.

Guard notices (budget warnings and halts, anomalies, nudges, open circuits) are listed apart, and the
latest notice of each budget gives its status. Routing decisions (``route`` events) are not listed:
the routed call carries its tier and route reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..events import CostEvent
from ..privacy import redact_url
from ..rollup import CALL_KINDS, notice_subject

__all__ = ["CALL_FIELDS", "DOCUMENT_VERSION", "FLAGS", "build_document", "document_of", "priced_spend"]

DOCUMENT_VERSION = 1
#: The columns of the calls, in the document's ``calls`` object; ``*`` marks an index into ``strings``.
CALL_FIELDS = (
    "ts", "kind*", "model*", "provider*", "user_id*", "feature*", "agent_id*", "session_id*", "step*", "tier*",
    "service_tier*", "trace_id*", "route_reason*", "error*", "id", "cost", "input", "cache_read",
    "cache_write_5m", "cache_write_1h", "output", "reasoning", "latency_s", "flags",
)  # fmt: skip
#: Bits of a call's ``flags``.
FLAGS = {"estimated": 1, "error": 2, "cache_hit": 4, "unpriced": 8, "priced": 16}
_SKIPPED_KINDS = frozenset({"route"})
_STRING_FIELDS = tuple(f.rstrip("*") for f in CALL_FIELDS if f.endswith("*"))
#: What is read from each call event: the columns before ``flags``, then what ``flags`` is made of.
_ROW = (*(f.rstrip("*") for f in CALL_FIELDS[:-1]), "estimated", "cache_hit")


def _flags(estimated: bool, error: Any, cache_hit: bool, cost: Decimal | None) -> int:
    flags = (1 if estimated else 0) | (2 if error else 0) | (4 if cache_hit else 0)
    if cost is not None:
        return flags | 16
    return flags if cache_hit or error else flags | 8  # unpriced as the report counts it: unknown, never $0


def _places(costs: Iterable[Decimal | None]) -> int:
    """The most decimal places among ``costs`` (at least 2: cents)."""
    exponents = [c.as_tuple().exponent for c in costs if c is not None]
    return max([2, *(-x for x in exponents if isinstance(x, int))])


def _budget_status(notices: list[tuple[CostEvent, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The latest budget notice per budget and scope key: its level, what was used of the limit, when."""
    latest: dict[tuple[str, str, str], tuple[CostEvent, dict[str, Any]]] = {}
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for e, extra in notices:
        if not e.kind.startswith("budget."):
            continue
        key = (str(extra.get("budget", "")), str(extra.get("key", "")), str(extra.get("dimension", "")))
        latest[key] = (e, extra)
        level = e.kind.partition(".")[2]
        counts.setdefault(key, {})[level] = counts.setdefault(key, {}).get(level, 0) + 1
    out = []
    for key, (e, extra) in latest.items():
        out.append({
            "budget": key[0], "key": key[1], "dimension": key[2], "per": extra.get("per"),
            "level": e.kind.partition(".")[2], "action": extra.get("action"), "limit": extra.get("limit"),
            "used": extra.get("committed"), "fraction": extra.get("fraction"), "ts": e.ts,
            "counts": counts[key], "message": extra.get("message"),
        })  # fmt: skip
    out.sort(key=lambda b: (-(b["fraction"] or 0), b["budget"], b["key"]))
    return out


def document_of(
    events: Iterable[CostEvent], *, ledger_url: str, since: float | None = None, until: float | None = None
) -> dict[str, Any]:
    """The dashboard document of ``events`` (any order; calls are kept in the order given).

    Calls are stored by column (``calls[field]`` is a list with one value per call), strings as indexes
    into ``strings``, whose first entry is null (a missing attribution)."""
    rows: list[tuple[Any, ...]] = []
    notices: list[tuple[CostEvent, dict[str, Any]]] = []
    for e in events:
        if e.kind not in CALL_KINDS:
            if e.kind not in _SKIPPED_KINDS:  # guard notices
                notices.append((e, e.extra or {}))
            continue
        u = e.usage
        rows.append((
            e.ts, e.kind, e.model, e.provider, e.user_id, e.feature, e.agent_id, e.session_id, e.step, e.tier,
            e.service_tier, e.trace_id, e.extra.get("route_reason") if e.extra else None, e.error, e.id, e.cost,
            u.input, u.cache_read, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning, e.latency_s,
            e.estimated, e.cache_hit,
        ))  # fmt: skip
    columns: dict[str, list[Any]] = {f: list(c) for f, c in zip(_ROW, zip(*rows))} if rows else {f: [] for f in _ROW}
    del rows
    estimated, cache_hit = columns.pop("estimated"), columns.pop("cache_hit")
    costs = columns["cost"]
    columns["flags"] = [
        _flags(est, err, hit, cost) for est, err, hit, cost in zip(estimated, columns["error"], cache_hit, costs)
    ]
    index: dict[Any, int] = {None: 0}  # each distinct string once; the columns hold its position
    for f in _STRING_FIELDS:
        columns[f] = [index.setdefault(v, len(index)) for v in columns[f]]
    scale = _places(costs)
    columns["cost"] = [None if c is None else str(int(c.scaleb(scale))) for c in costs]
    return {
        "version": DOCUMENT_VERSION,
        "generated_at": time.time(),
        "ledger": redact_url(ledger_url),
        "since": since,
        "until": until,
        "scale": scale,
        "flags": FLAGS,
        "string_fields": list(_STRING_FIELDS),
        "strings": [None if v is None else str(v) for v in index],
        "count": len(columns["ts"]),
        "calls": columns,
        "notices": [
            {
                "ts": e.ts,
                "kind": e.kind,
                "user_id": e.user_id,
                "feature": e.feature,
                "agent_id": e.agent_id,
                "session_id": e.session_id,
                "subject": notice_subject(e) or None,
                "message": str(extra.get("message") or ""),
            }
            for e, extra in notices
        ],
        "budgets": _budget_status(notices),
    }


def priced_spend(document: dict[str, Any]) -> Decimal:
    """The exact sum of the costs a document holds (what the page shows as its total without filters)."""
    return Decimal(sum(int(units) for units in document["calls"]["cost"] if units is not None)).scaleb(
        -document["scale"]
    )


def build_document(ledger: Any, *, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    """Read ``ledger`` (a :class:`~agentcost_core.ledger.Ledger`) once, in one query, into the dashboard document."""
    return document_of(ledger.iter_events(since, until), ledger_url=ledger.url, since=since, until=until)
