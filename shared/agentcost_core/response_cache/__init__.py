"""Response cache: pay once for the same answer.

An exact layer (key over model, messages, tools and every output-changing
parameter), scoped by attribution keys, with memory, SQLite and Redis backends,
and an opt-in semantic layer. Hits are recorded as events with ``cache_hit=True``
and ``saved`` set; the budget is not charged for them.
"""
