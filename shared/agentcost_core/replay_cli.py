"""``agentcost replay``: recorded traffic (a ledger, a LangSmith run export or OTel GenAI spans)
recomputed under a change (see :mod:`.replay`), as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from .errors import ConfigurationError
from .replay import Remap, Replay, Scenario, Scope, replay
from .report import money
from .traffic_cli import add_traffic_arguments, read_traffic

__all__ = ["add_replay_parser", "print_replay_csv", "print_replay_table", "read_scenario"]

_QS = ("p50", "p95", "p99")
#: Terminal width from which the table shows the per-call percentiles before -> after.
_WIDE = 130


def _decimal(text: str, flag: str) -> Decimal:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():  # NaN and infinity are no amount or rate
        raise ConfigurationError(f"{flag} takes a number, got {text!r}")
    return number


def _scoped(text: str) -> tuple[str, Scope]:
    value, sep, scope = text.partition("@")
    return value.strip(), Scope.parse(scope.strip()) if sep else Scope()


def _prices(path: str) -> tuple[Any, bool]:
    """A price file (ours or LiteLLM's: merged on top) or genai-prices ``data.json`` (another catalog
    version: replaces the catalog). Returns (catalog, replaces)."""
    from .prices import PriceCatalog
    from .prices.base import BasePrices, load_overlay
    from .prices.genai import GenaiPrices, load_providers

    try:
        raw = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"--prices {path}: cannot read a JSON price file ({e})") from None
    if isinstance(raw, list):
        genai = GenaiPrices.build(load_providers(raw), origin=f"genai-prices data {Path(path).name}")
        return PriceCatalog(base=BasePrices(genai, load_overlay())), True
    return PriceCatalog.from_file(path), False


def read_scenario(args: argparse.Namespace) -> Scenario:
    """The :class:`Scenario` the command line asks for (every mistake a :class:`ConfigurationError`)."""
    remaps = []
    for text in args.remap or ():
        pair, scope = _scoped(text)
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ConfigurationError(f"--remap takes FROM=TO[@feature[/step]], got {text!r}")
        remaps.append(Remap(source.strip(), target.strip(), scope))
    deltas = []
    for text in args.prompt_delta or ():
        n, scope = _scoped(text)
        try:
            deltas.append((int(n), scope))
        except ValueError:
            raise ConfigurationError(
                f"--prompt-delta takes N[@feature[/step]] (N may be negative), got {text!r}"
            ) from None
    prices, replaces = _prices(args.prices) if args.prices else (None, False)
    return Scenario(
        prices=prices,
        prices_replace=replaces,
        remaps=remaps,
        prompt_deltas=deltas,
        cache_hit_rate=None if args.cache_hit_rate is None else _decimal(args.cache_hit_rate, "--cache-hit-rate"),
        context_cap=args.context_cap,
        session_cap=None if args.session_cap is None else _decimal(args.session_cap, "--session-cap"),
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from .cli import _BY_ALIASES
    from .prices import PriceCatalog

    by = tuple(_BY_ALIASES.get(b.strip(), b.strip()) for b in args.by.split(",") if b.strip())
    scenario = read_scenario(args)
    catalog = PriceCatalog.default()
    events, ledger = read_traffic(args, catalog)
    try:
        r = replay(events, scenario, by=by or ("feature",), catalog=catalog)
    finally:
        if ledger is not None:
            ledger.close()
    if args.format == "json":
        json.dump(r.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "csv":
        print_replay_csv(r, sys.stdout)
    else:
        print_replay_table(r)
    return 0


def _pct(change: Decimal | None) -> str:
    return "—" if change is None else f"{(change * 100).quantize(Decimal('0.1')):+}%"


def print_replay_table(r: Replay, console: Console | None = None) -> None:
    console = console if console is not None else Console()
    console.print("changes: " + ("; ".join(r.changes) or "none (the recorded costs)"), markup=False)
    label = " / ".join(r.by)
    t = Table(title=f"agentcost replay — cost by {label}, before → after", show_footer=True, header_style="bold")
    t.add_column(label, footer="total", overflow="fold", min_width=min(24, max(len(label), 8)))
    columns = [
        ("calls", lambda row: f"{row.before.calls:,}" + ("" if row.after.calls == row.before.calls else f" → {row.after.calls:,}")),
        ("before", lambda row: money(row.before.cost)),
        ("after", lambda row: money(row.after.cost)),
        ("change", lambda row: _pct(row.change)),
        *((f"{q}/call", lambda row, q=q: f"{money(row.before.per_call[q])} → {money(row.after.per_call[q])}") for q in _QS),
    ]  # fmt: skip
    wide = console.width >= _WIDE
    for header, cell in columns if wide else columns[:4]:
        t.add_column(header, footer=cell(r.total), justify="right", no_wrap=True)
    for row in r.rows:
        t.add_row(row.label, *(cell(row) for _, cell in (columns if wide else columns[:4])))
    console.print(t)
    if not wide:
        console.print(f"(per-call p50 / p95 / p99 need {_WIDE} columns; --format json / csv has them)", markup=False)
    ps = r.total.before.per_session, r.total.after.per_session
    if ps[0].get("p50") is not None:
        console.print(
            "per session: " + "  ".join(f"{q} {money(ps[0][q])} → {money(ps[1][q])}" for q in _QS), markup=False
        )
    unpriced = r.total.before.unpriced_calls, r.total.after.unpriced_calls
    if any(unpriced):
        console.print(
            f"unpriced calls (cost unknown, not $0): {unpriced[0]:,} before, {unpriced[1]:,} after", markup=False
        )
    if r.stopped:
        s = Table(title="sessions the session budget would have stopped", header_style="bold")
        for h in ("session", "calls run", "calls stopped", "cost until stop", "uncapped", "avoided"):
            s.add_column(h, justify="right", overflow="fold")
        for x in r.stopped:
            s.add_row(x["session_id"], str(x["calls_run"]), str(x["calls_stopped"]), money(Decimal(x["cost_until_stop"])),
                      money(Decimal(x["cost_uncapped"])), money(Decimal(x["avoided"])))  # fmt: skip
        console.print(s)


def print_replay_csv(r: Replay, out: TextIO) -> None:
    w = csv.writer(out)
    sides = ("before", "after")
    w.writerow([*r.by, *(f"{k}_{s}" for k in ("calls", "cost", "unpriced_calls") for s in sides), "delta", "change",
                *(f"{q}_per_call_{s}" for q in _QS for s in sides)])  # fmt: skip
    for row in [*r.rows, r.total]:
        key = list(row.key) if row is not r.total else ["total"] + [""] * (len(r.by) - 1)
        b, a = row.before, row.after
        w.writerow([*("" if k is None else k for k in key), b.calls, a.calls, b.cost, a.cost, b.unpriced_calls,
                    a.unpriced_calls, row.delta, "" if row.change is None else row.change,
                    *("" if side.per_call[q] is None else side.per_call[q] for q in _QS for side in (b, a))])  # fmt: skip


def add_replay_parser(sub: Any) -> None:
    rp = sub.add_parser("replay", help="what-if: recompute recorded traffic under new prices, routes, prompts, caps")
    rp.add_argument(
        "--prices", help="a price file (ours or LiteLLM's, on top) or genai-prices data.json (another version)"
    )
    rp.add_argument(
        "--remap", action="append", help="FROM=TO[@feature[/step]]: a model or tier served by TO (repeatable)"
    )
    rp.add_argument(
        "--prompt-delta",
        action="append",
        help="N[@feature[/step]]: N more prompt tokens per call; fewer: --prompt-delta=-N[@...]",
    )
    rp.add_argument("--cache-hit-rate", help="share of prompt tokens read from the prompt cache, 0..1")
    rp.add_argument("--context-cap", type=int, help="cap each call's prompt tokens at N")
    rp.add_argument("--session-cap", help="a per-session budget in USD: which sessions it stops, at what cost")
    add_traffic_arguments(rp, "replay")
    rp.add_argument("--by", default="feature", help="comma-separated rollup fields (default: feature)")
    rp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rp.set_defaults(func=cmd_replay)
