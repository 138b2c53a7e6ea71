"""``agentcost_langchain.ResponseCache`` with the real ChatOpenAI over a mock transport: as the
global LLM cache and as a model's ``cache=``; hits recorded once, priced as savings, never charged."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from langchain_core.globals import get_llm_cache, set_llm_cache
from langchain_providers import load_providers
from threads_together import run_threads_together

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


#: How long a held provider answer waits for its waiters before it fails the call (a bound, never a pause).
HOLD_LIMIT_S = 30.0


class _Hold:
    """Holds a provider's first answer until ``waiters`` identical calls wait for it; any later answer is
    given at once (a call that should have waited is counted, never stuck). An async client's mock
    transport answers on the event loop's thread, where a task that has not joined yet can never join:
    after ``HOLD_LIMIT_S`` the held answer fails the call, with the count, instead of hanging the test."""

    def __init__(self, cache: ResponseCache, waiters: int) -> None:
        self.cache, self.waiters, self.released = cache, waiters, threading.Event()

    def __call__(self) -> None:
        if self.released.is_set():
            return
        deadline = time.monotonic() + HOLD_LIMIT_S
        try:
            while self.cache.waiting() < self.waiters:  # a condition, checked until it holds (no timing assumption)
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.cache.waiting()} of {self.waiters} calls waited for the held answer")
                self.released.wait(0.001)
        finally:
            self.released.set()


def _held_provider(cache: ResponseCache, waiters: int) -> object:
    """A provider whose first answer waits until ``waiters`` identical calls wait for it."""
    hold = _Hold(cache, waiters)

    def reply(body: dict, _req: object) -> dict:  # type: ignore[type-arg]
        hold()
        return P.openai_chat_completion(MODEL + "-2024-07-18", 1_000, 200, text="one answer")

    return P.MockProvider(reply)


def test_identical_calls_in_flight_from_threads_make_one_provider_call(store_url: str, ledger: Ledger) -> None:
    cache = ResponseCache(store_url, ledger=ledger)  # with Redis, the flight is shared through Redis too
    mock = _held_provider(cache, waiters=63)
    llm = P.chat_openai(mock, MODEL, cache=cache)
    answers = run_threads_together(
        lambda: llm.invoke("Same question", config={"metadata": {"user_id": "u1"}}).content, 64
    )
    assert mock.calls == 1 and answers == ["one answer"] * 64
    waits = [e for e in ledger.events() if e.cache_hit]
    assert len(waits) == 63 and {e.extra["cache"] for e in waits} == {"coalesced"}  # type: ignore[index]
    assert all(e.saved == cost_of_one_call() and e.cost == 0 for e in waits)


def test_identical_calls_in_flight_from_asyncio_tasks_make_one_provider_call(ledger: Ledger) -> None:
    cache = ResponseCache("memory://", ledger=ledger)
    mock = _held_provider(cache, waiters=199)
    llm = P.chat_openai(mock, MODEL, cache=cache)

    async def main() -> list[str]:
        replies = await asyncio.gather(*(llm.ainvoke("Same question") for _ in range(200)))
        return [r.content for r in replies]

    assert asyncio.run(main()) == ["one answer"] * 200
    assert mock.calls == 1
    assert sum(1 for e in ledger.events() if e.cache_hit) == 199


COMPLETION_MODEL = "gpt-3.5-turbo-instruct"


def _completions(texts: list[str], completion_tokens: int) -> dict:  # type: ignore[type-arg]
    """A ``text_completion`` object (https://platform.openai.com/docs/api-reference/completions/object)."""
    choices = [{"text": t, "index": i, "logprobs": None, "finish_reason": "stop"} for i, t in enumerate(texts)]
    return {"id": "cmpl-mock", "object": "text_completion", "created": P.CREATED, "model": COMPLETION_MODEL,
            "choices": choices, "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens,
                                          "total_tokens": 10 + completion_tokens}}  # fmt: skip


def _held_completions(cache: ResponseCache, waiters: int) -> object:
    """A completions endpoint whose first answer waits until ``waiters`` identical calls wait for it."""
    hold = _Hold(cache, waiters)

    def reply(body: dict, _req: object) -> dict:  # type: ignore[type-arg]
        hold()
        return _completions(["one answer"], 2)

    return P.MockProvider(reply)


def _completion_llm(mock: object, cache: ResponseCache) -> object:
    """The real ``langchain_openai.OpenAI`` (a ``BaseLLM``: it asks its cache before its run starts and
    updates it after the run's end) over the mock transport."""
    import httpx
    from langchain_openai import OpenAI

    return OpenAI(model=COMPLETION_MODEL, api_key="sk-test", max_retries=0, cache=cache,
                  http_client=httpx.Client(transport=mock.httpx_transport()),  # type: ignore[attr-defined]
                  http_async_client=httpx.AsyncClient(transport=mock.httpx_transport()))  # type: ignore[attr-defined]  # fmt: skip


def test_a_completion_models_identical_calls_in_flight_from_threads_make_one_provider_call(
    store_url: str, ledger: Ledger
) -> None:
    cache = ResponseCache(store_url, ledger=ledger, scope=())  # a completion model is cached only without a scope
    mock = _held_completions(cache, waiters=15)
    llm = _completion_llm(mock, cache)
    answers = run_threads_together(lambda: llm.invoke("Same question"), 16)  # type: ignore[attr-defined]
    assert mock.calls == 1 and answers == ["one answer"] * 16  # type: ignore[attr-defined]
    waits = [e for e in ledger.events() if e.cache_hit]
    assert len(waits) == 15 and {e.extra["cache"] for e in waits} == {"coalesced"}  # type: ignore[index]
    assert all(e.cost == 0 for e in waits) and cache.waiting() == 0


def test_a_completion_models_identical_calls_in_flight_from_asyncio_tasks_make_one_provider_call(
    ledger: Ledger,
) -> None:
    """A guard more than a regression test: ``BaseLLM.agenerate`` runs its runs' callbacks in tasks of
    their own, so there the owner's ``aupdate`` shares the response (a sync run's end does)."""
    cache = ResponseCache("memory://", ledger=ledger, scope=())
    mock = _held_completions(cache, waiters=49)
    llm = _completion_llm(mock, cache)

    async def main() -> list[str]:
        return await asyncio.gather(*(llm.ainvoke("Same question") for _ in range(50)))  # type: ignore[attr-defined]

    assert asyncio.run(main()) == ["one answer"] * 50
    assert mock.calls == 1  # type: ignore[attr-defined]
    waits = [e for e in ledger.events() if e.cache_hit]
    assert len(waits) == 49 and {e.extra["cache"] for e in waits} == {"coalesced"}  # type: ignore[index]


def test_a_completion_models_waiters_and_later_hits_are_recorded_with_the_owners_model_usage_and_savings(
    ledger: Ledger,
) -> None:
    """A completion model reports its model and usage in ``LLMResult.llm_output``, not in its generations."""
    cache = ResponseCache("memory://", ledger=ledger, scope=())
    mock = _held_completions(cache, waiters=3)
    llm = _completion_llm(mock, cache)
    handler = CostCallbackHandler(ledger)  # records the owner's call: what the hits must say they saved
    answers = run_threads_together(lambda: llm.invoke("Same question", config={"callbacks": [handler]}), 4)  # type: ignore[attr-defined]
    assert answers == ["one answer"] * 4 and mock.calls == 1  # type: ignore[attr-defined]
    assert llm.invoke("Same question") == "one answer" and mock.calls == 1  # type: ignore[attr-defined]
    (owner,) = [e for e in ledger.events() if not e.cache_hit]
    assert owner.model == COMPLETION_MODEL and owner.cost > 0 and owner.usage.input == 10
    hits = [e for e in ledger.events() if e.cache_hit]
    assert [e.extra["cache"] for e in hits] == ["coalesced"] * 3 + ["exact"]  # type: ignore[index]
    for hit in hits:
        assert (hit.model, hit.saved, hit.cost, hit.usage) == (owner.model, owner.cost, 0, owner.usage)


def test_a_completion_models_batch_shares_each_prompts_answer_with_that_prompts_waiter(ledger: Ledger) -> None:
    cache = ResponseCache("memory://", ledger=ledger, scope=())
    first = threading.Event()

    def reply(body: dict, _req: object) -> dict:  # type: ignore[type-arg]
        if not first.is_set():  # the batch's request waits for one waiter per prompt; any later call is answered
            while cache.waiting() < 2:
                first.wait(0.001)
            first.set()
        return _completions([f"answer to {p}" for p in body["prompt"]], 4)

    mock = P.MockProvider(reply)
    llm = _completion_llm(mock, cache)
    out: dict[str, object] = {}

    def call(name: str, target: object) -> threading.Thread:
        thread = threading.Thread(target=lambda: out.__setitem__(name, target()))  # type: ignore[operator]
        thread.start()
        return thread

    threads = [call("batch", lambda: llm.generate(["q1", "q2"]))]  # type: ignore[attr-defined]
    while mock.calls < 1:  # the batch owns both prompts' flights: its request is at the provider
        first.wait(0.001)
    threads += [call(p, lambda p=p: llm.invoke(p)) for p in ("q1", "q2")]  # type: ignore[attr-defined, misc]
    for thread in threads:
        thread.join()
    assert [g[0].text for g in out["batch"].generations] == ["answer to q1", "answer to q2"]  # type: ignore[attr-defined]
    assert (out["q1"], out["q2"], mock.calls) == ("answer to q1", "answer to q2", 1)
    waits = [e for e in ledger.events() if e.cache_hit]
    assert len(waits) == 2 and {e.extra["cache"] for e in waits} == {"coalesced"}  # type: ignore[index]
    # the batch's usage (10 prompt tokens) counts both prompts together: neither hit claims it as its own
    assert [(e.model, e.usage.input) for e in waits] == [(COMPLETION_MODEL, 0)] * 2
    assert cache.waiting() == 0


def test_a_failed_owner_lets_the_waiters_call_on_their_own(ledger: Ledger) -> None:
    cache = ResponseCache("memory://", ledger=ledger)
    first = threading.Event()

    def reply(body: dict, _req: object) -> object:  # type: ignore[type-arg]
        if not first.is_set():
            while cache.waiting() < 3:
                first.wait(0.001)
            first.set()
            return P.openai_error(500)
        return P.openai_chat_completion(MODEL, 10, 2, text="retried")

    mock = P.MockProvider(reply)
    llm = P.chat_openai(mock, MODEL, cache=cache)
    outcomes = run_threads_together(lambda: llm.invoke("Fragile question").content, 4)
    assert sorted(outcomes) == ["OpenAIAPIError", "retried", "retried", "retried"]  # the error is the owner's alone
    assert mock.calls == 4 and cache.waiting() == 0


def test_a_cancelled_owner_releases_its_waiters(ledger: Ledger) -> None:
    import httpx
    from langchain_openai import ChatOpenAI

    cache = ResponseCache("memory://", ledger=ledger)
    calls: list[int] = []

    async def main() -> str:
        gate = asyncio.Event()

        async def provider(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            await gate.wait()
            return httpx.Response(200, json=P.openai_chat_completion(MODEL, 10, 2, text="answer"))

        llm = ChatOpenAI(model=MODEL, api_key="sk-test", max_retries=0,
                         http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(provider)), cache=cache)  # fmt: skip
        owner = asyncio.create_task(llm.ainvoke("q"))
        while not calls:  # the owner's request is at the provider
            await asyncio.sleep(0)
        waiter = asyncio.create_task(llm.ainvoke("q"))
        while cache.waiting() < 1:
            await asyncio.sleep(0)
        owner.cancel()
        while cache.waiting():  # the cancelled owner's flight ended: the waiter left it
            await asyncio.sleep(0)
        gate.set()
        return (await waiter).content

    assert asyncio.run(main()) == "answer"
    assert len(calls) == 2  # the cancelled call and the waiter's own


def _corrupt_every_entry(path: object, payload: str) -> None:
    import sqlite3

    con = sqlite3.connect(str(path))
    con.execute("UPDATE entries SET payload = ?", (payload,))
    con.commit()
    con.close()


def test_a_corrupt_entry_is_a_counted_miss_and_the_call_is_answered(ledger: Ledger, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mock = provider()
    cache = ResponseCache(f"sqlite:///{tmp_path / 'c.db'}", ledger=ledger)
    llm = P.chat_openai(mock, MODEL, cache=cache)
    llm.invoke("What is corrupt?")
    _corrupt_every_entry(tmp_path / "c.db", "not json")
    assert llm.invoke("What is corrupt?").content == "answer to What is corrupt?"
    assert mock.calls == 2
    assert cache.stats.as_dict()["exact"] == {"hits": 0, "misses": 2, "errors": 1}
    assert not [e for e in ledger.events() if e.cache_hit]  # no hit recorded for an entry never served
    assert llm.invoke("What is corrupt?").content == "answer to What is corrupt?"  # the call stored a good one
    assert mock.calls == 2 and cache.stats["exact"].hits == 1


def test_a_failing_embedder_leaves_the_exact_layer_working_and_is_asked_once(ledger: Ledger) -> None:
    asked: list[str] = []

    def broken(text: str) -> list[float]:
        asked.append(text)
        raise RuntimeError("embedding service down")

    mock = provider()
    cache = ResponseCache("memory://", semantic=broken, ledger=ledger)
    llm = P.chat_openai(mock, MODEL, cache=cache)
    assert [llm.invoke("Same question").content for _ in range(2)] == ["answer to Same question"] * 2
    assert mock.calls == 1 and len(cache) == 1
    assert asked == ["Same question"]  # once for the call that missed, not again to store its answer
    assert cache.stats["semantic"].errors == 1 and cache.stats["exact"].hits == 1


def test_coalesce_must_be_a_bool() -> None:
    from agentcost_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="coalesce"):
        ResponseCache("memory://", coalesce="yes")  # type: ignore[arg-type]


def _ends_without_waiting(cache: ResponseCache, call: object) -> tuple[object, bool]:
    """(``call()``'s result, whether any call waited for a flight while it ran), ``call`` run in a thread
    and the cache's waiters watched until it returns."""
    done, out, waited = threading.Event(), [], False

    def run() -> None:
        try:
            out.append(call())  # type: ignore[operator]
        except BaseException as e:  # noqa: BLE001 - raised again in the test's thread
            out.append(e)
        finally:
            done.set()

    threading.Thread(target=run).start()
    while not done.wait(0.001):  # a condition, checked until the call returns (no timing assumption)
        waited = waited or cache.waiting() > 0
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0], waited


def test_a_batch_of_prompts_leaves_no_flight_behind(store_url: str, ledger: Ledger) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    cache = ResponseCache(store_url, ledger=ledger, scope=())
    cache.coalescer.timeout = 5.0  # a safety net so a regression fails in seconds, never what is asserted
    llm = FakeListLLM(responses=["one", "two", "three", "four"], cache=cache)
    result, waited = _ends_without_waiting(cache, lambda: llm.generate(["p1", "p2"]))
    assert [g[0].text for g in result.generations] == ["one", "two"] and not waited  # type: ignore[attr-defined]
    assert (llm.invoke("p1"), llm.invoke("p2")) == ("one", "two")  # stored: served from the cache
    cache.clear()  # the entries are gone: each prompt's next call is its own flight's owner, nobody's waiter
    assert _ends_without_waiting(cache, lambda: llm.invoke("p1")) == ("three", False)
    assert _ends_without_waiting(cache, lambda: llm.invoke("p2")) == ("four", False)


def test_a_batch_repeating_a_prompt_never_waits_for_itself(store_url: str, ledger: Ledger) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    cache = ResponseCache(store_url, ledger=ledger, scope=())
    cache.coalescer.timeout = 5.0  # a safety net so a regression fails in seconds, never what is asserted
    llm = FakeListLLM(responses=["one", "two", "three"], cache=cache)
    result, waited = _ends_without_waiting(cache, lambda: llm.generate(["p", "p"]))
    assert [g[0].text for g in result.generations] == ["one", "two"] and not waited  # type: ignore[attr-defined]
    assert llm.invoke("p") in ("one", "two")  # stored: served from the cache
    cache.clear()
    assert _ends_without_waiting(cache, lambda: llm.invoke("p")) == ("three", False)


def test_an_async_batch_of_prompts_leaves_no_flight_behind(ledger: Ledger) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    cache = ResponseCache("memory://", ledger=ledger, scope=())
    cache.coalescer.timeout = 5.0  # a safety net so a regression fails in seconds, never what is asserted
    llm = FakeListLLM(responses=["one", "two", "three", "four"], cache=cache)
    result, waited = _ends_without_waiting(cache, lambda: asyncio.run(llm.agenerate(["p1", "p", "p"])))
    assert [g[0].text for g in result.generations] == ["one", "two", "three"] and not waited  # type: ignore[attr-defined]
    cache.clear()
    assert _ends_without_waiting(cache, lambda: asyncio.run(llm.ainvoke("p1"))) == ("four", False)


def test_a_chat_models_batch_leaves_no_flight_behind(ledger: Ledger) -> None:
    from langchain_core.messages import HumanMessage

    cache = ResponseCache("memory://", ledger=ledger)
    cache.coalescer.timeout = 5.0  # a safety net so a regression fails in seconds, never what is asserted
    mock = provider()
    llm = P.chat_openai(mock, MODEL, cache=cache)
    config = {"metadata": {"user_id": "u1"}}
    batch = [[HumanMessage("q1")], [HumanMessage("q1")], [HumanMessage("q2")]]
    result, waited = _ends_without_waiting(cache, lambda: llm.generate(batch, **config))
    texts = [g[0].text for g in result.generations]  # type: ignore[attr-defined]
    assert texts == ["answer to q1", "answer to q1", "answer to q2"] and not waited and mock.calls == 2
    cache.clear()
    answer, waited = _ends_without_waiting(cache, lambda: llm.invoke("q1", config=config).content)
    assert (answer, waited, mock.calls) == ("answer to q1", False, 3)


def test_completion_batches_with_overlapping_prompts_never_wait_for_each_other(store_url: str, ledger: Ledger) -> None:
    """A completion model looks every prompt up before any of its runs starts: a batch that owns one
    prompt's flight must not wait on another batch's flight, which may wait on its own (a cycle)."""
    together, first_done = threading.Barrier(2), threading.local()

    class BothOwnTheirFirstPrompt(ResponseCache):
        def lookup(self, prompt: str, llm_string: str) -> object:
            found = super().lookup(prompt, llm_string)
            if not getattr(first_done, "set", False):  # each batch's first lookup ends once both ended
                first_done.set = True
                together.wait(timeout=30)
            return found

    cache = BothOwnTheirFirstPrompt(store_url, ledger=ledger, scope=())  # with Redis, flights cross it too
    cache.coalescer.timeout = 5.0  # a safety net so a regression fails in seconds, never what is asserted

    def reply(body: dict, _req: object) -> dict:  # type: ignore[type-arg]
        return _completions([f"answer to {p}" for p in body["prompt"]], 4)

    mock = P.MockProvider(reply)
    llm = _completion_llm(mock, cache)
    batches = [["p1", "p2"], ["p2", "p1"]]

    def both_batches() -> list[object]:
        return run_threads_together(lambda: llm.generate(batches.pop()), 2)  # type: ignore[attr-defined]

    results, waited = _ends_without_waiting(cache, both_batches)
    texts = sorted([g[0].text for g in r.generations] for r in results)  # type: ignore[attr-defined]
    assert texts == [["answer to p1", "answer to p2"], ["answer to p2", "answer to p1"]] and not waited
    assert mock.calls == 2 and cache.waiting() == 0
