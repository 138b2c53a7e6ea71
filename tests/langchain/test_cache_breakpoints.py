"""Anthropic ``cache_control`` breakpoints on the stable prefix, through the REAL ``ChatAnthropic``
and anthropic SDK over a mock transport (``providers.chat_anthropic``), and cache breakers found in
the prefix of LangChain messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_providers import load_providers  # noqa: E402 - tests/ helper

from agentcost_core import ChatMessage, ConfigurationError, TokenCounter, Usage
from agentcost_core.context.caching import CacheBreakerDetector
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.caching import add_cache_breakpoints, cache_control, detect_cache_breakers

P = load_providers()
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
M = Decimal(1_000_000)
MODEL = "claude-sonnet-4-5"
SERVED = "claude-sonnet-4-5-20250929"
INSTRUCTIONS = (
    "You are the billing assistant of Acme Cloud. Answer from the pricing manual, quote the section you "
    "used, never promise refunds above the plan's limit, and hand over to a human for legal questions. "
) * 40


def use_anthropic():
    pytest.importorskip("langchain_anthropic")
    pytest.importorskip("httpx2")


def conversation(system_text: str = INSTRUCTIONS):
    """Stable prefix (system prompt, pinned facts + summary), then history and the new input."""
    stable = [
        SystemMessage(system_text),
        SystemMessage("Pinned: customer is on the Pro plan, EU region.\nSummary: asked about an invoice."),
    ]
    volatile = [
        HumanMessage("Why was I charged twice?"),
        AIMessage("One charge is a pending authorisation; it drops off in 3 days."),
        HumanMessage("Can you confirm the final amount?"),
    ]
    return stable + volatile, len(stable)


def blocks_with_cache_control(body):
    """Every (place, block) of the request body that carries cache_control."""
    found = []
    system = body.get("system")
    if isinstance(system, list):
        found += [("system", b) for b in system if "cache_control" in b]
    for i, m in enumerate(body["messages"]):
        if isinstance(m["content"], list):
            found += [(f"messages[{i}]", b) for b in m["content"] if "cache_control" in b]
    return found


def send(messages, *, cache_read=0, split=None, handler=None):
    mock = P.MockProvider.always(P.anthropic_message(SERVED, 40, 12, cache_read=cache_read, split=split))
    llm = P.chat_anthropic(mock, MODEL, max_tokens=64)
    config = {"callbacks": [handler]} if handler else None
    out = llm.invoke(messages, config=config)
    assert out.content == "Hello from the mock."
    return mock.requests[0]


# --- through ChatAnthropic -----------------------------------------------------------------
def test_breakpoint_sits_on_the_stable_prefix_and_nowhere_in_the_volatile_tail():
    use_anthropic()
    messages, n_stable = conversation()
    marked = add_cache_breakpoints(messages, n_stable)
    h = CostCallbackHandler("memory://")

    body = send(marked, split=(1200, 0), handler=h)

    # ChatAnthropic sends the two leading system messages as the system field, as blocks
    assert [b["text"] for b in body["system"]] == [messages[0].content, messages[1].content]
    assert blocks_with_cache_control(body) == [("system", body["system"][1])]
    assert body["system"][1]["cache_control"] == {"type": "ephemeral"}
    # the volatile tail goes out as it came: plain strings, no breakpoint
    assert [m["content"] for m in body["messages"]] == [m.content for m in messages[n_stable:]]
    # the input list is untouched, the tail objects are the same
    assert isinstance(messages[1].content, str) and marked[n_stable:] == messages[n_stable:]
    assert all(a is b for a, b in zip(marked[n_stable:], messages[n_stable:]))
    # the cache write round-trips into the bill
    (ev,) = h.events
    assert ev.usage == Usage(input=40, cache_write_5m=1200, output=12)
    assert ev.cost == (40 * Decimal("3.00") + 1200 * Decimal("3.75") + 12 * Decimal("15.00")) / M


def test_one_hour_ttl_and_a_breakpoint_on_the_system_prompt_too():
    use_anthropic()
    messages, n_stable = conversation()
    marked = add_cache_breakpoints(messages, n_stable, ttl="1h", max_breakpoints=2)
    h = CostCallbackHandler("memory://")

    body = send(marked, cache_read=900, split=(0, 300), handler=h)

    one_hour = {"type": "ephemeral", "ttl": "1h"}
    assert blocks_with_cache_control(body) == [("system", body["system"][0]), ("system", body["system"][1])]
    assert all(b["cache_control"] == one_hour for _, b in blocks_with_cache_control(body))
    assert all(isinstance(m["content"], str) for m in body["messages"])
    (ev,) = h.events
    assert ev.usage == Usage(input=40, cache_read=900, cache_write_1h=300, output=12)
    assert ev.cost == (40 * Decimal("3.00") + 900 * Decimal("0.30") + 300 * Decimal("6.00") + 12 * Decimal("15.00")) / M


def test_pinned_user_message_keeps_its_breakpoint_when_merged_with_the_new_input():
    use_anthropic()
    messages = [
        SystemMessage(INSTRUCTIONS),
        HumanMessage("Pinned: customer is on the Pro plan."),
        HumanMessage("What is my invoice total?"),  # new input: merged into the same user turn
    ]
    body = send(add_cache_breakpoints(messages, 2, max_breakpoints=2))

    assert body["system"] == [{"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral"}}]
    (turn,) = body["messages"]
    assert turn["content"] == [
        {"type": "text", "text": "Pinned: customer is on the Pro plan.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "What is my invoice total?"},
    ]


def test_a_tool_result_carries_the_breakpoint_and_a_tool_call_passes_it_back():
    use_anthropic()
    call = {"name": "lookup_plan", "args": {"customer": "c-1"}, "id": "toolu_01", "type": "tool_call"}
    messages = [
        SystemMessage(INSTRUCTIONS),
        HumanMessage("Pinned: look the plan up once."),
        AIMessage("", tool_calls=[call]),
        ToolMessage("Pro plan, EU region.", tool_call_id="toolu_01"),
        HumanMessage("And my invoice?"),
    ]
    # stable prefix ends on the tool result: ChatAnthropic hoists the breakpoint onto the tool_result
    body = send(add_cache_breakpoints(messages, 4))
    [(where, block)] = blocks_with_cache_control(body)
    assert where == "messages[2]" and block["type"] == "tool_result" and block["tool_use_id"] == "toolu_01"
    assert block["cache_control"] == {"type": "ephemeral"}

    # ending on the assistant's tool call (its tool_use blocks are rebuilt without cache_control):
    # the breakpoint moves back to the pinned message
    marked = add_cache_breakpoints(messages[:3] + [HumanMessage("…")], 3)
    assert marked[2] is messages[2]
    assert marked[1].content == [
        {"type": "text", "text": "Pinned: look the plan up once.", "cache_control": {"type": "ephemeral"}}
    ]


# --- validation and edge cases (no HTTP) ------------------------------------------------------
def test_bad_ttl_and_n_stable_fail_clearly():
    messages, n_stable = conversation()
    with pytest.raises(ConfigurationError, match="ttl must be '5m' or '1h'"):
        add_cache_breakpoints(messages, n_stable, ttl="24h")
    for bad in (-1, len(messages) + 1):
        with pytest.raises(ConfigurationError, match="n_stable"):
            add_cache_breakpoints(messages, bad)
    with pytest.raises(ConfigurationError, match="max_breakpoints"):
        add_cache_breakpoints(messages, n_stable, max_breakpoints=5)
    assert cache_control("1h") == {"type": "ephemeral", "ttl": "1h"}
    assert add_cache_breakpoints(messages, 0) == messages  # no stable prefix: nothing to mark


def test_list_content_gets_the_breakpoint_on_its_last_block():
    msg = HumanMessage(content=["Pinned facts:", {"type": "text", "text": "Pro plan", "id": "b1"}])
    (marked,) = add_cache_breakpoints([msg], 1, ttl="1h")
    assert marked.content == [
        {"type": "text", "text": "Pinned facts:"},
        {"type": "text", "text": "Pro plan", "id": "b1", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    assert msg.content[1] == {"type": "text", "text": "Pro plan", "id": "b1"}  # the original is untouched


# --- cache breakers -----------------------------------------------------------------------------
def test_planted_timestamp_in_the_system_prompt_is_reported_as_a_cache_breaker():
    use_anthropic()
    detector = CacheBreakerDetector(MODEL)
    reports = []
    for ts in ("2025-01-15T10:42:07Z", "2025-01-15T10:43:55Z"):
        messages, n_stable = conversation(f"{INSTRUCTIONS}\nCurrent time: {ts}")
        marked = add_cache_breakpoints(messages, n_stable)
        reports.append(detect_cache_breakers(detector, marked, n_stable))
        send(marked)

    first, second = reports
    assert [(b.kind, b.observed) for b in first] == [("timestamp", False)]  # flagged on first sight
    (b,) = second
    assert (b.position, b.kind, b.sample, b.observed) == (0, "timestamp", "2025-01-15T10:43:55Z", True)
    counter = TokenCounter.for_model(MODEL)
    stable = [ChatMessage("system", m.content) for m in messages[:n_stable]]
    assert b.tokens_invalidated == counter.count_messages(stable).tokens > 1024
    assert b.cost_per_call == b.tokens_invalidated * (Decimal("3.00") - Decimal("0.30")) / M
    assert detector.total_cost == b.cost_per_call
    assert "Current time" not in b.sample and "timestamp" in b.message


def test_a_constant_prefix_has_no_breakers():
    detector = CacheBreakerDetector(MODEL)
    messages, n_stable = conversation()
    assert detect_cache_breakers(detector, messages, n_stable) == []
    messages.append(HumanMessage("one more turn"))  # the volatile tail grows: no break
    assert detect_cache_breakers(detector, add_cache_breakpoints(messages, n_stable), n_stable) == []
    assert detector.breakers == []
