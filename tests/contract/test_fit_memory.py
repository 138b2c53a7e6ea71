"""Contract: fit memory. The fitted view stays within the token budget and keeps the system prompt
and the current input, on both adapters, and both fit the same conversation to the same view."""

from __future__ import annotations

from typing import Any

import pytest

from agentcost_core.context import ContextBudgetError

SYSTEM = "You are a support agent for an online shop. Answer briefly and cite the order number."
CURRENT = "And when will order 4417 arrive?"


def conversation(turns: int, words: int = 60) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i in range(turns):
        out.append(("user", f"Question {i} about order {4000 + i}: " + "where is my parcel please " * (words // 5)))
        out.append(("assistant", f"Answer {i}: order {4000 + i} " + "left the warehouse yesterday and " * (words // 5)))
    return out


@pytest.mark.parametrize("budget", [400, 800, 1500])
def test_the_fitted_view_stays_within_the_token_budget(adapter: Any, budget: int) -> None:
    view, tokens = adapter.fit_memory(max_tokens=budget, system=SYSTEM, history=conversation(30), current=CURRENT)
    assert tokens <= budget
    assert len(view) < 2 * 30 + 2  # something was left out: the whole history is far over the budget


def test_the_system_prompt_and_the_current_input_are_kept(adapter: Any) -> None:
    view, _ = adapter.fit_memory(max_tokens=500, system=SYSTEM, history=conversation(30), current=CURRENT)
    assert view[0] == ("system", SYSTEM)
    assert view[-1] == ("user", CURRENT)


def test_the_latest_turns_are_kept_whole(adapter: Any) -> None:
    history = conversation(30)
    view, _ = adapter.fit_memory(max_tokens=1500, system=SYSTEM, history=history, current=CURRENT)
    assert view[-3:-1] == history[-2:]


def test_a_conversation_that_fits_is_returned_unchanged(adapter: Any) -> None:
    history = conversation(3, words=10)
    view, tokens = adapter.fit_memory(max_tokens=10_000, system=SYSTEM, history=history, current=CURRENT)
    assert view == [("system", SYSTEM), *history, ("user", CURRENT)]
    assert tokens < 10_000


def test_a_budget_too_small_for_the_protected_messages_is_an_error(adapter: Any) -> None:
    with pytest.raises(ContextBudgetError):
        adapter.fit_memory(max_tokens=20, system=SYSTEM * 5, history=conversation(2), current=CURRENT)


def test_both_adapters_fit_the_same_conversation_to_the_same_view(both: dict[str, Any]) -> None:
    args = {"max_tokens": 800, "system": SYSTEM, "history": conversation(30), "current": CURRENT}
    (lc_view, lc_tokens), (li_view, li_tokens) = (both[n].fit_memory(**args) for n in ("langchain", "llamaindex"))
    assert lc_view == li_view
    assert lc_tokens == li_tokens
