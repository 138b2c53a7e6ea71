"""One call to measure every LLM call LlamaIndex makes in this process."""

from __future__ import annotations

from agentcost_core import Ledger, PriceCatalog

from .handler import CostEventHandler

__all__ = ["instrument"]


def instrument(
    ledger: Ledger | str | None = None,
    *,
    catalog: PriceCatalog | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    feature: str | None = None,
    agent_id: str | None = None,
    task_id: str | None = None,
    keep_events: bool = True,
) -> CostEventHandler:
    """Attach a :class:`CostEventHandler` to LlamaIndex's root dispatcher and return it.

    ``ledger`` is a :class:`~agentcost_core.Ledger`, a ledger URL (``"sqlite:///costs.db"``,
    ``"memory://"``, ``"postgresql://…"``) or None for the default ledger. The attribution
    arguments are defaults; ``instrument_tags({...})`` set around a run override them per call.

    ``keep_events=False`` keeps only the running totals in the handler (the ledger still gets every
    event): use it for a handler that stays attached for the life of a long-running process.

    ``h = instrument(...)`` stays attached until ``h.detach()``; ``with instrument(...) as h:``
    detaches on exit.
    """
    handler = CostEventHandler(
        ledger,
        catalog=catalog,
        user_id=user_id,
        session_id=session_id,
        feature=feature,
        agent_id=agent_id,
        task_id=task_id,
        keep_events=keep_events,
    )
    return handler.attach()
