"""Cache breakers in the stable prefix (what changed, what it costs) and breakpoint placement."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentcost_core import ChatMessage, ConfigurationError, PriceCatalog, TokenCounter
from agentcost_core.context.caching import (
    CacheBreaker,
    CacheBreakerDetector,
    cache_breakpoint_indices,
    scan_volatile,
)

M = Decimal(1_000_000)
SONNET = "claude-sonnet-4-5"
INSTRUCTIONS = "You are the support agent for Acme. Answer from the manual, cite sections, be brief. " * 60


def system(ts: str) -> str:
    return f"{INSTRUCTIONS}\nCurrent time: {ts}"


def prefix(ts: str) -> list[tuple[str, str]]:
    return [
        ("system", system(ts)),
        ("user", "Pinned: the customer is on the Pro plan."),
        ("system", "Summary: refund asked."),
    ]


def tokens(model: str | None, msgs) -> int:
    return TokenCounter.for_model(model).count_messages([ChatMessage(r, t) for r, t in msgs]).tokens


# --- scan_volatile ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Current time: 2025-01-15T10:42:07Z.", [("timestamp", "2025-01-15T10:42:07Z")]),
        ("now 2025-01-15 10:42:07.123456+00:00", [("timestamp", "2025-01-15 10:42:07.123456+00:00")]),
        ("Date: Wed, 15 Jan 2025 10:42:07 GMT", [("timestamp", "Wed, 15 Jan 2025 10:42:07 GMT")]),
        ("at 9:05:03 or 10:42 pm", [("timestamp", "9:05:03"), ("timestamp", "10:42 pm")]),
        ("epoch 1736937727", [("timestamp", "1736937727")]),
        ("Today is January 15, 2025.", [("date", "January 15, 2025")]),
        ("Today is 2025-01-15 and 1/15/2025", [("date", "2025-01-15"), ("date", "1/15/2025")]),
        ("id 550e8400-e29b-41d4-a716-446655440000", [("uuid", "550e8400-e29b-41d4-a716-446655440000")]),
        ("trace 4bf92f3577b34da6a3ce929d0e0e4736", [("hex_id", "4bf92f3577b34da6a3ce929d0e0e4736")]),
        ("req_011CQ8vXrT2pYm9ZqW3eHk7L", [("hex_id", "req_011CQ8vXrT2pYm9ZqW3eHk7L")]),
        ("request 4812, turn #7", [("counter", "request 4812"), ("counter", "turn #7")]),
        (
            "count=3 and #42 on the 3rd attempt",
            [("counter", "count=3"), ("counter", "#42"), ("counter", "3rd attempt")],
        ),
    ],
)
def test_scan_volatile_finds(text, expected):
    assert scan_volatile(text) == expected


def test_scan_volatile_leaves_prose_with_numbers_alone():
    # Decided: bare numbers, years, versions, ratios/verses, prices, model ids and words are prose.
    prose = (
        "Pick 2 items from the 2024 catalogue; chapter 3 has 10 pages. Since 2019, v3.1.12 of the app "
        "supports 16:9 video (John 3:16). It costs $3.00 for 1,024 tokens on gpt-4o-mini or "
        "claude-sonnet-4-5-20250929. Use snake_case_identifiers. Founded in May 2024. C# 10 and &#123;."
    )
    assert scan_volatile(prose) == []


# --- CacheBreakerDetector -----------------------------------------------------------------
def test_planted_timestamp_in_the_system_prompt_is_a_breaker_with_its_price():
    d = CacheBreakerDetector(SONNET)
    d.observe(prefix("2025-01-15T10:42:07Z"))
    found = d.observe(prefix("2025-01-15T10:42:12Z"))

    assert len(found) == 1
    b = found[0]
    assert isinstance(b, CacheBreaker) and b.observed
    assert (b.position, b.kind, b.sample) == (0, "timestamp", "2025-01-15T10:42:12Z")
    whole = tokens(SONNET, prefix("2025-01-15T10:42:12Z"))
    assert b.tokens_invalidated == whole and whole > 1000
    assert b.cost_per_call == whole * (Decimal("3.00") - Decimal("0.30")) / M  # input − cache read, per 1M
    assert not b.exact  # Claude without a count client: an estimate, and the message says "~"
    assert "timestamp" in b.message and "message 0 (system)" in b.message and f"${b.cost_per_call:.6f}" in b.message
    assert d.breakers == [b] and d.total_cost == b.cost_per_call


def test_identical_or_growing_prefixes_break_nothing():
    d = CacheBreakerDetector(SONNET)
    p = prefix("2025-01-15")
    d.observe(p)
    assert d.observe(p) == []
    assert d.observe([*p, ("user", "a new pinned fact")]) == []  # grew at its end
    assert d.observe(p[:2]) == []  # shrank at its end
    assert d.breakers == [] and d.total_cost == 0


def test_break_later_in_the_prefix_invalidates_only_the_rest():
    d = CacheBreakerDetector("gpt-4o")  # tiktoken: exact counts
    head = [("system", INSTRUCTIONS), ("user", "Pinned: Pro plan.")]
    d.observe([*head, ("system", "Summary (request 41): refund asked.")])
    after = [*head, ("system", "Summary (request 42): refund asked.")]
    (b,) = d.observe(after)
    assert (b.position, b.kind, b.sample) == (2, "counter", "request 42")
    assert b.tokens_invalidated == tokens("gpt-4o", after) - tokens("gpt-4o", head)
    assert b.exact
    assert b.cost_per_call == b.tokens_invalidated * (Decimal("2.50") - Decimal("1.25")) / M


def test_uuid_and_counter_breakers():
    d = CacheBreakerDetector(SONNET)
    d.observe([("system", "Rules."), ("user", "session 550e8400-e29b-41d4-a716-446655440000")])
    (u,) = d.observe([("system", "Rules."), ("user", "session 9b2f3c1e-0c4d-4e8a-9f6b-1a2b3c4d5e6f")])
    assert (u.position, u.kind) == (1, "uuid")

    d2 = CacheBreakerDetector(SONNET)
    d2.observe([("system", "Rules. This is turn #7 of the chat.")])
    (c,) = d2.observe([("system", "Rules. This is turn #8 of the chat.")])
    assert (c.position, c.kind, c.sample) == (0, "counter", "turn #8")
    # a bare number that changed, with no counting word: still a counter
    d2.observe([("system", "Rules. 41 credits left.")])
    (n,) = d2.observe([("system", "Rules. 40 credits left.")])
    assert (n.kind, n.sample) == ("counter", "40")


def test_changed_text_without_a_volatile_pattern():
    d = CacheBreakerDetector(SONNET)
    d.observe([("system", "You are helpful. Answer in English.")])
    (b,) = d.observe([("system", "You are concise. Answer in English.")])
    assert (b.position, b.kind, b.sample, b.spans) == (0, "changed_text", "concise", ())
    (r,) = d.observe([("system", "You are concise.")])  # text removed
    assert r.kind == "changed_text" and "Answer in English" in r.sample


def test_only_the_changed_span_is_blamed_and_later_changes_are_mentioned():
    d = CacheBreakerDetector(SONNET)
    d.observe([("system", "Policy of 2023-04-01. Now 10:42:07 UTC."), ("user", "step 3")])
    (b,) = d.observe([("system", "Policy of 2023-04-01. Now 10:42:09 UTC."), ("user", "step 4")])
    assert (b.kind, b.sample) == ("timestamp", "10:42:09 UTC")  # the unchanged date is not blamed
    assert "1 later prefix message(s) changed too" in b.message


def test_scan_prefix_flags_volatile_content_on_first_sight():
    d = CacheBreakerDetector(SONNET)
    p = [("system", system("2025-01-15T10:42:07Z")), ("user", "Step 1: greet. Step 2: help.")]
    first = d.observe(p)  # no previous call: the static scan
    assert [(b.position, b.kind, b.observed) for b in first] == [(0, "timestamp", False)]
    assert "Likely cache breaker" in first[0].message
    assert first[0].tokens_invalidated == tokens(SONNET, p)
    assert d.suspects == first and d.breakers == [] and d.total_cost == 0  # not billed: nothing observed yet
    # counters are too ambiguous for a static scan unless asked for
    assert [b.kind for b in d.scan_prefix(p, kinds=("counter",))] == ["counter"]
    with pytest.raises(ConfigurationError, match="unknown volatile kind"):
        d.scan_prefix(p, kinds=("weather",))


def test_ttl_values_the_rewrite_and_unknown_models_are_unpriced():
    p1, p2 = prefix("10:42:07 UTC"), prefix("10:42:08 UTC")
    d = CacheBreakerDetector(SONNET, ttl="1h")
    d.observe(p1)
    (b,) = d.observe(p2)
    assert b.cost_per_call == tokens(SONNET, p2) * (Decimal("6.00") - Decimal("0.30")) / M

    house = CacheBreakerDetector("house-llm-9")
    house.observe(p1)
    (u,) = house.observe(p2)
    assert u.cost_per_call is None and u.tokens_invalidated > 0 and "unknown" in u.message
    assert house.total_cost is None  # never $0 for an unknown price

    custom = PriceCatalog.from_dict({"house-llm-9": {"input": "1", "output": "2", "cache_read": "0.25"}})
    priced = CacheBreakerDetector("house-llm-9", catalog=custom)
    priced.observe(p1)
    (c,) = priced.observe(p2)
    assert c.cost_per_call == c.tokens_invalidated * Decimal("0.75") / M
    with pytest.raises(ConfigurationError, match="ttl"):
        CacheBreakerDetector(SONNET, ttl="10m")


def test_reset_forgets_the_previous_prefix():
    d = CacheBreakerDetector(SONNET)
    d.observe([("system", "A")])
    d.reset()
    assert d.observe([("system", "B")]) == []  # a first call again (static scan: nothing volatile)


# --- breakpoints --------------------------------------------------------------------------
def test_cache_breakpoint_indices():
    assert cache_breakpoint_indices(0) == []
    assert cache_breakpoint_indices(1) == [0]
    assert cache_breakpoint_indices(3) == [0, 1, 2]
    assert cache_breakpoint_indices(3, 1) == [2]  # at least the last stable message
    assert cache_breakpoint_indices(3, 2) == [0, 2]
    assert cache_breakpoint_indices(10) == [0, 3, 6, 9]
    assert cache_breakpoint_indices(5, 0) == []  # every breakpoint used elsewhere (tools)
    for bad in (5, -1):
        with pytest.raises(ConfigurationError, match="max_breakpoints"):
            cache_breakpoint_indices(3, bad)
    with pytest.raises(ConfigurationError, match="n_stable"):
        cache_breakpoint_indices(-1)
