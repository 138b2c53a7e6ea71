"""Where ``agentcost profile`` and ``agentcost replay`` read recorded traffic from: a ledger (with the
``--since`` / ``--until`` / ``--where`` of ``report``), a LangSmith run export or OTel GenAI spans."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from .errors import ConfigurationError
from .events import CostEvent

__all__ = ["add_traffic_arguments", "read_traffic", "read_window"]

_LEDGER_HELP = "ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"


def add_traffic_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--ledger", default=None, help=_LEDGER_HELP)
    parser.add_argument("--langsmith", help=f"{verb} a LangSmith run export (JSON) instead of a ledger")
    parser.add_argument("--otel", help=f"{verb} OTel GenAI spans (OTLP JSON or a list of spans) instead of a ledger")
    parser.add_argument("--since", help="window start (ledger input): 7d, 24h, 30m, or an ISO date")
    parser.add_argument("--until", help="window end: same forms as --since")
    parser.add_argument("--where", action="append", help="filter, e.g. --where feature=support (repeatable)")


def read_window(args: argparse.Namespace) -> tuple[float | None, float | None, dict[str, str]]:
    """``--since`` / ``--until`` / ``--where`` as ``report`` reads them."""
    from .cli import _read_filters, parse_when

    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise ConfigurationError(f"--until {args.until!r} is not after --since {args.since!r}")
    return since, until, _read_filters(args.where or ())


def read_traffic(args: argparse.Namespace, catalog: Any) -> tuple[Iterator[CostEvent], Any]:
    """(events, the ledger to close or None) from ``--ledger`` or a ``--langsmith`` / ``--otel`` file
    (whose calls ``catalog`` prices)."""
    if args.langsmith or args.otel:
        from .replay_inputs import langsmith_events, otel_events

        if args.ledger or args.since or args.until or args.where or (args.langsmith and args.otel):
            raise ConfigurationError("--langsmith / --otel read one whole file: no --ledger, --since, --until, --where")
        if args.langsmith:
            return langsmith_events(args.langsmith, catalog=catalog), None
        return otel_events(args.otel, catalog=catalog), None
    from .cli import _check_ledger_exists
    from .ledger import Ledger, default_ledger_url

    since, until, filters = read_window(args)
    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    ledger = Ledger(url, sync=True)
    return ledger.iter_events(since, until, **filters), ledger
