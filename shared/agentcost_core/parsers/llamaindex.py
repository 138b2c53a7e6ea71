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
from .openai import PRICED_TIERS, from_chat_completions, from_responses


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


_NO_USAGE = ResponseUsage(None, None, None, None)


def _general(raw: Any) -> ResponseUsage:
    """Any raw response other than the usual ChatCompletion: probe each provider's field names."""
    model = field(raw, "model") or field(raw, "model_version") or field(raw, "modelVersion")
    tier = field(raw, "service_tier")
    usage_obj = field(raw, "usage")
    if usage_obj is None:
        usage_obj = field(raw, "usage_metadata") or field(raw, "usageMetadata")
    usage, provider = _from_usage_object(usage_obj) if usage_obj is not None else (None, None)
    return ResponseUsage(usage, model if isinstance(model, str) else None, tier if tier in PRICED_TIERS else None, provider)


def from_raw(raw: Any) -> ResponseUsage:
    """Usage and resolved model from a provider response object or dict, whatever its shape."""
    return _NO_USAGE if raw is None else _general(raw)


def from_chat_response(response: Any) -> ResponseUsage:
    """Usage of a LlamaIndex chat or completion response (or its last stream chunk)."""
    return ResponseUsage._make(read_chat_response(response))


def read_chat_response(response: Any) -> tuple[Usage | None, str | None, str | None, str | None]:
    """:func:`from_chat_response` as a plain tuple, for the per-call path of the handlers.

    Every LlamaIndex call runs this. The usual raw response, an OpenAI ``ChatCompletion`` or
    stream chunk (an SDK object or its dict), is read right here in one pass, straight from its
    field dicts; only the counts' types are checked here (:class:`Usage` checks their ranges).
    Any other shape, a missing field or a malformed count goes to the general reader, which also
    produces the error messages. Measured in place, where the handler's code is cold by the next
    call, building and unpacking a NamedTuple cost a call about a microsecond: hence the plain
    tuple (``tests/benchmarks/README.md``).
    """
    try:
        raw = response.__dict__["raw"]  # a pydantic ChatResponse / CompletionResponse: one read
    except (AttributeError, KeyError):  # a dict, a duck-typed object, a property
        raw = field(response, "raw")
    if raw is None:
        found: tuple[Any, ...] = _NO_USAGE
    else:
        try:
            f = raw if type(raw) is dict else raw.__dict__
            u = f["usage"]
            if u is not None:
                if type(u) is not dict:
                    u = u.__dict__
                prompt = u["prompt_tokens"]
                output = u["completion_tokens"]
                details = u.get("prompt_tokens_details")
                if details is None:
                    cached = written = 0
                else:
                    if type(details) is not dict:
                        details = details.__dict__
                    cached = details.get("cached_tokens") or 0
                    written = details.get("cache_write_tokens") or 0
                details = u.get("completion_tokens_details")
                if details is None:
                    reasoning = 0
                else:
                    reasoning = (details if type(details) is dict else details.__dict__).get("reasoning_tokens") or 0
                if type(prompt) is not int or type(output) is not int or type(cached) is not int:
                    raise TypeError
                if type(written) is not int or type(reasoning) is not int:
                    raise TypeError
                usage = Usage(prompt - cached - written, cached, written, 0, output, reasoning)
            elif "usage_metadata" in f or "usageMetadata" in f:  # no OpenAI usage, but Gemini's
                raise KeyError
            else:  # no usage (not requested, or a stream chunk before the last)
                usage = None
            model = f.get("model")
            tier = f.get("service_tier")
            found = (usage, model if isinstance(model, str) else None, tier if tier in PRICED_TIERS else None, "openai")
        except (KeyError, AttributeError, TypeError, ValueError):  # not this shape, or counts out of range
            found = _general(raw)
    if found[0] is not None:
        return found
    extra = field(response, "additional_kwargs") or {}
    if field(extra, "prompt_tokens") is not None or field(extra, "completion_tokens") is not None:
        where = "additional_kwargs"
        usage = Usage(input=count(extra, "prompt_tokens", where), output=count(extra, "completion_tokens", where))
        return (usage, found[1], found[2], found[3])
    if field(extra, "input_tokens") is not None:
        usage, provider = _from_usage_object(extra)
        return (usage, found[1], found[2], found[3] or provider)
    return found
