"""Token counting: exact tiktoken counts with chat framing, estimates flagged, memoized per message."""

from __future__ import annotations

import pytest

from agentcost_core.tokens import ChatMessage, TokenCounter, encoding_for

tiktoken = pytest.importorskip("tiktoken")


def _have(name: str) -> bool:
    try:
        tiktoken.get_encoding(name)
        return True
    except Exception:
        return False


needs_o200k = pytest.mark.skipif(not _have("o200k_base"), reason="o200k_base not available offline (set TIKTOKEN_CACHE_DIR)")


def test_encoding_choice_by_family():
    assert encoding_for("gpt-4o-mini") == "o200k_base"
    assert encoding_for("gpt-5") == "o200k_base"
    assert encoding_for("gpt-4-0613") == "cl100k_base"
    assert encoding_for("gpt-3.5-turbo") == "cl100k_base"
    assert encoding_for("openai/gpt-4.1") == "o200k_base"


@needs_o200k
def test_openai_count_is_exact_with_framing():
    enc = tiktoken.get_encoding("o200k_base")
    c = TokenCounter("gpt-4o")
    msgs = [ChatMessage("system", "You are terse."), ChatMessage("user", "What is 2+2?", "alice")]
    got = c.count_messages(msgs)
    expected = 3 + sum(3 + len(enc.encode(m.content)) + len(enc.encode(m.role)) for m in msgs) + 1 + len(enc.encode("alice"))
    assert got.tokens == expected and got.exact


@needs_o200k
def test_anthropic_without_client_is_an_estimate():
    c = TokenCounter("claude-sonnet-4-5")
    got = c.count_messages([ChatMessage("user", "hello " * 100)])
    assert not got.exact and got.tokens > 100


def test_anthropic_with_client_uses_count_tokens_once_per_request():
    calls = []

    class Msgs:
        def count_tokens(self, **kw):
            calls.append(kw)
            return type("R", (), {"input_tokens": 321})()

    client = type("C", (), {"messages": Msgs()})()
    c = TokenCounter("claude-haiku-4-5", anthropic_client=client)
    msgs = [ChatMessage("system", "sys"), ChatMessage("user", "hi")]
    assert c.count_messages(msgs).tokens == 321 and c.count_messages(msgs).exact
    assert len(calls) == 1 and calls[0]["system"] == "sys" and calls[0]["messages"] == [{"role": "user", "content": "hi"}]


@needs_o200k
def test_a_growing_history_counts_as_the_sum_of_its_messages():
    c = TokenCounter("gpt-4o")
    history = [ChatMessage("user", f"message number {i}") for i in range(200)]
    before = c.count_messages(history).tokens
    new = ChatMessage("assistant", "a brand new reply")
    assert c.count_messages([*history, new]).tokens == before + c.message_tokens(new)
    assert c.count_messages(history).tokens == before  # counting again gives the same answer
    # a message counted before and one that differs only in its text are told apart
    seen, edited = history[7], ChatMessage("user", "message number 7, edited to be much longer than before")
    empty = c.count_messages([]).tokens
    assert c.count_messages([seen]).tokens - empty == c.message_tokens(seen)
    assert c.count_messages([edited]).tokens - empty == c.message_tokens(edited) > c.message_tokens(seen)
