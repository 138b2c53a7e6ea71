"""The behaviour every ledger backend must have; run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from decimal import Decimal

from agentcost_core import CostEvent, Ledger, Usage


def make_event(i: int = 0, **kw) -> CostEvent:
    base = dict(
        model="gpt-4o-mini",
        usage=Usage(input=100 + i, cache_read=10, cache_write_5m=1, cache_write_1h=2, output=50, reasoning=5),
        cost=Decimal("0.000123456789012345") * (i + 1),
        priced=True,
        provider="openai",
        feature="support" if i % 2 else "search",
        user_id=f"u{i % 3}",
        session_id=f"s{i % 5}",
        agent_id="a1",
        task_id="t1",
        step="agent",
        trace_id="tr",
        span_id=f"sp{i}",
        latency_s=0.5,
        framework="langchain",
        extra={"k": i},
        ts=1_790_000_000.0 + i,
    )
    base.update(kw)
    return CostEvent(**base)


def check_round_trip_is_exact(ledger: Ledger) -> None:
    e = make_event(7, cost=Decimal("0.0000000001234567891234"), saved=Decimal("1.5"), cache_hit=True, error="Boom: x")
    ledger.record(e)
    ledger.flush()
    [back] = ledger.events()
    assert back.cost == Decimal("0.0000000001234567891234")  # exact: never through a float
    assert back.saved == Decimal("1.5") and back.cache_hit and back.error == "Boom: x"
    assert back.usage == e.usage and back.id == e.id and back.extra == {"k": 7}
    for f in ("model", "provider", "feature", "user_id", "session_id", "agent_id", "task_id", "step", "trace_id", "span_id", "framework"):
        assert getattr(back, f) == getattr(e, f), f


def check_unpriced_stays_none(ledger: Ledger) -> None:
    ledger.record(make_event(0, model="mystery", cost=None, priced=False))
    [back] = ledger.events()
    assert back.cost is None and back.priced is False


def check_filters_and_windows(ledger: Ledger) -> None:
    for i in range(20):
        ledger.record(make_event(i))
    ledger.flush()
    assert ledger.count() == 20
    assert ledger.count(feature="support") == 10
    assert [e.span_id for e in ledger.events(since=1_790_000_005.0, until=1_790_000_008.0)] == ["sp5", "sp6", "sp7"]
    assert {e.user_id for e in ledger.events(user_id="u1")} == {"u1"}


def check_rollup(ledger: Ledger) -> None:
    for i in range(10):
        ledger.record(make_event(i))
    r = ledger.rollup(by="feature")
    by = {row.key[0]: row for row in r.rows}
    assert set(by) == {"support", "search"}
    unit = Decimal("0.000123456789012345")
    assert by["support"].cost == unit * sum(i + 1 for i in range(10) if i % 2)
    assert r.total.cost == unit * 55 and r.total.calls == 10
    assert r.total.per_call["p50"] == unit * 5 and r.total.per_call["p99"] == unit * 10


def check_concurrent_writers_lose_nothing(ledger: Ledger, n_threads: int = 4, per_thread: int = 2_500) -> None:
    def work(t: int) -> None:
        for i in range(per_thread):
            ledger.record(make_event(i, span_id=f"{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ledger.flush()
    assert ledger.count() == n_threads * per_thread
    assert ledger.dropped == 0
