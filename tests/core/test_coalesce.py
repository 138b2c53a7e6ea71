"""Request coalescing in one process: identical calls in flight at once (threads, asyncio tasks,
both mixed) make one provider call, counted at the real OpenAI SDK's mock transport; the waiters
are recorded through the recorder as coalesced hits with ``saved`` and settle budgets at $0."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from agentcost_core import ConfigurationError, Ledger
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.coalesce import Coalescer, FlightTimeout, coalesced
from agentcost_core.parsers import from_openai
from agentcost_core.recorder import CostRecorder

MODEL = "gpt-4o-mini-2024-07-18"
KEY = "gpt-4o-mini|user:u1|What is the capital of France?"


def completion(text: str = "Paris.") -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741569952,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                              "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 256, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }  # fmt: skip


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds (a test fails rather than hangs)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


class Provider:
    """The provider behind a mock transport: counts requests; holds each answer until ``release``
    says so (``release`` may be a condition on the coalescer's waiters)."""

    def __init__(self, release: Any = None, status: int = 200) -> None:
        self.requests = 0
        self.release = release
        self.status = status
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
        if self.release is not None:
            wait_for(self.release)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "The server had an error",
                                                               "type": "server_error", "param": None, "code": None}})  # fmt: skip
        return httpx.Response(200, json=completion())

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
        if self.release is not None:
            while not self.release():
                await asyncio.sleep(0.005)
        return httpx.Response(200, json=completion())

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(self))
        )

    def async_client(self) -> openai.AsyncOpenAI:
        transport = httpx.MockTransport(self.handle_async)
        return openai.AsyncOpenAI(api_key="sk-test", max_retries=0, http_client=httpx.AsyncClient(transport=transport))


def record(recorder: CostRecorder, response: Any, was_coalesced: bool) -> tuple[Any, Decimal]:
    """What an adapter does with a coalesced call: the owner's outcome, marked for a waiter."""
    outcome = Outcome(usage=from_openai(response.usage), model=response.model, text=response.choices[0].message.content)
    if was_coalesced:
        outcome = coalesced(outcome)
    return recorder.record_outcome(ModelCall("gpt-4o-mini"), outcome)


def check_events(recorder: CostRecorder, budgets: list[Decimal], n: int) -> None:
    events = recorder.events
    owners = [e for e in events if not e.cache_hit]
    waiters = [e for e in events if e.cache_hit]
    assert len(owners) == 1 and len(waiters) == n - 1
    cost = owners[0].cost
    assert cost is not None and cost > 0
    assert {(e.cost, e.saved, e.extra["cache"]) for e in waiters} == {(Decimal(0), cost, "coalesced")}
    assert sorted(budgets) == [Decimal(0)] * (n - 1) + [cost]  # budgets are charged for the one call only


def test_64_threads_asking_at_once_make_one_provider_call() -> None:
    coalescer = Coalescer(timeout=60)
    provider = Provider(release=lambda: coalescer.waiting(KEY) == 63)
    client = provider.client()
    recorder = CostRecorder(Ledger("memory://", sync=True))
    barrier = threading.Barrier(64)
    budgets: list[Decimal] = []
    answers: list[str] = []

    def ask() -> None:
        barrier.wait()
        response, was = coalescer.run(KEY, lambda: client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is the capital of France?"}]))  # fmt: skip
        answers.append(response.choices[0].message.content)
        budgets.append(record(recorder, response, was)[1])

    threads = [threading.Thread(target=ask) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert provider.requests == 1
    assert answers == ["Paris."] * 64
    check_events(recorder, budgets, 64)
    assert coalescer.waiting(KEY) == 0


def test_200_asyncio_tasks_asking_at_once_make_one_provider_call() -> None:
    coalescer = Coalescer(timeout=60)
    provider = Provider(release=lambda: coalescer.waiting(KEY) == 199)
    client = provider.async_client()
    recorder = CostRecorder(Ledger("memory://", sync=True))

    async def ask() -> tuple[Any, bool]:
        return await coalescer.arun(KEY, lambda: client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is the capital of France?"}]))  # fmt: skip

    async def main() -> list[tuple[Any, bool]]:
        return await asyncio.gather(*(ask() for _ in range(200)))

    results = asyncio.run(main())
    assert provider.requests == 1
    assert sum(1 for _, was in results if was) == 199
    budgets = [record(recorder, response, was)[1] for response, was in results]
    check_events(recorder, budgets, 200)


def test_threads_and_tasks_of_two_event_loops_share_one_flight() -> None:
    coalescer = Coalescer(timeout=60)
    provider = Provider(release=lambda: coalescer.waiting(KEY) == 2 * 10 + 4)
    client = provider.client()
    results: list[bool] = []

    def loop_thread() -> None:
        async def ask() -> bool:
            return (await coalescer.arun(KEY, lambda: asyncio.to_thread(client.chat.completions.create,
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])))[1]  # fmt: skip

        async def main() -> list[bool]:
            return await asyncio.gather(*(ask() for _ in range(10)))

        results.extend(asyncio.run(main()))

    def plain_thread() -> None:
        results.append(coalescer.run(KEY, lambda: client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]))[1])  # fmt: skip

    threads = [threading.Thread(target=loop_thread) for _ in range(2)] + [threading.Thread(target=plain_thread)
                                                                          for _ in range(5)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert provider.requests == 1 and sorted(results) == [False] + [True] * 24


def test_different_keys_do_not_coalesce_and_a_finished_flight_is_not_a_cache() -> None:
    coalescer = Coalescer()
    calls: list[str] = []
    assert coalescer.run("a", lambda: calls.append("a") or "A") == ("A", False)
    assert coalescer.run("b", lambda: calls.append("b") or "B") == ("B", False)
    assert coalescer.run("a", lambda: calls.append("a") or "A") == ("A", False)  # not in flight any more
    assert calls == ["a", "b", "a"]


def test_waiting_without_a_key_counts_the_waiters_of_every_flight() -> None:
    coalescer = Coalescer()
    owners = [coalescer.begin("a"), coalescer.begin("b")]
    waiters = [coalescer.begin("a"), coalescer.begin("a"), coalescer.begin("b")]
    assert coalescer.waiting() == 3 and coalescer.waiting("a") == 2 and coalescer.waiting("c") == 0
    for owner in owners:
        owner.resolve(owner.key.upper())
    assert [w.wait(1) for w in waiters] == ["A", "A", "B"]
    assert coalescer.waiting() == 0


def test_a_waiter_calls_on_its_own_after_the_timeout() -> None:
    coalescer = Coalescer(timeout=0.05)
    release = threading.Event()
    owner_started = threading.Event()
    calls: list[str] = []

    def slow_owner() -> str:
        calls.append("owner")
        owner_started.set()
        release.wait(30)
        return "owner's answer"

    out: list[tuple[str, bool]] = []
    owner = threading.Thread(target=lambda: out.append(coalescer.run(KEY, slow_owner)))
    owner.start()
    owner_started.wait(30)
    mine = coalescer.run(KEY, lambda: calls.append("waiter") or "my own answer")
    release.set()
    owner.join()
    assert mine == ("my own answer", False)  # the owner is still blocked: the waiter gave up and called
    assert out == [("owner's answer", False)] and calls == ["owner", "waiter"]


def test_an_async_waiter_calls_on_its_own_after_the_timeout() -> None:
    coalescer = Coalescer(timeout=0.05)

    async def main() -> list[tuple[str, bool]]:
        release = asyncio.Event()
        started = asyncio.Event()

        async def slow() -> str:
            started.set()
            await release.wait()
            return "owner"

        async def fast() -> str:
            return "own"

        owner = asyncio.create_task(coalescer.arun(KEY, slow))
        await started.wait()
        mine = await coalescer.arun(KEY, fast)
        release.set()
        return [await owner, mine]

    assert asyncio.run(main()) == [("owner", False), ("own", False)]


def test_the_owners_provider_error_is_shared_by_the_waiters_it_had() -> None:
    coalescer = Coalescer(timeout=60)
    provider = Provider(release=lambda: coalescer.waiting(KEY) == 7, status=500)
    client = provider.client()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def ask() -> None:
        barrier.wait()
        try:
            coalescer.run(KEY, lambda: client.chat.completions.create(model="gpt-4o-mini", messages=[]))
        except openai.InternalServerError as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert provider.requests == 1  # one failing call is one failure, not eight
    assert len(errors) == 8 and all(e.status_code == 500 for e in errors)


def test_a_cancelled_owner_hands_the_flight_to_one_waiter() -> None:
    coalescer = Coalescer(timeout=60)
    calls: list[str] = []

    async def main() -> list[Any]:
        started = asyncio.Event()

        async def hangs() -> str:
            calls.append("owner")
            started.set()
            await asyncio.Event().wait()
            return "never"

        async def answers() -> str:
            calls.append("waiter")
            while coalescer.waiting(KEY) < 4:  # the new owner's call is in flight until the others re-joined
                await asyncio.sleep(0)
            return "Paris."

        owner = asyncio.create_task(coalescer.arun(KEY, hangs))
        await started.wait()
        waiters = [asyncio.create_task(coalescer.arun(KEY, answers)) for _ in range(5)]
        while coalescer.waiting(KEY) < 5:
            await asyncio.sleep(0)
        owner.cancel()
        results = await asyncio.gather(*waiters)
        with pytest.raises(asyncio.CancelledError):
            await owner
        return results

    results = asyncio.run(main())
    assert calls == ["owner", "waiter"]  # one waiter became the owner; the other four waited for it
    assert sorted(results, key=lambda r: r[1]) == [("Paris.", False)] + [("Paris.", True)] * 4


def test_the_low_level_flight_for_a_lookup_then_update_protocol() -> None:
    coalescer = Coalescer(timeout=60)
    owner = coalescer.begin("k")
    waiter = coalescer.begin("k")
    assert owner.owner and not waiter.owner and coalescer.waiting("k") == 1
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(waiter.wait(30)))
    t.start()
    owner.resolve({"text": "Paris."})
    t.join()
    assert got == [{"text": "Paris."}] and coalescer.waiting("k") == 0
    assert coalescer.begin("k").owner  # the flight landed: the next caller owns a new one
    with pytest.raises(FlightTimeout):
        coalescer.begin("k").wait(0.01)
    with pytest.raises(RuntimeError):
        coalescer.begin("k").resolve(1)  # only the owner ends a flight


def test_claim_owns_a_flight_nobody_has_in_flight_and_never_waits() -> None:
    coalescer = Coalescer(timeout=60)
    owner = coalescer.begin("k")
    assert coalescer.claim("k") is None and coalescer.waiting("k") == 0  # in flight: not taken, nobody waits
    claimed = coalescer.claim("other")
    assert claimed is not None and claimed.owner
    waiter = coalescer.begin("other")  # a claimed flight is a flight like any other: callers wait for it
    assert not waiter.owner and coalescer.waiting("other") == 1
    claimed.resolve("Paris.")
    assert waiter.wait(30) == "Paris." and coalescer.waiting() == 0
    owner.resolve(None)
    assert coalescer.claim("k") is not None  # landed: free to claim


def test_coalesced_marks_an_outcome_as_a_hit_of_the_coalescing_layer() -> None:
    recorder = CostRecorder(Ledger("memory://", sync=True))
    owner = Outcome(usage=from_openai(completion()["usage"]), model=MODEL, latency_s=1.2, extra={"route": "x"})
    event, budget = recorder.record_outcome(ModelCall(MODEL), coalesced(owner))
    paid, _ = recorder.record_outcome(ModelCall(MODEL), owner)
    assert (event.cache_hit, event.cost, event.saved, budget) == (True, Decimal(0), paid.cost, Decimal(0))
    assert event.extra == {"route": "x", "cache": "coalesced"} and owner.extra == {"route": "x"}


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"timeout": -1}, {"timeout": float("inf")}, {"timeout": "5"},
                                    {"encode": str}, {"redis": "http://localhost:6379"}, {"redis": object()}])  # fmt: skip
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Coalescer(**kwargs)
