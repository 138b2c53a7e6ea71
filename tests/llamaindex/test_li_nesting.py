"""Nested LLM spans are one provider request: only the innermost call is recorded."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import CompletionOnlyLLM, expected_cost, openai_usage, user  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402

RAW = {"id": "chatcmpl-1", "model": "gpt-4o-2024-08-06", "usage": openai_usage(300, 40, cached=100)}
COST = expected_cost("gpt-4o", input=200, cache_read=100, output=40)


def _llm() -> CompletionOnlyLLM:
    return CompletionOnlyLLM(model="gpt-4o", raw=RAW)


def test_chat_calling_complete_is_one_event(handler) -> None:
    llm = _llm()
    llm.chat([user("hi")])
    assert llm.calls == 1
    [e] = handler.events
    assert e.span_id.startswith("CompletionOnlyLLM.complete-")  # the innermost span
    assert e.parent_id.startswith("CompletionOnlyLLM.chat-")
    assert e.cost == COST
    assert e.step is None  # no component above the LLM
    assert e.trace_id == e.parent_id  # the outermost span of this call tree


async def test_achat_chat_complete_is_one_event(handler) -> None:
    await _llm().achat([user("hi")])
    [e] = handler.events
    assert e.cost == COST
    assert e.trace_id.startswith("CompletionOnlyLLM.achat-")


def test_stream_chat_over_stream_complete_is_one_event(handler) -> None:
    chunks = list(_llm().stream_chat([user("hi")]))
    assert chunks[-1].message.content == "The answer is 42."
    [e] = handler.events
    assert e.span_id.startswith("CompletionOnlyLLM.stream_complete-")
    assert e.cost == COST


async def test_astream_chat_whose_inner_call_starts_inside_the_generator_is_one_event(handler) -> None:
    # CustomLLM.astream_chat calls stream_chat only when iterated, after its own span closed:
    # there is no span link, only the running generator.
    gen = await _llm().astream_chat([user("hi")])
    assert handler.events == []
    chunks = [c async for c in gen]
    assert chunks[-1].message.content == "The answer is 42."
    [e] = handler.events
    assert e.span_id.startswith("CompletionOnlyLLM.stream_complete-")
    assert e.cost == COST
    assert not handler.table.calls and not handler.table.streams


async def test_astream_complete_is_one_event(handler) -> None:
    gen = await _llm().astream_complete("hi")
    [c async for c in gen]
    [e] = handler.events
    assert e.cost == COST


async def test_a_stream_being_consumed_does_not_swallow_a_separate_call(handler) -> None:
    # An LLM call made by the consumer between chunks is its own request, not an inner call.
    llm = _llm()
    other = _llm()
    gen = await llm.astream_chat([user("hi")])
    async for _ in gen:
        other.chat([user("side question")])
    assert len(handler.events) == 1 + 4  # the stream + one chat per chunk (4 words)
    assert all(e.cost == COST for e in handler.events)


async def test_concurrent_nested_calls_each_count_once(handler) -> None:
    llms = [_llm() for _ in range(8)]
    await asyncio.gather(*(llm.achat([user(f"q{i}")]) for i, llm in enumerate(llms)))
    assert len(handler.events) == 8
    assert handler.total_cost == 8 * COST
    assert len({e.span_id for e in handler.events}) == 8


def test_mock_llm_every_entry_point_once(handler) -> None:
    llm = MockLLM(max_tokens=4)
    llm.chat([user("hello")])
    llm.complete("hello")
    list(llm.stream_chat([user("hello")]))
    list(llm.stream_complete("hello"))

    async def run() -> None:
        await llm.achat([user("hello")])
        await llm.acomplete("hello")
        [c async for c in await llm.astream_chat([user("hello")])]
        [c async for c in await llm.astream_complete("hello")]

    asyncio.run(run())
    assert len(handler.events) == 8
    assert all(e.estimated and e.usage.input > 0 and e.usage.output > 0 for e in handler.events)
    assert not handler.table.calls and not handler.table.parents and not handler.table.streams


def test_sync_stream_wrapper_starting_its_inner_call_lazily_is_one_event(handler) -> None:
    from llama_index.core.base.llms.generic_utils import stream_completion_response_to_chat_response
    from llama_index.core.llms.callbacks import llm_chat_callback

    class LazyStream(CompletionOnlyLLM):
        @llm_chat_callback()
        def stream_chat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            def gen():  # the inner call starts only when the consumer iterates
                yield from stream_completion_response_to_chat_response(self.stream_complete("p"))

            return gen()

    chunks = list(LazyStream(model="gpt-4o", raw=RAW).stream_chat([user("hi")]))
    assert chunks[-1].message.content == "The answer is 42."
    [e] = handler.events
    assert e.span_id.startswith("LazyStream.stream_complete-")
    assert e.cost == COST
