"""``agentcost ledger prompts EVENT_ID`` (a call's logged prompt and response) and
``agentcost ledger prune-prompts [--days N]`` (delete prompt records past their retention)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_prompt_commands"]

_LEDGER_HELP = "ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"


def _open(args: argparse.Namespace) -> Any:
    from .cli import _check_ledger_exists
    from .ledger import Ledger, default_ledger_url

    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    return Ledger(url, sync=True)


def cmd_ledger_prompts(args: argparse.Namespace) -> int:
    """Print one event's logged prompt and response; exit status 1 when there is none."""
    ledger = _open(args)
    try:
        record = ledger.prompts(args.event_id)
    finally:
        ledger.close()
    if record is None:
        print(f"no logged prompt for event {args.event_id!r} in {ledger.url} "
              "(prompt logging was off for it, or its record expired)", file=sys.stderr)  # fmt: skip
        return 1
    if args.format == "json":
        out = {"event_id": record.event_id, "ts": record.ts, "input_messages": record.messages,
               "output_messages": record.response,
               "tool_definitions": None if record.tool_definitions is None else json.loads(record.tool_definitions)}  # fmt: skip
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    for label, messages in (("prompt", record.messages), ("response", record.response)):
        print(f"--- {label}")
        for m in messages:
            for part in m.get("parts", ()):
                if part.get("type") == "tool_call":
                    print(f"[{m.get('role')}] tool call {part.get('name')}({json.dumps(part.get('arguments'))})")
                else:
                    print(f"[{m.get('role')}] {part.get('content', '')}")
    if record.tool_definitions:
        print(f"--- tools\n{record.tool_definitions}")
    return 0


def cmd_ledger_prune_prompts(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        pruned = ledger.prune_prompts(args.days)
    finally:
        ledger.close()
    print(f"deleted {pruned:,} prompt record(s) from {ledger.url}")
    return 0


def add_prompt_commands(lsub: Any) -> None:
    """Add ``prompts`` and ``prune-prompts`` to the ``agentcost ledger`` subcommands."""
    pp = lsub.add_parser("prompts", help="one call's logged prompt and response (prompt logging, log_prompts=True)")
    pp.add_argument("event_id", help="the event's id (CostEvent.id)")
    pp.add_argument("--ledger", default=None, help=_LEDGER_HELP)
    pp.add_argument("--format", choices=("text", "json"), default="text")
    pp.set_defaults(func=cmd_ledger_prompts)
    rp = lsub.add_parser("prune-prompts", help="delete logged prompts older than the retention (default 30 days)")
    rp.add_argument("--days", type=float, default=None, help="keep this many days instead of the ledger's retention")
    rp.add_argument("--ledger", default=None, help=_LEDGER_HELP)
    rp.set_defaults(func=cmd_ledger_prune_prompts)
