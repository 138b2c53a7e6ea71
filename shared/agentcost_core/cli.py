"""``agentcost`` command line: ``agentcost report``, ``agentcost prices [update]``, ``agentcost ledger status``,
``agentcost ledger retry-dead-letters``, ``agentcost ledger prompts`` / ``prune-prompts`` and
``agentcost killswitch`` (and ``agentcost ledger prune``: retention)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn, Sequence

from .errors import ConfigurationError, LedgerUnavailable
from .ledger.base import FILTERABLE
from .privacy import redact_text
from .report import print_csv, print_json, print_table
from .rollup import GROUPABLE

#: Short names users type: ``--by session`` is ``--by session_id``.
_BY_ALIASES = {"user": "user_id", "session": "session_id", "agent": "agent_id", "task": "task_id", "trace": "trace_id"}

__all__ = ["fail", "main", "parse_when"]

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
        raise ConfigurationError(
            f"cannot read time {text!r}: use 7d, 12h, 30m or an ISO date like 2026-11-01"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _read_filters(pairs: Sequence[str]) -> dict[str, str]:
    filters = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        k = _BY_ALIASES.get(k.strip(), k.strip())
        if not sep or not k:
            raise ConfigurationError(f"--where takes field=value (e.g. --where feature=support), got {pair!r}")
        if k not in FILTERABLE:
            raise ConfigurationError(f"cannot filter on {k!r} in --where; choose from {', '.join(sorted(FILTERABLE))}")
        if k in filters:  # a filter keeps one value per field: a second one would silently replace the first
            raise ConfigurationError(f"--where {k} given twice ({filters[k]!r} and {v.strip()!r}); one value per field")
        filters[k] = v.strip()
    return filters


def _check_ledger_exists(url: str) -> None:
    """A report reads a ledger: a SQLite path that holds no file is a mistake, not an empty ledger to create."""
    scheme, sep, rest = url.strip().partition("://")
    if sep and scheme.lower() == "sqlite" and rest.startswith("/") and rest != "/":
        path = Path(rest[1:])
        if not path.is_file():
            where = path if path.is_absolute() else f"{path} (in {Path.cwd()})"
            raise ConfigurationError(f"no ledger file at {where}; run your agent first, or pass --ledger URL")


def cmd_report(args: argparse.Namespace) -> int:
    from .ledger import Ledger, default_ledger_url

    by = tuple(_BY_ALIASES.get(b.strip(), b.strip()) for b in args.by.split(",") if b.strip())
    if not by:
        raise ConfigurationError(f"--by needs a field; choose from {', '.join(sorted(GROUPABLE))}")
    for b in by:
        if b not in GROUPABLE:
            raise ConfigurationError(f"cannot group by {b!r}; choose from {', '.join(sorted(GROUPABLE))}")
    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise ConfigurationError(f"--until {args.until!r} is not after --since {args.since!r}")
    filters = _read_filters(args.where or ())
    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    ledger = Ledger(url, sync=True)
    try:
        r = ledger.rollup(by=by, since=since, until=until, **filters)
        cache = None
        if r.total.cache_hits and args.format == "table":  # hit rates and savings per cache layer
            from .response_cache.summary import cache_summary

            cache = cache_summary(ledger.iter_events(since, until, **filters))
    finally:
        ledger.close()
    if args.format == "json":
        print_json(r, args.top, sys.stdout)
    elif args.format == "csv":
        print_csv(r, args.top, sys.stdout)
    elif not r.total.calls and not r.total.notices:
        print(f"No events in {ledger.url} for this window.")
    else:
        print_table(r, args.top)
        if cache is not None:
            from .report import money
            from .response_cache.summary import summary_lines

            for line in summary_lines(cache, r.total.calls, money):
                print(line)
    return 0


def ledger_status(url: str) -> dict[str, object]:
    """What a ledger holds and what waits beside it, read without changing anything (a spool is
    not replayed): stored events, dead letters (count, file, reasons), spool entries."""
    from collections import Counter

    from .ledger import open_backend
    from .ledger.spool import pending_spool_entries, spool_folder

    backend = open_backend(url)
    try:
        stored = backend.count()
        state = backend.state_path()
        shown_url = backend.url
    finally:
        backend.close()
    out: dict[str, object] = {"ledger": shown_url, "stored": stored}
    if state is None:
        return {**out, "dead_lettered": 0, "dead_letter_file": None, "dead_letter_reasons": {},
                "spool_pending_replay": 0, "spool_in_live_processes": 0}  # fmt: skip
    dead_file = state.with_name(state.name + ".deadletter.jsonl")
    reasons: Counter[str] = Counter()
    if dead_file.is_file():
        for line in dead_file.read_text(encoding="ascii", errors="replace").splitlines():
            if line.strip():
                try:
                    reasons[str(json.loads(line).get("reason", "?")).split(":")[0]] += 1
                except ValueError:
                    reasons["(unreadable line)"] += 1
    stale, live = pending_spool_entries(spool_folder(state))
    return {**out, "dead_lettered": sum(reasons.values()), "dead_letter_file": str(dead_file),
            "dead_letter_reasons": dict(reasons.most_common()),
            "spool_pending_replay": stale, "spool_in_live_processes": live}  # fmt: skip


def cmd_ledger_status(args: argparse.Namespace) -> int:
    from .ledger import default_ledger_url

    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    status = ledger_status(url)
    if args.format == "json":
        json.dump(status, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"ledger          {status['ledger']}")
    print(f"written         {status['stored']:,} stored event(s)")
    print(
        f"queued          {status['spool_in_live_processes']:,} in the spool files of running processes "
        "(durability='spool'; other queues: Ledger.status() in the recording process)"
    )
    print(
        f"pending replay  {status['spool_pending_replay']:,} left in spool files by processes that stopped "
        "(the next open of the ledger stores them)"
    )
    where = f" in {status['dead_letter_file']}" if status["dead_lettered"] else ""
    print(f"dead-lettered   {status['dead_lettered']:,}{where}")
    if status["dead_lettered"]:
        print("                (agentcost ledger retry-dead-letters stores them once the cause is gone)")
    for reason, n in status["dead_letter_reasons"].items():  # type: ignore[union-attr]
        print(f"  {n:>8,}  {reason}")
    print("dropped         counted by each recording process: Ledger.status().dropped (the first drop logs a warning)")
    return 0


def cmd_ledger_retry_dead_letters(args: argparse.Namespace) -> int:
    """Store the dead-lettered events of a ledger; exit status 0 when none is left, 1 otherwise."""
    from .ledger import Ledger, default_ledger_url

    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    ledger = Ledger(url, sync=True, retry_s=args.retry_s)
    try:
        result = ledger.retry_dead_letters()
    finally:
        ledger.close()
    if args.format == "json":
        json.dump({"ledger": ledger.url, **dataclasses.asdict(result)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"ledger          {ledger.url}")
        print(f"stored          {result.stored:,} dead-lettered event(s)")
        print(f"already stored  {result.already_stored:,} (removed from the file, not stored twice)")
        where = f" in {result.dead_letter_file}" if result.still_dead else ""
        print(f"still failing   {result.still_dead:,}{where} (with their current reason)")
        if result.unreadable:
            print(f"unreadable      {result.unreadable:,} line(s) that are not an event, kept in the file")
    return 0 if result.still_dead == 0 and result.unreadable == 0 else 1


def cmd_ledger_prune(args: argparse.Namespace) -> int:
    """Retention: delete the events recorded before ``--before`` (and their logged prompts)."""
    from .ledger import Ledger, default_ledger_url

    before = parse_when(args.before)
    url = args.ledger if args.ledger is not None else default_ledger_url()
    _check_ledger_exists(url)
    ledger = Ledger(url, sync=True)
    try:
        pruned = ledger.prune(before)
        left = ledger.count()
    finally:
        ledger.close()
    when = datetime.fromtimestamp(before, tz=timezone.utc).isoformat(timespec="seconds")
    if args.format == "json":
        json.dump({"ledger": ledger.url, "before": when, "pruned": pruned, "left": left}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"deleted {pruned:,} event(s) recorded before {when} from {ledger.url}; {left:,} left")
    return 0


def cmd_prices(args: argparse.Namespace) -> int:
    from .prices.commands import cmd_prices as prices

    return prices(args)


class UsageError(Exception):
    """A command line argparse cannot read (raised instead of printing usage and exiting)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return n


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="agentcost", description="Where the money goes in your agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("report", help="roll the ledger up by feature, model, agent, user, session or day")
    rp.add_argument(
        "--ledger", default=None, help="ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"
    )
    rp.add_argument(
        "--by", default="feature", help=f"comma-separated: {', '.join(sorted(GROUPABLE))} (default: feature)"
    )
    rp.add_argument("--since", help="window start: 7d, 24h, 30m, or an ISO date")
    rp.add_argument("--until", help="window end: same forms as --since")
    rp.add_argument("--top", type=_positive_int, default=None, help="show only the N costliest groups")
    rp.add_argument("--where", action="append", help="filter, e.g. --where feature=support (repeatable)")
    rp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rp.set_defaults(func=cmd_report)
    pp = sub.add_parser(
        "prices", help="the price data in use, prices by provider, search, look-ups; `prices update` fetches newer data"
    )
    pp.add_argument("models", nargs="*", help="model ids to look up (dated, prefixed and Bedrock ids resolve), or `update`")
    pp.add_argument("--provider", help="only this provider (openai, anthropic, google, aws, azure, openrouter …)")
    pp.add_argument("--search", help="only model ids containing this text")
    pp.add_argument("--file", help="merge a price file (ours or LiteLLM's format) on top; with `update`: the data file to keep")
    pp.add_argument("--url", help="with `update`: where to fetch genai-prices data (default: its published data.json)")
    pp.add_argument("--format", choices=("table", "json"), default="table")
    pp.set_defaults(func=cmd_prices)
    lp = sub.add_parser("ledger", help="inspect a ledger")
    lsub = lp.add_subparsers(dest="ledger_command", required=True)
    sp = lsub.add_parser("status", help="stored events, dead letters and spool entries waiting for replay")
    sp.add_argument(
        "--ledger", default=None, help="ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"
    )
    sp.add_argument("--format", choices=("table", "json"), default="table")
    sp.set_defaults(func=cmd_ledger_status)
    dp = lsub.add_parser(
        "retry-dead-letters",
        help="store the dead-lettered events now that their cause is gone (never twice); the rest stay",
    )
    dp.add_argument(
        "--ledger", default=None, help="ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"
    )
    dp.add_argument(
        "--retry-s",
        type=_positive_seconds,
        default=5.0,
        help="seconds to keep retrying a database that does not answer (default 5)",
    )
    dp.add_argument("--format", choices=("table", "json"), default="table")
    dp.set_defaults(func=cmd_ledger_retry_dead_letters)
    prune = lsub.add_parser("prune", help="retention: delete the events recorded before a date")
    prune.add_argument("--before", required=True, help="an ISO date (UTC unless it says otherwise) or 90d / 12h ago")
    prune.add_argument(
        "--ledger", default=None, help="ledger URL (default: $AGENTCOST_LEDGER or sqlite:///.agentcost/ledger.db)"
    )
    prune.add_argument("--format", choices=("table", "json"), default="table")
    prune.set_defaults(func=cmd_ledger_prune)
    from .prompt_log_cli import add_prompt_commands  # ledger prompts / prune-prompts

    add_prompt_commands(lsub)
    # the kill switch (and the anomaly breaker's trips): see guards/kill_switch_cli.py
    from .guards.kill_switch_cli import add_killswitch_parser

    add_killswitch_parser(sub)
    from .profile_cli import add_profile_parser  # agentcost profile

    add_profile_parser(sub)
    from .replay_cli import add_replay_parser  # agentcost replay

    add_replay_parser(sub)
    from .dashboard.command import add_dashboard_parser  # agentcost dashboard: see dashboard/command.py

    add_dashboard_parser(sub)
    return parser


def fail(message: str, code: int) -> int:
    """Every failure is one line on stderr (set ``AGENTCOST_DEBUG=1`` for the traceback of an unexpected one)."""
    print(f"agentcost: {' '.join(redact_text(message).split())}", file=sys.stderr)  # no key or password
    return code


def _quiet_stdout() -> None:
    """The reader of stdout has gone (``agentcost prices | head``): point stdout at /dev/null so the
    interpreter's last flush at exit says nothing either (the recipe of Python's signal docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind stdout (e.g. captured): nothing to quiet
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """The ``agentcost`` console script. Returns the exit status: 0, 1 (a failure while running, e.g. an
    unreachable database) or 2 (a bad argument); ``--help`` exits through ``SystemExit(0)``. When its
    output's reader goes away (``| head``) it stops quietly with 1, as Rich's tables do; 130 on Ctrl-C."""
    try:
        args = build_parser().parse_args(argv)
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:  # our output's reader went away (database and network errors come wrapped)
        _quiet_stdout()
        return 1
    except LedgerUnavailable as e:  # a server down: a failure while running, not a bad argument
        return fail(str(e), 1)
    except (UsageError, ConfigurationError) as e:
        return fail(str(e), 2)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as e:
        if os.environ.get("AGENTCOST_DEBUG"):
            raise
        return fail(f"{type(e).__name__}: {e}", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
