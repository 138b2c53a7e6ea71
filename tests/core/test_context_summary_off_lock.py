"""TieredContext writes a summary outside its lock (issue 12, defect 6a, in the core): another
caller's selection never waits behind a summarizer, the summary is written once, and an async
caller's summary is awaited (``asummarize``) or run off the loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from agentcost_core.context import Item, StructuredSummary, TieredContext

BOUND = 10.0  # seconds a held summary waits before giving up (only reached if nobody releases it)


def history(turns: int) -> list[Item]:
    items = [Item("system", "You are a support agent.")]
    for t in range(turns):
        items += [Item("user", f"question {t} " + "parcel " * 40), Item("assistant", f"answer {t} " + "carrier " * 40)]
    return items + [Item("user", "and now?")]


class HeldSummarizer:
    """Blocks in the summary until released; counts its calls."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.calls = 0

    def __call__(self, previous: Any, transcript: list[tuple[str, str]], first: int) -> StructuredSummary:
        self.calls += 1
        self.entered.set()
        self.release.wait(BOUND)
        self.finished.set()
        return StructuredSummary(decisions=[f"folded from turn {first}"])


def test_a_selection_never_waits_behind_another_callers_summary() -> None:
    summarizer = HeldSummarizer()
    ctx = TieredContext(1500, summarizer=summarizer, recent_turns=2, summarize_every=4)
    items = history(12)
    plans: list[Any] = []
    writer = threading.Thread(target=lambda: plans.append(ctx.fit(items)))
    writer.start()
    assert summarizer.entered.wait(BOUND)
    other = ctx.fit(items)  # while the first caller's summary is in flight
    assert not summarizer.finished.is_set()  # it returned before that summary did
    assert other.report.total <= 1500 and other.report.summary_calls == 0
    summarizer.release.set()
    writer.join(BOUND)
    assert summarizer.calls == 1 and plans[0].report.summary_calls == 1
    assert ctx.summary is not None and ctx.summary.decisions == ["folded from turn 1"]
    assert ctx.fit(items).report.summary_calls == 0  # folded once, kept


async def test_afit_runs_a_plain_summarizer_off_the_event_loop() -> None:
    summarizer = HeldSummarizer()
    ctx = TieredContext(1500, summarizer=summarizer, recent_turns=2, summarize_every=4)

    async def release_when_entered() -> None:
        if await asyncio.to_thread(summarizer.entered.wait, BOUND):  # completes only if the loop is free
            summarizer.release.set()

    watcher = asyncio.create_task(release_when_entered())
    plan = await ctx.afit(history(12))
    await watcher
    assert summarizer.calls == 1 and plan.report.summary_calls == 1
    assert summarizer.finished.is_set() and summarizer.release.is_set()


async def test_afit_awaits_asummarize_when_the_summarizer_has_it() -> None:
    used: list[str] = []

    class Both:
        def __call__(self, previous: Any, transcript: Any, first: int) -> StructuredSummary:
            used.append("sync")
            return StructuredSummary(decisions=["sync"])

        async def asummarize(self, previous: Any, transcript: Any, first: int) -> StructuredSummary:
            used.append("async")
            return StructuredSummary(decisions=["async"])

    ctx = TieredContext(1500, summarizer=Both(), recent_turns=2, summarize_every=4)
    await ctx.afit(history(12))
    assert used == ["async"] and ctx.summary is not None and ctx.summary.decisions == ["async"]


async def test_a_failing_async_summary_archives_the_turns_and_never_breaks_the_call() -> None:
    class Failing:
        def __call__(self, *args: Any) -> StructuredSummary:
            raise AssertionError("the sync path is not used here")

        async def asummarize(self, *args: Any) -> StructuredSummary:
            raise RuntimeError("provider down")

    ctx = TieredContext(1500, summarizer=Failing(), recent_turns=2, summarize_every=4)
    plan = await ctx.afit(history(12))
    assert plan.report.dropped_turns > 0 and plan.report.summary_calls == 0 and plan.report.total <= 1500
