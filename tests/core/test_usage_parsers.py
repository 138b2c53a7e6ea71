"""Provider usage formats → non-overlapping buckets, on documented wire payloads."""

from __future__ import annotations

import pytest

from agentcost_core import Usage, UsageFormatError
from agentcost_core.parsers import (
    from_anthropic,
    from_chat_completions,
    from_chat_response,
    from_gemini,
    from_openai,
    from_responses,
    from_usage_metadata,
    merge_stream_usage,
    service_tier_of,
)


def test_usage_defaults_and_arithmetic():
    u = Usage()
    assert u.as_dict() == dict(input=0, cache_read=0, cache_write_5m=0, cache_write_1h=0, output=0, reasoning=0)
    a = Usage(input=10, cache_read=5, cache_write_5m=2, cache_write_1h=1, output=7, reasoning=3)
    assert a.prompt_tokens == 18 and a.total == 25 and a.cache_write == 3
    assert (a + a).as_dict() == {k: 2 * v for k, v in a.as_dict().items()}
    assert not Usage() and a


@pytest.mark.parametrize("bad", [dict(input=-1), dict(output=2, reasoning=3)])
def test_usage_rejects_impossible_counts(bad):
    with pytest.raises(ValueError):
        Usage(**bad)


def test_openai_chat_completions_cached_tokens_are_inside_prompt_tokens():
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0},
    }
    assert from_chat_completions(usage) == Usage(input=86, cache_read=1920, output=300, reasoning=192)


def test_openai_sdk_objects_are_read_like_dicts():
    from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

    u = CompletionUsage(
        prompt_tokens=100, completion_tokens=10, total_tokens=110, prompt_tokens_details=PromptTokensDetails(cached_tokens=64)
    )
    assert from_openai(u) == Usage(input=36, cache_read=64, output=10)


def test_openai_responses_api():
    usage = {
        "input_tokens": 5000,
        "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens": 900,
        "output_tokens_details": {"reasoning_tokens": 700},
        "total_tokens": 5900,
    }
    assert from_responses(usage) == Usage(input=904, cache_read=4096, output=900, reasoning=700)
    assert from_openai(usage) == from_responses(usage)


def test_anthropic_input_excludes_cache_and_ttl_split():
    usage = {
        "input_tokens": 50,
        "cache_read_input_tokens": 10000,
        "cache_creation_input_tokens": 3000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 400,
    }
    assert from_anthropic(usage) == Usage(input=50, cache_read=10000, cache_write_5m=1000, cache_write_1h=2000, output=400)


def test_anthropic_creation_without_split_is_5m():
    usage = {"input_tokens": 5, "cache_creation_input_tokens": 700, "cache_read_input_tokens": 0, "output_tokens": 9}
    assert from_anthropic(usage) == Usage(input=5, cache_write_5m=700, output=9)


def test_anthropic_stream_start_and_cumulative_delta():
    start = {"input_tokens": 472, "cache_read_input_tokens": 2048, "cache_creation_input_tokens": 0, "output_tokens": 2}
    delta = {"output_tokens": 503}
    assert merge_stream_usage(start, delta) == Usage(input=472, cache_read=2048, output=503)


def test_gemini_prompt_includes_cached_and_thoughts_are_output():
    meta = {
        "promptTokenCount": 12000,
        "cachedContentTokenCount": 8000,
        "candidatesTokenCount": 300,
        "thoughtsTokenCount": 1200,
        "totalTokenCount": 13500,
    }
    assert from_gemini(meta) == Usage(input=4000, cache_read=8000, output=1500, reasoning=1200)
    snake = {"prompt_token_count": 10, "candidates_token_count": 2, "thoughts_token_count": 0}
    assert from_gemini(snake) == Usage(input=10, output=2)


def test_langchain_usage_metadata_anthropic_split_and_zeroed_generic_key():
    um = {
        "input_tokens": 13050,
        "output_tokens": 400,
        "total_tokens": 13450,
        "input_token_details": {
            "cache_read": 10000,
            "cache_creation": 0,  # langchain-anthropic zeroes it when it reports the split
            "ephemeral_5m_input_tokens": 1000,
            "ephemeral_1h_input_tokens": 2000,
        },
    }
    assert from_usage_metadata(um) == Usage(input=50, cache_read=10000, cache_write_5m=1000, cache_write_1h=2000, output=400)


def test_langchain_usage_metadata_flex_prefixed_keys():
    um = {
        "input_tokens": 1000,
        "output_tokens": 300,
        "total_tokens": 1300,
        "input_token_details": {"flex_cache_read": 600, "flex": 400},
        "output_token_details": {"flex_reasoning": 200, "flex": 100},
    }
    assert service_tier_of(um) == "flex"
    assert from_usage_metadata(um) == Usage(input=400, cache_read=600, output=300, reasoning=200)


@pytest.mark.parametrize(
    "bad",
    [
        {"input_tokens": -5, "output_tokens": 1},
        {"input_tokens": "many", "output_tokens": 1},
        {"input_tokens": 10, "output_tokens": 1, "input_token_details": {"cache_read": 50}},
        {"input_tokens": 10, "output_tokens": 1, "output_token_details": {"reasoning": 5}},
    ],
)
def test_malformed_usage_metadata_raises_our_error_with_the_field(bad):
    with pytest.raises(UsageFormatError, match="usage_metadata"):
        from_usage_metadata(bad)


def test_malformed_openai_usage_names_the_problem():
    with pytest.raises(UsageFormatError, match="cached"):
        from_chat_completions({"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 11}})


def test_absent_usage_is_none_not_zero():
    assert from_openai(None) is None and from_anthropic(None) is None and from_usage_metadata(None) is None
    assert from_usage_metadata({}) is None


class _Resp:
    def __init__(self, raw=None, additional_kwargs=None):
        self.raw = raw
        self.additional_kwargs = additional_kwargs or {}


def test_llamaindex_response_raw_openai_object_keeps_cached_tokens():
    from openai.types.chat import ChatCompletion

    raw = ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "default",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105, "prompt_tokens_details": {"cached_tokens": 64}},
        }
    )
    # additional_kwargs carries only the totals: the raw response must win
    found = from_chat_response(_Resp(raw, {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}))
    assert found.usage == Usage(input=36, cache_read=64, output=5)
    assert found.model == "gpt-4o-mini-2024-07-18" and found.service_tier is None and found.provider == "openai"


def test_llamaindex_response_anthropic_dict_and_additional_kwargs_fallback():
    raw = {"model": "claude-haiku-4-5-20251001", "usage": {"input_tokens": 9, "cache_read_input_tokens": 90, "output_tokens": 3}}
    found = from_chat_response(_Resp(raw))
    assert found.usage == Usage(input=9, cache_read=90, output=3) and found.provider == "anthropic"
    only_kwargs = from_chat_response(_Resp(None, {"prompt_tokens": 12, "completion_tokens": 4}))
    assert only_kwargs.usage == Usage(input=12, output=4)
    assert from_chat_response(_Resp(None)).usage is None


def test_llamaindex_response_whose_raw_is_a_property_is_still_read():
    from agentcost_core.parsers import from_chat_response

    class Response:
        def __init__(self):
            self.message = "hi"

        @property
        def raw(self):
            return {"model": "gpt-4o", "usage": {"prompt_tokens": 100, "completion_tokens": 10}}

    found = from_chat_response(Response())
    assert found.usage == Usage(input=100, output=10) and found.model == "gpt-4o"


def test_llamaindex_chat_completion_without_usage_keeps_the_served_model():
    from openai.types.chat import ChatCompletion

    raw = ChatCompletion.model_validate(
        {
            "id": "c2",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "flex",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        }
    )
    found = from_chat_response(_Resp(raw))
    assert found.usage is None and found.model == "gpt-4o-mini-2024-07-18" and found.service_tier == "flex"
    # the additional_kwargs totals are the fallback when the raw response has none
    found = from_chat_response(_Resp(raw, {"prompt_tokens": 30, "completion_tokens": 2}))
    assert found.usage == Usage(input=30, output=2) and found.model == "gpt-4o-mini-2024-07-18"


def test_llamaindex_raw_with_null_usage_but_gemini_usage_metadata_reads_gemini():
    raw = {"model_version": "gemini-2.5-flash", "usage": None,
           "usage_metadata": {"prompt_token_count": 50, "candidates_token_count": 7}}  # fmt: skip
    found = from_chat_response(_Resp(raw))
    assert found.usage == Usage(input=50, output=7) and found.provider == "google"


@pytest.mark.parametrize(
    "usage, match",
    [
        ({"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 11}}, "cached"),
        ({"prompt_tokens": 10, "completion_tokens": -1}, "negative"),
        ({"prompt_tokens": "ten", "completion_tokens": 1}, "prompt_tokens"),
        ({"prompt_tokens": 10, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 3}}, "reasoning"),
    ],
)
def test_llamaindex_malformed_chat_completion_usage_names_the_problem(usage, match):
    with pytest.raises(UsageFormatError, match=match):
        from_chat_response(_Resp({"model": "gpt-4o", "usage": usage}))


def test_llamaindex_integral_float_counts_are_read_exactly():
    found = from_chat_response(_Resp({"model": "gpt-4o", "usage": {"prompt_tokens": 10.0, "completion_tokens": 2.0}}))
    assert found.usage == Usage(input=10, output=2) and type(found.usage.input) is int


_RESPONSES_USAGE = {
    "input_tokens": 4000, "input_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 0},
    "output_tokens": 2000, "output_tokens_details": {"reasoning_tokens": 1900}, "total_tokens": 6000,
}  # fmt: skip


def test_llamaindex_responses_stream_completed_event_reads_the_response_inside():
    from openai.types.responses import ResponseCompletedEvent

    event = ResponseCompletedEvent.model_validate({
        "type": "response.completed", "sequence_number": 9,
        "response": {
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-5-2025-08-07",
            "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "service_tier": "priority", "usage": _RESPONSES_USAGE,
        },
    })  # fmt: skip
    found = from_chat_response(_Resp(event))
    assert found.usage == Usage(input=3000, cache_read=1000, output=2000, reasoning=1900)
    assert found.model == "gpt-5-2025-08-07" and found.service_tier == "priority" and found.provider == "openai"


def test_llamaindex_responses_usage_object_in_additional_kwargs_is_the_fallback():
    # OpenAIResponses puts the Responses usage object in additional_kwargs["usage"]
    found = from_chat_response(_Resp({"type": "response.output_text.delta"}, {"usage": _RESPONSES_USAGE}))
    assert found.usage == Usage(input=3000, cache_read=1000, output=2000, reasoning=1900)
    assert found.provider == "openai" and found.model is None


def test_anthropic_server_tool_use_counts_by_tool():
    from agentcost_core.parsers import server_tools

    usage = {"input_tokens": 10, "output_tokens": 2,
             "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 0, "code_execution_requests": 1}}  # fmt: skip
    assert server_tools(usage) == {"web_search": 3, "code_execution": 1}
    assert server_tools({"input_tokens": 10}) is None
    assert server_tools({"server_tool_use": {"web_search_requests": "3", "web_fetch_requests": -1}}) is None


def test_responses_output_web_search_calls_are_counted():
    from agentcost_core.parsers import responses_server_tools

    output = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "web_search_call", "id": "ws_2", "status": "completed"},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": []},
        {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
    ]
    assert responses_server_tools(output) == {"web_search": 2, "file_search": 1}
    assert responses_server_tools([{"type": "server_tool_call", "name": "web_search", "id": "ws_1"}]) == {"web_search": 1}
    assert responses_server_tools([{"type": "message"}]) is None and responses_server_tools("text") is None
