"""A call that asks for several completions (OpenAI ``n``) can be billed for each of them: a hard
budget reserves ``max_tokens`` for every one, so concurrent callers never overspend it (the real
``ChatOpenAI`` over a provider-shaped mock, on every budget store)."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import providers as P
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage

from agentcost_core import Budget, BudgetExceeded, Ledger
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.middleware import BudgetMiddleware

MODEL = "gpt-4o-mini"
CAP = Decimal("0.001")  # five calls of three 100-token answers fit; a sixth does not


def three_answers() -> P.MockProvider:
    """Three choices per request, billed as their sum: 300 completion tokens ($0.00018 on gpt-4o-mini)."""
    return P.MockProvider(lambda body, _req: P.openai_chat_completion(
        MODEL + "-2024-07-18", 8, 100 * body.get("n", 1), n=body.get("n", 1), text="one of three answers"))  # fmt: skip


def _all_at_once(call: Any, threads: int = 16) -> None:
    barrier = threading.Barrier(threads)

    def one() -> None:
        barrier.wait()
        try:
            call()
        except BudgetExceeded:
            pass

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def test_a_call_asking_for_three_completions_reserves_for_three_and_never_overspends(budget_store: Any) -> None:
    budget = Budget(usd=CAP, per="global_day", store=budget_store)
    handler = CostCallbackHandler(Ledger("memory://", sync=True), budgets=budget)
    mock = three_answers()
    model = P.chat_openai(mock, MODEL, n=3, max_tokens=100)
    _all_at_once(lambda: model.generate([[HumanMessage("Give me three taglines")]], callbacks=[handler]))
    status = budget.status()
    assert mock.calls >= 1 and all(r["n"] == 3 for r in mock.requests)
    assert status.held == 0 and Decimal(0) < status.spent <= CAP
    assert status.spent == handler.total_cost  # the ledger and the budget saw the same calls


def test_the_budget_middleware_reserves_for_every_completion_too(budget_store: Any) -> None:
    budget = Budget(usd=CAP, per="global_day", on_exceed="block", store=budget_store)
    mock = three_answers()
    agent = create_agent(P.chat_openai(mock, MODEL, n=3, max_tokens=100), tools=[],
                         middleware=[BudgetMiddleware(budget, ledger=Ledger("memory://", sync=True))])  # fmt: skip
    _all_at_once(lambda: agent.invoke({"messages": [HumanMessage("Give me three taglines")]}))
    status = budget.status()
    assert mock.calls >= 1 and status.held == 0 and Decimal(0) < status.spent <= CAP


def test_one_completion_per_call_is_reserved_as_before() -> None:
    budget = Budget(usd=CAP, per="global_day")
    handler = CostCallbackHandler(Ledger("memory://", sync=True), budgets=budget)
    mock = three_answers()
    model = P.chat_openai(mock, MODEL, max_tokens=100)  # one answer of up to 100 tokens: ~$0.00006
    for _ in range(15):
        model.invoke("Give me a tagline", config={"callbacks": [handler]})
    status = budget.status()
    assert mock.calls == 15 and status.held == 0 and status.spent <= CAP
