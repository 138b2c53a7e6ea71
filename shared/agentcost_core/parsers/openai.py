"""OpenAI usage: Chat Completions and Responses API.

OpenAI's ``prompt_tokens`` / ``input_tokens`` INCLUDE the cached tokens reported in
``*_tokens_details.cached_tokens``; ``completion_tokens`` / ``output_tokens`` include reasoning.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import count, field


def _split(total_in: int, cached: int, written: int, output: int, reasoning: int, where: str) -> Usage:
    if cached + written > total_in:
        raise UsageFormatError(
            f"{where}: cached ({cached}) + cache-write ({written}) tokens exceed the prompt tokens ({total_in})"
        )
    if reasoning > output:
        raise UsageFormatError(f"{where}: reasoning tokens ({reasoning}) exceed output tokens ({output})")
    return Usage(
        input=total_in - cached - written,
        cache_read=cached,
        cache_write_5m=written,
        output=output,
        reasoning=reasoning,
    )


PRICED_TIERS = ("flex", "priority")  # "default" / "standard" / "auto" are the list price


def from_chat_completions(usage: Any) -> Usage | None:
    """``ChatCompletion.usage`` (object or dict); None when the response carries no usage."""
    if usage is None:
        return None
    where = "openai usage"
    prompt = count(usage, "prompt_tokens", where)
    pdet = field(usage, "prompt_tokens_details")
    cdet = field(usage, "completion_tokens_details")
    return _split(
        prompt,
        count(pdet, "cached_tokens", where + ".prompt_tokens_details"),
        count(pdet, "cache_write_tokens", where + ".prompt_tokens_details"),
        count(usage, "completion_tokens", where),
        count(cdet, "reasoning_tokens", where + ".completion_tokens_details"),
        where,
    )


def from_responses(usage: Any) -> Usage | None:
    """``Response.usage`` of the Responses API (object or dict)."""
    if usage is None:
        return None
    where = "openai responses usage"
    idet = field(usage, "input_tokens_details")
    odet = field(usage, "output_tokens_details")
    return _split(
        count(usage, "input_tokens", where),
        count(idet, "cached_tokens", where + ".input_tokens_details"),
        count(idet, "cache_write_tokens", where + ".input_tokens_details"),
        count(usage, "output_tokens", where),
        count(odet, "reasoning_tokens", where + ".output_tokens_details"),
        where,
    )


def from_openai(usage: Any) -> Usage | None:
    """Either OpenAI shape, told apart by its keys."""
    if usage is None:
        return None
    if field(usage, "prompt_tokens") is not None or field(usage, "completion_tokens") is not None:
        return from_chat_completions(usage)
    return from_responses(usage)
