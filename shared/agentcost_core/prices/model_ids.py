"""Reduce the many spellings of a model id to candidate catalog keys.

``gpt-4o-2024-08-06`` → ``gpt-4o``; ``openai/gpt-4o`` → ``gpt-4o``;
``anthropic.claude-sonnet-4-5-20250929-v1:0`` (Bedrock, also ``us.``/``eu.``/``global.``) →
``claude-sonnet-4-5``; ``claude-sonnet-4-5@20250929`` (Vertex) → ``claude-sonnet-4-5``;
``models/gemini-2.5-flash`` → ``gemini-2.5-flash``; ``claude-3-5-haiku-latest`` → ``claude-3-5-haiku``.
"""

from __future__ import annotations

import re

__all__ = ["candidates", "canonical_provider", "provider_hint"]

_PATH_PREFIX = re.compile(r"^(?:[a-z0-9_.-]+/)+")  # openai/, azure/, vertex_ai/, models/, openrouter/x/ ...
_BEDROCK_PREFIX = re.compile(r"^(?:(?:us|eu|apac|global|us-gov|jp|au)\.)?(?:anthropic|openai|meta|amazon|google)\.")
_BEDROCK_SUFFIX = re.compile(r"-v\d+(?::\d+)?$")
_SUFFIXES = (
    re.compile(r"-(?:preview|exp)(?:-\d{2}-\d{4}|-\d{4}-\d{2}-\d{2})?$"),  # gemini-2.5-flash-preview-09-2025
    re.compile(r"@\d{8}$"),  # Vertex: claude-sonnet-4-5@20250929
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI: gpt-4o-2024-08-06
    re.compile(r"-\d{8}$"),  # Anthropic: claude-sonnet-4-5-20250929
    re.compile(r"-\d{4}$"),  # OpenAI short dates: gpt-4-0613
    re.compile(r"-latest$"),
    re.compile(r"-\d{3}$"),  # gemini-1.5-pro-002
)


_PROVIDER_ALIASES = {
    "google_genai": "google", "google_vertexai": "google", "vertexai": "google", "gemini": "google",
    "google-genai": "google", "vertex_ai": "google", "anthropic_bedrock": "anthropic",
    "openai_chat": "openai", "chatopenai": "openai",
}  # fmt: skip


def canonical_provider(provider: str | None) -> str | None:
    """One name per provider, whatever a framework calls it (``google_genai`` → ``google``)."""
    if not provider:
        return None
    p = provider.lower()
    return _PROVIDER_ALIASES.get(p, p)


def provider_hint(model: str) -> str | None:
    m = model.lower()
    if m.startswith(("gpt-", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci", "babbage")):
        return "openai"
    if "claude" in m:
        return "anthropic"
    if "gemini" in m:
        return "google"
    return None


def candidates(model: str) -> list[str]:
    """Keys to try, most specific first. The first is the lower-cased id itself."""
    m = model.strip().lower()
    out = [m]

    def add(x: str) -> None:
        if x and x not in out:
            out.append(x)

    if ":" in m and "/" not in m and not _BEDROCK_PREFIX.match(m):
        m = m.split(":", 1)[0]  # ollama-style or fine-tune tags: gpt-4o:ft-...
        add(m)
    stripped = _PATH_PREFIX.sub("", m)
    add(stripped)
    stripped = _BEDROCK_PREFIX.sub("", stripped)
    stripped = _BEDROCK_SUFFIX.sub("", stripped)
    add(stripped)
    if stripped.startswith("ft:"):  # OpenAI fine-tunes: ft:gpt-4o-mini-2024-07-18:org::id
        stripped = stripped.split(":")[1]
        add(stripped)
    changed = True
    while changed:
        changed = False
        for pattern in _SUFFIXES:
            new = pattern.sub("", stripped)
            if new != stripped and new:
                stripped = new
                add(stripped)
                changed = True
    # Dotted and dashed version spellings: claude-sonnet-4.5 <-> claude-sonnet-4-5
    for c in list(out):
        if "claude" in c:
            add(re.sub(r"(\d)\.(\d)", r"\1-\2", c))
    return out
