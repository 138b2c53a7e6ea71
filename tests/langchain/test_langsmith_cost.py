"""Our exact cost on the LLM runs LangSmith receives, checked at a local stand-in for the LangSmith
API (``tests/langsmith_standin.py``) that records what the real SDK sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langsmith_standin import (  # tests/ helper
    LangSmithStandIn,
    assert_exact_cost_on_every_llm_run,
    cheap_model,
    sent_all,
    tracer_to,
    usage_sent,
)

from agentcost_langchain import CostCallbackHandler


@pytest.fixture
def langsmith_api() -> Iterator[LangSmithStandIn]:
    with LangSmithStandIn() as stand_in:
        yield stand_in


@pytest.mark.parametrize("tracer_first", [False, True], ids=["handler-first", "tracer-first"])
def test_a_chain_sends_the_ledgers_exact_cost_whatever_the_order_of_the_callbacks(
    langsmith_api: LangSmithStandIn, tracer_first: bool
) -> None:
    handler = CostCallbackHandler("memory://", langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    tracer = tracer_to(langsmith_api)
    callbacks = [tracer, handler, usage_handler] if tracer_first else [handler, usage_handler, tracer]
    chain = ChatPromptTemplate.from_messages([("system", "You answer briefly."), ("human", "{q}")]) | cheap_model(
        ["Paris is the capital of France."], cached_share=0.5
    )
    for q in ("What is the capital of France? " * 40, "And what is the capital of Spain? " * 40):
        chain.invoke({"q": q}, config={"callbacks": callbacks})
    sent_all(tracer)

    assert len(handler.events) == 2  # one event per call: never twice, whichever end came first
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    for event in handler.events:  # cache reads: priced once, under the token detail's own key
        sent = usage_sent(langsmith_api, event.id)
        assert sent["input_token_details"]["cache_read"] == event.usage.cache_read > 0
        assert sent["input_cost_details"]["cache_read"] == float(
            handler.recorder.accountant.cost_parts(event)["cache_read"]  # type: ignore[index]
        )
    # UsageMetadataCallbackHandler saw the user's messages: token ints only, summed without a hitch
    totals = usage_handler.usage_metadata["gpt-4o-mini-2024-07-18"]
    assert "total_cost" not in totals
    assert totals["input_tokens"] == sum(e.usage.prompt_tokens for e in handler.events)
    assert totals["output_tokens"] == sum(e.usage.output for e in handler.events)


def test_a_stream_sends_the_exact_cost_and_the_streamed_message_stays_int_only(langsmith_api: LangSmithStandIn) -> None:
    handler = CostCallbackHandler("memory://", langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    tracer = tracer_to(langsmith_api)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | cheap_model(["one two three four five"])
    chunks = list(chain.stream({"q": "count to five"}, config={"callbacks": [tracer, handler, usage_handler]}))
    sent_all(tracer)

    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk  # message merging adds usage with add_usage: ints only
    assert merged.usage_metadata is not None and "total_cost" not in merged.usage_metadata
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    assert usage_handler.usage_metadata["gpt-4o-mini-2024-07-18"]["output_tokens"] == handler.events[0].usage.output


def test_an_agent_sends_the_exact_cost_on_every_model_call_the_first_included(langsmith_api: LangSmithStandIn) -> None:
    """LangGraph hands each model call its own copy of the tracer, made before any handler of ours
    runs: the first model call of the agent run carries our cost too."""

    @tool
    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    call = AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "call-1"}])
    agent = create_agent(cheap_model([call, "It is sunny in Paris."]), tools=[lookup])
    tracer = tracer_to(langsmith_api)
    usage_handler = UsageMetadataCallbackHandler()
    handler = CostCallbackHandler("memory://", langsmith=True)
    result = agent.invoke(
        {"messages": [("user", "Weather in Paris?")]}, config={"callbacks": [handler, tracer, usage_handler]}
    )
    sent_all(tracer)

    assert result["messages"][-1].content == "It is sunny in Paris."
    first, second = handler.events
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    assert all("total_cost" not in (m.usage_metadata or {}) for m in result["messages"] if isinstance(m, AIMessage))
    totals = usage_handler.usage_metadata["gpt-4o-mini-2024-07-18"]
    assert totals["total_tokens"] == first.usage.total + second.usage.total


def test_anthropic_cache_writes_are_priced_under_their_ephemeral_keys(langsmith_api: LangSmithStandIn) -> None:
    usage = {
        "input_tokens": 3_000 + 20_000 + 1_000 + 500,
        "output_tokens": 400,
        "total_tokens": 24_900,
        "input_token_details": {
            "cache_read": 20_000,
            "cache_creation": 1_500,
            "ephemeral_5m_input_tokens": 1_000,
            "ephemeral_1h_input_tokens": 500,
        },
    }
    reply = AIMessage(content="Done.", usage_metadata=usage, response_metadata={"model_name": "claude-sonnet-4-5"})
    model = GenericFakeChatModel(messages=iter([reply]))
    handler = CostCallbackHandler("memory://", langsmith=True)
    tracer = tracer_to(langsmith_api)
    (ChatPromptTemplate.from_messages([("human", "{q}")]) | model).invoke(
        {"q": "go"}, config={"callbacks": [handler, tracer]}
    )
    sent_all(tracer)

    event = handler.events[0]
    parts = handler.recorder.accountant.cost_parts(event)
    sent = usage_sent(langsmith_api, event.id)
    assert sent["total_cost"] == float(event.cost)  # type: ignore[arg-type]
    assert sent["input_cost_details"] == {
        "cache_read": float(parts["cache_read"]),  # type: ignore[index]
        "ephemeral_5m_input_tokens": float(parts["cache_write_5m"]),  # type: ignore[index]
        "ephemeral_1h_input_tokens": float(parts["cache_write_1h"]),  # type: ignore[index]
    }
    assert "cache_creation" not in sent["input_cost_details"]  # the writes are not priced a second time
    assert "total_cost" not in reply.usage_metadata  # type: ignore[operator]


def test_off_when_asked_the_tracer_sends_langchains_usage_untouched(langsmith_api: LangSmithStandIn) -> None:
    handler = CostCallbackHandler("memory://", langsmith=False)
    tracer = tracer_to(langsmith_api)
    (ChatPromptTemplate.from_messages([("human", "{q}")]) | cheap_model(["fine"])).invoke(
        {"q": "hi"}, config={"callbacks": [handler, tracer]}
    )
    sent_all(tracer)
    sent = usage_sent(langsmith_api, handler.events[0].id)
    assert "total_cost" not in sent and sent["input_tokens"] == handler.events[0].usage.prompt_tokens


def test_langsmith_must_be_a_bool_or_none() -> None:
    from agentcost_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="langsmith"):
        CostCallbackHandler("memory://", langsmith="yes")  # type: ignore[arg-type]
