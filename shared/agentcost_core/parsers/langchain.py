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
from .openai import PRICED_TIERS

_TIER_KEYS = tuple((tier, (tier, f"{tier}_cache_read", f"{tier}_reasoning")) for tier in PRICED_TIERS)


def service_tier_of(usage_metadata: Any) -> str | None:
    """The OpenAI service tier a LangChain ``usage_metadata`` reveals by its key prefixes."""
    for details in (field(usage_metadata, "input_token_details"), field(usage_metadata, "output_token_details")):
        if details and (type(details) is not dict or not details.keys() <= _PLAIN_KEYS):
            for tier, keys in _TIER_KEYS:
                for k in keys:
                    if k in details:
                        return tier
    return None


_PLAIN_KEYS = frozenset({"cache_read", "cache_creation", "reasoning", "audio"})


def from_usage_metadata(usage_metadata: Any) -> Usage | None:
    """Translate LangChain ``UsageMetadata`` into non-overlapping buckets."""
    return usage_and_tier(usage_metadata)[0]


def usage_and_tier(usage_metadata: Any) -> tuple[Usage | None, str | None]:
    """:func:`from_usage_metadata` and the service tier its keys reveal (read once)."""
    if usage_metadata is None:
        return None, None
    where = "usage_metadata"
    if isinstance(usage_metadata, (str, bytes, int, float, list, tuple, set)):
        raise UsageFormatError(f"{where} must be a mapping of token counts, got {type(usage_metadata).__name__}")
    if not usage_metadata:
        return None, None
    if field(usage_metadata, "input_tokens") is None and field(usage_metadata, "output_tokens") is None:
        raise UsageFormatError(f"{where} has neither input_tokens nor output_tokens (only {_keys(usage_metadata)})")
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
    usage = Usage(
        input=total_in - cache_read - w5 - w1,
        cache_read=cache_read,
        cache_write_5m=w5,
        cache_write_1h=w1,
        output=output,
        reasoning=reasoning,
    )
    return usage, tier


def _keys(obj: Any) -> str:
    keys = list(obj.keys()) if hasattr(obj, "keys") else [k for k in dir(obj) if not k.startswith("_")]
    return ", ".join(map(str, keys[:8])) or "nothing"
