"""``KillSwitchMiddleware``: a kill switch checked before every model call and every tool call of
a ``create_agent`` agent. A tripped switch ends the run gracefully: the pending tool call is not
run, and the agent answers with what it has (termination reason ``kill_switch``)."""

from __future__ import annotations

from typing import Any

from agentcost_core.guards.kill_switch import KillSwitch
from agentcost_core.guards.run_guard import Controls

from ._base import GuardMiddleware

__all__ = ["KillSwitchMiddleware"]


class KillSwitchMiddleware(GuardMiddleware):
    """``KillSwitchMiddleware(switch=None, *, ledger=None, **attribution)``; the default switch
    reads ``AGENTCOST_KILL_SWITCH``. Per-agent switches match ``agent_id`` (constructor or run
    metadata)."""

    def __init__(self, switch: KillSwitch | None = None, *, ledger: Any = None, **attribution: Any) -> None:
        super().__init__(Controls(kill_switch=switch or KillSwitch()), ledger=ledger, **attribution)
