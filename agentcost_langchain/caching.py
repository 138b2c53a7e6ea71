"""Anthropic prompt-cache breakpoints on LangChain messages, and cache-breaker detection.

``ChatAnthropic`` sends a content block's ``cache_control`` to the API as it is, on system
blocks, message text blocks, and (hoisted from the first text block) on tool results. So marking
the stable prefix is a matter of turning the chosen messages' content into blocks::

    plan = context.fit(history)                       # system, pinned, summary first (plan.n_stable)
    messages = add_cache_breakpoints(messages, plan.n_stable, ttl="1h")
    detect_cache_breakers(detector, messages, plan.n_stable)   # timestamps, ids… in the prefix
    llm.invoke(messages)

The input list and its messages are never modified. Keep the marked copies out of your stored
history: marked again on the next turn they would pile up past Anthropic's 4 breakpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentcost_core.context.caching import CacheBreaker, CacheBreakerDetector, cache_breakpoint_indices
from agentcost_core.errors import ConfigurationError

from .messages import to_chat_message

__all__ = ["add_cache_breakpoints", "cache_control", "detect_cache_breakers"]

#: Block types whose ``cache_control`` langchain-anthropic forwards to the API. Not here: tool_use
#: (rebuilt from ``tool_calls``, dropping it), thinking (Anthropic refuses it there), image_url.
_CARRIES = frozenset({"text", "image", "document", "file", "tool_result", "search_result"})
_SYSTEM_CARRIES = frozenset({"text"})  # Anthropic's system field takes text blocks only


def cache_control(ttl: str = "5m") -> dict[str, str]:
    """The ``cache_control`` value for a TTL: ``{"type": "ephemeral"}`` (5 minutes, the API's
    default) or ``{"type": "ephemeral", "ttl": "1h"}``."""
    if ttl == "5m":
        return {"type": "ephemeral"}
    if ttl == "1h":
        return {"type": "ephemeral", "ttl": "1h"}
    raise ConfigurationError(f"ttl must be '5m' or '1h' (Anthropic's cache lifetimes), got {ttl!r}")


def _marked(message: Any, control: dict[str, str]) -> Any | None:
    """A copy of ``message`` whose last content block carries ``control``; None when it cannot carry one."""
    if getattr(message, "type", None) == "ai" and (
        getattr(message, "tool_calls", None) or getattr(message, "invalid_tool_calls", None)
    ):
        return None  # its tool_use blocks are rebuilt from tool_calls: a breakpoint there is lost
    content = message.content
    if isinstance(content, str):
        if not content.strip():
            return None  # empty text blocks are dropped by LangChain and refused by the API
        blocks: list[Any] = [{"type": "text", "text": content}]
    elif isinstance(content, list) and content:
        blocks = [{"type": "text", "text": b} if isinstance(b, str) else dict(b) for b in content]
    else:
        return None
    last = blocks[-1]
    allowed = _SYSTEM_CARRIES if message.type == "system" else _CARRIES
    if not isinstance(last, dict) or last.get("type") not in allowed:
        return None
    if last.get("type") == "text" and not (isinstance(last.get("text"), str) and last["text"].strip()):
        return None
    last["cache_control"] = dict(control)
    return message.model_copy(update={"content": blocks})


def add_cache_breakpoints(
    messages: Sequence[Any],
    n_stable: int,
    ttl: str = "5m",
    *,
    max_breakpoints: int = 1,
) -> list[Any]:
    """Copies of ``messages`` with Anthropic ``cache_control`` breakpoints on the stable prefix.

    ``n_stable`` leading messages (system, pinned, summary: ``ContextPlan.n_stable``) are the
    stable prefix. The last of them gets a breakpoint (caching tool definitions, system and the
    whole prefix); with ``max_breakpoints`` up to 4, earlier ones too, as
    :func:`~agentcost_core.context.caching.cache_breakpoint_indices` chooses. A marked message's
    content becomes a list of blocks whose last block carries ``{"type": "ephemeral"}`` (plus
    ``"ttl": "1h"`` for ``ttl="1h"``). System messages are marked like any other.

    A message that cannot carry a breakpoint through ``ChatAnthropic`` (empty text, an assistant
    message with tool calls, a last block of another type) passes it back to the closest earlier
    stable message that can: the cache then covers a little less, and the request stays valid.
    Messages after the stable prefix are returned untouched (the same objects).

    Anthropic allows 4 breakpoints per request, counting those on tools and any already in the
    messages: lower ``max_breakpoints`` for them. Raises :class:`ConfigurationError` for a ttl
    other than ``"5m"`` / ``"1h"`` or an ``n_stable`` outside ``0..len(messages)``.
    """
    control = cache_control(ttl)
    out = list(messages)
    if isinstance(n_stable, bool) or not isinstance(n_stable, int) or not 0 <= n_stable <= len(out):
        raise ConfigurationError(f"n_stable must be an integer from 0 to len(messages)={len(out)}, got {n_stable!r}")
    wanted = cache_breakpoint_indices(n_stable, max_breakpoints)
    taken: set[int] = set()
    for index in reversed(wanted):
        for i in range(index, -1, -1):
            if i in taken:
                break  # an earlier breakpoint already covers this stretch
            copy = _marked(out[i], control)
            if copy is not None:
                out[i] = copy
                taken.add(i)
                break
    return out


def detect_cache_breakers(detector: CacheBreakerDetector, messages: Sequence[Any], n_stable: int) -> list[CacheBreaker]:
    """Feed the stable prefix (the first ``n_stable`` messages) to ``detector``; its findings.

    Messages become ``(role, text)`` pairs through :func:`agentcost_langchain.messages.content_text`
    (tool calls included as JSON), so ``cache_control`` blocks added by
    :func:`add_cache_breakpoints` make no difference.
    """
    if isinstance(n_stable, bool) or not isinstance(n_stable, int) or not 0 <= n_stable <= len(messages):
        raise ConfigurationError(
            f"n_stable must be an integer from 0 to len(messages)={len(messages)}, got {n_stable!r}"
        )
    prefix = [tuple(to_chat_message(m))[:2] for m in messages[:n_stable]]
    return detector.observe(prefix)
