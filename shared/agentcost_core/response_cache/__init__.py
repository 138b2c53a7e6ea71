"""Response cache: pay once for the same answer.

An exact layer (key over model, messages, tools and every output-changing parameter), scoped by
attribution keys, with memory, SQLite and Redis backends, and an opt-in semantic layer. Hits are
recorded as events with ``cache_hit=True`` and ``saved`` set; the budget is not charged for them.
The framework faces are ``agentcost_langchain.ResponseCache`` and ``agentcost_llamaindex.CachedLLM``.
"""

from .backends import CacheBackend, default_cache_url, open_cache_backend
from .engine import CacheEngine
from .entries import CacheEntry, CacheHit, CacheRequest
from .keys import context_fingerprint, exact_key, scope_of
from .parts import CacheParts, SharedResponse, flight_key
from .served import hit_marker, hit_outcome, marker_outcome
from .stats import CacheStats, LayerStats

__all__ = [
    "CacheBackend",
    "CacheEngine",
    "CacheEntry",
    "CacheHit",
    "CacheParts",
    "CacheRequest",
    "CacheStats",
    "LayerStats",
    "SharedResponse",
    "context_fingerprint",
    "default_cache_url",
    "exact_key",
    "flight_key",
    "hit_marker",
    "hit_outcome",
    "marker_outcome",
    "open_cache_backend",
    "scope_of",
]
