"""LangChain messages → the core's framework-free :class:`ChatMessage`."""

from __future__ import annotations

import json
from typing import Any, Iterable

from agentcost_core.tokens import ChatMessage

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool", "chat": "user"}


def content_text(content: Any) -> str:
    """The text of a message's content (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") in ("tool_use", "tool_call", "function_call"):
                parts.append(json.dumps(block.get("input") or block.get("args") or {}, sort_keys=True, default=str))
    return "\n".join(parts)


def to_chat_message(message: Any) -> ChatMessage:
    role = _ROLES.get(getattr(message, "type", "human"), "user")
    text = content_text(getattr(message, "content", ""))
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        text += json.dumps([{"name": c.get("name"), "args": c.get("args")} for c in tool_calls], default=str)
    return ChatMessage(role, text, getattr(message, "name", None))


def to_chat_messages(messages: Iterable[Any]) -> list[ChatMessage]:
    return [to_chat_message(m) for m in messages]


def tools_json(tools: Any) -> str:
    """The tool schemas a request sends, as JSON text to count (providers bill them as input)."""
    out = []
    for t in tools or ():
        if isinstance(t, dict):
            out.append(t)
            continue
        try:
            from langchain_core.utils.function_calling import convert_to_openai_tool

            out.append(convert_to_openai_tool(t))
        except Exception:  # an exotic tool (schema conversion runs no user code, so no interrupt can arise here)
            out.append({"name": getattr(t, "name", str(t)), "description": getattr(t, "description", "")})
    return json.dumps(out, default=str)


_IMAGE_TYPES = frozenset({"image_url", "image", "input_image"})


def _images_in(content: Any) -> int:
    if isinstance(content, str) or not content:
        return 0
    n = 0
    for block in content:
        if isinstance(block, dict) and (block.get("type") in _IMAGE_TYPES or "image_url" in block):
            n += 1
    return n


def count_images(prompt: Any) -> int:
    """Image parts in a model run's prompt (each is billed as input tokens)."""
    if not prompt or isinstance(prompt[0], str):
        return 0
    return sum(_images_in(getattr(m, "content", None)) for m in prompt[0])


def images_in_messages(messages: Iterable[Any]) -> int:
    return sum(_images_in(getattr(m, "content", None)) for m in messages)


def prompt_messages(prompt: Any) -> list[ChatMessage]:
    """A model run's prompt as core messages: ``on_chat_model_start`` gives lists of messages,
    ``on_llm_start`` prompt strings."""
    if not prompt:
        return []
    if isinstance(prompt[0], str):
        return [ChatMessage("user", p) for p in prompt]
    return to_chat_messages(prompt[0])
