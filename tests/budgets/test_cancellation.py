"""Cancelling async code never leaves a budget hold behind, on every store: a reservation whose
worker finishes after its task was cancelled is released, a cancelled settle still settles, a task
that ends with an open reservation releases it, and store I/O never runs on the event loop."""

from __future__ import annotations

import asyncio
import random
import threading
from decimal import Decimal

import pytest
from agentcost_core import Budget, BudgetEnforcer, BudgetExceeded, ScopeContext, Usage
from agentcost_core.budgets.stores.base import Claim
from agentcost_core.prices import PriceCatalog
from budget_stores import ALL, SHARED, gated, opened

# $10 / 1M tokens in and out: 500 in + 500 out = exactly $0.01, worst case == cost.
TOY = PriceCatalog.default().merged({"models": {"toy-1c": {"provider": "openai", "input": "10", "output": "10"}}})
CALL = Usage(input=500, output=500)
CTX = ScopeContext(trace_id="run-1", session_id="s-1", user_id="u-1", feature="chat", agent_id="a-1")
CENT = Decimal("0.01")


def held_and_spent(e: BudgetEnforcer, ctx: ScopeContext = CTX) -> tuple[Decimal, Decimal]:
    (counted,) = e.spent(ctx).values()
    return counted["held_usd"], counted["usd"]


def reserve_kw() -> dict[str, object]:
    return {"model": "toy-1c", "input_tokens": 500, "max_tokens": 500}


async def wait(event: threading.Event) -> bool:
    return await asyncio.to_thread(event.wait, 30)


@pytest.mark.parametrize("kind", SHARED)
async def test_cancelled_reserve_leaves_nothing_held_once_the_worker_finishes(kind, request, tmp_path):
    with opened(kind, request, tmp_path, gated(kind)) as (store, _):
        budget = Budget(usd=1, per="user_day", store=store)
        e = BudgetEnforcer(budget, catalog=TOY, alerts=[])
        task = asyncio.create_task(e.areserve(CTX, **reserve_kw()))
        assert await wait(store.entered)  # the worker is inside the store's reserve
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.gate.set()  # the reserve completes, for a task that is gone
        assert await wait(store.released), "the reservation made for the cancelled task was never released"
        assert held_and_spent(e) == (0, 0)


@pytest.mark.parametrize("kind", SHARED)
async def test_cancelled_store_areserve_releases_what_the_worker_reserved(kind, request, tmp_path):
    with opened(kind, request, tmp_path, gated(kind)) as (store, _):
        claim = Claim("k", (100, None, None, None), (40, 0, 0, 0))
        task = asyncio.create_task(store.areserve([claim], 1_700_000_000.0))
        assert await wait(store.entered)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.gate.set()
        assert await wait(store.released)
        assert store.read("k").held == (0, 0, 0, 0)


@pytest.mark.parametrize("kind", SHARED)
async def test_cancelled_settle_still_settles(kind, request, tmp_path):
    with opened(kind, request, tmp_path, gated(kind)) as (store, _):
        store.gated = {"settle"}
        budget = Budget(usd=1, per="user_day", store=store)
        e = BudgetEnforcer(budget, catalog=TOY, alerts=[])
        res = await e.areserve(CTX, **reserve_kw())
        task = asyncio.create_task(e.asettle(res, CALL, model="toy-1c"))
        assert await wait(store.entered)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.gate.set()
        assert await wait(store.settled)
        assert held_and_spent(e) == (0, CENT)


@pytest.mark.parametrize("kind", SHARED)
def test_settle_cancelled_before_its_worker_started_still_settles(kind, request, tmp_path):
    """With every worker busy the settle waits in the executor's queue; cancelling the task then
    must not drop it."""
    from concurrent.futures import ThreadPoolExecutor

    with opened(kind, request, tmp_path, gated(kind)) as (store, _):
        store.gated = set()
        budget = Budget(usd=1, per="user_day", store=store)
        e = BudgetEnforcer(budget, catalog=TOY, alerts=[])
        busy = threading.Event()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
            res = await e.areserve(CTX, **reserve_kw())
            blocker = loop.run_in_executor(None, busy.wait, 30)  # the only worker is taken
            task = asyncio.create_task(e.asettle(res, CALL, model="toy-1c"))
            await asyncio.sleep(0)  # the settle is queued behind the blocker
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            busy.set()
            await blocker

        asyncio.run(main())  # waits for the executor's queue
        assert store.settled.is_set()
        assert held_and_spent(e) == (0, CENT)


@pytest.mark.parametrize("kind", ALL)
def test_a_task_cancelled_with_an_open_reservation_leaves_nothing_held(kind, request, tmp_path):
    """LangChain never calls on_llm_error when the outer task is cancelled: the reservation made in
    the task is released when the task ends without settling it."""
    with opened(kind, request, tmp_path) as (store, _):
        budget = Budget(usd=1, per="user_day", store=store)
        e = BudgetEnforcer(budget, catalog=TOY, alerts=[])

        async def main() -> None:
            in_call = asyncio.Event()

            async def call_with_no_cleanup() -> None:
                await e.areserve(CTX, **reserve_kw())  # nobody ever settles or releases it
                in_call.set()
                await asyncio.Event().wait()  # the model call, forever

            task = asyncio.create_task(call_with_no_cleanup())
            await in_call.wait()
            assert held_and_spent(e) == (CENT, 0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())  # returns once the loop's workers are done
        assert held_and_spent(e) == (0, 0)


@pytest.mark.parametrize("kind", ALL)
def test_300_tasks_with_10_percent_cancelled_hold_nothing_and_never_pass_the_cap(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, _):
        budget = Budget(usd=1, per="user_day", store=store)
        e = BudgetEnforcer(budget, catalog=TOY, alerts=[])
        rng = random.Random(12)
        outcomes: list[str] = []

        async def call(i: int) -> None:
            cleanup = i % 2 == 0  # half clean up like an adapter, half never do (the callback path)
            try:
                res = await e.areserve(CTX, **reserve_kw())
            except BudgetExceeded:
                outcomes.append("refused")
                return
            try:
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)  # the model call: other tasks run
                outcomes.append("settling")  # a settle cancelled from here on still settles
                await e.asettle(res, CALL, model="toy-1c")
                outcomes.append("settled")
            except BaseException:
                if cleanup:
                    await e.arelease(res)
                raise

        async def main() -> None:
            tasks = [asyncio.create_task(call(i)) for i in range(300)]
            doomed = rng.sample(tasks, 30)
            for step in range(8):  # cancel at random points of their lives
                for t in doomed[step::8]:
                    t.cancel()
                await asyncio.sleep(0)
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
        held, spent = held_and_spent(e)
        assert held == 0, "a cancelled task left a reservation behind"
        assert CENT * outcomes.count("settled") <= spent <= CENT * outcomes.count("settling")
        assert spent <= budget.usd
        assert outcomes.count("settled") >= 70  # most of the cap was used, not lost to cancellations


@pytest.mark.parametrize("kind", ["sqlite"])
async def test_async_forms_never_touch_the_store_on_the_event_loop(kind, request, tmp_path):
    loop_thread = threading.get_ident()
    threads: list[tuple[str, int]] = []
    base = gated(kind)

    class Watched(base):  # type: ignore[misc, valid-type]
        def reserve(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            threads.append(("reserve", threading.get_ident()))
            return super().reserve(*args, **kwargs)

        def settle(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            threads.append(("settle", threading.get_ident()))
            return super().settle(*args, **kwargs)

        def read(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            threads.append(("read", threading.get_ident()))
            return super().read(*args, **kwargs)

    with opened(kind, request, tmp_path, Watched) as (store, _):
        store.gated = set()
        usd = Budget(usd=1, seconds=3_600, per="user_day", store=store)
        tools = Budget(tool_calls=5, per="session", on_exceed="downgrade", store=store)
        e = BudgetEnforcer([usd, tools], catalog=TOY, alerts=[])
        res = await e.areserve(CTX, **reserve_kw())
        await e.asettle(res, CALL, model="toy-1c")
        await e.arelease(await e.areserve(CTX, **reserve_kw()))
        await e.asettle(await e.areserve_tool(CTX, "search"))
        assert await e.adowngrade_requested(CTX) is False
        assert (await e.aspent(CTX))[usd.name]["usd"] == CENT
        assert (await usd.astatus(user_id="u-1")).spent == CENT
        assert {what for what, _ in threads} == {"reserve", "settle", "read"}
        assert all(thread != loop_thread for _, thread in threads), threads
