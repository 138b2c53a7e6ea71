"""Reading what a LangChain ``LLMResult`` says about a model call: usage, model, tier, cache hit."""

from __future__ import annotations

from typing import Any, NamedTuple

from agentcost_core.errors import UsageFormatError
from agentcost_core.parsers import from_openai, usage_and_tier
from agentcost_core.usage import Usage

from .messages import content_text


class CallResult(NamedTuple):
    usage: Usage | None
    model: str | None  # the model the provider says it served
    service_tier: str | None
    cache_hit: bool
    generation: Any  # kept so the output text is extracted only when tokens must be estimated
    usage_error: str | None = None  # usage was present but malformed

    @property
    def output_text(self) -> str:
        return output_text(self.generation)


def output_text(generation: Any) -> str:
    """The text a generation produced (read only when tokens must be estimated or guarded)."""
    message = getattr(generation, "message", None)
    if message is not None:
        return content_text(message.content)
    return getattr(generation, "text", "") or ""


_NO_TIER = (None, "default", "auto", "standard")


def read_result(response: Any) -> CallResult:
    """Usage from the first generation's ``usage_metadata`` (streams: the merged final chunk),
    falling back to ``llm_output["token_usage"]`` for completion-style LLMs. Runs once per model
    call, so it reads only what it needs."""
    try:
        generation = response.generations[0][0]
    except (IndexError, AttributeError, TypeError):
        generation = None
    message = getattr(generation, "message", None)
    usage_metadata = getattr(message, "usage_metadata", None)
    response_metadata = getattr(message, "response_metadata", None) or _EMPTY
    model = response_metadata.get("model_name") or response_metadata.get("model")
    llm_output = _EMPTY
    if not model or not usage_metadata:  # completion-style LLMs report in llm_output
        llm_output = response.llm_output or _EMPTY
        if not model and llm_output:
            model = llm_output.get("model_name") or llm_output.get("model")
    tier = response_metadata.get("service_tier")
    usage = None
    cache_hit = False
    usage_error = None
    try:
        if usage_metadata:
            usage, usage_tier = usage_and_tier(usage_metadata)  # the common shape in one pass
            tier = usage_tier or tier
            cache_hit = usage_metadata.get("total_cost") == 0  # LangChain marks LLM-cache hits so
        elif llm_output.get("token_usage"):
            usage = from_openai(llm_output["token_usage"])
    except UsageFormatError as e:
        usage, usage_error = None, str(e)
    if usage is not None and usage.output and not (usage.input or usage.cache_read or usage.cache_write):
        # Every model call bills its input: output without any input means the input side was lost
        # on the way (e.g. an Anthropic stream whose message_delta carries only output_tokens, which
        # langchain-anthropic reads alone). Estimate and say so rather than record a silent undercount.
        usage, usage_error = None, f"usage reports {usage.output} output tokens but no input tokens"
    if tier in _NO_TIER:
        tier = None
    # tuple.__new__ directly: a NamedTuple's own __new__ is a Python-level call, and this runs per call.
    return _new(CallResult, (usage, model if isinstance(model, str) else None, tier, cache_hit, generation, usage_error))


_new = tuple.__new__


_EMPTY: dict[str, Any] = {}
