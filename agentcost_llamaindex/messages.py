"""LlamaIndex messages and responses translated to the core's framework-free types.

A request's ``ChatMessage`` list becomes core :class:`~agentcost_core.ChatMessage` tuples (whose
counts the :class:`~agentcost_core.TokenCounter` memoizes) and its image parts a count, for the
:class:`~agentcost_core.ModelCall`; a response becomes the text it generated. Text, tool calls and
thinking count as text; images are counted as parts (billed per image); audio and documents
have no text to count.
Duck-typed on ``block_type`` so older llama-index-core versions without some block classes work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Iterable

from agentcost_core import ChatMessage as CoreMessage

__all__ = ["CoreMessages", "image_count", "message_text", "response_text", "to_core_message", "to_core_messages", "tools_text"]

_new = tuple.__new__


def _dumps(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def _block_text(block: Any) -> str | None:
    kind = getattr(block, "block_type", None)
    if kind == "text":
        return block.text
    if kind == "tool_call":
        return f"{block.tool_name}({_dumps(block.tool_kwargs)})"
    if kind == "thinking":
        return block.content or None
    if kind in ("citable", "citation"):
        inner = getattr(block, "content", None) or getattr(block, "cited_content", None)
        if isinstance(inner, list):
            return "\n".join(t for t in map(_block_text, inner) if t) or None
        return _block_text(inner) if inner is not None else None
    return None


def message_text(message: Any) -> str:
    """All countable text of a LlamaIndex ``ChatMessage`` (or anything with ``content``)."""
    blocks = getattr(message, "blocks", None)
    if blocks is None:
        content = getattr(message, "content", message)
        return content if isinstance(content, str) else ("" if content is None else str(content))
    parts = [t for t in map(_block_text, blocks) if t]
    extra = getattr(message, "additional_kwargs", None)
    if extra:
        calls = extra.get("tool_calls")
        if calls and not any(getattr(b, "block_type", None) == "tool_call" for b in blocks):
            parts.append(_dumps([c.model_dump() if hasattr(c, "model_dump") else c for c in calls]))
    return "\n".join(parts)


def to_core_message(message: Any) -> CoreMessage:
    # The usual message, one text block and no extras, read straight from the pydantic fields
    # (estimates convert every message of the request on every call that reported no usage).
    fields = getattr(message, "__dict__", None)
    if type(fields) is dict and not fields.get("additional_kwargs"):
        blocks = fields.get("blocks")
        if type(blocks) is list and len(blocks) == 1:
            block = getattr(blocks[0], "__dict__", None)
            if type(block) is dict and block.get("block_type") == "text":
                role = fields.get("role")
                role = getattr(role, "_value_", role)  # a MessageRole's text (Enum.value is a slow property)
                text = block.get("text")
                if type(role) is str and type(text) is str:
                    return _new(CoreMessage, (role, text, None))  # the NamedTuple without its Python __new__
    role = getattr(message, "role", "user")
    role = getattr(role, "value", role)
    extra = getattr(message, "additional_kwargs", None) or {}
    name = extra.get("name") if isinstance(extra, dict) else None
    return CoreMessage(str(role), message_text(message), name if isinstance(name, str) else None)


def to_core_messages(messages: Iterable[Any] | None) -> list[CoreMessage]:
    """LlamaIndex ``ChatMessage`` list → core messages."""
    return [to_core_message(m) for m in messages or ()]


class CoreMessages(Sequence[CoreMessage]):
    """A LlamaIndex message list read as core messages, translated when first read: only an
    estimate or a worst case reads them, and most calls report their usage."""

    __slots__ = ("source", "_core")

    def __init__(self, messages: Sequence[Any] | None) -> None:
        self.source = messages or ()
        self._core: list[CoreMessage] | None = None

    def _messages(self) -> list[CoreMessage]:
        if self._core is None:
            self._core = to_core_messages(self.source)
        return self._core

    def __getitem__(self, index: Any) -> Any:
        return self._messages()[index]

    def __iter__(self) -> Iterator[CoreMessage]:
        return iter(self._messages())

    def __len__(self) -> int:
        return len(self.source)


def image_count(messages: Iterable[Any] | None) -> int:
    """The image parts (``ImageBlock``) of a LlamaIndex message list: each is billed as input."""
    return sum(
        1 for m in messages or () for b in (getattr(m, "blocks", None) or ()) if getattr(b, "block_type", None) == "image"
    )


def response_text(response: Any) -> str:
    """The generated text of a ``ChatResponse`` / ``CompletionResponse`` (final stream chunk included)."""
    if response is None:
        return ""
    message = getattr(response, "message", None)
    if message is not None:
        return message_text(message)
    text = getattr(response, "text", None)
    return text if isinstance(text, str) else ""


def tools_text(kwargs: Any) -> str | None:
    """The tool schemas a request sends (``tools`` / ``functions`` in the call's kwargs), as text."""
    if not isinstance(kwargs, dict):
        return None
    tools = kwargs.get("tools") or kwargs.get("functions")
    if not tools:
        return None
    out = []
    for t in tools:
        meta = getattr(t, "metadata", None)  # a LlamaIndex BaseTool
        if meta is not None and hasattr(meta, "to_openai_tool"):
            try:
                out.append(meta.to_openai_tool())
                continue
            except Exception:
                pass
        out.append(t)
    return _dumps(out)
