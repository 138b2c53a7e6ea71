"""An Anthropic Messages response whose ``usage.iterations`` itemises a compaction, two sampling
iterations and an advisor sub-inference on another model (the shape of anthropic's
``BetaUsage.iterations``: ``message`` / ``compaction`` / ``advisor_message`` / ``fallback_message``
entries, each with its own counts and cache split). Shared by the core, LangChain and LlamaIndex tests.

Hand-computed at the list prices per 1M tokens (asserted by the tests from the catalog):
claude-sonnet-4-6 input 3, output 15, cache read 0.30, 5m write 3.75, 1h write 6; claude-opus-4-6
input 5, output 25.

* compaction (sonnet):  40,000 × 3 + 3,000 × 15                                   = 165,000
* message (sonnet):      1,500 × 3 + 8,000 × 0.30 + 500 (1h) × 6 + 400 × 15      =  15,900
* advisor (opus):        3,000 × 5 + 600 × 25                                     =  30,000
* message (sonnet):      2,000 × 3 + 10,000 × 0.30 + 1,000 (5m) × 3.75 + 800 × 15 = 24,750

Total 235,650 / 1M = $0.23565; the top-level counts (the last iteration) alone give $0.02475.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MODEL = "claude-sonnet-4-6"
ADVISOR = "claude-opus-4-6"
COST = Decimal("0.23565")
TOP_LEVEL_ONLY_COST = Decimal("0.02475")
ITERATION_COSTS = ["0.165", "0.0159", "0.03", "0.02475"]
SUM = {"input": 46_500, "cache_read": 18_000, "cache_write_5m": 1_000, "cache_write_1h": 500, "output": 4_800}
LIST_PRICES = {
    MODEL: {"input": "3", "output": "15", "cache_read": "0.3", "cache_write_5m": "3.75", "cache_write_1h": "6"},
    ADVISOR: {"input": "5", "output": "25"},
}


def _iteration(kind: str, input_tokens: int, output_tokens: int, *, cache_read: int = 0, w5: int = 0, w1: int = 0,
               model: str | None = None) -> dict[str, Any]:  # fmt: skip
    it: dict[str, Any] = {
        "type": kind,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": w5 + w1,
        "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
    }
    if model is not None:
        it["model"] = model
    return it


def usage() -> dict[str, Any]:
    """``usage`` of the response: top-level counts of the last iteration, then ``iterations``."""
    return {
        "input_tokens": 2_000,
        "output_tokens": 800,
        "cache_read_input_tokens": 10_000,
        "cache_creation_input_tokens": 1_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
        "iterations": [
            _iteration("compaction", 40_000, 3_000),
            _iteration("message", 1_500, 400, cache_read=8_000, w1=500),
            _iteration("advisor_message", 3_000, 600, model=ADVISOR),
            _iteration("message", 2_000, 800, cache_read=10_000, w5=1_000),
        ],
    }


def message(model: str = MODEL, text: str = "Summary written.") -> dict[str, Any]:
    """The whole Messages API response body."""
    return {
        "id": "msg_01IterationsMock",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage(),
    }
