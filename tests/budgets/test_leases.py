"""A reservation in a shared store is a lease: it expires unless its call is alive to renew it, so
a process that dies mid-call holds nothing for longer than ``lease_seconds``. Injected clocks, no
sleeps: "another process" is a second store object on the same SQLite file, Redis or PostgreSQL."""

from __future__ import annotations

import gc
from decimal import Decimal

import pytest
from agentcost_core import Budget, BudgetEnforcer, ConfigurationError, ScopeContext, Usage
from agentcost_core.budgets.stores.base import Claim, Counters, Lease
from agentcost_core.prices import PriceCatalog
from budget_stores import ALL, SHARED, opened

TOY = PriceCatalog.default().merged({"models": {"toy-1c": {"provider": "openai", "input": "10", "output": "10"}}})
CALL = Usage(input=500, output=500)
CTX = ScopeContext(trace_id="run-1", session_id="s-1", user_id="u-1")
CENT = Decimal("0.01")
T0 = 1_700_000_000.0
LEASE = 60


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def setup(store):  # type: ignore[no-untyped-def]
    clock = Clock()
    budget = Budget(usd=1, per="user_day", store=store)
    e = BudgetEnforcer(budget, catalog=TOY, alerts=[], clock=clock, lease_seconds=LEASE)
    return e, clock


def seen_from(another) -> Budget:  # type: ignore[no-untyped-def]
    """The same budget as another process sees it (same configuration, so the same counters)."""
    return Budget(usd=1, per="user_day", store=another())


def call(e: BudgetEnforcer):  # type: ignore[no-untyped-def]
    return e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)


@pytest.mark.parametrize("kind", SHARED)
def test_a_reservation_never_settled_is_gone_after_its_lease(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, another):
        e, _ = setup(store)
        res = call(e)  # ...and the process dies: nothing settles, releases or renews it
        e.close()
        other = seen_from(another)
        assert other.status(user_id="u-1", now=T0 + LEASE - 1).held == CENT
        after = other.status(user_id="u-1", now=T0 + LEASE + 1)
        assert (after.held, after.spent, after.remaining) == (0, 0, Decimal(1))
        assert res.done is False


@pytest.mark.parametrize("kind", SHARED)
def test_a_live_reservation_that_is_renewed_survives_past_its_lease(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, another):
        e, clock = setup(store)
        res = call(e)
        clock.now = T0 + 40
        assert e.renew_leases() == 1
        other = seen_from(another)
        assert other.status(user_id="u-1", now=T0 + LEASE + 30).held == CENT  # past the first lease
        clock.now = T0 + LEASE + 30
        assert e.settle(res, CALL, model="toy-1c") == CENT
        done = other.status(user_id="u-1", now=T0 + LEASE + 31)
        assert (done.held, done.spent) == (0, CENT)
        assert e.renew_leases() == 0  # nothing open is left to renew


@pytest.mark.parametrize("kind", SHARED)
def test_settling_after_the_lease_ran_out_counts_the_spend_and_takes_only_its_own_hold(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, another):
        e, clock = setup(store)
        late = call(e)
        clock.now = T0 + LEASE + 1
        other = seen_from(another)
        assert other.status(user_id="u-1", now=clock.now).held == 0  # swept
        running = call(e)  # another call, in flight
        assert e.settle(late, CALL, model="toy-1c") == CENT
        status = other.status(user_id="u-1", now=clock.now)
        assert (status.held, status.spent) == (CENT, CENT)  # the running call still holds its cent
        e.release(running)
        assert other.status(user_id="u-1", now=clock.now).held == 0


@pytest.mark.parametrize("kind", SHARED)
def test_a_reservation_its_code_dropped_is_no_longer_renewed(kind, request, tmp_path):
    """A call is alive while the code running it holds its reservation; one dropped without a
    settle (a forgotten callback state) stops being renewed and expires with its lease."""
    with opened(kind, request, tmp_path) as (store, another):
        e, clock = setup(store)
        kept = call(e)
        call(e)  # dropped at once
        gc.collect()
        clock.now = T0 + 40
        assert e.renew_leases() == 1
        assert seen_from(another).status(user_id="u-1", now=T0 + LEASE + 1).held == CENT  # the kept one
        e.release(kept)


def test_lease_seconds_is_checked_at_construction():
    for bad in (0, -5, 0.5, float("inf"), "60", True):
        with pytest.raises(ConfigurationError, match="lease_seconds"):
            BudgetEnforcer(Budget(usd=1), lease_seconds=bad)  # type: ignore[arg-type]
    assert BudgetEnforcer(Budget(usd=1)).lease_seconds == 120


# -- the store contract for leased holds (every backend) ----------------------------------------


def claim(key: str = "k", amount: int = 40) -> Claim:
    return Claim(key, (100, None, None, None), (amount, 0, 0, 0))


@pytest.mark.parametrize("kind", ALL)
def test_store_sweeps_expired_leases_when_a_key_is_reserved_against_or_read(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, _):
        assert store.reserve([claim()], T0, Lease("a", T0 + 10)).admitted
        assert store.reserve([claim()], T0, Lease("b", T0 + 20)).admitted
        assert not store.reserve([claim()], T0 + 5, Lease("c", T0 + 15)).admitted  # 80 held: full
        assert store.read("k", T0 + 10).held == (40, 0, 0, 0)  # "a" is gone
        assert store.reserve([claim()], T0 + 11, Lease("c", T0 + 30)).admitted  # the room is back
        assert store.read("k", T0 + 20).held == (40, 0, 0, 0)
        assert store.read("k", T0 + 30) == Counters((0, 0, 0, 0), (0, 0, 0, 0), T0)


@pytest.mark.parametrize("kind", ALL)
def test_store_settles_a_lease_once_and_never_below_zero(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, _):
        assert store.reserve([claim()], T0, Lease("a", T0 + 10)).admitted
        assert store.reserve([claim(amount=30)], T0, Lease("b", T0 + 100)).admitted
        assert store.read("k", T0 + 10).held == (30, 0, 0, 0)  # "a" expired
        assert store.settle([claim()], (25, 0, 0, 0), "a")[0].held == (30, 0, 0, 0)  # spend counted, b kept
        assert store.settle([claim()], (25, 0, 0, 0), "a")[0] == Counters((50, 0, 0, 0), (30, 0, 0, 0), T0)
        assert store.release([claim(amount=30)], "b")[0].held == (0, 0, 0, 0)
        assert store.release([claim(amount=30)], "b")[0].held == (0, 0, 0, 0)


@pytest.mark.parametrize("kind", ALL)
def test_store_renewal_extends_a_live_lease_and_never_revives_a_gone_one(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, _):
        two_keys = [claim("k"), claim("j")]
        assert store.reserve(two_keys, T0, Lease("a", T0 + 10)).admitted
        assert store.renew(two_keys, "a", T0 + 50) is True
        assert store.read("k", T0 + 49).held == store.read("j", T0 + 49).held == (40, 0, 0, 0)
        assert store.read("k", T0 + 50).held == (0, 0, 0, 0)
        assert store.renew(two_keys[:1], "a", T0 + 500) is False  # swept: stays gone
        assert store.read("k", T0 + 60).held == (0, 0, 0, 0)
        store.release(two_keys, "a")
        assert store.renew(two_keys, "a", T0 + 500) is False
        assert store.read("j", T0).held == (0, 0, 0, 0)


@pytest.mark.parametrize("kind", ["sqlite"])
def test_the_renewer_thread_renews_open_leases_in_the_background(kind, request, tmp_path):
    import threading

    from agentcost_core.budgets.stores.sqlite import SQLiteStore

    class Watched(SQLiteStore):
        renewed = threading.Event()

        def renew(self, claims, lease_id, expires):  # type: ignore[no-untyped-def]
            try:
                return super().renew(claims, lease_id, expires)
            finally:
                self.renewed.set()

    with opened(kind, request, tmp_path, Watched) as (store, _):
        e = BudgetEnforcer(Budget(usd=1, per="user_day", store=store), catalog=TOY, alerts=[], lease_seconds=1)
        res = call(e)
        assert store.renewed.wait(30), "no renewal came from the background"
        e.release(res)
        e.close()


def test_a_store_subclass_written_before_leases_is_still_driven_the_old_way(tmp_path):
    from agentcost_core.budgets.stores.sqlite import SQLiteStore

    class OldStyle(SQLiteStore):
        def reserve(self, claims, now):  # type: ignore[no-untyped-def, override]
            return super().reserve(claims, now)

        def read(self, key):  # type: ignore[no-untyped-def, override]
            return super().read(key)

    store = OldStyle(f"sqlite:///{tmp_path}/old.db")
    try:
        budget = Budget(usd=1, per="user_day", store=store)
        e = BudgetEnforcer(budget, catalog=TOY, alerts=[])
        res = call(e)
        assert budget.status(user_id="u-1").held == CENT
        assert e.settle(res, CALL, model="toy-1c") == CENT
        status = budget.status(user_id="u-1")
        assert (status.held, status.spent) == (0, CENT)
    finally:
        store.close()
