"""LlamaIndex ``ChatResponse`` / ``CompletionResponse`` (duck-typed; no LlamaIndex import).

Usage sits in ``response.raw``: an OpenAI ``ChatCompletion`` / stream chunk / Responses object,
or a dict (Anthropic's integration stores ``dict(message)``; Gemini's stores ``usage_metadata``).
Each format is read by its one parser (:mod:`.openai`, :mod:`.anthropic`, :mod:`.gemini`); this
module only finds the usage and tells the formats apart by their field names.
``additional_kwargs`` carries ``prompt_tokens`` / ``completion_tokens`` (no cached tokens) or, for
``OpenAIResponses``, the Responses ``usage`` object (no served model or tier), so it is the last
resort. Streams carry usage on the last chunk only: for an ``OpenAIResponses`` stream that chunk's
``raw`` is the ``response.completed`` event, whose ``response`` is read like a whole response.

Usage that is present but cannot be read (a list, a string, counts that are not counts, only a
``total_tokens``) raises :class:`~agentcost_core.errors.UsageFormatError`: the caller estimates
the call and marks it, never prices it at $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import UsageFormatError
from ..usage import Usage
from ._fields import Attributes, fields
from .anthropic import from_anthropic
from .anthropic import server_tools as anthropic_server_tools
from .gemini import from_gemini
from .openai import PRICED_TIERS, from_chat_completions, from_responses, responses_server_tools

__all__ = ["ResponseUsage", "from_chat_response", "from_raw", "read_chat_response"]


class ResponseUsage(NamedTuple):
    usage: Usage | None
    model: str | None  # the model the provider says it served
    service_tier: str | None
    provider: str | None  # the usage FORMAT ("openai" for OpenAI-compatible servers)
    #: Server-side tool requests billed per request ({"web_search": 3}), None when there are none.
    server_tools: dict[str, int] | None = None


_NO_USAGE = ResponseUsage(None, None, None, None)


def _has(usage: Mapping[str, Any] | Attributes, *keys: str) -> bool:
    for key in keys:
        if usage.get(key) is not None:
            return True
    return False


def _from_usage_object(usage: Any) -> tuple[Usage | None, str | None]:
    """Usage in whichever provider format it is, told apart by its field names."""
    if isinstance(usage, (str, bytes, int, float, list, tuple)):
        raise UsageFormatError(f"usage must be an object or a mapping, got {type(usage).__name__} {usage!r:.80}")
    u = fields(usage)  # read once; each format's parser reads the same fields
    if _has(u, "prompt_tokens", "completion_tokens"):
        return from_chat_completions(u), "openai"
    if _has(u, "cache_read_input_tokens", "cache_creation_input_tokens"):
        return from_anthropic(u), "anthropic"
    if _has(u, "input_tokens_details", "output_tokens_details"):
        return from_responses(u), "openai"
    if _has(u, "promptTokenCount", "prompt_token_count", "candidatesTokenCount", "candidates_token_count"):
        return from_gemini(u), "google"
    if _has(u, "input_tokens", "output_tokens"):  # Anthropic without cache fields, or Responses
        if _has(u, "total_tokens"):
            return from_responses(u), "openai"
        return from_anthropic(u), "anthropic"
    if _has(u, "total_tokens", "totalTokenCount", "total_token_count"):
        raise UsageFormatError("usage reports only a total, not input and output tokens")
    return None, None


def from_raw(raw: Any) -> ResponseUsage:
    """Usage and resolved model from a provider response object or dict, whatever its shape.

    A Responses API stream event (``response.completed``, ``response.incomplete``,
    ``response.failed``: the last chunk of an ``OpenAIResponses`` stream) carries the whole
    ``Response`` in ``response``: its usage, served model and tier are read from there."""
    if raw is None:
        return _NO_USAGE
    r = fields(raw)
    if r.get("usage") is None and r.get("model") is None:
        inner = r.get("response")
        if inner is not None and not isinstance(inner, (str, bytes, int, float, list, tuple)):
            r = fields(inner)
    model = r.get("model") or r.get("model_version") or r.get("modelVersion")
    tier = r.get("service_tier")
    usage_obj = r.get("usage")
    if usage_obj is None:
        usage_obj = r.get("usage_metadata") or r.get("usageMetadata")
    usage, provider = _from_usage_object(usage_obj) if usage_obj is not None else (None, None)
    tools = responses_server_tools(r.get("output")) or anthropic_server_tools(usage_obj)
    return ResponseUsage(
        usage, model if isinstance(model, str) else None, tier if tier in PRICED_TIERS else None, provider, tools
    )


def from_chat_response(response: Any) -> ResponseUsage:
    """Usage of a LlamaIndex chat or completion response (or its last stream chunk): the raw
    response first, then the token totals some integrations put in ``additional_kwargs``."""
    r = fields(response)
    found = from_raw(r.get("raw"))
    if found.usage is not None:
        return found
    extra = r.get("additional_kwargs")
    if not extra:
        return found
    extra = fields(extra)
    if not _has(extra, "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"):
        # llama-index-llms-openai's OpenAIResponses keeps the Responses usage object here
        nested = extra.get("usage")
        if nested is None:
            return found
        extra = nested
    usage, provider = _from_usage_object(extra)
    return found._replace(usage=usage, provider=found.provider or provider)


#: The former name of :func:`from_chat_response` (a :class:`ResponseUsage` is a tuple).
read_chat_response = from_chat_response
