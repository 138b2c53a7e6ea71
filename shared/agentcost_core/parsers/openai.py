"""OpenAI usage: Chat Completions and Responses API.

OpenAI's ``prompt_tokens`` / ``input_tokens`` INCLUDE the cached tokens reported in
``*_tokens_details.cached_tokens``; ``completion_tokens`` / ``output_tokens`` include reasoning.
Cache writes (``cache_write_tokens``) are short retention (``cache_write_5m``) unless
``cache_write_tokens_details`` splits them by retention: the extended (24h) retention part is
``cache_write_1h``, billed at the extended-retention write rate where the price data has one.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import fields, tokens


def _retention_split(details: Any, written: int, where: str) -> tuple[int, int]:
    """(short, long) retention cache writes from ``cache_write_tokens_details``: a key naming the
    extended retention ("24h", "extended", "long") is a long-retention count, any other key a short
    one; ``written`` (``cache_write_tokens``), when given, is the total and the short part its rest."""
    split = fields(details)
    long = short = 0
    for key in split:
        n = tokens(split, key, where)
        if "24h" in key or "extended" in key or "long" in key:
            long += n
        else:
            short += n
    if not written:
        return short, long
    if long > written:
        raise UsageFormatError(f"{where}: long-retention writes ({long}) exceed cache_write_tokens ({written})")
    return written - long, long


def _split(total_in: int, cached: int, written: int, output: int, reasoning: int, where: str,
           details: Any = None, details_where: str = "") -> Usage:  # fmt: skip
    written_long = 0
    if details:  # the retention split of the cache writes: long retention is billed at its own rate
        written, written_long = _retention_split(details, written, details_where + ".cache_write_tokens_details")
    written_total = written + written_long
    if cached + written_total > total_in:
        raise UsageFormatError(
            f"{where}: cached ({cached}) + cache-write ({written_total}) tokens exceed the prompt tokens ({total_in})"
        )
    if reasoning > output:
        raise UsageFormatError(f"{where}: reasoning tokens ({reasoning}) exceed output tokens ({output})")
    return Usage(
        input=total_in - cached - written_total,
        cache_read=cached,
        cache_write_5m=written,
        cache_write_1h=written_long,
        output=output,
        reasoning=reasoning,
    )


# Where a malformed count sits, for the error message.
_CHAT = "openai usage"
_CHAT_PROMPT = _CHAT + ".prompt_tokens_details"
_CHAT_COMPLETION = _CHAT + ".completion_tokens_details"
_RESPONSES = "openai responses usage"
_RESPONSES_INPUT = _RESPONSES + ".input_tokens_details"
_RESPONSES_OUTPUT = _RESPONSES + ".output_tokens_details"

PRICED_TIERS = ("flex", "priority")  # "default" / "standard" / "auto" are the list price


def from_chat_completions(usage: Any) -> Usage | None:
    """``ChatCompletion.usage`` (object or dict); None when the response carries no usage."""
    if usage is None:
        return None
    where = _CHAT
    u = fields(usage)
    pdet = fields(u.get("prompt_tokens_details"))
    cdet = fields(u.get("completion_tokens_details"))
    return _split(
        tokens(u, "prompt_tokens", where),
        tokens(pdet, "cached_tokens", _CHAT_PROMPT),
        tokens(pdet, "cache_write_tokens", _CHAT_PROMPT),
        tokens(u, "completion_tokens", where),
        tokens(cdet, "reasoning_tokens", _CHAT_COMPLETION),
        where,
        pdet.get("cache_write_tokens_details"),
        _CHAT_PROMPT,
    )


def from_responses(usage: Any) -> Usage | None:
    """``Response.usage`` of the Responses API (object or dict)."""
    if usage is None:
        return None
    where = _RESPONSES
    u = fields(usage)
    idet = fields(u.get("input_tokens_details"))
    odet = fields(u.get("output_tokens_details"))
    return _split(
        tokens(u, "input_tokens", where),
        tokens(idet, "cached_tokens", _RESPONSES_INPUT),
        tokens(idet, "cache_write_tokens", _RESPONSES_INPUT),
        tokens(u, "output_tokens", where),
        tokens(odet, "reasoning_tokens", _RESPONSES_OUTPUT),
        where,
        idet.get("cache_write_tokens_details"),
        _RESPONSES_INPUT,
    )


_EMBEDDINGS = "openai embeddings usage"


def from_embeddings(usage: Any) -> Usage | None:
    """``CreateEmbeddingResponse.usage`` (object or dict): ``prompt_tokens`` is the whole input;
    an embedding has no output. None when the response carries no usage."""
    if usage is None:
        return None
    return Usage(input=tokens(fields(usage), "prompt_tokens", _EMBEDDINGS))


def from_openai(usage: Any) -> Usage | None:
    """Either OpenAI shape, told apart by its keys."""
    if usage is None:
        return None
    u = fields(usage)
    if u.get("prompt_tokens") is not None or u.get("completion_tokens") is not None:
        return from_chat_completions(u)
    return from_responses(u)
