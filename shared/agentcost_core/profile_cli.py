"""``agentcost profile``: where the tokens go in a ledger (see :mod:`.profile`), as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from .profile import Profile, profile
from .report import money

__all__ = ["add_profile_parser", "print_profile"]

_LEDGER_HELP = "ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"
#: Step indexes the table shows of the context curve (JSON has every one).
_CURVE_SHOWN = (1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 100)


def open_catalog(prices: str | None) -> Any:
    """The default catalog, with ``prices`` (a price file: ours or LiteLLM's) on top when given."""
    from .prices import PriceCatalog

    catalog = PriceCatalog.default()
    return catalog if prices is None else catalog.merged(PriceCatalog.from_file(prices))


def read_window(args: argparse.Namespace) -> tuple[float | None, float | None, dict[str, str]]:
    """``--since`` / ``--until`` / ``--where`` as ``report`` reads them."""
    from .cli import _read_filters, parse_when
    from .errors import ConfigurationError

    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise ConfigurationError(f"--until {args.until!r} is not after --since {args.since!r}")
    return since, until, _read_filters(args.where or ())


def cmd_profile(args: argparse.Namespace) -> int:
    from .cli import _check_ledger_exists
    from .ledger import Ledger, default_ledger_url

    since, until, filters = read_window(args)
    catalog = open_catalog(args.prices)
    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    ledger = Ledger(url, sync=True)
    try:
        p = profile(ledger.iter_events(since, until, **filters), catalog=catalog, cheap_model=args.cheap_model,
                    late_after=args.late_after, short_output=args.short_output)  # fmt: skip
    finally:
        ledger.close()
    if args.format == "json":
        json.dump(p.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not p.calls:
        print(f"No calls in {ledger.url} for this window.")
    else:
        print_profile(p)
    return 0


def print_profile(p: Profile, console: Console | None = None) -> None:
    console = console if console is not None else Console()
    console.print(f"{p.calls:,} calls, {money(p.cost)}, {p.sessions:,} sessions", markup=False)
    t = Table(title="agentcost profile — findings, costliest first", header_style="bold")
    t.add_column("finding", overflow="fold")
    t.add_column("dollars", justify="right", no_wrap=True)
    t.add_column("measure", overflow="fold")
    t.add_column("control", no_wrap=True)
    for f in p.findings:
        t.add_row(f.title, money(f.dollars), f.measure, f.control)
    console.print(t)
    for f in p.findings:
        console.print(f"{f.control}: {f.advice}", markup=False)
    c = Table(title="prompt tokens by step index within sessions", header_style="bold")
    for h in ("step", "calls", "mean prompt tokens", "cost"):
        c.add_column(h, justify="right", no_wrap=True)
    for pt in p.curve:
        if pt.index in _CURVE_SHOWN or pt is p.curve[-1]:
            c.add_row(f"{pt.index}{'+' if pt.index == 100 else ''}", f"{pt.calls:,}", f"{pt.mean_prompt_tokens:,}",
                      money(pt.cost))  # fmt: skip
    console.print(c)
    groups = p.finding("model_choice").detail["groups"][:10]
    if groups:
        g = Table(title="expensive calls that look like cheap-tier work", header_style="bold")
        for h in ("feature", "step", "model", "why", "calls", "cost", "saving"):
            g.add_column(h, overflow="fold")
        for r in groups:
            g.add_row(str(r["feature"]), str(r["step"]), str(r["model"]), r["reason"], f"{r['calls']:,}",
                      money(Decimal(r["cost"])), money(Decimal(r["saving"])))  # fmt: skip
        console.print(g)
    sessions = p.finding("runaway_tail").detail["sessions"][:10]
    if sessions:
        s = Table(title="sessions above the p99 session cost", header_style="bold")
        for h in ("session", "cost", "llm calls", "tool calls", "top step", "top tool", "halts"):
            s.add_column(h, overflow="fold")
        for r in sessions:
            step = r["top_step"] and f"{r['top_step']['step']} ×{r['top_step']['count']}"
            tool = r["top_tool"] and f"{r['top_tool']['tool']} ×{r['top_tool']['count']}"
            s.add_row(r["session_id"], money(Decimal(r["cost"])), str(r["llm_calls"]), str(r["tool_calls"]),
                      step or "—", tool or "—", str(r["halts"]))  # fmt: skip
        console.print(s)


def add_profile_parser(sub: Any) -> None:
    pp = sub.add_parser("profile", help="where the tokens go: context growth, model choice, runaway tail, prompt cache")
    pp.add_argument("--ledger", default=None, help=_LEDGER_HELP)
    pp.add_argument("--since", help="window start: 7d, 24h, 30m, or an ISO date")
    pp.add_argument("--until", help="window end: same forms as --since")
    pp.add_argument("--where", action="append", help="filter, e.g. --where feature=support (repeatable)")
    pp.add_argument(
        "--cheap-model", default="gpt-4o-mini", help="the cheap tier a route would use (default gpt-4o-mini)"
    )
    pp.add_argument("--late-after", type=int, default=5, help="steps after this one count as late (default 5)")
    pp.add_argument(
        "--short-output", type=int, default=64, help="an output this short suggests a cheap tier (default 64)"
    )
    pp.add_argument("--prices", help="a price file (ours or LiteLLM's) merged on top of the catalog")
    pp.add_argument("--format", choices=("table", "json"), default="table")
    pp.set_defaults(func=cmd_profile)
