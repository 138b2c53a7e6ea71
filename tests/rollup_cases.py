"""Events that exercise every part of a rollup, and the check that a ledger's rollup (computed by its
database) equals the Python rollup of the same events, field for field and digit for digit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.prices import PriceCatalog
from agentcost_core.rollup import rollup

T0 = 1_790_000_000.0
BYS: list[Any] = [
    "feature",
    ("feature", "model"),
    "model",
    "session_id",
    ("day",),
    ("hour", "user_id"),
    "month",
    "tier",
]


def varied_events(n: int = 120) -> list[CostEvent]:
    """Priced, unpriced, failed, cached, estimated and routed calls (some above a long-context threshold),
    costs with many digits and trailing zeros, equal costs, guard notices, events without a session."""
    cat = PriceCatalog.default()
    models = ["gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini", "gemini-2.5-pro", "gpt-5-nano"]
    out = []
    for i in range(n):
        m = models[i % len(models)]
        big = i % 11 == 0  # above the 200k long-context threshold of Claude Sonnet and Gemini Pro
        u = Usage(input=(250_000 if big else 900 + 13 * i), cache_read=(0 if i % 3 else 500 + 7 * i),
                  cache_write_5m=(40 if i % 7 == 0 else 0), output=20 + i % 17, reasoning=i % 5)  # fmt: skip
        tier = "flex" if m == "gpt-5-nano" and i % 2 else None
        cost = cat.cost(m, u, service_tier=tier)
        routed = i % 4 == 1
        out.append(
            CostEvent(model=m, usage=u, cost=cost, priced=cost is not None, service_tier=tier,
                      feature=["search", "support", None, "billing"][i % 4], user_id=f"u{i % 6}",
                      session_id=None if i % 9 == 0 else f"s{i % 13}", agent_id=f"a{i % 2}",
                      tier=("nano" if routed else None), ts=T0 + 977.5 * i,
                      extra=({"top_model": ["claude-sonnet-4-5", "gpt-4o"][i % 2]} if routed else None))
        )  # fmt: skip
    out += [
        CostEvent(model="house-model", usage=Usage(input=10, output=5), feature="support", ts=T0 + 5, session_id="s1"),
        CostEvent(model=None, usage=Usage(input=3), feature="support", ts=T0 + 6),
        CostEvent(model=None, usage=Usage(input=3), feature="support", ts=T0 + 7),
        CostEvent(model="gpt-4o-mini", usage=Usage(input=10, output=5), cost=Decimal("0.000"), cache_hit=True,
                  saved=Decimal("0.000012345678901234"), priced=True, feature="search", ts=T0 + 8),
        CostEvent(model="gpt-4o-mini", usage=Usage(input=10), cost=Decimal("0.0010"), priced=True, feature="search",
                  ts=T0 + 9, session_id="s2", estimated=True),
        CostEvent(model="gpt-4o-mini", usage=Usage(input=10), cost=Decimal("0.001"), priced=True, feature="search",
                  ts=T0 + 10, session_id="s3"),
        CostEvent(model="gpt-4o", usage=Usage(input=5), error="RateLimitError", feature="search", ts=T0 + 11),
        CostEvent(model="gpt-4o", usage=Usage(input=5), kind="tool", cost=Decimal("0.25"), priced=True,
                  feature="billing", ts=T0 + 12, session_id="s4"),
        CostEvent(model=None, kind="budget.warning", feature="support", ts=T0 + 13, extra={"budget": "daily"}),
        CostEvent(model=None, kind="budget.warning", feature="support", ts=T0 + 14, extra={"budget": "daily"}),
        CostEvent(model=None, kind="halt", feature="billing", ts=T0 + 15, extra={"reason": "loop"}),
        CostEvent(model=None, kind="route", feature="ops", ts=T0 + 16, extra={"why": 1}),
    ]  # fmt: skip
    return out


def as_compared(r: Any) -> dict[str, Any]:
    d = r.as_dict()
    d.pop("window_s")  # "now" for an open window
    d.pop("projected_monthly")
    return d


def check_equal_to_python(ledger: Ledger, events: list[CostEvent], **filters: Any) -> None:
    """The ledger's rollup equals the Python rollup of ``events`` for every grouping and window."""
    windows = [(None, None), (T0 + 10, None), (None, T0 + 50_000), (T0 + 9, T0 + 60_000)]
    for by in BYS:
        for since, until in windows:
            got = ledger.rollup(by=by, since=since, until=until, **filters)
            kept = [
                e for e in sorted(events, key=lambda e: e.ts) if all(getattr(e, k) == v for k, v in filters.items())
            ]
            want = rollup(kept, by=by, since=since, until=until)
            got_d, want_d = as_compared(got), as_compared(want)
            if got_d != want_d:  # name the first difference
                for field in want_d:
                    assert got_d[field] == want_d[field], (by, since, until, field)


#: A cut inside an hour: the hour's rollup rows hold events on both sides of it.
PRUNE_AT = T0 + 977.5 * 37 + 100.25


def check_prune_keeps_the_rollup_exact(ledger: Ledger, events: list[CostEvent]) -> None:
    """After ``prune`` at :data:`PRUNE_AT`, the rollups (read from the rollup tables where they apply)
    equal the Python rollup of the events that stay, and a later write adds to them."""
    ledger.record_many(events)
    cut = ledger.prune(PRUNE_AT)
    kept = [e for e in events if e.ts >= PRUNE_AT]
    assert 0 < cut < len(events) and ledger.count() == len(kept)
    check_equal_to_python(ledger, kept)
    more = varied_events(30)
    ledger.record_many(more)
    check_equal_to_python(ledger, kept + more)


def check_prune_beyond_any_date_empties_the_rollup(ledger: Ledger, events: list[CostEvent]) -> None:
    """A prune whose date has no hour in the database (far beyond its date range, or infinite) deletes
    every event and leaves the rollups empty, and a later write is summed from nothing."""
    ledger.record_many(events)
    assert ledger.prune(4e11) == len(events)  # the year ~14,600
    assert ledger.count() == 0
    check_equal_to_python(ledger, [])
    more = varied_events(30)
    ledger.record_many(more)
    assert ledger.prune(float("inf")) == len(more)
    check_equal_to_python(ledger, [])


def check_a_report_reads_one_snapshot(ledger: Ledger, other: Ledger, table: str, events: list[CostEvent]) -> None:
    """Every query of one report reads the same snapshot: a prune committed by another connection
    between two of them (which made a report's percentile rank point past the end) is not seen."""
    ledger.record_many(events)
    count = f"SELECT COUNT(*) FROM {table}"
    with ledger.backend.reading() as read:  # type: ignore[attr-defined]
        before = read(count, [])
        assert other.prune(float("inf")) == len(events)
        after = read(count, [])
    assert before[0][0] == after[0][0] == len(events)
    assert ledger.count() == 0
    check_equal_to_python(ledger, [])


def check_concurrent_writers_keep_the_rollup_exact(ledgers: list[Ledger], events: list[CostEvent]) -> None:
    """Writers on their own connections write into the same hours, features and sessions at once
    (small batches, started together); the rollups equal the Python rollup of everything written."""
    import threading

    barrier = threading.Barrier(len(ledgers))
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            mine = events[i :: len(ledgers)]
            for start in range(0, len(mine), 5):
                ledgers[i].record_many(mine[start : start + 5])
        except BaseException as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(ledgers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    check_equal_to_python(ledgers[0], events)
