"""LangChain ``usage_metadata`` (a plain dict; no LangChain import needed).

``input_tokens`` is the SUM of every input type; the details split it:
``cache_read``, ``cache_creation`` (or its TTL split ``ephemeral_5m_input_tokens`` /
``ephemeral_1h_input_tokens``; langchain-anthropic zeroes ``cache_creation`` when it reports
the split). With OpenAI's ``service_tier`` flex or priority, langchain-openai prefixes the
details (``flex_cache_read``, ``priority_reasoning``) and adds the tier's own bucket.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import count, field

_TIERS = ("flex", "priority")


def service_tier_of(usage_metadata: Any) -> str | None:
    """The OpenAI service tier a LangChain ``usage_metadata`` reveals by its key prefixes."""
    for details in (field(usage_metadata, "input_token_details"), field(usage_metadata, "output_token_details")):
        if details:
            for tier in _TIERS:
                if tier in details or f"{tier}_cache_read" in details or f"{tier}_reasoning" in details:
                    return tier
    return None


def from_usage_metadata(usage_metadata: Any) -> Usage | None:
    """Translate LangChain ``UsageMetadata`` into non-overlapping buckets."""
    if not usage_metadata:
        return None
    where = "usage_metadata"
    total_in = count(usage_metadata, "input_tokens", where)
    output = count(usage_metadata, "output_tokens", where)
    idet = field(usage_metadata, "input_token_details") or {}
    odet = field(usage_metadata, "output_token_details") or {}
    tier = service_tier_of(usage_metadata)
    p = f"{tier}_" if tier else ""
    iw = where + ".input_token_details"
    cache_read = count(idet, p + "cache_read", iw) or count(idet, "cache_read", iw)
    w5 = count(idet, "ephemeral_5m_input_tokens", iw)
    w1 = count(idet, "ephemeral_1h_input_tokens", iw)
    if w5 + w1 == 0:
        w5 = count(idet, p + "cache_creation", iw) or count(idet, "cache_creation", iw)
    reasoning = count(odet, p + "reasoning", where + ".output_token_details") or count(
        odet, "reasoning", where + ".output_token_details"
    )
    if cache_read + w5 + w1 > total_in:
        raise UsageFormatError(
            f"{where}: cache read ({cache_read}) + cache write ({w5 + w1}) tokens exceed input_tokens ({total_in})"
        )
    if reasoning > output:
        raise UsageFormatError(f"{where}: reasoning tokens ({reasoning}) exceed output_tokens ({output})")
    return Usage(
        input=total_in - cache_read - w5 - w1,
        cache_read=cache_read,
        cache_write_5m=w5,
        cache_write_1h=w1,
        output=output,
        reasoning=reasoning,
    )
