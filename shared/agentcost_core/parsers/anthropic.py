"""Anthropic Messages usage.

Anthropic's ``input_tokens`` EXCLUDES ``cache_read_input_tokens`` and
``cache_creation_input_tokens``; the latter may be split by TTL in
``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``.
In a stream, ``message_start`` carries the input side and ``message_delta`` the
cumulative output (and, on newer API versions, cumulative input fields too).

A usage with ``iterations`` (one entry per sampling iteration of a server-side tool loop, per
context compaction, per advisor sub-inference, per fallback-model attempt; each with its own
counts and, for advisor / fallback entries, the ``model`` that ran it) is billed as the sum of its
iterations: compaction entries are not in the top-level counts. It parses to an
:class:`~agentcost_core.usage.IteratedUsage` whose iterations the accountant prices one by one.

Server-side tools are billed per request on top of the tokens: ``usage.server_tool_use`` counts
them (``web_search_requests``, ``web_fetch_requests``); :func:`server_tools` reads those counts.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError
from ..usage import IteratedUsage, Usage
from ._fields import fields, tokens

_REQUESTS = "_requests"


def from_anthropic(usage: Any) -> Usage | None:
    """``Message.usage`` (object or dict); None when absent."""
    if usage is None:
        return None
    u = fields(usage)
    iterations = u.get("iterations")
    if iterations:
        return _from_iterations(u, iterations)
    return _counts(u, "anthropic usage")


def _counts(u: Any, where: str) -> Usage:
    creation_total = tokens(u, "cache_creation_input_tokens", where)
    split = fields(u.get("cache_creation"))
    w5 = tokens(split, "ephemeral_5m_input_tokens", where + ".cache_creation")
    w1 = tokens(split, "ephemeral_1h_input_tokens", where + ".cache_creation")
    if w5 + w1 == 0:
        w5 = creation_total  # no TTL split reported: the default TTL is 5 minutes
    output = tokens(u, "output_tokens", where)
    odet = fields(u.get("output_tokens_details"))
    reasoning = min(tokens(odet, "thinking_tokens", where + ".output_tokens_details"), output)
    return Usage(
        input=tokens(u, "input_tokens", where),
        cache_read=tokens(u, "cache_read_input_tokens", where),
        cache_write_5m=w5,
        cache_write_1h=w1,
        output=output,
        reasoning=reasoning,
    )


def _from_iterations(u: Any, iterations: Any) -> IteratedUsage:
    if not isinstance(iterations, (list, tuple)):
        raise UsageFormatError(f"anthropic usage.iterations must be a list, got {type(iterations).__name__}")
    parts = []
    for i, item in enumerate(iterations):
        it = fields(item)
        kind, model = it.get("type"), it.get("model")
        parts.append((
            kind if isinstance(kind, str) else None,
            model if isinstance(model, str) and model else None,
            _counts(it, f"anthropic usage.iterations[{i}]"),
        ))  # fmt: skip
    odet = fields(u.get("output_tokens_details"))
    return IteratedUsage(
        tuple(parts), reasoning=tokens(odet, "thinking_tokens", "anthropic usage.output_tokens_details")
    )


def merge_stream_usage(start: Any, delta: Any) -> Usage | None:
    """Combine ``message_start.message.usage`` with the final ``message_delta.usage``.

    The delta's counts are cumulative; input fields it repeats win over the start's.
    """
    if start is None and delta is None:
        return None
    merged: dict[str, Any] = {}
    for part in (start, delta):
        if part is None:
            continue
        data = part if isinstance(part, dict) else part.model_dump() if hasattr(part, "model_dump") else vars(part)
        for k, v in data.items():
            if v is not None:
                merged[k] = v
    return from_anthropic(merged)


def server_tools(usage: Any) -> dict[str, int] | None:
    """The server-side tool requests of ``usage.server_tool_use``, by tool: ``{"web_search": 3}``
    for ``web_search_requests: 3`` (every ``<tool>_requests`` count). None when there are none;
    a count that is not a positive integer is left out (the tokens are still read)."""
    if usage is None:
        return None
    use = fields(usage).get("server_tool_use")
    if use is None:
        return None
    use = fields(use)
    if not isinstance(use, dict):
        return None
    counts = {
        key[: -len(_REQUESTS)]: n
        for key, n in use.items()
        if isinstance(key, str) and key.endswith(_REQUESTS) and type(n) is int and n > 0
    }
    return counts or None
