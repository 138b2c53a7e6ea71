"""TieredContext: budget, protected messages, tool pairs, tier shares (property-based), summaries,
archiving, clipping, incremental reading and configuration errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcost_core import ConfigurationError
from agentcost_core.context import ContextBudgetError, Item, KeyFact, StructuredSummary, TieredContext

WORDS = ["order", "refund", "parcel", "carrier", "ticket", "status", "shipped", "delayed", "policy", "warranty"]


def words(n: int, seed: int) -> str:
    return " ".join(WORDS[(seed * 7 + k * 3) % len(WORDS)] for k in range(n))


@st.composite
def histories(draw):  # type: ignore[no-untyped-def]
    """system, optional pinned, then turns of user / assistant (with or without tool calls) / tool."""
    items = [Item("system", "You are a support agent. " + words(draw(st.integers(0, 30)), 1))]
    if draw(st.booleans()):
        items.append(Item("user", "Pinned: customer is premium. " + words(5, 2), priority="pinned"))
    call = 0
    for t in range(draw(st.integers(0, 25))):
        items.append(Item("user", f"q{t} " + words(draw(st.integers(1, 40)), t)))
        for _ in range(draw(st.integers(0, 3))):
            ids = tuple(f"c{call + k}" for k in range(draw(st.integers(1, 2))))
            call += len(ids)
            items.append(Item("assistant", words(draw(st.integers(0, 10)), t), tool_call_ids=ids))
            for cid in ids:
                items.append(Item("tool", words(draw(st.integers(1, 120)), t + 3), tool_call_id=cid))
        if draw(st.booleans()):
            items.append(Item("assistant", "answer " + words(draw(st.integers(1, 30)), t + 5)))
    items.append(Item("user", "current question " + words(draw(st.integers(1, 20)), 9)))
    return items


def total(ctx: TieredContext, items: list[Item]) -> int:
    return 3 + sum(i.tokens for i in items)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), budget=st.integers(120, 3000), recent=st.integers(0, 6))
def test_any_history_fits_keeps_protected_and_never_splits_tool_pairs(history, budget, recent) -> None:  # type: ignore[no-untyped-def]
    ctx = TieredContext(budget, model="gpt-4o", recent_turns=recent, on_overflow="warn")
    plan = ctx.fit(history)
    out = plan.items
    protected = [i for i in history if i.role == "system" or i.priority == "pinned"] + [history[-1]]
    if not plan.report.over_budget:
        assert total(ctx, out) <= budget
        assert plan.report.total == total(ctx, out)
    # every protected message verbatim, in order
    kept = [i for i in out if i in protected]
    assert kept == protected and all(i.clipped_text is None for i in kept)
    # chronological order of history messages is preserved
    positions = [history.index(i) if i in history else None for i in out]
    hist_pos = [p for p in positions if p is not None and history[p] not in protected[:-1]]
    assert hist_pos == sorted(hist_pos)
    # an assistant message with tool calls is never separated from its results
    out_ids = {id(i) for i in out}
    by_call = {i.tool_call_id: i for i in history if i.role == "tool"}
    refs = {i.ref if i.ref is not None else i for i in out}
    for i in history:
        if i.tool_call_ids:
            results = [by_call[c] for c in i.tool_call_ids if c in by_call]
            here = id(i) in out_ids
            for r in results:
                present = id(r) in out_ids or any(o.clipped_text is not None and o.tool_call_id == r.tool_call_id for o in out)
                assert present == here, "tool call and result separated"
    assert refs is not None


@settings(max_examples=100, deadline=None)
@given(history=histories(), budget=st.integers(400, 3000))
def test_tier_shares_are_respected_when_all_tiers_are_non_empty(history, budget) -> None:  # type: ignore[no-untyped-def]
    ctx = TieredContext(budget, model="gpt-4o", recent_turns=2, on_overflow="warn")
    plan = ctx.fit(history)
    r = plan.report
    if r.over_budget:
        return
    room = budget - r.protected - r.summary
    if r.clipped_items:  # high was cut: lower tiers gave up their space first
        assert r.low == 0
        assert r.medium <= int(ctx.medium_share * room)
    if r.dropped_units:  # medium was cut: low had gone first
        assert r.low == 0


def convo(turns: int, tool_tokens: int = 20) -> list[Item]:
    items = [Item("system", "You are a support agent.")]
    for t in range(turns):
        items.append(Item("user", f"question {t}: " + words(30, t)))
        items.append(Item("assistant", "", tool_call_ids=(f"c{t}",)))
        items.append(Item("tool", words(tool_tokens, t), tool_call_id=f"c{t}"))
        items.append(Item("assistant", f"answer {t}: " + words(20, t)))
    items.append(Item("user", "and now?"))
    return items


def test_under_budget_everything_is_kept_in_order() -> None:
    history = convo(3)
    plan = TieredContext(10_000, model="gpt-4o").fit(history)
    assert plan.items == history
    assert plan.report.total == plan.report.full_history


def test_summarizer_replaces_low_history_with_one_structured_summary() -> None:
    calls = []

    def summarizer(previous, transcript, first_turn):  # type: ignore[no-untyped-def]
        calls.append((previous, len(transcript), first_turn))
        return StructuredSummary(user_context="a customer with a lost parcel", decisions=[f"checked turn {first_turn}"],
                                 key_facts=[KeyFact(fact="order 4417", turn=first_turn)])  # fmt: skip

    ctx = TieredContext(900, model="gpt-4o", summarizer=summarizer, recent_turns=3, summarize_every=5)
    plan = ctx.fit(convo(12))
    assert calls and calls[0][0] is None and calls[0][2] == 1
    assert plan.summary is not None and "order 4417" in plan.items[plan.n_stable - 1].text
    assert plan.items[plan.n_stable - 1].role == "system" and plan.n_stable == 2
    assert plan.report.summarized_turns >= 5 and plan.report.summary_calls == 1
    assert plan.report.total <= 900
    # incremental merge: later turns fold into the same summary
    history = convo(30)
    ctx2 = TieredContext(900, model="gpt-4o", summarizer=summarizer, recent_turns=3, summarize_every=5)
    for n in range(10, 31, 5):
        ctx2.fit(history[: 1 + 4 * n] + [Item("user", "next")])
    assert ctx2.summary is not None and len(ctx2.summary.decisions) >= 2 and ctx2.summary.turns_covered >= 10


def test_without_summarizer_old_turns_are_archived_to_the_callable() -> None:
    archived: list[list[Item]] = []
    ctx = TieredContext(600, model="gpt-4o", recent_turns=2, archive=archived.append)
    plan = ctx.fit(convo(20))
    assert plan.report.dropped_turns == len(archived) > 0
    assert archived[0][0].text.startswith("question 0")
    assert plan.report.total <= 600


def test_high_tool_outputs_are_clipped_with_a_marker() -> None:
    items = [Item("system", "sys"), Item("user", "look it up"), Item("assistant", "", tool_call_ids=("a",)),
             Item("tool", words(2000, 1), tool_call_id="a")]  # fmt: skip
    plan = TieredContext(500, model="gpt-4o").fit(items)
    tool = plan.items[-1]
    assert tool.clipped_text is not None and "clipped by agentcost" in tool.clipped_text
    assert plan.report.clipped_items == 1 and plan.report.total <= 500


def test_protected_overflow_is_an_error_or_a_warning() -> None:
    items = [Item("system", words(600, 1)), Item("user", "hi")]
    with pytest.raises(ContextBudgetError, match="protected"):
        TieredContext(100, model="gpt-4o").fit(items)
    plan = TieredContext(100, model="gpt-4o", on_overflow="warn").fit(items)
    assert plan.report.over_budget and [i.text for i in plan.items] == [items[0].text, "hi"]


def test_reads_only_new_messages_when_the_list_grows() -> None:
    history = convo(50)
    ctx = TieredContext(2000, model="gpt-4o", recent_turns=3)
    ctx.fit(history)
    seen = []

    def convert(m):  # type: ignore[no-untyped-def]
        seen.append(m)
        return m

    history.append(Item("assistant", "more"))
    grown = ctx.fit(source=history, convert=convert)
    fresh = TieredContext(2000, model="gpt-4o", recent_turns=3).fit(list(history))
    assert [i.text for i in grown.items] == [i.text for i in fresh.items]  # the same view as a fresh read
    assert grown.items[-1].text == "more" and grown.report.total == fresh.report.total
    ctx2 = TieredContext(2000, model="gpt-4o")
    ctx2.fit(source=history, convert=convert)
    n = len(seen)
    history.append(Item("user", "again"))
    ctx2.fit(source=history, convert=convert)
    assert len(seen) == n + 1  # one new message converted, not the whole history


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100, "recent_turns": -1}, "recent_turns"),
        ({"max_tokens": 100, "high_share": 1.5}, "high_share"),
        ({"max_tokens": 100, "high_share": 0.6, "medium_share": 0.6}, "<= 1"),
        ({"max_tokens": 100, "summarize_every": 0}, "summarize_every"),
        ({"max_tokens": 100, "on_overflow": "ignore"}, "on_overflow"),
        ({"max_tokens": 100, "summarizer": "cheap"}, "summarizer"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match=fragment):
        TieredContext(**kwargs)


def test_structured_summary_merge_keeps_facts_and_closes_decided_items() -> None:
    a = StructuredSummary(user_context="u", open_items=["refund?"], key_facts=[KeyFact(fact="f1", turn=2)], turns_covered=5)
    b = StructuredSummary(task_state="refund issued", decisions=["refund?"], key_facts=[KeyFact(fact="f1", turn=9),
                          KeyFact(fact="f2", turn=8)], turns_covered=4)  # fmt: skip
    m = a.merged(b)
    assert m.user_context == "u" and m.task_state == "refund issued" and m.open_items == []
    assert [(f.fact, f.turn) for f in m.key_facts] == [("f1", 2), ("f2", 8)] and m.turns_covered == 9


def test_a_system_prompt_rebuilt_every_call_is_re_read_and_keeps_the_conversation() -> None:
    def summarizer(previous, transcript, first_turn):  # type: ignore[no-untyped-def]
        return StructuredSummary(decisions=[f"from turn {first_turn}"])

    history = convo(30)[1:]
    ctx = TieredContext(900, model="gpt-4o", summarizer=summarizer, recent_turns=2, summarize_every=5)
    first = ctx.fit([Item("system", "It is 09:15:02Z."), *history])
    assert ctx.summary is not None and first.items[0].text == "It is 09:15:02Z."
    summary_before = ctx.summary
    history.append(Item("assistant", "one more"))
    second = ctx.fit([Item("system", "It is 09:16:47Z."), *history])  # a new list and a new system message
    assert second.items[0].text == "It is 09:16:47Z."
    assert ctx.summary is not None and ctx.summary.decisions[: len(summary_before.decisions)] == summary_before.decisions


def test_the_current_turn_keeps_its_order_when_nothing_is_cut() -> None:
    items = [
        Item("system", "sys"),
        Item("user", "where is my order?"),
        Item("user", "retrieved: order 4417 shipped", priority="high"),
        Item("assistant", "", tool_call_ids=("1",)),
        Item("tool", "r1", tool_call_id="1"),
        Item("assistant", "", tool_call_ids=("2",)),
        Item("tool", "r2", tool_call_id="2"),
    ]
    assert TieredContext(100_000, model="gpt-4o").fit(items).items == items


def test_fit_is_safe_to_call_from_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    ctx = TieredContext(800, model="gpt-4o", recent_turns=2)
    histories = [convo(10 + k) for k in range(16)]

    def one(h: list[Item]) -> int:
        plan = ctx.fit(h, budget=700)
        return plan.report.total

    with ThreadPoolExecutor(8) as pool:
        totals = list(pool.map(one, histories * 4))
    assert all(t <= 700 for t in totals) and ctx.max_tokens == 800
