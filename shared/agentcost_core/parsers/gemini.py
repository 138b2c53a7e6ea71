"""Google Gemini ``usageMetadata``.

``promptTokenCount`` INCLUDES ``cachedContentTokenCount``; ``candidatesTokenCount`` EXCLUDES
``thoughtsTokenCount``, which is billed as output.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import fields, tokens


def from_gemini(usage: Any) -> Usage | None:
    if usage is None:
        return None
    where = "gemini usageMetadata"
    u = fields(usage)
    snake = u.get("prompt_token_count") is not None
    key = (lambda s, c: s) if snake else (lambda s, c: c)
    prompt = tokens(u, key("prompt_token_count", "promptTokenCount"), where)
    cached = tokens(u, key("cached_content_token_count", "cachedContentTokenCount"), where)
    candidates = tokens(u, key("candidates_token_count", "candidatesTokenCount"), where)
    thoughts = tokens(u, key("thoughts_token_count", "thoughtsTokenCount"), where)
    tool_prompt = tokens(u, key("tool_use_prompt_token_count", "toolUsePromptTokenCount"), where)
    if cached > prompt:
        raise UsageFormatError(f"{where}: cached tokens ({cached}) exceed prompt tokens ({prompt})")
    return Usage(
        input=prompt - cached + tool_prompt,
        cache_read=cached,
        output=candidates + thoughts,
        reasoning=thoughts,
    )
