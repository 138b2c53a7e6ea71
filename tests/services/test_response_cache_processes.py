"""The response cache's faces coalesce across processes through a real Redis store: 4 processes
(spawned), each with its own real LangChain ``ChatOpenAI`` + ``ResponseCache("redis://…")`` or
LlamaIndex ``OpenAI`` + ``CachedLLM``, asking the same prompt at once make exactly one request to a
local OpenAI-compatible HTTP server (counted there, across processes); the three others are
recorded as coalesced hits with ``saved``. Half the processes call synchronously, half with asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from counting_server import Server
from processes_together import run_together

from agentcost_core import Ledger, PriceCatalog
from agentcost_core.usage import Usage

pytestmark = pytest.mark.services

MODEL = "gpt-4o-mini"
QUESTION = "What is the capital of France?"


def _events(ledger: Ledger) -> list[tuple[bool, str | None, str, str]]:
    return [(e.cache_hit, (e.extra or {}).get("cache"), str(e.saved), str(e.cost)) for e in ledger.events()]


def ask_langchain(store: str, base_url: str, asynchronous: bool, barrier: Any, results: Any) -> None:
    from langchain_openai import ChatOpenAI

    from agentcost_langchain import ResponseCache

    try:
        ledger = Ledger("memory://", sync=True)
        llm = ChatOpenAI(model=MODEL, api_key="sk-test", base_url=base_url, max_retries=0,
                         cache=ResponseCache(store, ledger=ledger))  # fmt: skip
        config = {"metadata": {"user_id": "u1"}}
        barrier.wait()
        reply = (
            asyncio.run(llm.ainvoke(QUESTION, config=config)) if asynchronous else llm.invoke(QUESTION, config=config)
        )
        results.put((reply.content, _events(ledger)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        results.put(("crash", repr(e)))


def ask_llamaindex(store: str, base_url: str, asynchronous: bool, barrier: Any, results: Any) -> None:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.instrumentation.dispatcher import instrument_tags
    from llama_index.llms.openai import OpenAI

    from agentcost_llamaindex import CachedLLM

    try:
        ledger = Ledger("memory://", sync=True)
        llm = CachedLLM(OpenAI(model=MODEL, api_key="sk-test", api_base=base_url, max_retries=0), store, ledger=ledger)
        messages = [ChatMessage(role="user", content=QUESTION)]
        barrier.wait()
        with instrument_tags({"user_id": "u1"}):
            reply = asyncio.run(llm.achat(messages)) if asynchronous else llm.chat(messages)
        results.put((reply.message.content, _events(ledger)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        results.put(("crash", repr(e)))


@pytest.fixture
def store(redis_cache_store: str) -> str:
    """A Redis store of this test's own."""
    return redis_cache_store


def _observer(face: str, store: str) -> Any:
    """A cache of the same face on the same store in this process: its ``waiting()`` counts the
    processes waiting for another process's flight."""
    if face == "langchain":
        from agentcost_langchain import ResponseCache

        return ResponseCache(store, ledger=Ledger("memory://"))
    from llama_index.llms.openai import OpenAI

    from agentcost_llamaindex import CachedLLM

    return CachedLLM(OpenAI(model=MODEL, api_key="sk-test"), store, ledger=Ledger("memory://"))


@pytest.mark.parametrize("face, ask", [("langchain", ask_langchain), ("llamaindex", ask_llamaindex)])
def test_four_processes_asking_at_once_make_one_provider_call(face: str, ask: Callable[..., None], store: str) -> None:
    pytest.importorskip("llama_index.llms.openai" if face == "llamaindex" else "langchain_openai")
    observer = _observer(face, store)
    # The first request is answered once the three other processes wait for its flight; any later
    # request is answered at once (and fails the count below).
    server = Server(ready=lambda n: n > 0 or observer.waiting() == 3)
    try:
        results = run_together(ask, [(store, server.url, i % 2 == 1) for i in range(4)], start="spawn", timeout=120)
    finally:
        server.close()
    assert server.requests == 1, results
    assert all(r[0] == "Paris." for r in results), results
    saved = PriceCatalog.default().get(MODEL + "-2024-07-18").cost(Usage(input=1200, output=300))  # type: ignore[union-attr]
    assert saved > 0
    # the owner's miss is not the cache's to record; each waiter's call is one coalesced hit, charged nothing
    assert sorted(r[1] for r in results) == [[]] + [[(True, "coalesced", str(saved), str(Decimal(0)))]] * 3
    assert observer.waiting() == 0 and len(observer.engine) == 1  # the owner's response was stored once


def _openai_over(provider: Callable[[Any], Any]) -> Any:
    import httpx
    from llama_index.llms.openai import OpenAI

    return OpenAI(model=MODEL, api_key="sk-test", max_retries=0,
                  http_client=httpx.Client(transport=httpx.MockTransport(provider)))  # fmt: skip


def test_a_response_with_tool_calls_reaches_no_other_process_whose_waiters_call_on_their_own(store: str) -> None:
    """Two ``CachedLLM`` on one Redis store stand for two processes (each has its own flights)."""
    pytest.importorskip("llama_index.llms.openai")
    import threading

    import httpx
    from counting_server import COMPLETION, wait_for
    from llama_index.core.base.llms.types import ChatMessage

    from agentcost_llamaindex import CachedLLM

    tool_call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}}
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [tool_call]}
    body = {
        **COMPLETION,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
    }
    calls: list[int] = []
    ledger = Ledger("memory://", sync=True)
    llms: list[Any] = []

    def provider(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:  # the first call is answered once the other "process" waits for it
            wait_for(lambda: llms[1].waiting() == 1)
        return httpx.Response(200, json=body)

    llms.extend(CachedLLM(_openai_over(provider), store, ledger=ledger) for _ in range(2))
    replies: list[Any] = []
    owner = threading.Thread(target=lambda: replies.append(llms[0].chat([ChatMessage(role="user", content="q")])))
    owner.start()
    wait_for(lambda: len(calls) == 1)
    replies.append(llms[1].chat([ChatMessage(role="user", content="q")]))
    owner.join()
    assert len(calls) == 2  # the tool call could not cross: the waiter called on its own ...
    assert all(r.message.additional_kwargs["tool_calls"][0].id == "call_1" for r in replies)
    assert not [e for e in ledger.events() if e.cache_hit] and len(llms[0].engine) == 0  # ... and saved nothing


def test_stores_of_different_namespaces_share_no_flights(store: str) -> None:
    pytest.importorskip("llama_index.llms.openai")
    import threading

    import httpx
    from counting_server import COMPLETION, wait_for
    from llama_index.core.base.llms.types import ChatMessage

    from agentcost_llamaindex import CachedLLM

    calls: list[int] = []

    def provider(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        try:  # both calls reach the provider together (coalesced, the second would never come)
            wait_for(lambda: len(calls) == 2, timeout=10)
        except AssertionError:
            pass
        return httpx.Response(200, json=COMPLETION)

    other = store.replace("namespace=agentcost-test:", "namespace=agentcost-test-other:")
    llms = [CachedLLM(_openai_over(provider), url, ledger=Ledger("memory://")) for url in (store, other)]
    try:
        threads = [threading.Thread(target=llm.chat, args=([ChatMessage(role="user", content="q")],)) for llm in llms]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(calls) == 2
    finally:
        llms[1].engine.clear()
