"""Every LLM run LangSmith receives carries our exact cost, whatever built the tracer and however
the model was called: a direct ``invoke``, a chain starting with the model, an agent (its first
model call included), ``stream`` / ``astream``, async runs, ``batch``, a tracer of
``tracing_v2_enabled()``. ``UsageMetadataCallbackHandler`` rides along in each and never raises.

Checked at a local stand-in for the LangSmith API (``tests/langsmith_standin.py``) that records
what the real ``langsmith`` client sends; the client is flushed synchronously before each check.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import langsmith
import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.tracers.context import tracing_v2_enabled
from langchain_core.tracers.langchain import LangChainTracer
from langsmith_standin import (  # tests/ helper
    LangSmithStandIn,
    assert_exact_cost_on_every_llm_run,
    cheap_model,
    sent_all,
    tracer_to,
    usage_sent,
)

from agentcost_core.budgets import Budget
from agentcost_core.budgets.stores.sqlite import SQLiteStore
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.langsmith import hook_installed

MODEL = "gpt-4o-mini-2024-07-18"
ORDERS = pytest.mark.parametrize("tracer_first", [False, True], ids=["handler-first", "tracer-first"])


@pytest.fixture
def langsmith_api() -> Iterator[LangSmithStandIn]:
    with LangSmithStandIn() as stand_in:
        yield stand_in


def callbacks(tracer: LangChainTracer, *others: Any, tracer_first: bool) -> list[Any]:
    return [tracer, *others] if tracer_first else [*others, tracer]


def assert_usage_handler_saw_int_tokens(usage_handler: UsageMetadataCallbackHandler, handler: Any) -> None:
    """UsageMetadataCallbackHandler summed the user's messages: token ints only, no cost keys."""
    totals = usage_handler.usage_metadata[MODEL]
    assert not any(key.endswith(("_cost", "_cost_details")) for key in totals)
    assert totals["input_tokens"] == sum(e.usage.prompt_tokens for e in handler.events if e.kind == "llm")
    assert totals["output_tokens"] == sum(e.usage.output for e in handler.events if e.kind == "llm")


@ORDERS
def test_a_direct_invoke_and_a_chain_starting_with_the_model(
    langsmith_api: LangSmithStandIn, tracer_first: bool
) -> None:
    handler = CostCallbackHandler("memory://", langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    tracer = tracer_to(langsmith_api)  # built by the user, passed in the config
    config = {"callbacks": callbacks(tracer, handler, usage_handler, tracer_first=tracer_first)}
    model = cheap_model(["Paris.", "Madrid."], cached_share=0.5)

    reply = model.invoke("What is the capital of France? " * 60, config=config)
    text = (model | StrOutputParser()).invoke("And the capital of Spain? " * 60, config=config)
    sent_all(tracer)

    assert (reply.content, text) == ("Paris.", "Madrid.")
    assert len(handler.events) == 2
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    for event in handler.events:
        assert usage_sent(langsmith_api, event.id)["input_token_details"]["cache_read"] == event.usage.cache_read > 0
    assert_usage_handler_saw_int_tokens(usage_handler, handler)
    assert "total_cost" not in (reply.usage_metadata or {})


@tool
def lookup(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def weather_agent() -> Any:
    call = AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "call-1"}])
    return create_agent(cheap_model([call, "It is sunny in Paris."], cached_share=0.25), tools=[lookup])


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_an_agent_under_tracing_v2_enabled_every_model_call_the_first_included(
    langsmith_api: LangSmithStandIn, how: str
) -> None:
    """LangChain builds the tracer (``tracing_v2_enabled``) and LangGraph copies it per node."""
    handler = CostCallbackHandler("memory://", langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    client = langsmith.Client(api_url=langsmith_api.url, api_key="test-key", auto_batch_tracing=True)
    agent = weather_agent()
    question = {"messages": [("user", "Weather in Paris? " * 30)]}
    with tracing_v2_enabled(project_name="agentcost-test", client=client):
        config = {"callbacks": [handler, usage_handler]}
        if how == "invoke":
            answer = agent.invoke(question, config=config)["messages"][-1].content
        else:
            updates = list(agent.stream(question, config=config, stream_mode="updates"))
            answer = updates[-1]["model"]["messages"][-1].content
    client.flush(timeout=10)

    assert answer == "It is sunny in Paris."
    assert [e.kind for e in handler.events] == ["llm", "llm"]  # the tool call, then the answer
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    assert_usage_handler_saw_int_tokens(usage_handler, handler)


@ORDERS
def test_stream_and_astream_carry_the_cost_and_chunks_still_merge(
    langsmith_api: LangSmithStandIn, tracer_first: bool
) -> None:
    import asyncio

    handler = CostCallbackHandler("memory://", langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    tracer = tracer_to(langsmith_api)
    config = {"callbacks": callbacks(tracer, handler, usage_handler, tracer_first=tracer_first)}
    model = cheap_model(["one two three four five"])

    chunks = list(model.stream("count to five", config=config))

    async def astream() -> list[Any]:
        return [chunk async for chunk in model.astream("count to five again", config=config)]

    achunks = asyncio.run(astream())
    sent_all(tracer)

    for stream in (chunks, achunks):
        merged = stream[0]
        for chunk in stream[1:]:
            merged = merged + chunk  # message merging adds usage with add_usage: ints only
        assert merged.content == "one two three four five"
        assert merged.usage_metadata is not None and "total_cost" not in merged.usage_metadata
    assert len(handler.events) == 2
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    assert_usage_handler_saw_int_tokens(usage_handler, handler)


class SettleThreads(SQLiteStore):
    """A real SQLite budget store that notes the thread of each settlement."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settled_on: list[threading.Thread] = []

    def settle(self, *args: Any, **kwargs: Any) -> Any:
        self.settled_on.append(threading.current_thread())
        return super().settle(*args, **kwargs)


@ORDERS
async def test_async_runs_settle_in_the_handler_off_the_event_loop_whatever_the_order(
    langsmith_api: LangSmithStandIn, tracer_first: bool, tmp_path: Any
) -> None:
    """With a shared budget store the handler runs in a worker thread under async runs, after the
    (inline) tracer: the tracer's end waits for our settlement instead of settling on the loop."""
    store = SettleThreads(f"sqlite:///{tmp_path}/budgets.db")
    budget = Budget(usd=5, per="global_day", store=store)
    handler = CostCallbackHandler("memory://", budgets=[budget], langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    tracer = tracer_to(langsmith_api)
    config = {"callbacks": callbacks(tracer, handler, usage_handler, tracer_first=tracer_first)}
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | cheap_model(["Yes.", "No."])

    answers = [await chain.ainvoke({"q": q}, config=config) for q in ("Is it on? " * 50, "Is it off? " * 50)]
    sent_all(tracer)

    assert [a.content for a in answers] == ["Yes.", "No."]
    assert not handler.run_inline  # LangChain runs it in a worker thread, after the tracer
    assert len(handler.events) == 2
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    status = budget.status()
    assert status.spent == sum((e.cost for e in handler.events), Decimal(0)) and status.held == 0
    assert len(store.settled_on) == 2 and threading.main_thread() not in store.settled_on
    assert_usage_handler_saw_int_tokens(usage_handler, handler)


@ORDERS
def test_batch_every_run_of_the_batch(langsmith_api: LangSmithStandIn, tracer_first: bool) -> None:
    handler = CostCallbackHandler("memory://", langsmith=True)
    usage_handler = UsageMetadataCallbackHandler()
    tracer = tracer_to(langsmith_api)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | cheap_model(["A short answer."])
    questions = [{"q": f"Question number {i}? " * (10 + 7 * i)} for i in range(6)]

    answers = chain.batch(
        questions,
        config={
            "callbacks": callbacks(tracer, handler, usage_handler, tracer_first=tracer_first),
            "max_concurrency": 3,
        },
    )
    sent_all(tracer)

    assert len(answers) == 6 and len(handler.events) == 6
    assert len({e.usage.prompt_tokens for e in handler.events}) == 6  # six different calls, six costs
    assert_exact_cost_on_every_llm_run(langsmith_api, handler)
    assert_usage_handler_saw_int_tokens(usage_handler, handler)


class TwoChoices(BaseChatModel):
    """An OpenAI-like chat model asked for ``n=2``: two generations, each message carrying the
    response's whole usage, as langchain-openai reports it."""

    @property
    def _llm_type(self) -> str:
        return "two-choices"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        usage = {"input_tokens": 1_200, "output_tokens": 80, "total_tokens": 1_280}
        replies = [AIMessage(content=text, usage_metadata=dict(usage)) for text in ("Yes.", "Indeed.")]
        return ChatResult(generations=[ChatGeneration(message=m) for m in replies], llm_output={"model_name": MODEL})


def test_n_generations_one_cost_and_the_tokens_langsmith_would_have_summed(langsmith_api: LangSmithStandIn) -> None:
    handler = CostCallbackHandler("memory://", langsmith=True)
    tracer = tracer_to(langsmith_api)
    result = TwoChoices().generate([[HumanMessage("Is it?")]], callbacks=[tracer, handler])
    sent_all(tracer)

    (event,) = handler.events
    sent = usage_sent(langsmith_api, event.id)
    assert event.cost is not None and sent["total_cost"] == float(event.cost)
    assert (sent["input_tokens"], sent["output_tokens"]) == (2_400, 160)  # LangChain's own sum, unchanged
    assert all("total_cost" not in g.message.usage_metadata for g in result.generations[0])  # type: ignore[attr-defined]


def test_runs_no_handler_of_ours_priced_go_through_untouched_and_the_hook_is_installed_once(
    langsmith_api: LangSmithStandIn,
) -> None:
    CostCallbackHandler("memory://", langsmith=True)
    hooked = LangChainTracer.on_llm_end
    CostCallbackHandler("memory://", langsmith=True)
    assert hook_installed() and LangChainTracer.on_llm_end is hooked  # one wrapper per process

    tracer = tracer_to(langsmith_api)
    reply = cheap_model(["Fine."]).invoke("How are you?", config={"callbacks": [tracer]})
    sent_all(tracer)

    (run,) = langsmith_api.llm_runs().values()
    sent = run["extra"]["metadata"]["usage_metadata"]
    assert sent == reply.usage_metadata  # exactly LangChain's usage: no cost keys of ours
