"""A hit as its call's :class:`~agentcost_core.call.Outcome`, and the marker a served response carries.

A hit is priced like the call it stands for, with ``cache_hit=True``: $0, ``saved`` = what the
stored call cost (its model and usage), ``extra={"cache": layer}`` (and a semantic hit's
``similarity``). Whoever records it — the cache itself, or a framework's cost handler that sees the
call — records this same outcome.

A face whose framework reports calls to cost handlers through the response (LlamaIndex's end
events) marks the served response with :func:`hit_marker`, a plain JSON-able dict: the layer, what
the stored call served (model, usage, so the handler can say what the hit saved) and whether the
cache ``recorded`` the hit itself (no handler saw the call start: the handler must not record it
again). The handler reads it back with :func:`marker_outcome`.
"""

from __future__ import annotations

from typing import Any

from ..call import Outcome
from ..usage import Usage
from .entries import CacheHit

__all__ = ["hit_marker", "hit_outcome", "marker_outcome"]


def _outcome(layer: Any, model: Any, usage: Usage | None, similarity: Any) -> Outcome:
    extra: dict[str, Any] = {"cache": layer}
    if isinstance(similarity, (int, float)):
        extra["similarity"] = round(similarity, 4)
    return Outcome(usage=usage or Usage(), model=model if isinstance(model, str) else None, cache_hit=True,
                   extra=extra, latency_s=0.0)  # fmt: skip


def hit_outcome(hit: CacheHit) -> Outcome:
    """The outcome of a call ``hit`` answered."""
    return _outcome(hit.layer, hit.entry.model, hit.entry.usage, hit.similarity)


def hit_marker(hit: CacheHit, *, recorded: bool) -> dict[str, Any]:
    """What a response served by ``hit`` says about it (JSON values only)."""
    usage = hit.entry.usage
    marker: dict[str, Any] = {"layer": hit.layer, "recorded": recorded, "model": hit.entry.model,
                              "usage": usage.as_dict() if usage is not None else None}  # fmt: skip
    if hit.similarity is not None:
        marker["similarity"] = hit.similarity
    return marker


def marker_outcome(marker: dict[str, Any]) -> Outcome:
    """The outcome of the call a response marked by :func:`hit_marker` stands for (raises on a
    marker that is not one)."""
    usage = marker.get("usage")
    return _outcome(marker["layer"], marker.get("model"), Usage(**usage) if usage else None, marker.get("similarity"))
