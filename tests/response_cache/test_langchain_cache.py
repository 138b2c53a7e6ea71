"""``agentcost_langchain.ResponseCache`` with the real ChatOpenAI over a mock transport: as the
global LLM cache and as a model's ``cache=``; hits recorded once, priced as savings, never charged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest
from langchain_core.globals import get_llm_cache, set_llm_cache
from langchain_providers import load_providers

from agentcost_core import Ledger, PriceCatalog
from agentcost_langchain import CostCallbackHandler, ResponseCache

P = load_providers()
MODEL = "gpt-4o-mini"


def provider() -> object:
    return P.MockProvider(lambda body, _req: P.openai_chat_completion(MODEL + "-2024-07-18", 1_000, 200,
                                                                      text=f"answer to {body['messages'][-1]['content']}"))  # fmt: skip


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    ledger = Ledger("memory://", sync=True)
    yield ledger
    ledger.close()


@pytest.fixture
def global_cache() -> Iterator[None]:
    before = get_llm_cache()
    yield
    set_llm_cache(before)


def cost_of_one_call() -> Decimal:
    from agentcost_core.usage import Usage

    return PriceCatalog.default().get(MODEL + "-2024-07-18").cost(Usage(input=1_000, output=200))  # type: ignore[union-attr]


def test_set_llm_cache_serves_the_second_call_and_records_the_hit(
    store_url: str, ledger: Ledger, global_cache: None
) -> None:
    mock = provider()
    set_llm_cache(ResponseCache(store_url, ledger=ledger))
    llm = P.chat_openai(mock, MODEL)
    first = llm.invoke("What is 2+2?", config={"metadata": {"user_id": "alice"}})
    second = llm.invoke("What is 2+2?", config={"metadata": {"user_id": "alice"}})
    assert mock.calls == 1
    assert second.content == first.content == "answer to What is 2+2?"
    (hit,) = ledger.events()
    assert hit.cache_hit and hit.cost == 0 and hit.user_id == "alice"
    assert hit.saved == cost_of_one_call() > 0
    assert hit.extra == {"cache": "exact"}


def test_a_models_cache_argument_scopes_by_user(store_url: str, ledger: Ledger) -> None:
    mock = provider()
    llm = P.chat_openai(mock, MODEL, cache=ResponseCache(store_url, ledger=ledger))
    llm.invoke("Plan my week", config={"metadata": {"user_id": "alice"}})
    llm.invoke("Plan my week", config={"metadata": {"user_id": "bob"}})
    assert mock.calls == 2  # bob never gets alice's answer
    llm.invoke("Plan my week", config={"metadata": {"user_id": "bob"}})
    assert mock.calls == 2
    assert [e.user_id for e in ledger.events()] == ["bob"]


def test_any_parameter_that_changes_the_output_is_part_of_the_key(ledger: Ledger) -> None:
    mock = provider()
    cache = ResponseCache("memory://", ledger=ledger)
    P.chat_openai(mock, MODEL, cache=cache, temperature=0).invoke("hi")
    P.chat_openai(mock, MODEL, cache=cache, temperature=1).invoke("hi")
    P.chat_openai(mock, MODEL, cache=cache, temperature=0, max_tokens=5).invoke("hi")
    P.chat_openai(mock, "gpt-4o", cache=cache, temperature=0).invoke("hi")
    assert mock.calls == 4
    P.chat_openai(mock, MODEL, cache=cache, temperature=0).invoke("hi")
    assert mock.calls == 4


def test_bound_tools_are_part_of_the_key(ledger: Ledger) -> None:
    from langchain_core.tools import tool

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    @tool
    def clock(city: str) -> str:
        """The time in a city."""
        return "noon"

    mock = provider()
    llm = P.chat_openai(mock, MODEL, cache=ResponseCache("memory://", ledger=ledger))
    llm.bind_tools([weather]).invoke("Paris?")
    llm.bind_tools([clock]).invoke("Paris?")
    llm.bind_tools([weather]).invoke("Paris?")
    assert mock.calls == 2


def test_with_a_cost_handler_the_hit_is_one_event_charged_nothing(store_url: str, ledger: Ledger) -> None:
    mock = provider()
    handler = CostCallbackHandler(ledger)
    llm = P.chat_openai(mock, MODEL, cache=ResponseCache(store_url, ledger=ledger))
    for _ in range(2):
        llm.invoke("Summarise the news", config={"callbacks": [handler], "metadata": {"user_id": "u1"}})
    assert mock.calls == 1
    miss, hit = ledger.events()
    assert (miss.cache_hit, hit.cache_hit) == (False, True)
    assert hit.cost == 0 and hit.saved == miss.cost == cost_of_one_call()
    assert hit.extra == {"cache": "exact"}
    assert handler.total_cost == miss.cost  # the handler's total counts the hit at $0


def test_streaming_model_invoked_is_cached_and_served(ledger: Ledger) -> None:
    mock = P.MockProvider(lambda _b, _r: P.openai_chat_stream(MODEL, ["Hel", "lo"], prompt=40, completion=2))
    llm = P.chat_openai(mock, MODEL, streaming=True, stream_usage=True, cache=ResponseCache("memory://", ledger=ledger))
    assert llm.invoke("greet me").content == "Hello"
    assert llm.invoke("greet me").content == "Hello"
    assert mock.calls == 1
    (hit,) = ledger.events()
    assert hit.cache_hit and hit.usage.input == 40 and hit.saved and hit.saved > 0


def test_async_calls_hit_too(store_url: str, ledger: Ledger) -> None:
    mock = provider()
    llm = P.chat_openai(mock, MODEL, cache=ResponseCache(store_url, ledger=ledger))

    async def main() -> list[str]:
        a = await llm.ainvoke("async?", config={"metadata": {"user_id": "u9"}})
        b = await llm.ainvoke("async?", config={"metadata": {"user_id": "u9"}})
        return [a.content, b.content]

    assert asyncio.run(main()) == ["answer to async?"] * 2
    assert mock.calls == 1
    assert [e.user_id for e in ledger.events()] == ["u9"]


def test_concurrent_async_runs_keep_their_own_users(ledger: Ledger) -> None:
    mock = provider()
    llm = P.chat_openai(mock, MODEL, cache=ResponseCache("memory://", ledger=ledger))
    users = [f"u{i}" for i in range(8)]

    async def main() -> None:
        await asyncio.gather(*(llm.ainvoke("same question", config={"metadata": {"user_id": u}}) for u in users))
        await asyncio.gather(*(llm.ainvoke("same question", config={"metadata": {"user_id": u}}) for u in users))

    asyncio.run(main())
    assert mock.calls == len(users)  # one call per user, the second round all hits
    assert sorted(e.user_id for e in ledger.events()) == users


def test_a_broken_store_never_breaks_the_call(ledger: Ledger) -> None:
    mock = provider()
    cache = ResponseCache("redis://127.0.0.1:1/0", ledger=ledger)
    llm = P.chat_openai(mock, MODEL, cache=cache)
    assert llm.invoke("still works?").content == "answer to still works?"
    assert llm.invoke("still works?").content == "answer to still works?"
    assert mock.calls == 2
    assert cache.stats["exact"].errors == 4  # two lookups, two stores


def test_invalidate_by_the_runs_cache_tags(ledger: Ledger) -> None:
    mock = provider()
    cache = ResponseCache("memory://", ledger=ledger)
    llm = P.chat_openai(mock, MODEL, cache=cache)
    config = {"metadata": {"cache_tags": ["kb-v1"]}}
    llm.invoke("What does the KB say?", config=config)
    assert cache.invalidate("kb-v1") == 1
    llm.invoke("What does the KB say?", config=config)
    assert mock.calls == 2


def test_budgets_are_not_charged_for_hits(ledger: Ledger) -> None:
    from agentcost_core import Budget
    from agentcost_core.budgets import ScopeContext

    mock = provider()
    handler = CostCallbackHandler(ledger, budgets=Budget(usd="10", per="user_day"))
    llm = P.chat_openai(mock, MODEL, cache=ResponseCache("memory://", ledger=ledger))
    for _ in range(3):
        llm.invoke("Draft a reply", config={"callbacks": [handler], "metadata": {"user_id": "u1"}})
    assert mock.calls == 1
    (spent,) = handler.controls.enforcer.spent(ScopeContext(user_id="u1")).values()  # type: ignore[union-attr]
    assert spent["usd"] == cost_of_one_call() and spent["held_usd"] == 0
    assert [e.cache_hit for e in ledger.events()] == [False, True, True]


def test_a_completion_model_is_cached_only_without_a_scope(ledger: Ledger) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    scoped = FakeListLLM(responses=["alice's secret", "bob's answer"], cache=ResponseCache("memory://", ledger=ledger))
    assert scoped.invoke("same prompt", config={"metadata": {"user_id": "alice"}}) == "alice's secret"
    assert scoped.invoke("same prompt", config={"metadata": {"user_id": "bob"}}) == "bob's answer"  # never a guess
    shared = FakeListLLM(responses=["one", "two"], cache=ResponseCache("memory://", ledger=ledger, scope=()))
    assert [shared.invoke("q"), shared.invoke("q")] == ["one", "one"]
