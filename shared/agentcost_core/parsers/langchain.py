"""LangChain ``usage_metadata`` (a plain dict; no LangChain import needed).

``input_tokens`` is the SUM of every input type; the details split it:
``cache_read``, ``cache_creation`` (or its TTL split ``ephemeral_5m_input_tokens`` /
``ephemeral_1h_input_tokens``; langchain-anthropic zeroes ``cache_creation`` when it reports
the split). With OpenAI's ``service_tier`` flex or priority, langchain-openai prefixes the
details (``flex_cache_read``, ``priority_reasoning``) and adds the tier's own bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import tokens
from .anthropic import from_anthropic
from .openai import PRICED_TIERS

_TIER_KEYS = tuple((tier, (tier, f"{tier}_cache_read", f"{tier}_reasoning")) for tier in PRICED_TIERS)
_PLAIN_KEYS = frozenset({"cache_read", "cache_creation", "reasoning", "audio"})
_EMPTY: Mapping[str, Any] = {}
_WHERE = "usage_metadata"
_IN = "usage_metadata.input_token_details"
_OUT = "usage_metadata.output_token_details"


def _tier_of(*details: Mapping[str, Any]) -> str | None:
    for d in details:
        if d and not d.keys() <= _PLAIN_KEYS:  # only service-tier prefixes add other keys
            for tier, keys in _TIER_KEYS:
                for k in keys:
                    if k in d:
                        return tier
    return None


def service_tier_of(usage_metadata: Any) -> str | None:
    """The OpenAI service tier a LangChain ``usage_metadata`` reveals by its key prefixes."""
    if not isinstance(usage_metadata, Mapping):
        return None
    idet, odet = usage_metadata.get("input_token_details"), usage_metadata.get("output_token_details")
    return _tier_of(*(d for d in (idet, odet) if isinstance(d, Mapping)))


def from_usage_metadata(usage_metadata: Any) -> Usage | None:
    """Translate LangChain ``UsageMetadata`` into non-overlapping buckets."""
    return usage_and_tier(usage_metadata)[0]


def usage_and_tier(usage_metadata: Any) -> tuple[Usage | None, str | None]:
    """:func:`from_usage_metadata` and the service tier its keys reveal, in one reading.

    ``usage_metadata`` is the mapping LangChain puts on an AI message; anything else (a list, a
    string, a number), a mapping with neither ``input_tokens`` nor ``output_tokens`` (e.g. only
    ``total_tokens``) and counts that are not non-negative integers raise :class:`UsageFormatError`.
    """
    um = usage_metadata
    if um is None:
        return None, None
    if not _is_mapping(um):
        raise UsageFormatError(f"{_WHERE} must be a mapping of token counts, got {type(um).__name__}")
    if not um:
        return None, None
    if um.get("input_tokens") is None and um.get("output_tokens") is None:
        raise UsageFormatError(f"{_WHERE} has neither input_tokens nor output_tokens (only {_keys(um)})")
    total_in = tokens(um, "input_tokens", _WHERE)
    output = tokens(um, "output_tokens", _WHERE)
    idet = um.get("input_token_details") or _EMPTY
    odet = um.get("output_token_details") or _EMPTY
    if not _is_mapping(idet) or not _is_mapping(odet):
        raise UsageFormatError(f"{_WHERE}: token details must be mappings")
    tier = _tier_of(idet, odet)
    cache_read = w5 = w1 = reasoning = 0
    if idet:
        cache_read = _detail(idet, "cache_read", tier, _IN)
        w5 = tokens(idet, "ephemeral_5m_input_tokens", _IN)
        w1 = tokens(idet, "ephemeral_1h_input_tokens", _IN)
        if w5 + w1 == 0:
            w5 = _detail(idet, "cache_creation", tier, _IN)
    if odet:
        reasoning = _detail(odet, "reasoning", tier, _OUT)
    if cache_read + w5 + w1 > total_in:
        raise UsageFormatError(
            f"{_WHERE}: cache read ({cache_read}) + cache write ({w5 + w1}) tokens exceed input_tokens ({total_in})"
        )
    if reasoning > output:
        raise UsageFormatError(f"{_WHERE}: reasoning tokens ({reasoning}) exceed output_tokens ({output})")
    usage = Usage(
        input=total_in - cache_read - w5 - w1,
        cache_read=cache_read,
        cache_write_5m=w5,
        cache_write_1h=w1,
        output=output,
        reasoning=reasoning,
    )
    return usage, tier


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _detail(details: Mapping[str, Any], key: str, tier: str | None, where: str) -> int:
    """A detail's tokens: under the tier's prefix (``priority_reasoning``) when the tier uses
    one, else under the plain key."""
    if tier:
        found = tokens(details, f"{tier}_{key}", where)
        if found:
            return found
    return tokens(details, key, where)


def _keys(obj: Mapping[str, Any]) -> str:
    return ", ".join(map(str, list(obj.keys())[:8])) or "nothing"


def iterated_usage(response_metadata: Mapping[str, Any]) -> Usage | None:
    """The provider's own usage when it itemises iterations LangChain's ``usage_metadata`` drops:
    langchain-anthropic keeps the Messages API ``usage`` (with its ``iterations``) in
    ``response_metadata["usage"]``, while ``usage_metadata`` has the top-level counts only."""
    raw = response_metadata.get("usage")
    if isinstance(raw, Mapping) and raw.get("iterations"):
        return from_anthropic(raw)
    return None
