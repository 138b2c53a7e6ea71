"""Parsers from each provider's usage format into :class:`~agentcost_core.Usage`.

Each returns ``None`` when no usage is present and raises
:class:`~agentcost_core.errors.UsageFormatError` when usage is present but malformed.
"""

from .anthropic import from_anthropic, merge_stream_usage, server_tools
from .gemini import from_gemini
from .langchain import from_usage_metadata, iterated_usage, service_tier_of, usage_and_tier
from .llamaindex import ResponseUsage, from_chat_response, from_raw, read_chat_response
from .openai import from_chat_completions, from_embeddings, from_openai, from_responses, responses_server_tools

__all__ = [
    "ResponseUsage",
    "from_anthropic",
    "from_chat_completions",
    "from_chat_response",
    "from_embeddings",
    "from_gemini",
    "from_openai",
    "from_raw",
    "from_responses",
    "from_usage_metadata",
    "iterated_usage",
    "merge_stream_usage",
    "read_chat_response",
    "responses_server_tools",
    "server_tools",
    "service_tier_of",
    "usage_and_tier",
]
