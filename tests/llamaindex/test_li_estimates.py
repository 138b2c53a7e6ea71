"""No usage reported: tokens are counted by us (memoized per message) and the event says so."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from agentcost_core import ChatMessage as CoreMessage  # noqa: E402
from agentcost_core import TokenCounter, Usage  # noqa: E402
from li_fakes import RawChatLLM, expected_cost, user  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402

from agentcost_llamaindex import to_core_messages  # noqa: E402


def test_no_usage_is_estimated_with_the_models_tokenizer(handler) -> None:
    llm = RawChatLLM(model="gpt-4o", text="The capital of France is Paris.", raw=None)
    messages = [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."), user("What is the capital of France?")]
    llm.chat(messages)
    [e] = handler.events
    counter = TokenCounter("gpt-4o")
    n_in = counter.count_messages([CoreMessage("system", "Be brief."),
                                   CoreMessage("user", "What is the capital of France?")]).tokens
    n_out = counter.count_text("The capital of France is Paris.").tokens
    assert e.estimated is True
    assert e.usage == Usage(input=n_in, output=n_out)
    assert n_in > 10 and n_out > 5
    assert e.cost == expected_cost("gpt-4o", input=n_in, output=n_out)
    assert e.model == "gpt-4o" and e.requested_model == "gpt-4o"


def test_mock_llm_without_model_name_is_estimated_and_unpriced(handler) -> None:
    MockLLM(max_tokens=5).complete("hello world")
    [e] = handler.events
    assert e.estimated and e.usage.input > 0 and e.usage.output > 0
    assert e.model is None and e.cost is None and not e.priced


def test_a_growing_conversation_is_estimated_as_the_sum_of_its_messages(handler) -> None:
    counter = TokenCounter("gpt-4o")
    llm = RawChatLLM(model="gpt-4o", raw=None)
    history = [user(f"message number {i} " * 20) for i in range(30)]
    llm.chat(history)
    history.append(user("one more"))
    llm.chat(history)
    llm.chat(history)  # the same conversation again: the same estimate
    first, grown, again = handler.events
    [new] = to_core_messages(history[-1:])
    assert grown.usage.input == first.usage.input + counter.message_tokens(new)
    assert again.usage == grown.usage and again.cost == grown.cost
    assert first.usage.input == counter.count_messages(to_core_messages(history[:-1])).tokens


def test_additional_kwargs_token_counts_are_used_before_estimating(handler) -> None:
    from llama_index.core.base.llms.types import ChatResponse
    from llama_index.core.llms.callbacks import llm_chat_callback

    class KwargsLLM(RawChatLLM):
        @llm_chat_callback()
        def chat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            return ChatResponse(message=ChatMessage(role="assistant", content="ok"),
                                additional_kwargs={"prompt_tokens": 77, "completion_tokens": 9})

    KwargsLLM(model="gpt-4o").chat([user("hi")])
    [e] = handler.events
    assert not e.estimated
    assert e.usage == Usage(input=77, output=9)


def test_tool_calls_and_tool_schemas_are_counted(handler) -> None:
    llm = RawChatLLM(model="gpt-4o", text="done", raw=None)
    call = ChatMessage(role=MessageRole.ASSISTANT,
                       blocks=[ToolCallBlock(tool_call_id="c1", tool_name="lookup", tool_kwargs={"city": "Paris"})])
    plain = [user("weather?")]
    llm.chat(plain)
    llm.chat([*plain, call])
    tools = [{"type": "function", "function": {"name": "lookup", "description": "Weather for a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    llm.chat(plain, tools=tools)
    base, with_call, with_tools = (e.usage.input for e in handler.events)
    assert with_call > base + 5
    assert with_tools > base + 10


def test_translation_to_core_messages() -> None:
    msgs = to_core_messages([
        ChatMessage(role=MessageRole.SYSTEM, content="sys"),
        ChatMessage(role=MessageRole.ASSISTANT,
                    blocks=[ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs={"x": 1})]),
        ChatMessage(role=MessageRole.TOOL, content="42", additional_kwargs={"name": "f"}),
    ])
    assert msgs == [CoreMessage("system", "sys"), CoreMessage("assistant", 'f({"x":1})'),
                    CoreMessage("tool", "42", "f")]


def test_plain_text_messages_translate_like_the_general_path() -> None:
    from agentcost_llamaindex.messages import message_text

    messages = [ChatMessage(role=MessageRole.USER, content="hello"), ChatMessage(role="assistant", content="hi"),
                ChatMessage(role=MessageRole.USER, content="")]
    for m, core in zip(messages, to_core_messages(messages)):
        assert type(core) is CoreMessage and type(core.role) is str and type(core.content) is str
        assert core == CoreMessage(m.role.value, message_text(m), None)
    # the memo keys are plain tuples: a ChatMessage and its tuple count alike, memo hit or not
    counter = TokenCounter("gpt-4o")
    b = counter.count_messages([tuple(c) for c in to_core_messages(messages)]).tokens
    a = counter.count_messages(to_core_messages(messages)).tokens
    assert a == b > 0 and a == TokenCounter("gpt-4o").count_messages(to_core_messages(messages)).tokens


def test_malformed_usage_falls_back_to_an_estimate(handler) -> None:
    raw = {"model": "gpt-4o", "usage": {"prompt_tokens": -5, "completion_tokens": 3}}
    RawChatLLM(model="gpt-4o", raw=raw).chat([user("hi")])
    [e] = handler.events
    assert e.estimated and e.usage.input > 0
    assert handler.internal_errors == 0
