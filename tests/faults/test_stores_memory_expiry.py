"""In-process budget counters are dropped once their period ends (a day's keys after the day and its
hour of grace, a run's after a day, a session's after 7 idle days), read through the store's public
``key_count()``; a key a reservation still holds on is kept until it is settled."""

from __future__ import annotations

from datetime import datetime, timezone

from agentcost_core.budgets import Budget, BudgetEnforcer, MemoryStore, ScopeContext

DAY = 86_400
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc).timestamp()  # noon UTC


def test_counters_of_ended_periods_are_dropped() -> None:
    now = [T0]
    store = MemoryStore()
    enforcer = BudgetEnforcer(
        [
            Budget(usd=10, per="user_day", store=store, name="daily"),
            Budget(usd=10, per="run", store=store, name="run"),
            Budget(usd=10, per="session", store=store, name="session"),
        ],
        clock=lambda: now[0],
    )
    for i in range(100):
        ctx = ScopeContext(trace_id=f"run-{i}", session_id=f"s-{i}", user_id="u-1")
        enforcer.settle(enforcer.reserve(ctx, model="gpt-4o-mini", input_tokens=10, max_tokens=10))
    open_call = enforcer.reserve(ScopeContext(trace_id="run-open", session_id="s-open", user_id="u-1"),
                                 model="gpt-4o-mini", input_tokens=10, max_tokens=10)  # fmt: skip
    assert store.key_count(now[0]) == 1 + 101 + 101  # one user-day, 101 runs, 101 sessions

    now[0] = T0 + DAY + 1  # the runs' day is over (the user's day ended at midnight + 1 h of grace)
    assert store.key_count(now[0]) == 101 + 2  # the sessions, and the open call's day and run keys
    enforcer.settle(open_call)
    assert store.key_count(now[0] + 61) == 101  # once settled, the ended keys go at the next check

    now[0] = T0 + 7 * DAY + 1  # seven idle days: the sessions are over too
    assert store.key_count(now[0] + 61) == 0
    ctx = ScopeContext(trace_id="run-new", session_id="s-new", user_id="u-1")
    enforcer.settle(enforcer.reserve(ctx, model="gpt-4o-mini", input_tokens=10, max_tokens=10))
    assert store.key_count(now[0]) == 3  # a new period starts from zero
    assert Budget(usd=10, per="session", store=store, name="session").status(session_id="s-1", now=now[0]).spent == 0
