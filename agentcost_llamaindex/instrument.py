"""One call to measure every LLM call LlamaIndex makes in this process."""

from __future__ import annotations

from typing import Any

from agentcost_core import Ledger

from .handler import CostEventHandler

__all__ = ["instrument"]


def instrument(ledger: Ledger | str | None = None, **options: Any) -> CostEventHandler:
    """Attach a :class:`CostEventHandler` to LlamaIndex's root dispatcher and return it.

    ``ledger`` is a :class:`~agentcost_core.Ledger`, a ledger URL (``"sqlite:///costs.db"``,
    ``"memory://"``, ``"postgresql://…"``) or None for the default ledger. ``options`` are the
    handler's: ``catalog``, the attribution defaults ``user_id``, ``session_id``, ``feature``,
    ``agent_id``, ``task_id`` (``instrument_tags({...})`` set around a run override them per call),
    and ``keep_events`` (False keeps only running totals in the handler, for one that stays
    attached for the life of a process; the ledger still gets every event), ``log_prompts``
    (True keeps provider error messages in the ledger; off by default), ``exporters``
    (e.g. ``[OTelExporter(...)]``: every call as OpenTelemetry metrics and a span).

    ``h = instrument(...)`` stays attached until ``h.detach()``; ``with instrument(...) as h:``
    detaches on exit.
    """
    return CostEventHandler(ledger, **options).attach()
