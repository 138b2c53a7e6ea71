"""``StuckMiddleware``: stuck detection for a ``create_agent`` agent.

Model outputs and tool calls / results feed a :class:`StuckDetector` monitor per run. The first
detection adds one nudge to the next model request ("You appear to be repeating…"); a detection
after the nudge ends the run with a final AIMessage carrying the best answer so far and the
reason (``repeated_tool``, ``similarity_loop``, ``no_progress``, ``max_iterations``).
"""

from __future__ import annotations

from typing import Any

from agentcost_core.guards.run_guard import Controls
from agentcost_core.guards.stuck import StuckDetector

from ._base import GuardMiddleware

__all__ = ["StuckMiddleware"]


class StuckMiddleware(GuardMiddleware):
    """``StuckMiddleware(detector=None, *, ledger=None, **attribution)`` (default detector settings)."""

    def __init__(self, detector: StuckDetector | None = None, *, ledger: Any = None, **attribution: Any) -> None:
        super().__init__(Controls(stuck=detector or StuckDetector()), ledger=ledger, **attribution)
