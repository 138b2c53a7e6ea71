"""instrument(): attaching, detaching, the public contract, bounded state, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("llama_index.core")

from agentcost_core import Ledger  # noqa: E402
from li_fakes import CompletionOnlyLLM, RawChatLLM, expected_cost, openai_usage, user  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402

import agentcost_llamaindex  # noqa: E402
from agentcost_llamaindex import CostEventHandler, instrument  # noqa: E402

RAW = {"model": "gpt-4o-2024-08-06", "usage": openai_usage(100, 10)}
COST = expected_cost("gpt-4o", input=100, output=10)


def _attached(h: CostEventHandler) -> bool:
    d = get_dispatcher()
    return any(x is h for x in d.event_handlers) and any(x is h.span_handler for x in d.span_handlers)


def test_public_names() -> None:
    assert {"instrument", "CostEventHandler"} <= set(agentcost_llamaindex.__all__)
    assert agentcost_llamaindex.__doc__ and "innermost" in agentcost_llamaindex.__doc__


def test_with_block_detaches_on_exit() -> None:
    llm = RawChatLLM(model="gpt-4o", raw=RAW)
    with instrument("memory://") as h:
        assert _attached(h)
        llm.chat([user("inside")])
    assert not _attached(h) and h.dispatcher is None
    llm.chat([user("outside")])
    assert len(h.events) == 1
    assert h.total_cost == COST


def test_with_block_detaches_when_the_body_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        with instrument("memory://") as h:
            raise ZeroDivisionError
    assert not _attached(h)


def test_instrument_attaches_until_detach() -> None:
    h = instrument("memory://", user_id="u1", feature="f", session_id="s", agent_id="a", task_id="t")
    try:
        assert _attached(h)
        RawChatLLM(model="gpt-4o", raw=RAW).chat([user("hi")])
        [e] = h.events
        assert (e.user_id, e.session_id, e.feature, e.agent_id, e.task_id) == ("u1", "s", "f", "a", "t")
    finally:
        h.detach()
    h.detach()  # idempotent
    assert not _attached(h)
    h.attach()
    h.attach()  # idempotent: one registration
    assert sum(x is h for x in get_dispatcher().event_handlers) == 1
    h.detach()


def test_handler_constructed_directly_attaches_in_with() -> None:
    ledger = Ledger("memory://", sync=True)
    with CostEventHandler(ledger, feature="direct") as h:
        RawChatLLM(model="gpt-4o", raw=RAW).chat([user("hi")])
    [stored] = ledger.events()
    assert stored.feature == "direct" and stored.cost == COST and stored.id == h.events[0].id


def test_two_handlers_each_see_every_call() -> None:
    with instrument("memory://") as a, instrument("memory://") as b:
        RawChatLLM(model="gpt-4o", raw=RAW).chat([user("hi")])
    assert len(a.events) == len(b.events) == 1


def test_never_iterated_streams_do_not_grow_without_bound(handler, monkeypatch) -> None:
    import agentcost_llamaindex.calls as calls

    monkeypatch.setattr(calls, "MAX_PENDING", 10)
    llm = RawChatLLM(model="gpt-4o", raw=RAW)
    gens = [llm.stream_chat([user(str(i))]) for i in range(25)]  # started, never consumed
    assert 0 < len(handler.table.calls) <= 10
    assert len(handler.table.streams) <= 10
    assert not handler.table.parents
    del gens


def test_detach_clears_state(handler) -> None:
    RawChatLLM(model="gpt-4o", raw=RAW).stream_chat([user("never consumed")])
    assert handler.table.calls
    handler.detach()
    assert not handler.table.calls and not handler.table.streams


def test_threads_each_call_counted_once(handler) -> None:
    llm = CompletionOnlyLLM(model="gpt-4o", raw=RAW)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: llm.chat([user(f"q{i}")]), range(64)))
    assert len(handler.events) == 64
    assert handler.total_cost == 64 * COST
    assert not handler.table.calls and not handler.table.parents


def test_unknown_model_is_unpriced_not_free(handler, caplog) -> None:
    import uuid

    name = f"acme-llm-{uuid.uuid4().hex[:8]}"
    RawChatLLM(model=name, raw={"model": name, "usage": openai_usage(1000, 100)}).chat([user("hi")])
    [e] = handler.events
    assert e.cost is None and e.priced is False
    assert e.usage.input == 1000 and e.usage.output == 100  # tokens are still recorded
    assert handler.total_cost == 0
    assert handler.usage_by_model[name].total == 1100
    assert name in caplog.text and "UNPRICED" in caplog.text


def test_user_catalog_prices_a_custom_model() -> None:
    from decimal import Decimal

    from agentcost_core import PriceCatalog

    catalog = PriceCatalog.default().merged({"acme-llm": {"provider": "acme", "input": "1.00", "output": "3.00"}})
    with instrument("memory://", catalog=catalog) as h:
        RawChatLLM(model="acme-llm", raw={"model": "acme-llm", "usage": openai_usage(1000, 100)}).chat([user("hi")])
    [e] = h.events
    assert e.cost == (Decimal(1000) * Decimal("1.00") + Decimal(100) * Decimal("3.00")) / Decimal(1_000_000)
    assert e.provider == "acme"  # the catalog's provider, not the usage format ("openai")


def test_keep_events_false_keeps_totals_only() -> None:
    ledger = Ledger("memory://", sync=True)
    with instrument(ledger, keep_events=False) as h:
        RawChatLLM(model="gpt-4o", raw=RAW).chat([user("hi")])
    assert h.events == []
    assert h.total_cost == COST
    assert len(ledger.events()) == 1


def test_tags_attribution_rules(handler) -> None:
    from llama_index.core.instrumentation.dispatcher import instrument_tags

    llm = RawChatLLM(model="gpt-4o", raw=RAW)
    with instrument_tags({"conversation_id": "c-1", "user_id": 42, "task_id": "", "llamaindex.run_id": "run-9"}):
        llm.chat([user("a")])
    with instrument_tags({"session_id": "s-1", "thread_id": "t-1"}):
        llm.chat([user("b")])
    a, b = handler.events
    assert (a.session_id, a.user_id, a.task_id, a.trace_id) == ("c-1", "42", None, "run-9")
    assert b.session_id == "s-1"  # session_id wins over thread_id
    assert b.trace_id == b.span_id  # no run id: the outermost span (here the LLM span itself)


def test_each_call_event_is_keyed_by_its_llm_span_id() -> None:
    llm = RawChatLLM(model="gpt-4o", raw=RAW)
    with instrument("memory://") as h:
        for i in range(3):
            llm.chat([user(f"call {i}")])
    ids = [e.id for e in h.events]
    assert ids == [e.span_id for e in h.events] and len(set(ids)) == 3
    assert all(".chat-" in i for i in ids)  # the dispatcher's "<Class>.chat-<uuid4>"
    h.ledger.flush()
    assert {e.id for e in h.ledger.events()} == set(ids)
