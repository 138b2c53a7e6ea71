"""What a routing policy sees for a LlamaIndex call: :func:`route_request`, used by ``RouterLLM``.

The request: the last user message's text, a chars/4 estimate of the prompt's tokens, the message
and tool counts, and from ``instrument_tags``: ``tags`` (a list), ``step`` / ``agentcost_step``
(else the enclosing span's name, the step the ledger records), ``user_tier``,
``latency_sensitive`` and the attribution (the budget scope).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.instrumentation.span import active_span_id

from agentcost_core.budgets import ScopeContext
from agentcost_core.routing import RouteRequest

from .attribution import attribution_from_tags
from .calls import span_name

__all__ = ["route_request", "text_of"]


def text_of(message: Any) -> str:
    """A message's text content ("" when it has none)."""
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ""


def _tag_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(str(v) for v in value)
    return (str(value),)


def route_request(
    messages: Sequence[ChatMessage] | None = None, *, prompt: str | None = None, tools: int = 0
) -> RouteRequest:
    """The :class:`RouteRequest` for a chat (``messages``) or completion (``prompt``) call, the
    instrument tags read from the current context."""
    if messages is not None:
        text = ""
        for m in reversed(messages):
            if m.role == MessageRole.USER:
                text = text_of(m)
                break
        chars = sum(len(text_of(m)) for m in messages)
        n = len(messages)
    else:
        text = prompt or ""
        chars, n = len(text), 1
    tags = active_instrument_tags.get()
    step = tags.get("agentcost_step") or tags.get("step") if tags else None
    if step is None:
        step = span_name(active_span_id.get())
    scope = None
    if tags:
        who, run_id = attribution_from_tags(tags)
        scope = ScopeContext(
            trace_id=run_id,
            session_id=who.get("session_id"),
            user_id=who.get("user_id"),
            feature=who.get("feature"),
            agent_id=who.get("agent_id"),
        )
    return RouteRequest(
        text=text,
        context_tokens=chars // 4,
        messages=n,
        tools=tools,
        step=None if step is None else str(step),
        tags=_tag_list(tags.get("tags")) if tags else (),
        user_tier=None if not tags or tags.get("user_tier") is None else str(tags["user_tier"]),
        latency_sensitive=bool(tags.get("latency_sensitive", False)) if tags else False,
        scope=scope,
    )
