"""LlamaIndex ``ChatResponse`` / ``CompletionResponse`` (duck-typed; no LlamaIndex import).

Usage sits in ``response.raw``: an OpenAI ``ChatCompletion`` / stream chunk / Responses object,
or a dict (Anthropic's integration stores ``dict(message)``; Gemini's stores ``usage_metadata``).
``additional_kwargs`` carries only ``prompt_tokens`` / ``completion_tokens`` (no cached tokens),
so it is the last resort. Streams carry usage on the last chunk only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..usage import Usage
from ._fields import count, field
from .anthropic import from_anthropic
from .gemini import from_gemini
from .openai import fast_chat_usage, from_chat_completions, from_responses


class ResponseUsage(NamedTuple):
    usage: Usage | None
    model: str | None  # the model the provider says it served
    service_tier: str | None
    provider: str | None


def _from_usage_object(usage: Any) -> tuple[Usage | None, str | None]:
    # Most likely first: every probe of a missing field on an SDK object costs.
    if field(usage, "prompt_tokens") is not None:
        return from_chat_completions(usage), "openai"
    if field(usage, "cache_read_input_tokens") is not None or field(usage, "cache_creation_input_tokens") is not None:
        return from_anthropic(usage), "anthropic"
    if field(usage, "input_tokens_details") is not None:
        return from_responses(usage), "openai"
    if field(usage, "promptTokenCount") is not None or field(usage, "prompt_token_count") is not None:
        return from_gemini(usage), "google"
    if field(usage, "input_tokens") is not None:  # Anthropic without cache fields, or Responses
        if field(usage, "output_tokens_details") is not None or field(usage, "total_tokens") is not None:
            return from_responses(usage), "openai"
        return from_anthropic(usage), "anthropic"
    return None, None


_new = tuple.__new__
_NO_USAGE = ResponseUsage(None, None, None, None)
_PRICED_TIERS = ("flex", "priority")  # "default" / "standard" / "auto" are the list price


def _chat_completion(raw: Any) -> ResponseUsage | None:
    """An OpenAI ``ChatCompletion`` (or its dict) of the usual shape, read in one pass: the most
    common raw response, on every call. None defers to the general path."""
    fields = raw if type(raw) is dict else getattr(raw, "__dict__", None)
    if type(fields) is not dict:
        return None
    usage = fast_chat_usage(fields.get("usage"))
    if usage is None:
        return None
    model = fields.get("model")
    tier = fields.get("service_tier")
    return _new(
        ResponseUsage,
        (usage, model if isinstance(model, str) else None, tier if tier in _PRICED_TIERS else None, "openai"),
    )


def from_raw(raw: Any) -> ResponseUsage:
    """Usage and resolved model from a provider response object or dict."""
    if raw is None:
        return _NO_USAGE
    fast = _chat_completion(raw)
    if fast is not None:
        return fast
    model = field(raw, "model") or field(raw, "model_version") or field(raw, "modelVersion")
    tier = field(raw, "service_tier")
    usage_obj = field(raw, "usage")
    if usage_obj is None:
        usage_obj = field(raw, "usage_metadata") or field(raw, "usageMetadata")
    usage, provider = _from_usage_object(usage_obj) if usage_obj is not None else (None, None)
    if isinstance(tier, str) and tier not in _PRICED_TIERS:
        tier = None
    return ResponseUsage(usage, model if isinstance(model, str) else None, tier, provider)


def from_chat_response(response: Any) -> ResponseUsage:
    """Usage of a LlamaIndex chat or completion response (or its last stream chunk)."""
    fields = response if type(response) is dict else getattr(response, "__dict__", None)
    raw = fields.get("raw") if type(fields) is dict and "raw" in fields else field(response, "raw")
    found = from_raw(raw)  # an OpenAI ChatCompletion, the common case, is read in one pass
    if found.usage is not None:
        return found
    extra = field(response, "additional_kwargs") or {}
    if field(extra, "prompt_tokens") is not None or field(extra, "completion_tokens") is not None:
        where = "additional_kwargs"
        return found._replace(
            usage=Usage(input=count(extra, "prompt_tokens", where), output=count(extra, "completion_tokens", where))
        )
    if field(extra, "input_tokens") is not None:
        usage, provider = _from_usage_object(extra)
        return found._replace(usage=usage, provider=found.provider or provider)
    return found
