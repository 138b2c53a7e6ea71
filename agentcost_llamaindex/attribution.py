"""What LlamaIndex ``instrument_tags`` say about a call, beyond attribution.

Users tag the way LlamaIndex taught them::

    from llama_index.core.instrumentation.dispatcher import instrument_tags
    with instrument_tags({"user_id": "u1", "session_id": "s9", "feature": "support"}):
        await agent.run("...")

Attribution (``user_id``, ``session_id`` or ``thread_id`` / ``conversation_id``, ``feature``,
``agent_id``, ``task_id``) is read by the core's one reader,
:func:`agentcost_core.attribution.read_attribution`; tags override the handler's constructor
defaults. This module reads the LlamaIndex-specific tags: workflows tag every event of a run with
``llamaindex.run_id`` (the event's ``trace_id``; otherwise the id of the outermost span), and a
``RouterLLM`` tags the call it routes with its decision under ``agentcost_route``.
"""

from __future__ import annotations

from typing import Any

from agentcost_core.attribution import SESSION_KEYS, read_attribution
from agentcost_core.routing.router import ROUTE_KEY

__all__ = ["ROUTE_TAG", "RUN_ID_TAG", "SESSION_KEYS", "attribution_from_tags", "route_from_tags", "run_id_from_tags"]

RUN_ID_TAG = "llamaindex.run_id"
ROUTE_TAG = ROUTE_KEY  # "agentcost_route"


def run_id_from_tags(tags: dict[str, Any] | None) -> str | None:
    """The workflow run the call belongs to (``llamaindex.run_id``), or None."""
    run_id = tags.get(RUN_ID_TAG) if tags else None
    return None if run_id in (None, "") else str(run_id)


def route_from_tags(tags: dict[str, Any] | None) -> dict[str, Any] | None:
    """The routing decision a ``RouterLLM`` attached to this call (its ``Router.metadata``), or None."""
    if not tags:
        return None
    route = tags.get(ROUTE_TAG)
    return route if isinstance(route, dict) else None


def attribution_from_tags(tags: dict[str, Any] | None) -> tuple[dict[str, str | None], str | None]:
    """``(the attribution the tags set, as keywords, run id)``, read by the core's reader."""
    found = {k: v for k, v in read_attribution(tags).as_dict().items() if v is not None}
    return found, run_id_from_tags(tags)
