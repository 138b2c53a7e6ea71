"""Attribution read from LlamaIndex ``instrument_tags``.

Users tag the way LlamaIndex taught them::

    from llama_index.core.instrumentation.dispatcher import instrument_tags
    with instrument_tags({"user_id": "u1", "session_id": "s9", "feature": "support"}):
        await agent.run("...")

Tags override the handler's constructor defaults. ``thread_id`` / ``conversation_id`` are accepted
for ``session_id``. Workflows tag every event of a run with ``llamaindex.run_id``: that is the
event's ``trace_id`` (otherwise the id of the outermost span). A ``RouterLLM`` tags the call it
routes with its decision under ``agentcost_route`` (:func:`route_from_tags`).
"""

from __future__ import annotations

from typing import Any

from agentcost_core.routing.router import ROUTE_KEY

__all__ = ["ROUTE_TAG", "RUN_ID_TAG", "SESSION_KEYS", "attribution_from_tags", "route_from_tags"]

RUN_ID_TAG = "llamaindex.run_id"
ROUTE_TAG = ROUTE_KEY  # "agentcost_route"
SESSION_KEYS = ("session_id", "thread_id", "conversation_id")
_SIMPLE = ("user_id", "feature", "agent_id", "task_id")
_NONE: dict[str, Any] = {}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def attribution_from_tags(tags: dict[str, Any] | None) -> tuple[dict[str, str | None], str | None]:
    """``(attribution kwargs for CostRecorder.record, run id)``; empty when no tags are set."""
    if not tags:
        return _NONE, None
    out: dict[str, str | None] = {}
    for key in _SIMPLE:
        value = tags.get(key)
        if value is not None:
            out[key] = _text(value)
    for key in SESSION_KEYS:
        value = tags.get(key)
        if value is not None:
            out["session_id"] = _text(value)
            break
    return out, _text(tags.get(RUN_ID_TAG))


def route_from_tags(tags: dict[str, Any] | None) -> dict[str, Any] | None:
    """The routing decision a ``RouterLLM`` attached to this call (its ``Router.metadata``), or None."""
    if not tags:
        return None
    route = tags.get(ROUTE_TAG)
    return route if isinstance(route, dict) else None
