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


def plain_usage(um: Any) -> Usage | None:
    """The common shapes (a plain dict of ints, no service-tier prefixes) without per-field
    probing; None defers to :func:`usage_and_tier` for anything else (other types, tier keys,
    unknown keys, inconsistent counts, which the general path names)."""
    if type(um) is not dict:
        return None
    total_in = um.get("input_tokens", 0)
    output = um.get("output_tokens", 0)
    idet = um.get("input_token_details") or _EMPTY
    odet = um.get("output_token_details") or _EMPTY
    if type(total_in) is not int or type(output) is not int or type(idet) is not dict or type(odet) is not dict:
        return None
    if not (idet.keys() <= _KNOWN_INPUT_KEYS and odet.keys() <= _KNOWN_OUTPUT_KEYS):
        return None  # service-tier prefixes or keys we do not know: the general path decides
    cache_read = idet.get("cache_read") or 0
    w5 = idet.get("ephemeral_5m_input_tokens") or 0
    w1 = idet.get("ephemeral_1h_input_tokens") or 0
    if not (w5 or w1):
        w5 = idet.get("cache_creation") or 0
    reasoning = odet.get("reasoning") or 0
    if type(cache_read) is not int or type(w5) is not int or type(w1) is not int or type(reasoning) is not int:
        return None
    rest = total_in - cache_read - w5 - w1
    if rest < 0 or cache_read < 0 or w5 < 0 or w1 < 0 or output < 0 or reasoning < 0 or reasoning > output:
        return None  # the general path names the problem
    return Usage(rest, cache_read, w5, w1, output, reasoning)


_EMPTY: dict[str, Any] = {}
_KNOWN_INPUT_KEYS = frozenset({"cache_read", "cache_creation", "ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "audio"})
_KNOWN_OUTPUT_KEYS = frozenset({"reasoning", "audio"})


def from_usage_metadata(usage_metadata: Any) -> Usage | None:
    """Translate LangChain ``UsageMetadata`` into non-overlapping buckets."""
    if not usage_metadata:
        return None
    fast = plain_usage(usage_metadata)
    if fast is not None:
        return fast
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


def usage_and_tier(usage_metadata: Any) -> tuple[Usage | None, str | None]:
    """:func:`from_usage_metadata` and :func:`service_tier_of` in one pass (the hot path's form:
    the common shape has no tier keys, so it skips the tier probe)."""
    fast = plain_usage(usage_metadata)
    if fast is not None:
        return fast, None
    return from_usage_metadata(usage_metadata), service_tier_of(usage_metadata)
