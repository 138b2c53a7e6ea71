"""Budget notices through a real CostCallbackHandler: each threshold a budget crosses is announced
once, lowest first, even when one call crosses several; ``alerts=`` on the handler receives them."""

from __future__ import annotations

import pytest

from agentcost_core import Budget, BudgetEnforcer, ConfigurationError, Ledger
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.testing import ScriptedChatModel

SESSION = {"metadata": {"session_id": "s1"}}


def _run(handler: CostCallbackHandler, *word_counts: int) -> None:
    model = ScriptedChatModel(model="gpt-4o", script=["ok"] * len(word_counts))
    for n in word_counts:
        model.invoke("word " * n, config={"callbacks": [handler], **SESSION})


def test_a_call_past_the_limit_and_escalate_at_sends_exceeded_then_escalated() -> None:
    ledger = Ledger("memory://")
    handler = CostCallbackHandler(ledger, budgets=Budget(usd="0.001", per="session", on_exceed="notify", name="cap"))
    _run(handler, 330, 470)  # 86% of the limit, then 206%: past the limit and escalate_at (120%) in one call
    ledger.flush()
    kinds = [e.kind for e in ledger.events()]
    assert kinds == ["llm", "budget.warning", "llm", "budget.exceeded", "budget.escalated"]
    notices = ledger.rollup(by=("feature",)).total.notices
    assert notices == {"budget.warning": 1, "budget.exceeded": 1, "budget.escalated": 1}


def test_a_first_call_past_every_threshold_sends_each_once_in_order() -> None:
    ledger = Ledger("memory://")
    handler = CostCallbackHandler(ledger, budgets=Budget(usd="0.001", per="session", on_exceed="notify", name="cap"))
    _run(handler, 470, 10, 470)  # 206% at once; later calls cross nothing new
    ledger.flush()
    notices = [e.kind for e in ledger.events() if e.kind != "llm"]
    assert notices == ["budget.warning", "budget.exceeded", "budget.escalated"]


def test_alerts_given_to_the_handler_receive_the_budget_alerts() -> None:
    got: list = []
    handler = CostCallbackHandler(
        "memory://", budgets=Budget(usd="0.001", per="session", on_exceed="notify", name="cap"), alerts=got.append
    )
    _run(handler, 330, 470)
    assert [(a.kind, a.budget) for a in got] == [
        ("budget.warning", "cap"), ("budget.exceeded", "cap"), ("budget.escalated", "cap"),
    ]  # fmt: skip


def test_alerts_without_budgets_or_beside_an_enforcer_is_refused_clearly() -> None:
    with pytest.raises(ConfigurationError, match="budget options need budgets="):
        CostCallbackHandler("memory://", alerts=print)
    with pytest.raises(ConfigurationError, match=r"go to BudgetEnforcer\(\.\.\.\) itself"):
        CostCallbackHandler("memory://", budgets=BudgetEnforcer(Budget(usd="1")), alerts=print)
