"""What ``agentcost report`` prints for a :class:`~agentcost_core.rollup.Rollup`: a table that fits the
terminal, CSV or JSON.

Money is printed exactly (every digit of the ``Decimal``), never rounded or cut. A table too wide for
the terminal leaves out its least important columns and says which (``--format csv`` / ``json`` carry
everything); a group label too long wraps. Budget warnings and halts are listed after the table.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from .rollup import NOTICE_KINDS, Rollup, RollupRow

__all__ = ["money", "print_csv", "print_json", "print_table"]

_CENT = Decimal("0.01")
#: The label column may wrap down to a third of the width, and not below this (a longer label wraps).
_LABEL_MIN = 14
#: CSV columns for the guard notices of each row, one per notice kind.
_NOTICE_COLUMNS = {
    "budget.warning": "budget_warnings",
    "budget.exceeded": "budget_exceeded",
    "halt": "halts",
    "guard.nudge": "nudges",
    "guard.circuit_open": "circuit_opens",
}


def money(d: Decimal | None) -> str:
    """``$1,234.5678``: every digit of ``d`` (trailing zeros dropped, at least cents); ``—`` for None."""
    if d is None:
        return "—"
    d = d.normalize()
    if d.as_tuple().exponent > -2:  # type: ignore[operator]
        d = d.quantize(_CENT)
    return f"${d:,}"


def _tokens(n: int) -> str:
    return f"{n:,}"


def _share_pct(share: Decimal | None, places: int = 1) -> Decimal | None:
    """A 0..1 share as a percentage rounded to ``places`` (None stays None)."""
    return None if share is None else (share * 100).quantize(Decimal(1).scaleb(-places))


def _pct(share: Decimal | None) -> str:
    pct = _share_pct(share)
    return "—" if pct is None else f"{pct}%"


def _row_cost(row: RollupRow) -> str:
    return money(row.cost) if row.priced_calls or not row.unpriced_calls else "unpriced"


def _cache_saved(row: RollupRow) -> str:
    saved = row.cache_savings + row.prompt_cache_savings
    return money(saved) if saved else ""


@dataclass
class _Column:
    header: str
    cell: Callable[[RollupRow], str]
    rank: int  # the order columns are kept in when the terminal is narrow (1: kept first)


#: The number columns in display order (cost, then the per-call percentiles together, the token
#: buckets, the cache); ``rank`` says which are kept first when the terminal is narrow.
_COLUMNS = [
    _Column("calls", lambda r: f"{r.calls:,}", 1),
    _Column("cost", _row_cost, 2),
    _Column("unpriced", lambda r: f"{r.unpriced_calls:,}" if r.unpriced_calls else "", 3),
    _Column("p50/call", lambda r: money(r.per_call.get("p50")), 4),
    _Column("p95/call", lambda r: money(r.per_call.get("p95")), 5),
    _Column("p99/call", lambda r: money(r.per_call.get("p99")), 8),
    _Column("input", lambda r: _tokens(r.usage.input), 6),
    _Column("output", lambda r: _tokens(r.usage.output), 7),
    _Column("reasoning", lambda r: _tokens(r.usage.reasoning), 12),
    _Column("cache\nread", lambda r: _tokens(r.usage.cache_read), 9),
    _Column("cache\nwrite", lambda r: _tokens(r.usage.cache_write), 11),
    _Column("cache\nread %", lambda r: _pct(r.cache_read_share), 13),
    _Column("cache\nsaved", _cache_saved, 10),
]


def _width(texts: list[str]) -> int:
    return max(cell_len(line) for text in texts for line in text.split("\n"))


def _fit(rows: list[RollupRow], total: RollupRow, label_header: str, width: int) -> tuple[list[int], int]:
    """Indexes of the columns of :data:`_COLUMNS` that fit in ``width`` (calls and cost always), and the
    label column's width. Each column costs its widest cell plus 3 (padding and a rule)."""
    label = min(_width([label_header.replace(" / ", "\n"), "total", *(r.label for r in rows)]), max(_LABEL_MIN, width // 3))
    used = 1 + label + 3
    kept = []
    for i, col in sorted(enumerate(_COLUMNS), key=lambda ic: ic[1].rank):
        if not _has_cells(col, rows, total):  # nothing unpriced, nothing saved: no column for it
            continue
        w = _width([col.header, col.cell(total), *(col.cell(r) for r in rows)]) + 3
        if col.rank <= 2 or used + w <= width:  # calls and cost always
            kept.append(i)
            used += w
    return sorted(kept), label


def _has_cells(col: _Column, rows: list[RollupRow], total: RollupRow) -> bool:
    return any(col.cell(r) for r in [*rows, total])


def print_table(r: Rollup, top: int | None, console: Console | None = None) -> None:
    """The report as a table fitted to ``console``'s width (default: the terminal's, or ``COLUMNS``)."""
    console = console if console is not None else Console()
    rows = r.rows if top is None else r.rows[:top]
    t = r.total
    if t.calls or rows:
        label_header = " / ".join(r.by)
        kept, label_min = _fit(rows, t, label_header, console.width)
        table = Table(title=f"agentcost — spend by {label_header}", show_footer=True, header_style="bold")
        table.add_column(label_header, footer="total", min_width=label_min, overflow="fold")
        for i in kept:  # numbers never wrap: the columns kept are the ones that fit whole
            table.add_column(_COLUMNS[i].header, footer=_COLUMNS[i].cell(t), justify="right", no_wrap=True)
        for row in rows:
            table.add_row(row.label, *(_COLUMNS[i].cell(row) for i in kept))
        console.print(table)
        hidden = [c.header.replace("\n", " ") for i, c in enumerate(_COLUMNS) if i not in kept and _has_cells(c, rows, t)]
        if hidden:
            console.print(f"(not shown at {console.width} columns: {', '.join(hidden)}; "
                          "a wider terminal or --format csv / json shows them)")  # fmt: skip
        if top is not None and len(r.rows) > top:
            console.print(f"… {len(r.rows) - top} more group(s); use --top to show more")
    for line in _summary_lines(r):
        console.print(line, markup=False)
    if t.unpriced_calls:
        console.print(
            f"[bold yellow]{t.unpriced_calls:,} UNPRICED call(s)[/bold yellow] (cost unknown, not $0) for: "
            + ", ".join(t.unpriced_models)
        )
    _print_notices(t, console)


def _summary_lines(r: Rollup) -> list[str]:
    t = r.total
    lines = []
    if t.sessions:
        ps = t.per_session
        lines.append(
            f"per session ({t.sessions:,} sessions): p50 {money(ps.get('p50'))}  p95 {money(ps.get('p95'))}  "
            f"p99 {money(ps.get('p99'))}"
        )
    if t.cache_hits:
        lines.append(f"LLM-cache hits: {t.cache_hits:,} calls, {money(t.cache_savings)} saved")
    if t.routed_calls:
        top_cost = t.routed_cost + t.routing_savings
        lines.append(
            f"routing: {t.routed_calls} routed calls cost {money(t.routed_cost)}; on the top tier they would have "
            f"cost {money(top_cost)} (saved {money(t.routing_savings)})"
        )
    if t.prompt_cache_savings:
        lines.append(
            f"prompt-cache reads ({_pct(t.cache_read_share)} of prompt tokens) saved "
            f"{money(t.prompt_cache_savings)} against full input price"
        )
    if t.estimated_calls:
        lines.append(f"{t.estimated_calls:,} call(s) with estimated tokens (the provider reported no usage)")
    if t.error_calls:
        lines.append(f"{t.error_calls:,} failed call(s)")
    pm = r.projected_monthly
    if pm is not None:
        lines.append(f"projected monthly spend at this window's rate: {money(pm)}")
    return lines


def _print_notices(total: RollupRow, console: Console) -> None:
    """Budget warnings and halts, per kind and per budget (or reason, or tool)."""
    if not total.notice_subjects:
        return
    order = list(NOTICE_KINDS)
    table = Table(title="budget warnings and halts", header_style="bold")
    table.add_column("event", overflow="fold")
    table.add_column("about (budget, reason or tool)", overflow="fold")
    table.add_column("count", justify="right", no_wrap=True)
    for (kind, subject), n in sorted(total.notice_subjects.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        table.add_row(kind, subject or "—", f"{n:,}")
    console.print(table)


def print_csv(r: Rollup, top: int | None, out: TextIO) -> None:
    w = csv.writer(out)
    w.writerow(
        [*r.by, "calls", "input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning", "cost",
         "p50_per_call", "p95_per_call", "p99_per_call", "unpriced_calls", "cache_hits", "cache_savings",
         "prompt_cache_savings", "cache_read_pct", "estimated_calls", "error_calls", *_NOTICE_COLUMNS.values()]
    )  # fmt: skip
    rows = r.rows if top is None else r.rows[:top]
    for row in [*rows, r.total]:
        key = list(row.key) if row is not r.total else ["total"] + [""] * (len(r.by) - 1)
        u = row.usage
        w.writerow(
            [*["" if k is None else k for k in key], row.calls, u.input, u.cache_read, u.cache_write_5m,
             u.cache_write_1h, u.output, u.reasoning, row.cost,
             *("" if row.per_call.get(p) is None else row.per_call[p] for p in ("p50", "p95", "p99")),
             row.unpriced_calls, row.cache_hits, row.cache_savings, row.prompt_cache_savings,
             "" if row.cache_read_share is None else _share_pct(row.cache_read_share, 2),
             row.estimated_calls, row.error_calls, *(row.notices.get(k, 0) for k in _NOTICE_COLUMNS)]
        )  # fmt: skip


def print_json(r: Rollup, top: int | None, out: TextIO) -> None:
    data: dict[str, Any] = r.as_dict()
    if top is not None:
        data["rows"] = data["rows"][:top]
    json.dump(data, out, indent=2)
    out.write("\n")
