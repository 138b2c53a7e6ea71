"""Request coalescing across processes through a real Redis: 4 processes asking the same prompt at
once make one request to a local OpenAI-compatible HTTP server (counted there); an owner whose
call fails hands the flight to one of the others; an unreachable Redis degrades to in-process."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from counting_server import COMPLETION, Server, wait_for
from openai.types.chat import ChatCompletion
from processes_together import run_together

from agentcost_core.coalesce import Coalescer

pytestmark = pytest.mark.services

KEY = "gpt-4o-mini|user:u1|What is the capital of France?"


def coalescer(redis_url: str, namespace: str, timeout: float = 60) -> Coalescer:
    return Coalescer(timeout=timeout, redis=redis_url, namespace=namespace,
                     encode=lambda r: r.model_dump_json(), decode=ChatCompletion.model_validate_json)  # fmt: skip


def ask(redis_url: str, namespace: str, base_url: str, barrier: Any, results: Any) -> None:
    client = openai.OpenAI(api_key="sk-test", base_url=base_url, max_retries=0, http_client=httpx.Client())
    c = coalescer(redis_url, namespace)
    barrier.wait()
    try:
        response, was = c.run(KEY, lambda: client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is the capital of France?"}]))  # fmt: skip
        results.put((response.choices[0].message.content, was, response.usage.total_tokens))
    except openai.APIStatusError as e:
        results.put(("error", e.status_code, None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        results.put(("crash", repr(e), None))


def test_four_processes_asking_at_once_make_one_provider_call(redis_url: str) -> None:
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    observer = coalescer(redis_url, namespace)
    server = Server(ready=lambda n: observer.waiting(KEY) == 3)  # the other three processes wait
    try:
        results = run_together(ask, [(redis_url, namespace, server.url)] * 4)
    finally:
        server.close()
    assert server.requests == 1
    assert sorted(results, key=lambda r: r[1]) == [("Paris.", False, 1500)] + [("Paris.", True, 1500)] * 3
    assert observer.waiting(KEY) == 0 and observer.internal_errors == 0


def test_when_the_owner_process_fails_one_other_process_calls_for_the_rest(redis_url: str) -> None:
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    observer = coalescer(redis_url, namespace)
    # Request 0 (the first owner) fails once the three others wait; request 1 (the new owner)
    # answers once the two remaining processes wait for it.
    server = Server(ready=lambda n: observer.waiting(KEY) == 3 - n, statuses=(529, 200))
    try:
        results = run_together(ask, [(redis_url, namespace, server.url)] * 4)
    finally:
        server.close()
    assert server.requests == 2
    assert sorted(results, key=str) == [("Paris.", False, 1500), ("Paris.", True, 1500), ("Paris.", True, 1500),
                                        ("error", 529, None)]  # fmt: skip


def test_threads_of_one_process_use_one_redis_waiter(redis_url: str) -> None:
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    a, b = coalescer(redis_url, namespace), coalescer(redis_url, namespace)  # two "processes"
    release = threading.Event()
    calls: list[int] = []

    def call() -> ChatCompletion:
        calls.append(1)
        wait_for(release.is_set)
        return ChatCompletion.model_validate(COMPLETION)

    out: list[bool] = []
    owner = threading.Thread(target=lambda: out.append(a.run(KEY, call)[1]))
    owner.start()
    wait_for(lambda: len(calls) == 1)
    waiters = [threading.Thread(target=lambda: out.append(b.run(KEY, call)[1])) for _ in range(6)]
    for t in waiters:
        t.start()
    wait_for(lambda: b.waiting(KEY) == 6)  # 5 threads on b's local flight + b's owner waiting in Redis
    assert a.waiting(KEY) == 1  # seen from the owner's side: one process waits
    release.set()
    for t in [owner, *waiters]:
        t.join()
    assert calls == [1] and sorted(out) == [False] + [True] * 6


def test_an_unreachable_redis_coalesces_within_the_process_only() -> None:
    c = Coalescer(redis="redis://127.0.0.1:1/0", timeout=5)
    assert c.run(KEY, lambda: "answer") == ("answer", False)
    assert c.internal_errors >= 1


def test_asyncio_tasks_coalesce_through_redis_too(redis_url: str) -> None:
    import asyncio

    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    a, b = coalescer(redis_url, namespace), coalescer(redis_url, namespace)
    calls: list[int] = []

    async def call() -> ChatCompletion:
        calls.append(1)
        while b.waiting(KEY) < 10:  # b's 9 local waiters and b's owner waiting in Redis
            await asyncio.sleep(0.005)
        return ChatCompletion.model_validate(COMPLETION)

    async def main() -> list[bool]:
        owner = asyncio.create_task(a.arun(KEY, call))
        while not calls:
            await asyncio.sleep(0.005)
        waiters = [b.arun(KEY, call) for _ in range(10)]
        return [r[1] for r in await asyncio.gather(owner, *waiters)]

    assert asyncio.run(main()) == [False] + [True] * 10 and calls == [1]


def test_join_and_resolve_coalesce_a_lookup_then_update_protocol_across_processes(redis_url: str) -> None:
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    a, b = coalescer(redis_url, namespace), coalescer(redis_url, namespace)  # two "processes"
    owner = a.join(KEY)
    assert owner.owner
    got: list[Any] = []

    def lookup() -> None:
        flight = b.join(KEY)
        got.append((flight.owner, flight.wait(30)))

    waiter = threading.Thread(target=lookup)
    waiter.start()
    wait_for(lambda: a.waiting(KEY) == 1)
    owner.resolve(ChatCompletion.model_validate(COMPLETION))
    waiter.join()
    [(was_owner, value)] = got
    assert not was_owner and value.choices[0].message.content == "Paris."
    assert b.join(KEY).owner  # the flight landed everywhere: the next caller owns a new one


def test_waiting_without_a_key_counts_the_processes_waiting_for_any_flight(redis_url: str) -> None:
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    a, observer = Coalescer(redis=redis_url, namespace=namespace), Coalescer(redis=redis_url, namespace=namespace)
    others = [Coalescer(redis=redis_url, namespace=namespace) for _ in range(3)]  # three more "processes"
    owners = {key: a.join(key) for key in ("k1", "k2")}
    got: list[Any] = []
    waiters = [threading.Thread(target=lambda c=c, k=k: got.append(c.join(k).wait(30)))
               for c, k in zip(others, ("k1", "k1", "k2"))]  # fmt: skip
    for t in waiters:
        t.start()
    wait_for(lambda: observer.waiting() == 3)
    assert observer.waiting("k1") == 2 and observer.waiting("k2") == 1
    for key, owner in owners.items():
        owner.resolve(key.upper())
    for t in waiters:
        t.join()
    assert sorted(got) == ["K1", "K1", "K2"] and observer.waiting() == 0


def _own_forever(redis_url: str, namespace: str, flying: Any) -> None:
    def call() -> str:
        flying.put("in flight")
        threading.Event().wait()  # until the process is killed
        return "never"

    Coalescer(timeout=3, redis=redis_url, namespace=namespace).run(KEY, call)


def test_an_owner_process_that_dies_is_replaced_when_its_lease_ends(redis_url: str) -> None:
    import multiprocessing

    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("fork")
    flying = ctx.Queue()
    owner = ctx.Process(target=_own_forever, args=(redis_url, namespace, flying), daemon=True)
    owner.start()
    try:
        assert flying.get(timeout=30) == "in flight"
        owner.kill()  # dies holding the lock (a 3 s lease)
        owner.join(30)
        calls: list[int] = []
        got: list[tuple[str, bool]] = []
        waiter = Coalescer(timeout=30, redis=redis_url, namespace=namespace)
        t = threading.Thread(target=lambda: got.append(waiter.run(KEY, lambda: calls.append(1) or "fresh")))
        t.start()
        wait_for(lambda: waiter.waiting(KEY) == 1 or bool(got))
        assert not got  # it waits for the dead owner's flight ...
        t.join(30)
        assert got == [("fresh", False)] and calls == [1]  # ... until the lease ends, then calls itself
        assert waiter.internal_errors == 0
    finally:
        if owner.is_alive():
            owner.kill()


class CommandLog:
    """A real redis client that notes the name of every command it sends (its own, no one else's)."""

    def __init__(self, redis_url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.sent: list[str] = []
        send = self.client.execute_command

        def logged(*args: Any, **options: Any) -> Any:
            self.sent.append(str(args[0]).upper())
            return send(*args, **options)

        self.client.execute_command = logged  # type: ignore[method-assign]


def test_counting_every_waiter_reads_one_key_and_never_walks_the_keyspace(redis_url: str) -> None:
    """A shared production Redis can hold millions of keys: ``waiting()`` must not SCAN them."""
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    log = CommandLog(redis_url)
    owner, observer = Coalescer(redis=redis_url, namespace=namespace), Coalescer(redis=log.client, namespace=namespace)
    other = Coalescer(redis=redis_url, namespace=namespace)  # another "process"
    flight = owner.join("k1")
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(other.join("k1").wait(30)))
    t.start()
    try:
        wait_for(lambda: observer.waiting("k1") == 1)
        log.sent.clear()
        assert observer.waiting() == 1
        assert log.sent and not any(name.startswith("SCAN") or name == "KEYS" for name in log.sent), log.sent
    finally:
        flight.resolve("done")
        t.join()
    assert got == ["done"] and observer.waiting() == 0


def test_a_waiter_with_a_short_timeout_does_not_end_the_count_of_one_that_waits_longer(redis_url: str) -> None:
    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    owner = Coalescer(redis=redis_url, namespace=namespace)
    patient, hasty = Coalescer(timeout=60, redis=redis_url, namespace=namespace), Coalescer(
        timeout=1, redis=redis_url, namespace=namespace)  # fmt: skip
    flight = owner.join("k")
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(patient.run("k", lambda: "patient called"))),
               threading.Thread(target=lambda: got.append(hasty.run("k", lambda: "hasty called")))]  # fmt: skip
    try:
        threads[0].start()
        wait_for(lambda: owner.waiting("k") == 1)  # the patient one waits first ...
        threads[1].start()
        wait_for(lambda: owner.waiting("k") == 2)  # ... then the hasty one joins
        threads[1].join(30)  # the hasty waiter gives up after its 1 s and calls on its own
        assert got == [("hasty called", False)]
        wait_for(lambda: owner.waiting("k") == 1, timeout=10)
        # once the hasty one's lease (1 s) is over, the patient one (60 s) is still counted, by key and in all
        lease_over = time.monotonic() + 1.5
        wait_for(lambda: time.monotonic() > lease_over, timeout=5)  # the behaviour under test is a lease's length
        assert owner.waiting("k") == 1 and owner.waiting() == 1
    finally:
        flight.resolve("owner's answer")
        threads[0].join(30)
    assert ("owner's answer", True) in got


def _wait_forever(redis_url: str, namespace: str, waiting: Any) -> None:
    c = Coalescer(timeout=2, redis=redis_url, namespace=namespace)  # waits (and is counted) 2 s at most
    waiting.put("waiting")
    c.run(KEY, lambda: "never called: another process owns the flight")


def test_a_waiter_process_that_dies_stops_being_counted_when_its_lease_ends(redis_url: str) -> None:
    import multiprocessing

    namespace = f"agentcost-test:flight:{uuid.uuid4().hex}"
    owner = Coalescer(redis=redis_url, namespace=namespace)
    flight = owner.join(KEY)  # this process owns the flight ...
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    waiter = ctx.Process(target=_wait_forever, args=(redis_url, namespace, queue), daemon=True)
    waiter.start()
    try:
        assert queue.get(timeout=30) == "waiting"
        wait_for(lambda: owner.waiting() == 1)  # ... and another process waits for it
        waiter.kill()
        waiter.join(30)
        wait_for(lambda: owner.waiting() == 0)  # counted no longer once its 2 s have passed
    finally:
        flight.resolve("done")
        if waiter.is_alive():
            waiter.kill()
