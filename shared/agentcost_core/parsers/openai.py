"""OpenAI usage: Chat Completions and Responses API.

OpenAI's ``prompt_tokens`` / ``input_tokens`` INCLUDE the cached tokens reported in
``*_tokens_details.cached_tokens``; ``completion_tokens`` / ``output_tokens`` include reasoning.
Cache writes (``*_tokens_details.cache_write_tokens``, gpt-5.6 and later) are one bucket,
``cache_write_5m``, billed at the model's cache-write price (1.25x input): OpenAI bills both
prompt-cache retentions (``in_memory`` and ``24h``, a request setting echoed on the response, not
part of usage) at the same price, and usage has no per-retention split.

Server-side tools of the Responses API are billed per call on top of the tokens; each call is an
item of the response's ``output`` (``web_search_call``, ``file_search_call``), which
:func:`responses_server_tools` counts.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import field, fields, tokens


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


#: Responses API output items that are server-side tool calls billed per call → the tool's name.
SERVER_TOOL_ITEMS = {"web_search_call": "web_search", "file_search_call": "file_search"}
_SERVER_TOOLS = frozenset(SERVER_TOOL_ITEMS.values())


def responses_server_tools(output: Any) -> dict[str, int] | None:
    """How many server-side tool calls a Responses ``output`` (its list of items, objects or
    dicts) made, by tool: ``{"web_search": 2}``. LangChain's content blocks of a Responses message
    are the same items (and, in its ``v1`` output, ``server_tool_call`` blocks naming the tool).
    None when there are none."""
    if not isinstance(output, (list, tuple)):
        return None
    counts: dict[str, int] = {}
    for item in output:
        kind = field(item, "type")
        name = SERVER_TOOL_ITEMS.get(kind) if isinstance(kind, str) else None
        if name is None and kind == "server_tool_call":
            named = field(item, "name")
            name = named if named in _SERVER_TOOLS else None
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts or None
