"""``agentcost`` command line: ``agentcost report`` and ``agentcost prices``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Sequence

from .errors import ConfigurationError
from .rollup import GROUPABLE, Rollup

#: Short names users type: ``--by session`` is ``--by session_id``.
_BY_ALIASES = {"user": "user_id", "session": "session_id", "agent": "agent_id", "task": "task_id", "trace": "trace_id"}

__all__ = ["main", "parse_when"]

_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, *, now: float | None = None) -> float:
    """``7d`` / ``12h`` / ``30m`` ago, or an ISO date/datetime (UTC unless it says otherwise)."""
    t = text.strip()
    m = _REL.match(t)
    if m:
        return (now if now is not None else time.time()) - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ConfigurationError(f"cannot read time {text!r}: use 7d, 12h, 30m or an ISO date like 2026-11-01") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _money(d: Decimal | None, places: int = 6) -> str:
    if d is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    if d != 0 and abs(d) < q:
        q = Decimal("0.000001")  # tiny amounts: show micro-dollars rather than $0.0000
    return f"${d.quantize(q):,}"


def _tokens(n: int) -> str:
    return f"{n:,}"


def _share_pct(share: Decimal | None, places: int = 1) -> Decimal | None:
    """A 0..1 share as a percentage rounded to ``places`` (None stays None)."""
    return None if share is None else (share * 100).quantize(Decimal(1).scaleb(-places))


def _pct(share: Decimal | None) -> str:
    pct = _share_pct(share)
    return "—" if pct is None else f"{pct}%"


def _report_table(r: Rollup, top: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(180, Console().width))
    title = f"agentcost — spend by {' / '.join(r.by)}"
    table = Table(title=title, show_footer=True, header_style="bold")
    t = r.total
    cols = [
        (" / ".join(r.by), "total", "left"),
        ("calls", f"{t.calls:,}", "right"),
        ("input", _tokens(t.usage.input), "right"),
        ("cache read", _tokens(t.usage.cache_read), "right"),
        ("cache write", _tokens(t.usage.cache_write), "right"),
        ("output", _tokens(t.usage.output), "right"),
        ("reasoning", _tokens(t.usage.reasoning), "right"),
        ("cost", _money(t.cost, 4), "right"),
        ("p50/call", _money(t.per_call.get("p50")), "right"),
        ("p95/call", _money(t.per_call.get("p95")), "right"),
        ("p99/call", _money(t.per_call.get("p99")), "right"),
        ("unpriced", str(t.unpriced_calls), "right"),
        ("cache read %", _pct(t.cache_read_share), "right"),
        ("cache saved", _money(t.cache_savings + t.prompt_cache_savings, 4), "right"),
    ]
    for name, footer, justify in cols:
        table.add_column(name, footer=footer, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    rows = r.rows if top is None else r.rows[:top]
    for row in rows:
        table.add_row(
            row.label,
            f"{row.calls:,}",
            _tokens(row.usage.input),
            _tokens(row.usage.cache_read),
            _tokens(row.usage.cache_write),
            _tokens(row.usage.output),
            _tokens(row.usage.reasoning),
            _money(row.cost, 4) if row.priced_calls or not row.unpriced_calls else "unpriced",
            _money(row.per_call.get("p50")),
            _money(row.per_call.get("p95")),
            _money(row.per_call.get("p99")),
            str(row.unpriced_calls) if row.unpriced_calls else "",
            _pct(row.cache_read_share),
            _money(row.cache_savings + row.prompt_cache_savings, 4) if (row.cache_savings or row.prompt_cache_savings) else "",
        )
    console.print(table)
    if top is not None and len(r.rows) > top:
        console.print(f"[dim]… {len(r.rows) - top} more group(s); use --top to show more[/dim]")
    lines = []
    if t.sessions:
        ps = t.per_session
        lines.append(
            f"per session ({t.sessions:,} sessions): p50 {_money(ps.get('p50'))}  p95 {_money(ps.get('p95'))}  p99 {_money(ps.get('p99'))}"
        )
    if t.cache_hits:
        lines.append(f"LLM-cache hits: {t.cache_hits:,} calls, {_money(t.cache_savings, 4)} saved")
    if t.routed_calls:
        top_cost = t.routed_cost + t.routing_savings
        lines.append(
            f"routing: {t.routed_calls} routed calls cost {_money(t.routed_cost, 4)}; on the top tier they would have cost "
            f"{_money(top_cost, 4)} (saved {_money(t.routing_savings, 4)})"
        )
    if t.prompt_cache_savings:
        lines.append(
            f"prompt-cache reads ({_pct(t.cache_read_share)} of prompt tokens) saved "
            f"{_money(t.prompt_cache_savings, 4)} against full input price"
        )
    if t.estimated_calls:
        lines.append(f"{t.estimated_calls:,} call(s) with estimated tokens (the provider reported no usage)")
    if t.error_calls:
        lines.append(f"{t.error_calls:,} failed call(s)")
    pm = r.projected_monthly
    if pm is not None:
        lines.append(f"projected monthly spend at this window's rate: ${pm:,}")
    for line in lines:
        console.print(line)
    if t.unpriced_calls:
        console.print(
            f"[bold yellow]{t.unpriced_calls:,} UNPRICED call(s)[/bold yellow] (cost unknown, not $0) for: "
            + ", ".join(t.unpriced_models)
        )


def _report_csv(r: Rollup, top: int | None, out: io.TextIOBase) -> None:
    w = csv.writer(out)
    w.writerow(
        [*r.by, "calls", "input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning", "cost",
         "p50_per_call", "p95_per_call", "p99_per_call", "unpriced_calls", "cache_hits", "cache_savings",
         "prompt_cache_savings", "cache_read_pct", "estimated_calls", "error_calls"]
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
             row.estimated_calls, row.error_calls]
        )  # fmt: skip


def cmd_report(args: argparse.Namespace) -> int:
    from .ledger import Ledger

    by = tuple(_BY_ALIASES.get(b.strip(), b.strip()) for b in args.by.split(",") if b.strip())
    for b in by:
        if b not in GROUPABLE:
            raise ConfigurationError(f"cannot group by {b!r}; choose from {', '.join(sorted(GROUPABLE))}")
    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    filters = {}
    for w in args.where or ():
        k, sep, v = w.partition("=")
        if not sep:
            raise ConfigurationError(f"--where takes key=value, got {w!r}")
        filters[k.strip()] = v.strip()
    ledger = Ledger(args.ledger, sync=True)
    try:
        r = ledger.rollup(by=by, since=since, until=until, **filters)
    finally:
        ledger.close()
    if args.format == "json":
        data = r.as_dict()
        if args.top is not None:
            data["rows"] = data["rows"][: args.top]
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "csv":
        _report_csv(r, args.top, sys.stdout)  # type: ignore[arg-type]
    else:
        if not r.total.calls:
            print(f"No events in {ledger.url} for this window.")
            return 0
        _report_table(r, args.top)
    return 0


def cmd_prices(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .prices import PriceCatalog

    catalog = PriceCatalog.default()
    if args.file:
        catalog = catalog.merged(PriceCatalog.from_file(args.file))
    if args.models:
        prices = []
        for m in args.models:
            p = catalog.get(m)
            if p is None:
                print(f"{m}: not in the catalog (calls to it are recorded as unpriced)", file=sys.stderr)
            else:
                prices.append((m, p))
        if not prices:
            return 1
    else:
        prices = [(p.model, p) for p in catalog if not args.provider or p.provider == args.provider]
    if args.format == "json":
        out = {}
        for asked, p in prices:
            out[asked] = {
                "model": p.model,
                "provider": p.provider,
                **p.base.as_dict(),
                "long_context": None
                if p.long_context is None
                else {"threshold": p.long_context_threshold, **p.long_context.as_dict()},
                "service_tiers": {k: v.as_dict() for k, v in p.tiers.items()},
                "effective_date": p.effective_date,
                "source": p.source,
            }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title="USD per 1M tokens" + (f" (catalog updated {catalog.updated})" if catalog.updated else ""))
    for c in ("model", "provider", "input", "cache read", "cache write 5m", "cache write 1h", "output", "long context", "tiers", "effective"):
        table.add_column(c, justify="left" if c in ("model", "provider", "tiers", "long context") else "right")
    for asked, p in prices:
        b = p.base
        lc = "" if p.long_context is None else f">{p.long_context_threshold:,}: {p.long_context.input}/{p.long_context.output}"
        label = asked if asked == p.model else f"{asked} → {p.model}"
        table.add_row(label, p.provider, str(b.input), str(b.cache_read), str(b.cache_write_5m), str(b.cache_write_1h),
                      str(b.output), lc, ", ".join(sorted(p.tiers)), p.effective_date or "")  # fmt: skip
    Console(width=160).print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentcost", description="Where the money goes in your agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("report", help="roll the ledger up by feature, model, agent, user, session or day")
    rp.add_argument("--ledger", default=None, help="ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)")
    rp.add_argument("--by", default="feature", help=f"comma-separated: {', '.join(sorted(GROUPABLE))} (default: feature)")
    rp.add_argument("--since", help="window start: 7d, 24h, 30m, or an ISO date")
    rp.add_argument("--until", help="window end: same forms as --since")
    rp.add_argument("--top", type=int, default=None, help="show only the N costliest groups")
    rp.add_argument("--where", action="append", help="filter, e.g. --where feature=support (repeatable)")
    rp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rp.set_defaults(func=cmd_report)
    pp = sub.add_parser("prices", help="list the price catalog or look up models")
    pp.add_argument("models", nargs="*", help="model ids to look up (dated, prefixed and Bedrock ids resolve)")
    pp.add_argument("--provider", help="only this provider (openai, anthropic, google …)")
    pp.add_argument("--file", help="merge a price file (ours or LiteLLM's format) on top")
    pp.add_argument("--format", choices=("table", "json"), default="table")
    pp.set_defaults(func=cmd_prices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "top", None) is not None and args.top <= 0:
        print("agentcost: --top must be a positive number", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except ConfigurationError as e:
        print(f"agentcost: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
