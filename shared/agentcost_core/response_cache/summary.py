"""What ``agentcost report`` says about caching: hits and dollars saved per cache layer.

Summed from the window's cache-hit events (``extra["cache"]`` names the layer: ``exact``,
``semantic``, ``coalesced``, ``tool``; a hit of another LLM cache, e.g. LangChain's
``InMemoryCache`` seen by a cost handler, is ``llm-cache``). The report reads them only when the
rollup found hits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ..events import CostEvent

__all__ = ["CacheSummary", "LayerSummary", "cache_summary", "summary_lines"]


@dataclass
class LayerSummary:
    hits: int = 0
    saved: Decimal = field(default_factory=Decimal)


@dataclass
class CacheSummary:
    """Hits and savings per layer, in first-seen order."""

    layers: dict[str, LayerSummary] = field(default_factory=dict)

    @property
    def saved(self) -> Decimal:
        return sum((s.saved for s in self.layers.values()), Decimal(0))


def cache_summary(hits: Iterable[CostEvent]) -> CacheSummary:
    """Sum the cache-hit events ``hits`` per layer (other events are skipped)."""
    out = CacheSummary()
    for e in hits:
        if not e.cache_hit:
            continue
        layer = (e.extra or {}).get("cache") or "llm-cache"
        s = out.layers.setdefault(str(layer), LayerSummary())
        s.hits += 1
        if e.saved:
            s.saved += e.saved
    return out


def summary_lines(summary: CacheSummary, calls: int, money: object = str) -> list[str]:
    """One line per layer: hits, hit rate over ``calls`` (every call in the report's window, hits
    included), dollars saved; then the total saved."""
    if not summary.layers:
        return []
    lines = []
    for layer, s in summary.layers.items():
        rate = f"{100 * s.hits / calls:.1f}%" if calls else "—"
        lines.append(f"response cache [{layer}]: {s.hits:,} hits ({rate} of {calls:,} calls), {money(s.saved)} saved")  # type: ignore[operator]
    if len(summary.layers) > 1:
        lines.append(f"response cache, all layers: {money(summary.saved)} saved")  # type: ignore[operator]
    return lines
