"""How a :class:`~agentcost_llamaindex.CachedLLM` hit reaches the cost handlers: one record, never two.

A hit calls no LLM, so LlamaIndex would report nothing. The cache reports it the way LlamaIndex
reports a call: in a span of its own, a start event, then an end event carrying the served response,
whose ``additional_kwargs`` hold :data:`MARKER` (the core's :func:`~agentcost_core.response_cache.
hit_marker`: layer, the stored call's model and usage, and whether the cache recorded it itself).

Who records it: a :class:`~agentcost_llamaindex.CostEventHandler` that sees the call start notes the
call's span id here (:func:`note_handled`, in the caller's context: the dispatcher calls handlers
inline). The cache asks :func:`handled` between the two events: noted → the handler records the hit
from the end event (cost $0, ``saved``, ``extra["cache"]``, with the call's attribution, trace and
step); not noted → the cache records it itself and the marker says so, and a handler seeing the end
anyway (attached in between) leaves it out.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["MARKER", "handled", "marker_of", "note_handled"]

#: Where a served response says which cache layer answered it (in its ``additional_kwargs``).
MARKER = "agentcost_cache"

#: The span id of the LLM call a cost handler saw start in this context (it records that call).
_handled: ContextVar[str | None] = ContextVar("agentcost_llamaindex_cache_handled", default=None)


def note_handled(span_id: str | None) -> None:
    """Called by the cost handlers as an LLM call starts: they record that call, a hit included."""
    _handled.set(span_id)


def handled(span_id: str | None) -> bool:
    """Whether a cost handler saw the call of ``span_id`` start (and so records it)."""
    return span_id is not None and _handled.get() == span_id


def marker_of(response: Any) -> dict[str, Any] | None:
    """The cache marker of a served response, or None (a provider's response)."""
    extra = getattr(response, "additional_kwargs", None)
    marker = extra.get(MARKER) if isinstance(extra, dict) else None
    return marker if isinstance(marker, dict) else None
