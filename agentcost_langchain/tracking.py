"""``with track_costs() as handler:`` — attach a handler to every LangChain run in the block.

Uses LangChain's own configure hook (the mechanism behind ``get_usage_metadata_callback``):
the handler is injected into every callback manager created while the context variable is set.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from langchain_core.tracers.context import register_configure_hook

from .callbacks import CostCallbackHandler

__all__ = ["track_costs"]

_active: ContextVar[CostCallbackHandler | None] = ContextVar("agentcost_track_costs", default=None)
register_configure_hook(_active, inheritable=True)


@contextmanager
def track_costs(ledger: Any = None, **kwargs: Any) -> Iterator[CostCallbackHandler]:
    """Record every model call in the block; yields the :class:`CostCallbackHandler`.

    Takes the handler's arguments (``ledger``, ``user_id``, ``session_id``, ``feature``,
    ``agent_id``, ``task_id``, ``catalog``, ``keep_events``, ``log_prompts``, ``exporters``). Blocks nest: the innermost handler records.
    """
    handler = CostCallbackHandler(ledger, **kwargs)
    token = _active.set(handler)
    try:
        yield handler
    finally:
        _active.reset(token)
