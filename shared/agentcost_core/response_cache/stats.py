"""Hit, miss and error counts per cache layer (exact, semantic), safe across threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["CacheStats", "LayerStats"]


@dataclass(slots=True)
class LayerStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0


class CacheStats:
    """Counts per layer; ``errors`` are failed lookups and stores (each lookup failure is also a miss)."""

    LAYERS = ("exact", "semantic")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._layers = {name: LayerStats() for name in self.LAYERS}

    def count(self, layer: str, what: str) -> None:
        with self._lock:
            stats = self._layers[layer]
            setattr(stats, what, getattr(stats, what) + 1)

    def __getitem__(self, layer: str) -> LayerStats:
        with self._lock:
            s = self._layers[layer]
            return LayerStats(s.hits, s.misses, s.errors)

    def as_dict(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {n: {"hits": s.hits, "misses": s.misses, "errors": s.errors} for n, s in self._layers.items()}

    def __repr__(self) -> str:
        return f"CacheStats({self.as_dict()})"
