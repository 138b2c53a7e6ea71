"""Budget alerts are Alerts: warn at 70%, act at 100%, escalate at 120% (soft budgets), each once
per scope and period; the thresholds are configurable on the Budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentcost_core import Budget, BudgetAlert, BudgetEnforcer, ConfigurationError
from agentcost_core.alerts import Alert
from agentcost_core.budgets import MemoryStore, ScopeContext
from agentcost_core.prices import PriceCatalog
from agentcost_core.usage import Usage

CTX = ScopeContext(trace_id="t-1", session_id="s-1", user_id="u-1", feature="refunds", agent_id="bot")
TOY = PriceCatalog.default().merged(
    {"models": {"toy": {"provider": "openai", "input": "10000", "output": "0"}}}
)  # 1 cent/token


def spend(enforcer: BudgetEnforcer, cents: int, ctx: ScopeContext = CTX) -> None:
    enforcer.settle(enforcer.reserve(ctx, model="toy", input_tokens=cents, max_tokens=0), Usage(input=cents),
                    model="toy")  # fmt: skip


def test_soft_budget_warns_acts_and_escalates_once_each() -> None:
    got: list[Alert] = []
    e = BudgetEnforcer(Budget(usd=1, on_exceed="notify", store=MemoryStore()), catalog=TOY, alerts=got.append)
    for dollars in (50, 25, 5, 25, 10, 20):  # 50, 75 (warn), 80, 105 (exceeded), 115, 135 (escalated) cents of $1
        spend(e, dollars)
    assert [(a.kind, a.severity) for a in got] == [
        ("budget.warning", "warning"), ("budget.exceeded", "error"), ("budget.escalated", "critical"),
    ]  # fmt: skip
    assert all(isinstance(a, Alert) and isinstance(a, BudgetAlert) for a in got)
    escalated = got[-1]
    assert escalated.value == Decimal("1.35") and escalated.baseline == Decimal(1) and escalated.fraction == 1.35
    assert escalated.attribution["agent_id"] == "bot" and escalated.context is escalated.attribution
    assert escalated.as_dict()["kind"] == "budget.escalated" and escalated.as_dict()["level"] == "escalated"


def test_a_jump_past_several_thresholds_announces_each_once_lowest_first() -> None:
    got: list[Alert] = []
    e = BudgetEnforcer(Budget(usd=1, on_exceed="notify", store=MemoryStore()), catalog=TOY, alerts=got.append)
    spend(e, 130)
    spend(e, 1)
    assert [a.kind for a in got] == ["budget.warning", "budget.exceeded", "budget.escalated"]


def test_thresholds_are_configurable_and_each_scope_alerts_on_its_own() -> None:
    got: list[Alert] = []
    budget = Budget(usd=1, per="session", warn_at=0.5, escalate_at=2.0, on_exceed="notify", store=MemoryStore())
    e = BudgetEnforcer(budget, catalog=TOY, alerts=got.append)
    spend(e, 60)
    spend(e, 90)  # 150%: past the limit, short of escalate_at=2.0
    spend(e, 60, ScopeContext(trace_id="t-2", session_id="s-2"))  # another session: its own warning
    assert [(a.kind, a.attribution.get("session_id")) for a in got] == [
        ("budget.warning", "s-1"), ("budget.exceeded", "s-1"), ("budget.warning", "s-2"),
    ]  # fmt: skip


def test_hard_budgets_never_escalate_and_bad_thresholds_fail_at_construction() -> None:
    got: list[Alert] = []
    e = BudgetEnforcer(Budget(usd=1, on_exceed="block", store=MemoryStore()), catalog=TOY, alerts=got.append)
    spend(e, 90)
    assert [a.kind for a in got] == ["budget.warning"]
    for bad in (1.0, 0.5, True, float("inf")):
        with pytest.raises(ConfigurationError, match="escalate_at"):
            Budget(usd=1, escalate_at=bad)
