"""``agentcost dashboard --out FILE.html`` (one self-contained file) and ``agentcost dashboard --serve [--port N]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["add_dashboard_parser", "cmd_dashboard"]

DEFAULT_PORT = 8765


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535 (0: any free port), got {text!r}")
    return n


def add_dashboard_parser(sub: Any) -> None:
    """Add the ``dashboard`` subcommand to the CLI's subparsers."""
    p = sub.add_parser("dashboard", help="a web page over the ledger: spend over time, drill-down, filters, budgets")
    p.add_argument(
        "--ledger", default=None, help="ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--out", help="write one self-contained HTML file (no network needed to open it)")
    how.add_argument("--serve", action="store_true", help="serve the page live on 127.0.0.1 (Ctrl-C stops)")
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"with --serve (default {DEFAULT_PORT}; 0: any free)"
    )
    p.add_argument("--since", help="only events from: 7d, 24h, 30m, or an ISO date")
    p.add_argument("--until", help="only events before: same forms as --since")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..cli import _check_ledger_exists, parse_when
    from ..ledger import Ledger, default_ledger_url
    from ..privacy import redact_url
    from ..report import money
    from .data import build_document, priced_spend
    from .page import render_page
    from .serve import DashboardServer

    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise ConfigurationError(f"--until {args.until!r} is not after --since {args.since!r}")
    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    if args.serve:
        server = DashboardServer(url, port=args.port, since=since, until=until)
        print(f"agentcost dashboard of {redact_url(url)} at {server.url} (Ctrl-C stops)", flush=True)
        server.serve_forever()
        return 0
    out = _out_file(args.out)
    ledger = Ledger(url, sync=True)
    try:
        document = build_document(ledger, since=since, until=until)
    finally:
        ledger.close()
    try:
        out.write_text(render_page(document), encoding="utf-8")
    except OSError as e:  # not writable (permissions, a read-only disk): the --out given cannot work
        raise ConfigurationError(f"--out {out}: cannot write it ({e.strerror or e})") from None
    spend = money(priced_spend(document))
    print(f"wrote {out} ({document['count']:,} calls, {spend} priced spend); open it in any browser")
    return 0


def _out_file(text: str) -> Path:
    """``--out``: a file in a folder that exists (checked before the ledger is read)."""
    out = Path(text)
    if out.is_dir():
        raise ConfigurationError(f"--out {out} is a folder; give a file name, e.g. {out / 'dashboard.html'}")
    folder = out.parent
    if not folder.is_dir():
        raise ConfigurationError(f"--out {out}: the folder {folder} does not exist")
    return out
