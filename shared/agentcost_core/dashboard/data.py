"""The dashboard's data: one JSON document read from the ledger in a single pass.

Every call (``llm``, ``embedding``, ``tool`` events) becomes one compact row; the page sums them itself,
so its filters (time window, user, feature, model) change every number without asking the ledger
again, and the self-contained file needs no server. Money stays exact: each cost is an integer count
of ``10**-scale`` dollars (a decimal string, summed in the page with ``BigInt``), where ``scale`` is the
most decimal places any cost in the document has. Strings repeat (a feature, a model, a session id on
thousands of calls), so each is stored once in ``strings`` and rows hold its index.

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

__all__ = ["CALL_FIELDS", "DOCUMENT_VERSION", "NOTICE_FIELDS", "build_document", "document_of"]

DOCUMENT_VERSION = 1
#: The columns of one call row; ``*`` marks an index into ``strings`` (or null).
CALL_FIELDS = (
    "ts", "kind*", "model*", "provider*", "user_id*", "feature*", "agent_id*", "session_id*", "step*", "tier*",
    "service_tier*", "trace_id*", "route_reason*", "error*", "id", "cost", "input", "cache_read",
    "cache_write_5m", "cache_write_1h", "output", "reasoning", "latency_s", "flags",
)  # fmt: skip
#: The columns of one notice row (budget events, anomalies, halts, nudges, open circuits).
NOTICE_FIELDS = ("ts", "kind*", "user_id*", "feature*", "agent_id*", "session_id*", "subject*", "message")
#: Bits of a call's ``flags``.
FLAGS = {"estimated": 1, "error": 2, "cache_hit": 4, "unpriced": 8, "priced": 16}
_SKIPPED_KINDS = frozenset({"route"})


class _Strings:
    """Each distinct string once; rows hold indexes."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def __call__(self, value: Any) -> int | None:
        if value is None:
            return None
        text = value if type(value) is str else str(value)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.values)
            self.values.append(text)
        return i


def _flags(e: CostEvent) -> int:
    flags = 0
    if e.estimated:
        flags |= 1
    if e.error:
        flags |= 2
    if e.cache_hit:
        flags |= 4
    if e.cost is None:
        if not e.cache_hit and not e.error:  # as the report counts them: unknown cost, never $0
            flags |= 8
    else:
        flags |= 16
    return flags


def _places(d: Decimal) -> int:
    exponent = d.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


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
    """The dashboard document of ``events`` (any order; calls are kept in the order given)."""
    strings = _Strings()
    calls: list[list[Any]] = []
    costs: list[Decimal | None] = []
    notices: list[tuple[CostEvent, dict[str, Any]]] = []
    scale = 2
    for e in events:
        if e.kind not in CALL_KINDS:
            if e.kind not in _SKIPPED_KINDS:
                notices.append((e, e.extra or {}))
            continue
        u = e.usage
        extra = e.extra or {}
        cost = e.cost
        if cost is not None:
            scale = max(scale, _places(cost))
        costs.append(cost)
        calls.append([
            e.ts, strings(e.kind), strings(e.model), strings(e.provider), strings(e.user_id), strings(e.feature),
            strings(e.agent_id), strings(e.session_id), strings(e.step), strings(e.tier), strings(e.service_tier),
            strings(e.trace_id), strings(extra.get("route_reason")), strings(e.error), e.id, None,
            u.input, u.cache_read, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning, e.latency_s, _flags(e),
        ])  # fmt: skip
    cost_column = CALL_FIELDS.index("cost")
    for row, cost in zip(calls, costs):
        if cost is not None:
            row[cost_column] = str(int(cost.scaleb(scale)))
    notice_rows = [
        [e.ts, strings(e.kind), strings(e.user_id), strings(e.feature), strings(e.agent_id), strings(e.session_id),
         strings(notice_subject(e) or None), str(extra.get("message") or "")]
        for e, extra in notices
    ]  # fmt: skip
    return {
        "version": DOCUMENT_VERSION,
        "generated_at": time.time(),
        "ledger": redact_url(ledger_url),
        "since": since,
        "until": until,
        "scale": scale,
        "flags": FLAGS,
        "call_fields": [f.rstrip("*") for f in CALL_FIELDS],
        "notice_fields": [f.rstrip("*") for f in NOTICE_FIELDS],
        "indexed_fields": sorted({f.rstrip("*") for f in (*CALL_FIELDS, *NOTICE_FIELDS) if f.endswith("*")}),
        "strings": strings.values,
        "calls": calls,
        "notices": notice_rows,
        "budgets": _budget_status(notices),
    }


def build_document(ledger: Any, *, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    """Read ``ledger`` (a :class:`~agentcost_core.ledger.Ledger`) once, in one query, into the dashboard document."""
    return document_of(ledger.iter_events(since, until), ledger_url=ledger.url, since=since, until=until)
