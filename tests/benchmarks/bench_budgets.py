"""No overspend: agentcost's reserve → settle budgets against check-then-record and Shekel, in one run.

    python tests/benchmarks/bench_budgets.py [--quick] [--rounds N]

One hard cap ($1.00, and $0.01), calls that cost exactly $0.01 each, many at once. Every approach
makes the *same* model call: the real ``openai`` SDK (``max_retries=0``) over ``httpx.MockTransport``,
``gpt-4o``, 2,000 prompt + 500 completion tokens, which both agentcost's catalog and Shekel's
``prices.json`` price at $2.50 / $10.00 per 1M tokens = exactly $0.01; the "provider" sleeps 1–3 ms
per request (a tiny simulated model latency, so requests overlap) and counts what it answers. **Spend
is what the provider billed** (answered calls × $0.01), whatever the approach believes it counted.

Approaches:

* **agentcost** — ``BudgetEnforcer.reserve`` (worst case: 2,000 in + ``max_tokens=500`` out = $0.01,
  equal to the real cost) → model call → ``settle`` with the response's usage; ``release`` on an error
  or a cancellation. In-process ``MemoryStore`` (64 threads; 200 asyncio tasks), ``RedisStore`` and
  ``PostgresStore`` (4 spawned processes × 250 threads, one call each, released together).
* **check-then-record** — the common pattern: read the spent total; if it is below the cap, make the
  call, then add its cost (each step atomic on its own: a lock, Redis GET / INCRBY, a PostgreSQL
  SELECT / UPDATE).
* **Shekel** (``pip install shekel``), used as its README shows: ``with budget(max_usd=…)`` around the
  calls; it patches ``Completions.create`` and records each call's cost *after* the response, raising
  ``BudgetExceededError`` once the total is over the cap. Its ``Budget`` docstring says budgets are
  not thread-safe when shared and each thread should use its own; its multi-process mode is
  ``budget(max_usd=…, name=…, backend=RedisBackend(…))`` (a Lua check-and-add, again after the call).
  Measured: (a) one budget entered once and shared by the threads through ``contextvars.copy_context``
  (what a thread pool that propagates context does; outside what its docs support), (b) a
  ``RedisBackend`` budget per thread (the documented way to share one cap). Each both with the same
  workload as the others ("calls keep coming") and with every worker stopping at its first
  ``BudgetExceededError`` (an agent ends its run on the exception: the kindest reading).

Workload: 1,000 call attempts per scenario (64 threads pulling from one queue; 200 tasks × 5; 4 × 250
threads). Checked for agentcost every round (exit status 1 otherwise): exactly cap / $0.01 calls
admitted, the provider billed exactly the cap, the store's settled spend equals it, nothing held at
the end; with 10% provider errors (HTTP 500) and 5% interruptions (a ``BaseException`` inside the call
in threads, ``Task.cancel()`` in asyncio) mixed in: nothing held, spend = settled calls × $0.01 ≤ cap.
Redis / PostgreSQL scenarios are skipped, with the reason, when the server is unreachable
(``AGENTCOST_REDIS_URL``, ``AGENTCOST_POSTGRES_URL``; defaults: local). Keys and tables are unique per
run and removed afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import json
import multiprocessing
import os
import queue
import random
import statistics
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench
import httpx
import openai

from agentcost_core import Budget, BudgetEnforcer, BudgetExceeded, ScopeContext, Usage
from agentcost_core.budgets.stores import usd_to_units

REDIS_URL = os.environ.get("AGENTCOST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("AGENTCOST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

MODEL = "gpt-4o"
PROMPT_TOKENS, COMPLETION_TOKENS = 2_000, 500  # $2.50/1M in + $10/1M out = exactly $0.01
CALL_USD = Decimal("0.01")
CALL_UNITS = usd_to_units(CALL_USD)
MESSAGES = [{"role": "user", "content": "hi"}]
LATENCY = (0.001, 0.003)  # seconds the fake provider takes per request (uniform)
CTX = ScopeContext(agent_id="bench")
ATTEMPTS = 1_000
THREADS = 64
TASKS, PER_TASK = 200, 5
PROCESSES, PER_PROCESS = 4, 250
ERRORS, INTERRUPTS = 0.10, 0.05
FAIL_HEADER = "x-bench-fail"


class Interrupted(BaseException):
    """A cancellation inside a thread's model call (a timeout kill, ``KeyboardInterrupt``): not an
    ``Exception``, so only code that cleans up on ``BaseException`` survives it."""


# -- the provider: openai SDK over httpx.MockTransport ------------------------------------------------


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


class Provider:
    """Answers chat completions after a short sleep; counts requests, billed answers, peak overlap.
    ``x-bench-fail: error`` → HTTP 500 (not billed); ``interrupt`` → raises :class:`Interrupted`."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        self.requests = self.billed = self.inflight = self.max_inflight = 0

    def _start(self) -> float:
        with self._lock:
            self.requests += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            return self._rng.uniform(*LATENCY)

    def _end(self, billed: bool) -> None:
        with self._lock:
            self.inflight -= 1
            self.billed += billed

    def _answer(self, request: httpx.Request, fail: str | None) -> httpx.Response:
        if fail == "error":
            return httpx.Response(500, json={"error": {"message": "simulated outage", "type": "server_error"}})
        if fail == "interrupt":
            raise Interrupted()
        return httpx.Response(200, json=_completion(json.loads(request.content)["model"]))

    def handle(self, request: httpx.Request) -> httpx.Response:
        fail = request.headers.get(FAIL_HEADER)
        delay, billed = self._start(), False
        try:
            time.sleep(delay)
            response = self._answer(request, fail)
            billed = response.status_code == 200
            return response
        finally:
            self._end(billed)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        fail = request.headers.get(FAIL_HEADER)
        delay, billed = self._start(), False
        try:
            await asyncio.sleep(delay)
            response = self._answer(request, fail)
            billed = response.status_code == 200
            return response
        finally:
            self._end(billed)

    def client(self) -> openai.OpenAI:
        http = httpx.Client(transport=httpx.MockTransport(self.handle))
        return openai.OpenAI(api_key="sk-bench", base_url="http://provider.invalid/v1", max_retries=0, http_client=http)

    def aclient(self) -> openai.AsyncOpenAI:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.ahandle))
        return openai.AsyncOpenAI(
            api_key="sk-bench", base_url="http://provider.invalid/v1", max_retries=0, http_client=http
        )


def model_call(client: openai.OpenAI, fail: str | None = None) -> Any:
    headers = {FAIL_HEADER: fail} if fail else None
    return client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=COMPLETION_TOKENS, extra_headers=headers
    )


async def amodel_call(client: openai.AsyncOpenAI, fail: str | None = None) -> Any:
    headers = {FAIL_HEADER: fail} if fail else None
    return await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=COMPLETION_TOKENS, extra_headers=headers
    )


def fail_plan(n: int, errors: float, interrupts: float, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = []
    for _ in range(n):
        x = rng.random()
        out.append("error" if x < errors else "interrupt" if x < errors + interrupts else None)
    return out


def _usage(response: Any) -> Usage:
    return Usage(input=response.usage.prompt_tokens, output=response.usage.completion_tokens)


# -- the three approaches, one call each -----------------------------------------------------------


def enforcer_for(cap: Decimal, store: Any, name: str) -> BudgetEnforcer:
    return BudgetEnforcer(Budget(usd=str(cap), per="agent", warn_at=None, store=store, name=name), alerts=[])


def agentcost_call(enf: BudgetEnforcer, client: openai.OpenAI, fail: str | None) -> str:
    try:
        res = enf.reserve(CTX, model=MODEL, input_tokens=PROMPT_TOKENS, max_tokens=COMPLETION_TOKENS)
    except BudgetExceeded:
        return "refused"
    try:
        response = model_call(client, fail)
    except BaseException as e:
        enf.release(res)
        if isinstance(e, Interrupted):
            return "cancelled"
        if isinstance(e, openai.APIStatusError):
            return "error"
        raise
    enf.settle(res, _usage(response), model=response.model)
    return "ok"


async def agentcost_acall(
    enf: BudgetEnforcer, client: openai.AsyncOpenAI, fail: str | None, tally: collections.Counter
) -> str:
    try:
        res = await enf.areserve(CTX, model=MODEL, input_tokens=PROMPT_TOKENS, max_tokens=COMPLETION_TOKENS)
    except BudgetExceeded:
        return "refused"
    try:
        response = await amodel_call(client, fail)
    except BaseException as e:
        await enf.arelease(res)
        if isinstance(e, asyncio.CancelledError):
            tally["cancelled"] += 1
            raise
        if isinstance(e, openai.APIStatusError):
            return "error"
        raise
    await enf.asettle(res, _usage(response), model=response.model)
    return "ok"


class MemoryCounter:
    """Check-then-record, in process: each read and each add is atomic; the pair is not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.units = 0

    def read(self) -> int:
        with self._lock:
            return self.units

    def add(self, units: int) -> None:
        with self._lock:
            self.units += units

    def close(self) -> None:
        pass


class RedisCounter:
    def __init__(self, url: str, key: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.key = key

    def read(self) -> int:
        return int(self.client.get(self.key) or 0)

    def add(self, units: int) -> None:
        self.client.incrby(self.key, units)

    def close(self) -> None:
        self.client.close()


class PgCounter:
    """One row ``(k, spent)``; at most ``size`` connections per process, like ``PostgresStore``'s pool."""

    def __init__(self, url: str, table: str, size: int = 8) -> None:
        self.url, self.table, self.size = url, table, size
        self._idle: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._opened = 0

    def _run(self, sql: str, args: tuple[Any, ...]) -> Any:
        import psycopg

        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                mine = self._opened < self.size
                self._opened += mine
            conn = psycopg.connect(self.url, autocommit=True) if mine else self._idle.get(timeout=60)
        try:
            return conn.execute(sql, args).fetchone()
        finally:
            self._idle.put(conn)

    def read(self) -> int:
        return int(self._run(f"SELECT spent FROM {self.table} WHERE k = %s", ("global",))[0])

    def add(self, units: int) -> None:
        self._run(f"UPDATE {self.table} SET spent = spent + %s WHERE k = %s RETURNING spent", (units, "global"))

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def baseline_call(counter: Any, cap_units: int, client: openai.OpenAI, fail: str | None) -> str:
    if counter.read() >= cap_units:
        return "refused"
    try:
        response = model_call(client, fail)
    except (openai.APIStatusError, Interrupted):
        return "error"
    counter.add(CALL_UNITS if response.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS else 0)
    return "ok"


async def baseline_acall(counter: MemoryCounter, cap_units: int, client: openai.AsyncOpenAI, fail: str | None) -> str:
    if counter.read() >= cap_units:
        return "refused"
    response = await amodel_call(client, fail)
    counter.add(CALL_UNITS if response.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS else 0)
    return "ok"


def shekel_call(client: openai.OpenAI, fail: str | None) -> str:
    import shekel

    try:
        model_call(client, fail)
    except shekel.BudgetExceededError:
        return "over"  # raised after the provider answered: the call is billed
    return "ok"


async def shekel_acall(client: openai.AsyncOpenAI, fail: str | None) -> str:
    import shekel

    try:
        await amodel_call(client, fail)
    except shekel.BudgetExceededError:
        return "over"
    return "ok"


def shekel_warm_up() -> None:
    """The first ``budget()`` entry imports Shekel's framework adapters (seconds): not on the clock."""
    import shekel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with shekel.budget(max_usd=1.0):
            pass


# -- drivers --------------------------------------------------------------------------------------


def run_threads(
    n_threads: int,
    attempts: int,
    fn: Callable[[str | None], str],
    *,
    fails: list[str | None] | None = None,
    stop_on: tuple[str, ...] = (),
    target: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    before_start: Callable[[], None] | None = None,
) -> tuple[collections.Counter, float, float]:
    """``attempts`` calls of ``fn`` over ``n_threads`` threads pulling from one queue, all released
    together. A thread stops early on an outcome in ``stop_on``. ``target(loop)`` (called in this
    thread, once per worker) may wrap a worker's loop (a context, a per-thread budget)."""
    todo = iter(range(attempts))
    todo_lock, out_lock = threading.Lock(), threading.Lock()
    outcomes: collections.Counter = collections.Counter()
    gate = threading.Barrier(n_threads + 1)
    errors: list[BaseException] = []

    def loop() -> None:
        mine: collections.Counter = collections.Counter()
        try:
            while True:
                with todo_lock:
                    i = next(todo, None)
                if i is None:
                    break
                outcome = fn(fails[i] if fails else None)
                mine[outcome] += 1
                if outcome in stop_on:
                    break
        except BaseException as e:  # noqa: BLE001 - reported below: the benchmark is then wrong
            errors.append(e)
        finally:
            with out_lock:
                outcomes.update(mine)

    def worker(body: Callable[[], None]) -> None:
        gate.wait()
        body()

    threads = [
        threading.Thread(target=worker, args=(target(loop) if target else loop,), daemon=True) for _ in range(n_threads)
    ]
    for t in threads:
        t.start()
    if before_start is not None:
        before_start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    t1 = time.perf_counter()
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed, first: {errors[0]!r}") from errors[0]
    return outcomes, t0, t1


async def run_tasks(
    fn: Callable[[str | None, collections.Counter], Any],
    fails: list[str | None],
    *,
    stop_on: tuple[str, ...] = (),
    cancel_share: float = 0.0,
    seed: int = 0,
) -> tuple[collections.Counter, float]:
    """``TASKS`` tasks of up to ``PER_TASK`` calls each, released together; ``cancel_share`` of the
    tasks get ``Task.cancel()`` at a random moment in the first 20 ms (mostly mid-call)."""
    outcomes: collections.Counter = collections.Counter()
    gate = asyncio.Event()

    async def task(t: int) -> None:
        await gate.wait()
        try:
            for k in range(PER_TASK):
                outcome = await fn(fails[t * PER_TASK + k], outcomes)
                outcomes[outcome] += 1
                if outcome in stop_on:
                    break
        except asyncio.CancelledError:
            return  # a cancellation mid-call was counted by fn

    tasks = [asyncio.create_task(task(t)) for t in range(TASKS)]
    for _ in range(3):
        await asyncio.sleep(0)  # every task reaches the gate
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    t0 = time.perf_counter()
    gate.set()
    for t in tasks:
        if rng.random() < cancel_share:
            loop.call_later(rng.uniform(0.0, 0.02), t.cancel)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - t0
    bad = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    if bad:
        raise RuntimeError(f"{len(bad)} task(s) failed, first: {bad[0]!r}") from bad[0]
    return outcomes, wall


# -- results --------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    approach: str
    cap: Decimal
    admitted: int  # calls let through to the provider (agentcost: reservations admitted)
    spend: Decimal  # billed by the provider
    held: Decimal | None  # agentcost: reserved and never settled / released, at the end
    wall: float
    note: str = ""
    checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return float(self.spend / self.cap)


def _outcome_note(o: collections.Counter) -> str:
    order = ("ok", "over", "error", "cancelled", "refused")
    return ", ".join(f"{o[k]} {k}" for k in order if o.get(k))


def check_agentcost(
    r: Result, o: collections.Counter, provider: dict[str, int], counted: dict[str, Any], clean: bool
) -> None:
    """agentcost's acceptance: exact admission, exact spend, nothing held, counters = provider bills."""
    p = r.problems
    expected = int(r.cap / CALL_USD)
    settled = o.get("ok", 0)
    if counted["held_usd"] != 0:
        p.append(f"held ${counted['held_usd']} left behind")
    if counted["usd"] != settled * CALL_USD or counted["model_calls"] != settled:
        p.append(f"store counted ${counted['usd']} / {counted['model_calls']} calls for {settled} settled calls")
    if provider["billed"] != settled:
        p.append(f"provider billed {provider['billed']} calls, {settled} settled")
    if r.spend > r.cap:
        p.append(f"spend ${r.spend} over the ${r.cap} cap")
    if o.get("error", 0) + o.get("cancelled", 0) + settled != r.admitted:
        p.append("admitted != settled + released")
    if clean:
        if r.admitted != expected or o.get("error") or o.get("cancelled"):
            p.append(f"admitted {r.admitted} calls, expected exactly {expected}")
        if r.spend != r.cap:
            p.append(f"spend ${r.spend}, expected exactly ${r.cap}")
    r.checked = True


# -- in-process scenarios ---------------------------------------------------------------------------


def threads_agentcost(scenario: str, cap: Decimal, seed: int, errors: float = 0.0, interrupts: float = 0.0) -> Result:
    from agentcost_core.budgets.stores import MemoryStore

    provider = Provider(seed)
    client = provider.client()
    model_call(client)
    provider.reset()
    enf = enforcer_for(cap, MemoryStore(), f"bench-{uuid.uuid4().hex[:8]}")
    fails = fail_plan(ATTEMPTS, errors, interrupts, seed)
    o, t0, t1 = run_threads(THREADS, ATTEMPTS, lambda f: agentcost_call(enf, client, f), fails=fails)
    counted = next(iter(enf.spent(CTX).values()))
    admitted = o["ok"] + o["error"] + o["cancelled"]
    r = Result(scenario, "agentcost BudgetEnforcer · MemoryStore", cap, admitted, provider.billed * CALL_USD,
               counted["held_usd"], t1 - t0, f"{_outcome_note(o)}; ≤{provider.max_inflight} in flight")  # fmt: skip
    if errors or interrupts:
        r.note = f"{admitted} admitted: {o['ok']} settled, {o['error']} errors + {o['cancelled']} interrupted released"
    check_agentcost(r, o, {"billed": provider.billed}, counted, clean=not (errors or interrupts))
    return r


def threads_baseline(scenario: str, cap: Decimal, seed: int) -> Result:
    provider = Provider(seed)
    client = provider.client()
    model_call(client)
    provider.reset()
    counter = MemoryCounter()
    cap_units = usd_to_units(cap)
    o, t0, t1 = run_threads(THREADS, ATTEMPTS, lambda f: baseline_call(counter, cap_units, client, f))
    return Result(scenario, "check-then-record (lock per step)", cap, provider.requests, provider.billed * CALL_USD,
                  None, t1 - t0, f"{_outcome_note(o)}; ≤{provider.max_inflight} in flight")  # fmt: skip


def threads_shekel_shared(scenario: str, cap: Decimal, seed: int, stop: bool) -> Result:
    import shekel

    provider = Provider(seed)
    client = provider.client()
    model_call(client)
    provider.reset()
    with shekel.budget(max_usd=float(cap)) as b:
        # each thread runs in a copy of this context, where the budget is the active one
        o, t0, t1 = run_threads(
            THREADS,
            ATTEMPTS,
            lambda f: shekel_call(client, f),
            stop_on=("over",) if stop else (),
            target=lambda loop: functools.partial(contextvars.copy_context().run, loop),  # copied here
        )
    mode = "stop at 1st error" if stop else "calls keep coming"
    return Result(scenario, f"Shekel, one shared budget, {mode}", cap, provider.requests, provider.billed * CALL_USD,
                  None, t1 - t0, f"{_outcome_note(o)}; Shekel counted ${b.spent:.2f}")  # fmt: skip


def threads_shekel_redis(scenario: str, cap: Decimal, seed: int, stop: bool) -> Result:
    import shekel
    from shekel.backends.redis import RedisBackend

    provider = Provider(seed)
    client = provider.client()
    model_call(client)
    provider.reset()
    backend = RedisBackend(url=REDIS_URL)
    name = f"agentcost-bench-{uuid.uuid4().hex[:12]}"
    backend.get_state(name)  # connect

    def per_thread(loop: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            with shekel.budget(max_usd=float(cap), name=name, backend=backend):
                loop()

        return body

    try:
        o, t0, t1 = run_threads(
            THREADS, ATTEMPTS, lambda f: shekel_call(client, f), stop_on=("over",) if stop else (), target=per_thread
        )
        counted = backend.get_state(name).get("usd", 0.0)
    finally:
        backend.reset(name)
    mode = "stop at 1st error" if stop else "calls keep coming"
    return Result(scenario, f"Shekel RedisBackend, budget per thread, {mode}", cap, provider.requests,
                  provider.billed * CALL_USD, None, t1 - t0,
                  f"{_outcome_note(o)}; Shekel's Redis counter ${counted:.2f}")  # fmt: skip


def asyncio_agentcost(scenario: str, cap: Decimal, seed: int, errors: float = 0.0, cancel: float = 0.0) -> Result:
    from agentcost_core.budgets.stores import MemoryStore

    provider = Provider(seed)
    enf = enforcer_for(cap, MemoryStore(), f"bench-{uuid.uuid4().hex[:8]}")
    fails = fail_plan(TASKS * PER_TASK, errors, 0.0, seed)

    async def main() -> tuple[collections.Counter, float]:
        client = provider.aclient()
        await amodel_call(client)
        provider.reset()
        return await run_tasks(
            lambda f, tally: agentcost_acall(enf, client, f, tally), fails, cancel_share=cancel, seed=seed
        )

    o, wall = asyncio.run(main())
    counted = next(iter(enf.spent(CTX).values()))
    admitted = o["ok"] + o["error"] + o["cancelled"]
    r = Result(scenario, "agentcost BudgetEnforcer · MemoryStore", cap, admitted, provider.billed * CALL_USD,
               counted["held_usd"], wall, f"{_outcome_note(o)}; ≤{provider.max_inflight} in flight")  # fmt: skip
    if errors or cancel:
        r.note = f"{admitted} admitted: {o['ok']} settled, {o['error']} errors + {o['cancelled']} cancelled released"
    check_agentcost(r, o, {"billed": provider.billed}, counted, clean=not (errors or cancel))
    return r


def asyncio_baseline(scenario: str, cap: Decimal, seed: int) -> Result:
    provider = Provider(seed)
    counter = MemoryCounter()
    cap_units = usd_to_units(cap)
    fails = [None] * (TASKS * PER_TASK)

    async def main() -> tuple[collections.Counter, float]:
        client = provider.aclient()
        await amodel_call(client)
        provider.reset()
        return await run_tasks(lambda f, tally: baseline_acall(counter, cap_units, client, f), fails)

    o, wall = asyncio.run(main())
    return Result(scenario, "check-then-record", cap, provider.requests, provider.billed * CALL_USD, None, wall,
                  f"{_outcome_note(o)}; ≤{provider.max_inflight} in flight")  # fmt: skip


def asyncio_shekel(scenario: str, cap: Decimal, seed: int, stop: bool) -> Result:
    import shekel

    provider = Provider(seed)
    fails = [None] * (TASKS * PER_TASK)
    spent = [0.0]

    async def main() -> tuple[collections.Counter, float]:
        client = provider.aclient()
        await amodel_call(client)
        provider.reset()
        async with shekel.budget(max_usd=float(cap)) as b:  # tasks created inside share it (context copy)
            out = await run_tasks(lambda f, tally: shekel_acall(client, f), fails, stop_on=("over",) if stop else ())
        spent[0] = b.spent
        return out

    o, wall = asyncio.run(main())
    mode = "stop at 1st error" if stop else "calls keep coming"
    return Result(scenario, f"Shekel, one shared budget, {mode}", cap, provider.requests, provider.billed * CALL_USD,
                  None, wall, f"{_outcome_note(o)}; Shekel counted ${spent[0]:.2f}")  # fmt: skip


# -- multi-process scenarios ------------------------------------------------------------------------


def _proc_job(job: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """One process' share: ``PER_PROCESS`` threads, one call each, started with the other processes."""
    provider = Provider(job["seed"])
    client = provider.client()
    model_call(client)
    provider.reset()
    kind, approach, cap = job["kind"], job["approach"], Decimal(job["cap"])
    closing: list[Any] = []
    target = None
    if approach == "agentcost":
        if kind == "redis":
            from agentcost_core.budgets.stores.redis import RedisStore

            store: Any = RedisStore(job["url"], prefix=job["prefix"])
        else:
            from agentcost_core.budgets.stores.postgres import PostgresStore

            store = PostgresStore(job["url"], table=job["table"])
        closing.append(store)
        enf = enforcer_for(cap, store, job["name"])
        enf.spent(CTX)  # connect before the start line

        def fn(f: str | None) -> str:
            return agentcost_call(enf, client, f)

    elif approach == "baseline":
        counter: Any = RedisCounter(job["url"], job["key"]) if kind == "redis" else PgCounter(job["url"], job["table"])
        closing.append(counter)
        counter.read()
        cap_units = usd_to_units(cap)

        def fn(f: str | None) -> str:
            return baseline_call(counter, cap_units, client, f)

    else:  # shekel, RedisBackend: a budget per thread
        import shekel
        from shekel.backends.redis import RedisBackend

        shekel_warm_up()
        backend = RedisBackend(url=job["url"])
        backend.get_state(job["name"])

        def fn(f: str | None) -> str:
            return shekel_call(client, f)

        def target(loop: Callable[[], None]) -> Callable[[], None]:
            def body() -> None:
                with shekel.budget(max_usd=float(cap), name=job["name"], backend=backend):
                    loop()

            return body

    fails = fail_plan(PER_PROCESS, job["errors"], job["interrupts"], job["seed"])
    try:
        o, t0, t1 = run_threads(
            PER_PROCESS, PER_PROCESS, fn, fails=fails, target=target, before_start=lambda: barrier.wait(timeout=120)
        )
    finally:
        for c in closing:
            c.close()
    return {"outcomes": dict(o), "requests": provider.requests, "billed": provider.billed,
            "max_inflight": provider.max_inflight, "t0": t0, "t1": t1}  # fmt: skip


def _proc_main(inq: Any, outq: Any, barrier: Any) -> None:
    warnings.simplefilter("ignore")
    while True:
        job = inq.get()
        if job is None:
            return
        try:
            outq.put(_proc_job(job, barrier))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            with contextlib.suppress(Exception):
                barrier.abort()  # the other workers stop waiting at the start line
            outq.put({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})


class Workers:
    """``PROCESSES`` spawned processes, reused across scenarios; each job starts them together."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(PROCESSES)
        self.out = ctx.Queue()
        self.ins = [ctx.Queue() for _ in range(PROCESSES)]
        self.procs = [ctx.Process(target=_proc_main, args=(q, self.out, self.barrier), daemon=True) for q in self.ins]
        for p in self.procs:
            p.start()

    def run(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        for i, q in enumerate(self.ins):
            q.put({**job, "seed": job["seed"] * 100 + i})
        results = [self.out.get(timeout=300) for _ in self.ins]
        bad = [r for r in results if "error" in r]
        if bad:
            self.barrier.reset()
            raise RuntimeError(f"worker failed: {bad[0]['error']}\n{bad[0].get('trace', '')}")
        return results

    def close(self) -> None:
        for q in self.ins:
            q.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - a hung worker
                p.kill()


def _merge(results: list[dict[str, Any]]) -> tuple[collections.Counter, dict[str, int], float]:
    o: collections.Counter = collections.Counter()
    for r in results:
        o.update(r["outcomes"])
    totals = {k: sum(r[k] for r in results) for k in ("requests", "billed")}
    totals["max_inflight"] = max(r["max_inflight"] for r in results)
    wall = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    return o, totals, wall


def procs_agentcost(
    workers: Workers, scenario: str, kind: str, cap: Decimal, seed: int, errors: float = 0.0, interrupts: float = 0.0
) -> Result:
    uid = uuid.uuid4().hex[:12]
    job = {"kind": kind, "approach": "agentcost", "cap": str(cap), "name": f"bench-{uid}", "url": REDIS_URL if kind == "redis" else POSTGRES_URL,
           "prefix": f"agentcost-bench:{uid}:", "table": f"agentcost_bench_budget_{uid}", "errors": errors,
           "interrupts": interrupts, "seed": seed}  # fmt: skip
    if kind == "redis":
        from agentcost_core.budgets.stores.redis import RedisStore

        store: Any = RedisStore(REDIS_URL, prefix=job["prefix"])
    else:
        from agentcost_core.budgets.stores.postgres import PostgresStore

        store = PostgresStore(POSTGRES_URL, table=job["table"])
    try:
        enf = enforcer_for(cap, store, job["name"])
        enf.spent(CTX)  # creates the PostgreSQL table before the workers race to
        o, totals, wall = _merge(workers.run(job))
        counted = next(iter(enf.spent(CTX).values()))
    finally:
        if kind == "redis":
            store.reset()
            left = list(store.client.scan_iter(match=job["prefix"] + "*"))
            store.close()
            if left:
                raise RuntimeError(f"Redis keys left behind: {left[:3]}")
        else:
            store.close()
            _pg_drop(job["table"])
    label = f"agentcost BudgetEnforcer · {'RedisStore' if kind == 'redis' else 'PostgresStore'}"
    admitted = o["ok"] + o["error"] + o["cancelled"]
    r = Result(scenario, label, cap, admitted, totals["billed"] * CALL_USD, counted["held_usd"], wall,
               f"{_outcome_note(o)}; ≤{totals['max_inflight']} in flight per process")  # fmt: skip
    if errors or interrupts:
        r.note = f"{admitted} admitted: {o['ok']} settled, {o['error']} errors + {o['cancelled']} interrupted released"
    check_agentcost(r, o, totals, counted, clean=not (errors or interrupts))
    return r


def procs_baseline(workers: Workers, scenario: str, kind: str, cap: Decimal, seed: int) -> Result:
    uid = uuid.uuid4().hex[:12]
    job = {"kind": kind, "approach": "baseline", "cap": str(cap), "url": REDIS_URL if kind == "redis" else POSTGRES_URL,
           "key": f"agentcost-bench:{uid}:baseline", "table": f"agentcost_bench_baseline_{uid}", "errors": 0.0,
           "interrupts": 0.0, "seed": seed}  # fmt: skip
    if kind == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {job['table']} (k TEXT PRIMARY KEY, spent BIGINT NOT NULL)")
            conn.execute(f"INSERT INTO {job['table']} VALUES ('global', 0)")
    try:
        o, totals, wall = _merge(workers.run(job))
    finally:
        if kind == "redis":
            import redis

            with redis.Redis.from_url(REDIS_URL) as client:
                client.delete(job["key"])
        else:
            _pg_drop(job["table"])
    how = "GET / INCRBY" if kind == "redis" else "SELECT / UPDATE"
    return Result(scenario, f"check-then-record ({how})", cap, totals["requests"], totals["billed"] * CALL_USD, None,
                  wall, f"{_outcome_note(o)}; ≤{totals['max_inflight']} in flight per process")  # fmt: skip


def procs_shekel(workers: Workers, scenario: str, cap: Decimal, seed: int) -> Result:
    from shekel.backends.redis import RedisBackend

    name = f"agentcost-bench-{uuid.uuid4().hex[:12]}"
    job = {"kind": "redis", "approach": "shekel", "cap": str(cap), "name": name, "url": REDIS_URL, "errors": 0.0,
           "interrupts": 0.0, "seed": seed}  # fmt: skip
    backend = RedisBackend(url=REDIS_URL)
    try:
        o, totals, wall = _merge(workers.run(job))
        counted = backend.get_state(name).get("usd", 0.0)
    finally:
        backend.reset(name)
    return Result(scenario, "Shekel RedisBackend, budget per thread", cap, totals["requests"],
                  totals["billed"] * CALL_USD, None, wall,
                  f"{_outcome_note(o)}; Shekel's Redis counter ${counted:.2f}")  # fmt: skip


def _pg_drop(table: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def reachable() -> dict[str, str | None]:
    """``{"redis": None or why not, "postgres": …}``."""
    why: dict[str, str | None] = {}
    try:
        import redis

        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2) as c:
            c.ping()
        why["redis"] = None
    except Exception as e:  # noqa: BLE001
        why["redis"] = f"Redis at {REDIS_URL} unreachable: {type(e).__name__}: {e}"
    try:
        import psycopg

        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
        why["postgres"] = None
    except Exception as e:  # noqa: BLE001
        why["postgres"] = f"PostgreSQL at {POSTGRES_URL} unreachable: {type(e).__name__}: {e}"
    return why


# -- main -----------------------------------------------------------------------------------------


def _arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def one_round(seed: int, why: dict[str, str | None], workers: Workers | None) -> list[Result]:
    one, cent = Decimal("1.00"), Decimal("0.01")
    out: list[Result] = []
    s = f"{THREADS} threads, in-process, $1.00 cap"
    out.append(threads_agentcost(s, one, seed))
    out.append(threads_baseline(s, one, seed))
    for stop in (False, True):
        out.append(threads_shekel_shared(s, one, seed, stop))
    if why["redis"] is None:
        for stop in (False, True):
            out.append(threads_shekel_redis(s, one, seed, stop))
    s = f"{THREADS} threads, in-process, $0.01 cap"
    out.append(threads_agentcost(s, cent, seed))
    out.append(threads_baseline(s, cent, seed))
    for stop in (False, True):
        out.append(threads_shekel_shared(s, cent, seed, stop))
    if why["redis"] is None:
        out.append(threads_shekel_redis(s, cent, seed, True))
    s = f"{TASKS} asyncio tasks × {PER_TASK} calls, $1.00 cap"
    out.append(asyncio_agentcost(s, one, seed))
    out.append(asyncio_baseline(s, one, seed))
    for stop in (False, True):
        out.append(asyncio_shekel(s, one, seed, stop))
    if workers is not None and why["redis"] is None:
        s = f"Redis, {PROCESSES} processes × {PER_PROCESS} threads, $1.00 cap"
        out.append(procs_agentcost(workers, s, "redis", one, seed))
        out.append(procs_baseline(workers, s, "redis", one, seed))
        out.append(procs_shekel(workers, s, one, seed))
    if workers is not None and why["postgres"] is None:
        s = f"PostgreSQL, {PROCESSES} processes × {PER_PROCESS} threads, $1.00 cap"
        out.append(procs_agentcost(workers, s, "postgres", one, seed))
        out.append(procs_baseline(workers, s, "postgres", one, seed))
    e = f"$1.00 cap, {ERRORS:.0%} provider errors + {INTERRUPTS:.0%} interrupted calls"
    out.append(threads_agentcost(f"{THREADS} threads, in-process, {e}", one, seed, ERRORS, INTERRUPTS))
    s = f"{TASKS} asyncio tasks × {PER_TASK} calls, $1.00 cap, {ERRORS:.0%} provider errors + ~10% of tasks cancelled"
    out.append(asyncio_agentcost(s, one, seed, ERRORS, 0.10))
    if workers is not None and why["redis"] is None:
        s = f"Redis, {PROCESSES} processes × {PER_PROCESS} threads, {e}"
        out.append(procs_agentcost(workers, s, "redis", one, seed, ERRORS, INTERRUPTS))
    if workers is not None and why["postgres"] is None:
        s = f"PostgreSQL, {PROCESSES} processes × {PER_PROCESS} threads, {e}"
        out.append(procs_agentcost(workers, s, "postgres", one, seed, ERRORS, INTERRUPTS))
    return out


def _span(xs: list[float], fmt: str) -> str:
    lo, hi = min(xs), max(xs)
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}–{format(hi, fmt)}"


def main() -> int:
    quick = _bench.quick()
    rounds = _arg("--rounds", 1 if quick else 3)
    warnings.simplefilter("ignore")  # Shekel warns on every call over its cap
    import shekel

    print(f"Budgets: no overspend under concurrency — {_bench.machine()}, {_bench.load()}")
    print(f"shekel {_dist_version('shekel')}, openai {openai.__version__}, httpx {httpx.__version__}")
    print(f"each call: {MODEL}, {PROMPT_TOKENS} in + {COMPLETION_TOKENS} out = ${CALL_USD}; provider latency "
          f"{LATENCY[0] * 1e3:.0f}–{LATENCY[1] * 1e3:.0f} ms; {ATTEMPTS} attempts per scenario; {rounds} round(s)")  # fmt: skip
    shekel_warm_up()
    worst = enforcer_for(Decimal(1), None, "probe").worst_case(MODEL, PROMPT_TOKENS, COMPLETION_TOKENS)
    if worst != CALL_USD or _shekel_cost() != float(CALL_USD):
        print(f"ERROR: the call should cost ${CALL_USD} in both catalogs: agentcost ${worst}, shekel ${_shekel_cost()}")
        return 1
    why = reachable()
    for k, v in why.items():
        if v:
            print(f"SKIPPED {k} scenarios: {v}")
    workers = Workers() if (why["redis"] is None or why["postgres"] is None) else None
    results: list[list[Result]] = []
    t_start = time.perf_counter()
    try:
        for r in range(rounds):
            results.append(one_round(1_000 + r, why, workers))
            print(f"round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)")
    finally:
        if workers is not None:
            workers.close()
    assert shekel._patch._patch_refcount == 0  # every Shekel budget was exited

    groups: dict[str, list[list[str]]] = {}
    problems: list[str] = []
    for i, first in enumerate(results[0]):
        same = [rnd[i] for rnd in results]
        for res in same:
            problems.extend(f"{res.scenario} / {res.approach}: {p}" for p in res.problems)
        held = [float(x.held) for x in same if x.held is not None]
        ok = "" if not first.checked else ("ok" if not any(x.problems for x in same) else "FAIL")
        groups.setdefault(first.scenario, []).append(
            [
                first.approach,
                _span([float(x.admitted) for x in same], ".0f"),
                "$" + _span([float(x.spend) for x in same], ".2f"),
                _span([x.ratio for x in same], ".2f") + "×",
                "$" + _span(held, ".2f") if held else "—",
                f"{statistics.median(x.wall for x in same):.2f}",
                ok,
                same[len(same) // 2].note,
            ]
        )
    headers = ("approach", "admitted", "spend", "spend/cap", "held left", "wall s", "check", "detail (middle round)")
    for scenario, rows in groups.items():
        print(f"\n{scenario}")
        print(_bench.table(headers, rows))
    print(
        "\nadmitted: calls let through to the provider (agentcost: reservations admitted); spend: what the "
        "provider billed ($0.01 per answered call); ranges are min–max over rounds; wall: median, from "
        "release to the last call's end."
    )
    print(_bench.load())
    if problems:
        print("\nFAILED (agentcost):")
        for p in problems:
            print("  " + p)
        return 1
    print("\nagentcost: exact admission, exact spend, nothing held — in every scenario and round.")
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _shekel_cost() -> float:
    from shekel._pricing import calculate_cost

    return calculate_cost(MODEL, PROMPT_TOKENS, COMPLETION_TOKENS)


if __name__ == "__main__":
    sys.exit(main())
