"""``agentcost killswitch status | trip | reset [--agent A | --feature F]``: the operator's side of
the kill switch (and of the anomaly breaker, which trips it), on the same file or Redis key the
agents read. Sources: ``--file PATH`` / ``--redis-url URL`` (``--redis-key``), or the environment
variables ``AGENTCOST_KILL_SWITCH_FILE`` / ``AGENTCOST_KILL_SWITCH_REDIS_URL``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import ConfigurationError
from .kill_switch import KillSwitch, KillSwitchState, KillSwitchUnreadable

__all__ = ["add_killswitch_parser"]


def add_killswitch_parser(sub: Any) -> None:
    """Add the ``killswitch`` subcommand to the CLI's subparsers."""
    kp = sub.add_parser("killswitch", help="see, trip or reset the kill switch (global, per agent or per feature)")
    ksub = kp.add_subparsers(dest="killswitch_command", required=True)
    for name, text in (
        ("status", "what the kill switch says now"),
        ("trip", "stop every agent, one agent (--agent) or one feature (--feature)"),
        ("reset", "clear everything, or one agent's (--agent) or one feature's (--feature) trip"),
    ):
        p = ksub.add_parser(name, help=text)
        p.add_argument("--file", help="the kill switch file (default: $AGENTCOST_KILL_SWITCH_FILE)")
        p.add_argument("--redis-url", help="the Redis server (default: $AGENTCOST_KILL_SWITCH_REDIS_URL)")
        p.add_argument("--redis-key", default="agentcost:kill_switch", help="default: agentcost:kill_switch")
        if name != "status":
            who = p.add_mutually_exclusive_group()
            who.add_argument("--agent", help="only this agent id")
            who.add_argument("--feature", help="only this feature")
        if name == "trip":
            p.add_argument("--reason", help="a note shown in the halt message")
        p.add_argument("--format", choices=("text", "json"), default="text")
        p.set_defaults(func=cmd_killswitch)


def _switch(args: argparse.Namespace) -> KillSwitch:
    file = args.file or os.environ.get("AGENTCOST_KILL_SWITCH_FILE") or None
    redis_url = args.redis_url or os.environ.get("AGENTCOST_KILL_SWITCH_REDIS_URL") or None
    if file is None and redis_url is None:
        raise ConfigurationError(
            "killswitch needs a store: --file PATH or --redis-url URL "
            "(or AGENTCOST_KILL_SWITCH_FILE / AGENTCOST_KILL_SWITCH_REDIS_URL)"
        )
    return KillSwitch(env=None, file=file, redis_url=redis_url, redis_key=args.redis_key)


def cmd_killswitch(args: argparse.Namespace) -> int:
    """Exit 0 with the state read; 1 when a source cannot be read (the state is unknown: never shown as off)."""
    from ..cli import fail

    with _switch(args) as switch:
        command = args.killswitch_command
        if command == "trip":
            switch.trip(agent_id=args.agent, reason=args.reason, feature=args.feature)
        elif command == "reset":
            switch.reset(agent_id=args.agent, feature=args.feature)
        try:
            state = switch.read_now()
        except KillSwitchUnreadable as e:
            return fail(f"kill switch: unknown ({e})", 1)
        _show(state, switch.sources, args.format)
    return 0


def _show(state: KillSwitchState, sources: tuple[str, ...], fmt: str) -> None:
    data = {"tripped": state.tripped, "global": state.is_global, "agents": sorted(state.agents),
            "features": sorted(state.features), "reason": state.reason, "sources": list(sources)}  # fmt: skip
    if fmt == "json":
        print(json.dumps(data))
        return
    if not state.tripped:
        print(f"kill switch: off ({', '.join(sources)})")
        return
    print(f"kill switch: ON ({', '.join(sources)})")
    if state.is_global:
        print("  every agent is stopped")
    if state.agents:
        print(f"  agents:   {', '.join(sorted(state.agents))}")
    if state.features:
        print(f"  features: {', '.join(sorted(state.features))}")
    if state.reason:
        print(f"  reason:   {state.reason}")
