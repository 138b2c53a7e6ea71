"""Budgets: configuration errors, reserve → settle / release, thresholds, actions, scopes and the
no-overspend guarantee with the in-process store (threads and asyncio)."""

from __future__ import annotations

import asyncio
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from agentcost_core import Budget, BudgetEnforcer, BudgetExceeded, ConfigurationError, Ledger, ScopeContext, Usage
from agentcost_core.budgets import BudgetStoreUnavailable, MemoryStore
from agentcost_core.budgets.stores.base import Claim, Counters, CounterStore, ReserveResult
from agentcost_core.prices import PriceCatalog

# A toy model at $10 / 1M tokens in and out: 500 in + 500 out = exactly $0.01, worst case == cost.
TOY = PriceCatalog.default().merged({"models": {"toy-1c": {"provider": "openai", "input": "10", "output": "10"}}})
CALL = Usage(input=500, output=500)
CTX = ScopeContext(trace_id="run-1", session_id="s-1", user_id="u-1", feature="chat", agent_id="a-1")


def enforcer(*budgets: Budget, **kw) -> BudgetEnforcer:  # type: ignore[no-untyped-def]
    kw.setdefault("alerts", [])
    return BudgetEnforcer(list(budgets), catalog=TOY, **kw)


def one_call(e: BudgetEnforcer, ctx: ScopeContext = CTX) -> Decimal:
    r = e.reserve(ctx, model="toy-1c", input_tokens=500, max_tokens=500)
    return e.settle(r, CALL, model="toy-1c")


# --- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"usd": "-1"}, ">= 0"),
        ({"usd": 0.5}, "never a float"),
        ({"usd": "abc"}, "must be a number"),
        ({"tokens": -5}, ">= 0"),
        ({"tokens": "100"}, "whole number"),
        ({"model_calls": 2.5}, "whole number"),
        ({"seconds": -1}, "seconds"),
        ({}, "at least one limit"),
        ({"usd": 1, "per": "week"}, "unknown budget scope"),
        ({"usd": 1, "on_exceed": "explode"}, "unknown budget action"),
        ({"usd": 1, "warn_at": 1.5}, "warn_at"),
        ({"usd": 1, "store": "mongodb://x"}, "unknown budget store URL"),
        ({"model_calls": 3, "per": "request"}, "per='request'"),
    ],
)
def test_bad_budget_configuration_fails_at_construction(kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match=fragment):
        Budget(**kwargs)


def test_usd_accepts_decimal_str_and_int() -> None:
    assert Budget(usd=Decimal("1.50")).usd == Decimal("1.50")
    assert Budget(usd="0.05").usd == Decimal("0.05")
    assert Budget(usd=3).usd == Decimal(3)


def test_enforcer_rejects_duplicate_names_and_bad_options() -> None:
    with pytest.raises(ConfigurationError, match="share a name"):
        BudgetEnforcer([Budget(usd=1), Budget(usd=1)])
    with pytest.raises(ConfigurationError, match="default_max_tokens"):
        BudgetEnforcer([Budget(usd=1)], default_max_tokens=0)


# --- reserve / settle / release ------------------------------------------------------------------
def test_hard_cap_admits_exactly_what_fits_and_raises_with_details() -> None:
    e = enforcer(Budget(usd="0.05", store=MemoryStore()))
    spent = sum(one_call(e) for _ in range(5))
    assert spent == Decimal("0.05")
    with pytest.raises(BudgetExceeded) as err:
        one_call(e)
    assert err.value.reason.value == "budget"
    assert err.value.details["dimension"] == "usd" and err.value.details["action"] == "block"
    assert "$0.05" in str(err.value)
    assert e.spent(CTX)[e.budgets[0].name]["usd"] == Decimal("0.05")


def test_a_reservation_is_never_shrunk_to_fit() -> None:
    e = enforcer(Budget(usd="0.015", store=MemoryStore()))
    one_call(e)  # $0.01 spent, $0.005 left: a $0.01 worst case does not fit
    with pytest.raises(BudgetExceeded):
        e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)
    small = e.reserve(CTX, model="toy-1c", input_tokens=200, max_tokens=200)  # $0.004 fits
    assert small.worst_case_usd == Decimal("0.004")


def test_release_returns_the_hold_and_settle_counts_the_real_cost() -> None:
    store = MemoryStore()
    b = Budget(usd="1", tokens=100_000, store=store)
    e = enforcer(b)
    r = e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=4000)
    key, _ = b.scope_key(CTX, e.clock())
    assert store.read(key).held[0] > 0
    e.release(r)
    e.release(r)  # idempotent
    assert store.read(key).held == (0, 0, 0, 0) and store.read(key).spent == (0, 0, 0, 0)
    r = e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=4000)
    cost = e.settle(r, Usage(input=500, output=120), model="toy-1c")
    assert cost == Decimal("0.0062")
    c = store.read(key)
    assert c.held == (0, 0, 0, 0) and c.spent[1] == 620 and c.spent[2] == 1


def test_model_calls_tokens_and_tool_calls_limits() -> None:
    e = enforcer(Budget(model_calls=2, tool_calls=1, store=MemoryStore()))
    one_call(e)
    one_call(e)
    with pytest.raises(BudgetExceeded, match="model_calls"):
        one_call(e)
    e.settle(e.reserve_tool(CTX, "search"))
    with pytest.raises(BudgetExceeded, match="tool_calls"):
        e.reserve_tool(CTX, "search")
    t = enforcer(Budget(tokens=1500, store=MemoryStore()))
    one_call(t)
    with pytest.raises(BudgetExceeded, match="tokens"):
        one_call(t)


def test_worst_case_uses_long_context_and_service_tier_prices() -> None:
    e = BudgetEnforcer([Budget(usd=100)], alerts=[])
    cat = PriceCatalog.default()
    p = cat.get("gemini-2.5-pro")
    assert p is not None and p.long_context_threshold == 200_000
    short = e.worst_case("gemini-2.5-pro", 100_000, 1000)
    long = e.worst_case("gemini-2.5-pro", 250_000, 1000)
    assert short == (100_000 * p.base.input + 1000 * p.base.output) / 1_000_000
    assert long == (250_000 * p.long_context.input + 1000 * p.long_context.output) / 1_000_000  # type: ignore[union-attr]
    flex = e.worst_case("gpt-5", 1000, 1000, "flex")
    assert flex == cat.get("gpt-5").tiers["flex"].cost(Usage(input=1000, output=1000))  # type: ignore[union-attr]


def test_unknown_model_is_reserved_at_the_conservative_fallback() -> None:
    e = BudgetEnforcer([Budget(usd=100)], alerts=[])
    top_out = max(p.base.output for p in PriceCatalog.default())
    assert e.worst_case("my-private-model", 0, 1000) == top_out * 1000 / 1_000_000


def test_estimated_input_gets_the_margin() -> None:
    e = enforcer(Budget(tokens=10_000, store=MemoryStore()), estimate_margin=0.1)
    r = e.reserve(CTX, model="toy-1c", input_tokens=1000, max_tokens=100, estimated=True)
    assert r.amounts[1] == 1101 + 100


# --- thresholds, actions, alerts, ledger events -----------------------------------------------
def test_warning_at_70_percent_once_then_block_alert_and_ledger_events() -> None:
    alerts = []
    ledger = Ledger("memory://", sync=True)
    e = enforcer(Budget(usd="0.10", store=MemoryStore()), alerts=[alerts.append], ledger=ledger)
    for _ in range(10):
        one_call(e)
    assert [a.level for a in alerts] == ["warning"]
    assert alerts[0].fraction == pytest.approx(0.7) and alerts[0].dimension == "usd"
    with pytest.raises(BudgetExceeded):
        one_call(e)
    assert [a.level for a in alerts] == ["warning", "exceeded"] and alerts[1].action == "block"
    kinds = [ev.kind for ev in ledger.events()]
    assert kinds == ["budget.warning", "budget.exceeded"]
    assert ledger.events()[1].extra["budget"] == e.budgets[0].name and ledger.events()[1].session_id == "s-1"


def test_soft_budgets_never_refuse_but_alert_once_per_threshold() -> None:
    alerts = []
    e = enforcer(Budget(usd="0.02", on_exceed="notify", warn_at=None, store=MemoryStore()), alerts=alerts.append)
    for _ in range(5):
        one_call(e)
    assert e.spent(CTX)[e.budgets[0].name]["usd"] == Decimal("0.05")
    # $0.02 = 100%: exceeded; $0.03 = 150% is past escalate_at (120%): escalated, once
    assert [(a.level, a.action) for a in alerts] == [("exceeded", "notify"), ("escalated", "notify")]


def test_downgrade_budget_signals_the_router_near_its_limit() -> None:
    e = enforcer(Budget(usd="0.10", on_exceed="downgrade", warn_at=0.5, store=MemoryStore()))
    assert not e.downgrade_requested(CTX)
    for _ in range(5):
        one_call(e)
    assert e.downgrade_requested(CTX)
    assert not e.downgrade_requested(ScopeContext(trace_id="other", session_id="s-2"))


def test_wrap_up_is_a_hard_limit_whose_error_says_wrap_up() -> None:
    e = enforcer(Budget(usd="0.01", on_exceed="wrap_up", store=MemoryStore()))
    one_call(e)
    with pytest.raises(BudgetExceeded) as err:
        one_call(e)
    assert err.value.details["action"] == "wrap_up"


def test_failing_alert_sink_never_breaks_the_call() -> None:
    def broken(alert):  # type: ignore[no-untyped-def]
        raise RuntimeError("pager down")

    e = enforcer(Budget(usd="0.01", warn_at=0.5, store=MemoryStore()), alerts=[broken])
    assert one_call(e) == Decimal("0.01")


# --- scopes -------------------------------------------------------------------------------------
def test_scopes_key_by_their_attribution_and_period() -> None:
    now = [1_700_000_000.0]  # 2023-11-14 22:13:20 UTC
    store = MemoryStore()
    e = enforcer(Budget(usd="0.02", per="user_day", store=store), clock=lambda: now[0])
    one_call(e)
    one_call(e)
    with pytest.raises(BudgetExceeded):
        one_call(e)
    one_call(e, ScopeContext(user_id="u-2"))  # another user has their own day
    now[0] += 2 * 3600  # past midnight UTC: a new day
    one_call(e)
    b = Budget(usd=1, per="feature_month")
    assert b.scope_key(CTX, 1_700_000_000.0)[0].endswith(":feature:chat:2023-11")
    assert Budget(usd=1, per="global_day").scope_key(CTX, 1_700_000_000.0)[0].endswith(":global:2023-11-14")
    assert Budget(usd=1, per="session").scope_key(ScopeContext(trace_id="t9"), 0)[0].endswith(":session:run:t9")
    assert Budget(usd=1, per="agent").scope_key(CTX, 0) == (f"{Budget(usd=1, per='agent').name}:agent:a-1", None)


def test_request_scope_caps_a_single_call() -> None:
    e = enforcer(Budget(usd="0.01", per="request"))
    assert one_call(e) == Decimal("0.01")
    assert one_call(e) == Decimal("0.01")  # calls are independent
    with pytest.raises(BudgetExceeded, match="per request"):
        e.reserve(CTX, model="toy-1c", input_tokens=501, max_tokens=500)


def test_seconds_limit_with_an_injected_clock() -> None:
    now = [1000.0]
    e = enforcer(Budget(seconds=60, per="run", store=MemoryStore()), clock=lambda: now[0])
    one_call(e)
    now[0] += 59
    one_call(e)
    now[0] += 2
    with pytest.raises(BudgetExceeded, match="seconds"):
        one_call(e)
    one_call(e, ScopeContext(trace_id="run-2"))


# --- unreachable stores ---------------------------------------------------------------------------
class DownStore(CounterStore):
    shared = True

    def __init__(self, failure_mode: str = "fail_closed") -> None:
        self.failure_mode = self._check_failure_mode(failure_mode)

    def reserve(self, claims, now):  # type: ignore[no-untyped-def]
        raise BudgetStoreUnavailable("redis://10.0.0.1:6379/0 unreachable: connection refused")

    def settle(self, claims, actual):  # type: ignore[no-untyped-def]
        raise BudgetStoreUnavailable("down")

    def read(self, key):  # type: ignore[no-untyped-def]
        return Counters()

    def reset(self, key=None):  # type: ignore[no-untyped-def]
        pass


def test_fail_closed_blocks_with_a_clear_error_and_fail_open_flags_the_call() -> None:
    e = enforcer(Budget(usd=1, store=DownStore()))
    with pytest.raises(BudgetStoreUnavailable, match="fail_closed"):
        one_call(e)
    with pytest.raises(ConfigurationError):
        DownStore("sometimes")
    e = enforcer(Budget(usd=1, store=DownStore("fail_open")))
    r = e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)
    assert r.flags == {"budget_store_unavailable": ["redis://10.0.0.1:6379/0 unreachable: connection refused"]}
    assert e.settle(r, CALL) == Decimal("0.01")


class FlakyStore(MemoryStore):
    """An in-process store that is unreachable while ``down`` is set."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.failure_mode = "fail_open"
        self.down = True

    def reserve(self, claims, now, lease=None):  # type: ignore[no-untyped-def]
        if self.down:
            raise BudgetStoreUnavailable("redis://10.0.0.1:6379/0 unreachable: connection refused")
        return super().reserve(claims, now, lease)


def test_fail_open_logs_one_line_per_store_for_an_outage_and_one_when_it_answers_again(caplog) -> None:  # type: ignore[no-untyped-def]
    store = FlakyStore()
    e = enforcer(Budget(usd=100, store=store))
    with caplog.at_level("WARNING", logger="agentcost"):
        for _ in range(1_000):
            e.release(e.reserve(CTX, model="toy-1c", input_tokens=5, max_tokens=5))
        store.down = False
        e.release(e.reserve(CTX, model="toy-1c", input_tokens=5, max_tokens=5))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "call allowed (fail_open)" in lines[0] and "connection refused" in lines[0]
    assert "answers again after 1000 failed call(s)" in lines[1]


def test_a_refusal_in_a_second_store_releases_the_first() -> None:
    first, second = MemoryStore(), MemoryStore()
    b1 = Budget(usd=10, store=first, name="roomy")
    b2 = Budget(usd="0.01", store=second, name="tight")
    e = enforcer(b1, b2)
    one_call(e)
    with pytest.raises(BudgetExceeded):
        one_call(e)
    assert first.read(b1.scope_key(CTX, e.clock())[0]).held == (0, 0, 0, 0)
    assert e.spent(CTX)["roomy"]["usd"] == Decimal("0.01")


# --- no overspend under concurrency ------------------------------------------------------------
def test_64_threads_admit_exactly_100_calls_under_a_one_dollar_cap() -> None:
    store = MemoryStore()
    e = enforcer(Budget(usd="1.00", per="global_day", store=store))
    admitted = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        try:
            r = e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)
        except BudgetExceeded:
            return
        e.settle(r, CALL, model="toy-1c")
        with lock:
            admitted.append(1)

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(worker, range(1000)))
    assert len(admitted) == 100
    assert e.spent(CTX)[e.budgets[0].name]["usd"] == Decimal("1.00")
    assert e.spent(CTX)[e.budgets[0].name]["held_usd"] == 0


async def test_200_asyncio_tasks_with_errors_and_cancellations_leave_no_reservation() -> None:
    e = enforcer(Budget(usd="1.00", per="global_day", store=MemoryStore()))
    rng = random.Random(7)
    settled = []
    gate = asyncio.Event()

    async def call(i: int) -> None:
        try:
            r = await e.areserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)
        except BudgetExceeded:
            return
        try:
            await gate.wait()  # every task holds its reservation at once
            if rng.random() < 0.15:
                raise RuntimeError("model error")
            await e.asettle(r, CALL, model="toy-1c")
            settled.append(i)
        except BaseException:
            await e.arelease(r)
            raise

    tasks = [asyncio.create_task(call(i)) for i in range(200)]
    for _ in range(3):
        await asyncio.sleep(0)  # let every task reach the gate (a yield, not a timed wait)
    for t in tasks[::9]:
        t.cancel()
    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    spent = e.spent(CTX)[e.budgets[0].name]
    assert spent["held_usd"] == 0
    assert spent["usd"] == Decimal("0.01") * len(settled) <= Decimal("1.00")
    assert spent["model_calls"] == len(settled) > 0


def test_stores_are_used_through_the_interface() -> None:
    store = MemoryStore()
    claim = Claim("k", (100, None, None, None), (60, 1, 1, 0), None)
    assert store.reserve([claim], 0.0) == ReserveResult(True, (Counters((0, 0, 0, 0), (60, 1, 1, 0), 0.0),))
    refused = store.reserve([claim], 0.0)
    assert not refused.admitted and refused.refused == 0 and refused.dimension == 0


# --- regressions found in review -------------------------------------------------------------
def test_a_per_request_notify_budget_alerts_and_lets_the_call_through() -> None:
    alerts = []
    e = BudgetEnforcer([Budget(usd="0.0001", per="request", on_exceed="notify")], alerts=[alerts.append])
    e.release(e.reserve(CTX, model="gpt-4o", input_tokens=1000, max_tokens=1000))
    assert [a.level for a in alerts] == ["exceeded"] and alerts[0].action == "notify"


def test_soft_budget_alerts_follow_real_spend_not_the_worst_case() -> None:
    alerts = []
    e = BudgetEnforcer([Budget(usd="0.01", on_exceed="notify", warn_at=None, store=MemoryStore())], alerts=alerts.append)
    e.settle(e.reserve(CTX, model="gpt-4o", input_tokens=100, max_tokens=None), Usage(input=100, output=10), model="gpt-4o")
    assert alerts == []  # $0.00035 spent of $0.01, though the 4,096-token worst case was $0.04


class _ReadFails(MemoryStore):
    def __init__(self, failure_mode: str) -> None:
        super().__init__()
        self.failure_mode = failure_mode

    def read(self, key, now=None):  # type: ignore[no-untyped-def]
        raise BudgetStoreUnavailable("redis://10.0.0.1 down")


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
def test_a_store_failing_during_the_seconds_check_leaves_nothing_held(mode: str) -> None:
    store = _ReadFails(mode)
    b = Budget(usd=1, seconds=60, store=store)
    e = enforcer(b)
    if mode == "fail_closed":
        with pytest.raises(BudgetStoreUnavailable):
            e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)
        assert MemoryStore.read(store, b.scope_key(CTX, e.clock())[0]).held == (0, 0, 0, 0)
    else:
        r = e.reserve(CTX, model="toy-1c", input_tokens=500, max_tokens=500)
        assert r.flags and e.settle(r, CALL) == Decimal("0.01")


def test_memory_store_drops_expired_keys_of_every_scope() -> None:
    now = [1_000_000.0]
    store = MemoryStore()
    e = enforcer(Budget(usd=10, per="run", store=store), clock=lambda: now[0])
    for i in range(500):
        e.settle(e.reserve(ScopeContext(trace_id=f"t{i}"), model="toy-1c", input_tokens=5, max_tokens=5), CALL)
    now[0] += 3 * 86_400  # every run key is past its period
    for i in range(600):
        e.settle(e.reserve(ScopeContext(trace_id=f"n{i}"), model="toy-1c", input_tokens=5, max_tokens=5), CALL)
    assert int(re.fullmatch(r"MemoryStore\(keys=(\d+)\)", repr(store)).group(1)) <= 600  # type: ignore[union-attr]
