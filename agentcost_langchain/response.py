"""Reading what a LangChain ``LLMResult`` (or an AI message) says about a model call: its :class:`Outcome`."""

from __future__ import annotations

from typing import Any

from agentcost_core.call import Outcome
from agentcost_core.errors import UsageFormatError
from agentcost_core.parsers import from_openai, iterated_usage, responses_server_tools, server_tools, usage_and_tier
from agentcost_core.usage import Usage

from .messages import content_text


def output_text(generation: Any) -> str:
    """The text a generation produced."""
    message = getattr(generation, "message", None)
    if message is not None:
        return content_text(message.content)
    return getattr(generation, "text", "") or ""




def _usage_of(message: Any, llm_output: dict[str, Any]) -> tuple[Usage | None, str | None, bool]:
    """(usage, tier its keys reveal, LLM-cache hit) from a message's ``usage_metadata``, else a
    completion-style ``llm_output["token_usage"]``. Raises UsageFormatError when malformed."""
    usage_metadata = getattr(message, "usage_metadata", None)
    if usage_metadata is not None:
        usage, tier = usage_and_tier(usage_metadata)
        hit = isinstance(usage_metadata, dict) and usage_metadata.get("total_cost") == 0  # LangChain marks cache hits so
        return usage, tier, hit
    token_usage = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
    if token_usage:
        return from_openai(token_usage), None, False
    return None, None, False


def _server_tools(message: Any, response_metadata: dict[str, Any]) -> dict[str, int] | None:
    """Server-side tool requests billed per request: Anthropic's ``usage.server_tool_use`` (kept
    by langchain-anthropic in ``response_metadata["usage"]``), or the Responses API's tool-call
    items (kept by langchain-openai as content blocks)."""
    content = getattr(message, "content", None)
    found = responses_server_tools(content) if isinstance(content, list) else None
    return found or server_tools(response_metadata.get("usage"))


def outcome_of_message(message: Any, llm_output: dict[str, Any] | None = None, generation: Any = None) -> Outcome:
    """The :class:`Outcome` of a model call from its AI message (and the result's ``llm_output``)."""
    llm_output = llm_output if isinstance(llm_output, dict) else {}
    response_metadata = getattr(message, "response_metadata", None)
    response_metadata = response_metadata if isinstance(response_metadata, dict) else {}
    model = response_metadata.get("model_name") or response_metadata.get("model")
    if not model:
        model = llm_output.get("model_name") or llm_output.get("model")
    tier = response_metadata.get("service_tier")
    usage = None
    usage_error = None
    cache_hit = False
    try:
        usage, usage_tier, cache_hit = _usage_of(message, llm_output)
        tier = usage_tier or tier
        if "usage" in response_metadata:  # the provider's usage itemising iterations (Anthropic)
            usage = iterated_usage(response_metadata) or usage
    except (UsageFormatError, TypeError, ValueError, AttributeError) as e:
        usage_error = str(e) or type(e).__name__
    if usage is not None and usage.output and not usage.prompt_tokens:
        # Every model call bills its input: output without any input means the input side was lost
        # on the way (e.g. an Anthropic stream whose message_delta carries only output_tokens).
        usage, usage_error = None, f"usage reports {usage.output} output tokens but no input tokens"
    tool_calls = getattr(message, "tool_calls", None)
    text = output_text(generation) if generation is not None else content_text(getattr(message, "content", ""))
    outcome = Outcome(
        usage=usage,
        model=model if isinstance(model, str) else None,
        service_tier=tier if isinstance(tier, str) else None,  # "default" too: served on the default tier
        text=text,
    )
    if tool_calls:
        outcome.tool_calls = tuple((c.get("name"), c.get("args")) for c in tool_calls)
    tools = _server_tools(message, response_metadata)
    if tools is not None:
        outcome.server_tools = tools
    if cache_hit:
        outcome.cache_hit = True
    if usage_error is not None:
        outcome.usage_error = usage_error
    marker = response_metadata.get("agentcost_cache")  # served by agentcost's ResponseCache
    if isinstance(marker, dict):
        outcome.cache_hit = True
        outcome.extra = {"cache": marker.get("layer"), **({"cache_recorded": True} if marker.get("recorded") else {})}
    return outcome


def read_outcome(response: Any) -> Outcome:
    """The :class:`Outcome` of an ``LLMResult`` (streams: the merged final chunk)."""
    try:
        generation = response.generations[0][0]
    except (IndexError, AttributeError, TypeError):
        generation = None
    return outcome_of_message(getattr(generation, "message", None), getattr(response, "llm_output", None), generation)
