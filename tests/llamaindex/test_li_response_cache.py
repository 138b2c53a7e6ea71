"""``agentcost_llamaindex.CachedLLM`` around the real llama-index-llms-openai ``OpenAI`` over a mock transport."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from li_fakes import OPENAI_DATED, OpenAIServer, expected_cost, user
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.llms.openai import OpenAI
from threads_together import run_threads_together

from agentcost_core import Ledger
from agentcost_core.errors import ConfigurationError
from agentcost_llamaindex import CachedLLM, instrument

# the server's default usage: prompt 100 of which 40 cached; completion 50 of which 10 reasoning
ORIGINAL_COST = expected_cost(OPENAI_DATED, input=60, cache_read=40, output=50)


def _openai(server: OpenAIServer, **kwargs) -> OpenAI:  # type: ignore[no-untyped-def]
    sync_client, async_client = server.clients()
    return OpenAI(model="gpt-4o-mini", api_key="sk-test", http_client=sync_client, async_http_client=async_client,
                  max_retries=0, **kwargs)  # fmt: skip


@pytest.fixture
def ledger():  # type: ignore[no-untyped-def]
    ledger = Ledger("memory://", sync=True)
    yield ledger
    ledger.close()


def test_the_second_chat_is_served_from_the_cache_and_recorded_as_saved(ledger: Ledger) -> None:
    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", ledger=ledger)
    with instrument_tags({"user_id": "alice"}):
        first = llm.chat([user("Capital of France?")])
        second = llm.chat([user("Capital of France?")])
    assert len(server.requests) == 1
    assert second.message.content == first.message.content == "Paris."
    (hit,) = ledger.events()
    assert hit.cache_hit and hit.cost == 0 and hit.user_id == "alice"
    assert hit.saved == ORIGINAL_COST
    assert hit.extra == {"cache": "exact"}


def test_users_never_share_entries(ledger: Ledger, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = OpenAIServer()
    llm = CachedLLM(_openai(server), f"sqlite:///{tmp_path / 'c.db'}", ledger=ledger)
    for who in ("alice", "bob", "bob"):
        with instrument_tags({"user_id": who}):
            llm.chat([user("Summarise my inbox")])
    assert len(server.requests) == 2
    assert [e.user_id for e in ledger.events()] == ["bob"]


def test_the_llm_settings_are_part_of_the_key(ledger: Ledger) -> None:
    server = OpenAIServer()
    hot, cold = _openai(server, temperature=1.0), _openai(server, temperature=0.0)
    CachedLLM(hot, "memory://", ledger=ledger, scope=()).chat([user("a poem")])
    cache = CachedLLM(cold, "memory://", ledger=ledger, scope=())
    cache.chat([user("a poem")])
    cache.chat([user("a poem")])
    assert len(server.requests) == 2


def test_async_chat_and_complete_hit(ledger: Ledger) -> None:
    server = OpenAIServer(text="42")
    llm = CachedLLM(_openai(server), "memory://", ledger=ledger)

    async def main() -> list[str]:
        a = await llm.achat([user("meaning of life?")])
        b = await llm.achat([user("meaning of life?")])
        return [a.message.content, b.message.content]

    assert asyncio.run(main()) == ["42", "42"]
    assert llm.complete("meaning?").text == llm.complete("meaning?").text
    assert len(server.requests) == 2
    assert [e.cache_hit for e in ledger.events()] == [True, True]


def test_with_instrumentation_the_miss_and_the_hit_are_recorded_once_each_by_the_handler(ledger: Ledger) -> None:
    server = OpenAIServer()
    llm = CachedLLM(_openai(server), "memory://", ledger=ledger)
    with instrument(ledger) as handler:
        llm.chat([user("hello")])
        llm.chat([user("hello")])
    events = ledger.events()
    assert [e.cache_hit for e in events] == [False, True]  # one ledger: each call once
    assert events[1].saved == events[0].cost == ORIGINAL_COST
    assert [e.id for e in handler.events] == [e.id for e in events]  # both are the handler's


def test_streams_pass_through(ledger: Ledger) -> None:
    server = OpenAIServer()
    llm = CachedLLM(_openai(server), "memory://", ledger=ledger)
    for _ in range(2):
        assert "".join(c.delta or "" for c in llm.stream_chat([user("stream it")])) == "Hello there!"
    assert len(server.requests) == 2


def test_it_wraps_only_llms() -> None:
    with pytest.raises(ConfigurationError):
        CachedLLM(object(), "memory://")  # type: ignore[arg-type]


def _paris_embedding() -> object:
    """A LlamaIndex embedding with two questions 0.98 apart (a semantic hit at the default threshold)."""
    import math

    from llama_index.core.base.embeddings.base import BaseEmbedding

    table = {
        "What is the capital of France?": [1.0, 0.0],
        "Tell me the capital city of France": [0.98, math.sqrt(1 - 0.98**2)],
    }

    class TableEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return table[query]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return table[query]

        def _get_text_embedding(self, text: str) -> list[float]:
            return table[text]

    return TableEmbedding(model_name="text-embedding-3-small")


def test_semantic_layer_with_a_llamaindex_embedding(ledger: Ledger) -> None:
    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", semantic=_paris_embedding(),
                    ledger=ledger)  # fmt: skip
    assert llm.chat([user("What is the capital of France?")]).message.content == "Paris."
    assert llm.chat([user("Tell me the capital city of France")]).message.content == "Paris."
    assert len(server.requests) == 1
    hits = [e for e in ledger.events() if e.cache_hit]
    assert [e.extra["cache"] for e in hits] == ["semantic"]  # type: ignore[index]
    embeddings = [e for e in ledger.events() if (e.extra or {}).get("cache") == "embedding"]
    assert len(embeddings) == 2 and all(e.model == "text-embedding-3-small" and e.cost for e in embeddings)


def _held_cached_llm(ledger: Ledger, waiters: int) -> tuple[CachedLLM, list[int]]:
    """A ``CachedLLM`` over a provider whose first answer waits until ``waiters`` identical calls wait
    for it (a condition checked until it holds); the provider's calls."""
    import threading

    import httpx
    from li_fakes import chat_completion, openai_usage

    hold, calls, llms = threading.Event(), [], []

    def provider(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        while len(calls) == 1 and llms[0].waiting() < waiters:
            hold.wait(0.001)
        return httpx.Response(200, json=chat_completion("shared", openai_usage(100, 50)))

    inner = OpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0,
                   http_client=httpx.Client(transport=httpx.MockTransport(provider)),
                   async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(provider)))  # fmt: skip
    llms.append(CachedLLM(inner, "memory://", ledger=ledger))
    return llms[0], calls


def _coalesced_waits(ledger: Ledger) -> int:
    waits = [e for e in ledger.events() if e.cache_hit]
    assert all(e.extra == {"cache": "coalesced"} and e.saved and e.cost == 0 for e in waits)
    return len(waits)


def test_identical_chats_in_flight_make_one_provider_call(ledger: Ledger) -> None:
    llm, calls = _held_cached_llm(ledger, waiters=7)

    async def main() -> list[str]:
        replies = await asyncio.gather(*(llm.achat([user("same")]) for _ in range(8)))
        return [r.message.content for r in replies]  # type: ignore[misc]

    assert asyncio.run(main()) == ["shared"] * 8
    assert len(calls) == 1 and _coalesced_waits(ledger) == 7


def test_identical_completions_in_flight_make_one_provider_call(ledger: Ledger) -> None:

    llm, calls = _held_cached_llm(ledger, waiters=5)
    texts = run_threads_together(lambda: llm.complete("same").text, 6)
    assert texts == ["shared"] * 6 and len(calls) == 1 and _coalesced_waits(ledger) == 5
    assert llm.complete("same").text == "shared" and len(calls) == 1  # then served from the store


def test_the_owners_provider_error_is_shared_by_its_waiters_and_nothing_is_kept(ledger: Ledger) -> None:
    import threading

    import httpx

    calls: list[int] = []
    llms: list[CachedLLM] = []

    def provider(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        while len(calls) == 1 and llms[0].waiting() < 3:
            threading.Event().wait(0.001)
        return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error", "param": None,
                                                   "code": None}})  # fmt: skip

    inner = OpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0,
                   http_client=httpx.Client(transport=httpx.MockTransport(provider)))  # fmt: skip
    llms.append(CachedLLM(inner, "memory://", ledger=ledger))
    outcomes = run_threads_together(lambda: llms[0].chat([user("fragile")]), 4)
    assert outcomes == ["InternalServerError"] * 4 and len(calls) == 1  # one failing call is one failure
    assert len(llms[0].engine) == 0 and not ledger.events() and llms[0].waiting() == 0


def test_with_instrumentation_the_semantic_layers_embeddings_are_recorded_once(ledger: Ledger) -> None:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class OneVector(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return [1.0, 0.0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return [1.0, 0.0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return [1.0, 0.0]

    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(
        _openai(server), "memory://", semantic=OneVector(model_name="text-embedding-3-small"), ledger=ledger
    )
    with instrument(ledger):
        llm.chat([user("What is the capital of France?")])
    embeddings = [e for e in ledger.events() if e.kind == "embedding"]
    assert len(embeddings) == 1  # the handler's record of the embedding call; the cache adds none


def test_a_corrupt_entry_is_a_counted_miss_and_the_chat_is_answered(ledger: Ledger, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), f"sqlite:///{tmp_path / 'c.db'}", ledger=ledger, scope=())
    llm.chat([user("Capital of France?")])
    con = sqlite3.connect(tmp_path / "c.db")
    con.execute("UPDATE entries SET payload = ?", ('{"not": "a response"}',))  # JSON, but no response in it
    con.commit()
    con.close()
    assert llm.chat([user("Capital of France?")]).message.content == "Paris."
    assert len(server.requests) == 2
    assert llm.stats.as_dict()["exact"] == {"hits": 0, "misses": 2, "errors": 1}
    assert not [e for e in ledger.events() if e.cache_hit]
    assert llm.chat([user("Capital of France?")]).message.content == "Paris."  # the chat stored a good entry
    assert len(server.requests) == 2


@pytest.mark.parametrize("tags", [{"cache_tags": 5}, {"cache_tags": [""]}])
def test_a_bad_cache_tag_skips_the_cache_and_never_breaks_the_chat(ledger: Ledger, tags: dict) -> None:
    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", ledger=ledger, scope=())
    with instrument_tags(tags):
        assert llm.chat([user("Capital of France?")]).message.content == "Paris."
        assert asyncio.run(llm.achat([user("Capital of France?")])).message.content == "Paris."
        assert llm.complete("Capital of France?").text == "Paris."
    assert len(server.requests) == 3 and len(llm.engine) == 0
    assert llm.recorder.internal_errors == 3  # counted and logged, one per call


def test_coalesce_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="coalesce"):
        CachedLLM(_openai(OpenAIServer()), "memory://", coalesce="yes")  # type: ignore[arg-type]


# --- an instrument() handler records the hits it sees ------------------------------------------------
@pytest.fixture
def cache_ledger():  # type: ignore[no-untyped-def]
    """The cache's own ledger, apart from the handler's."""
    ledger = Ledger("memory://", sync=True)
    yield ledger
    ledger.close()


def _ask_twice(llm: CachedLLM, how: str) -> None:
    if how == "chat":
        llm.chat([user("Capital of France?")])
        llm.chat([user("Capital of France?")])
    elif how == "achat":
        asyncio.run(llm.achat([user("Capital of France?")]))
        asyncio.run(llm.achat([user("Capital of France?")]))
    elif how == "complete":
        llm.complete("Capital of France?")
        llm.complete("Capital of France?")
    else:
        asyncio.run(llm.acomplete("Capital of France?"))
        asyncio.run(llm.acomplete("Capital of France?"))


@pytest.mark.parametrize("how", ["chat", "achat", "complete", "acomplete"])
def test_an_attached_handler_records_the_hit_with_what_it_saved(ledger: Ledger, cache_ledger: Ledger, how: str) -> None:
    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", ledger=cache_ledger)
    with instrument(ledger) as handler, instrument_tags({"user_id": "alice", "feature": "geo"}):
        _ask_twice(llm, how)
    assert len(server.requests) == 1
    miss, hit = handler.events  # the inner LLM's call once (not the cache's too), then the hit
    assert not miss.cache_hit and miss.cost == ORIGINAL_COST
    assert hit.cache_hit and hit.cost == 0 and hit.saved == miss.cost and hit.extra == {"cache": "exact"}
    assert (hit.user_id, hit.feature) == ("alice", "geo") and hit.model == miss.model
    assert hit.span_id and hit.trace_id and hit.span_id != miss.span_id
    assert handler.total_cost == miss.cost
    assert [e.id for e in ledger.events()] == [miss.id, hit.id]
    assert cache_ledger.events() == []  # recorded once: by the handler, not by the cache too


def test_a_hit_sits_in_the_trace_and_step_of_its_call(ledger: Ledger, cache_ledger: Ledger) -> None:
    from llama_index.core.instrumentation import get_dispatcher

    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", ledger=cache_ledger)

    @get_dispatcher("tests.answering").span
    def answer() -> None:
        llm.chat([user("Capital of France?")])
        llm.chat([user("Capital of France?")])

    with instrument(ledger) as handler:
        answer()
    miss, hit = handler.events
    assert hit.step == miss.step and miss.step.endswith(".answer")  # the enclosing span, by name
    assert hit.trace_id == miss.trace_id and hit.parent_id == miss.trace_id


def test_without_a_handler_seeing_it_the_cache_records_the_hit(ledger: Ledger, cache_ledger: Ledger) -> None:
    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", ledger=cache_ledger)
    with instrument(ledger) as handler:
        llm.chat([user("Capital of France?")])
        llm.chat([user("Capital of France?")])
    llm.chat([user("Capital of France?")])  # detached: the cache's own record
    assert [e.cache_hit for e in handler.events] == [False, True]
    (own,) = cache_ledger.events()
    assert own.cache_hit and own.saved == ORIGINAL_COST and own.extra == {"cache": "exact"}
    assert len(ledger.events()) == 2


def test_an_attached_handler_records_a_semantic_hit(ledger: Ledger, cache_ledger: Ledger) -> None:
    server = OpenAIServer(text="Paris.")
    llm = CachedLLM(_openai(server), "memory://", semantic=_paris_embedding(),
                    ledger=cache_ledger)  # fmt: skip
    with instrument(ledger) as handler:
        llm.chat([user("What is the capital of France?")])
        llm.chat([user("Tell me the capital city of France")])
    calls = [e for e in handler.events if e.kind == "llm"]
    assert [e.cache_hit for e in calls] == [False, True]
    assert calls[1].extra["cache"] == "semantic" and calls[1].extra["similarity"] >= 0.95  # type: ignore[index]
    assert calls[1].cost == 0 and calls[1].saved == ORIGINAL_COST
    assert not [e for e in cache_ledger.events() if e.kind == "llm"]


def test_an_attached_handler_records_the_coalesced_waiters(ledger: Ledger, cache_ledger: Ledger) -> None:
    llm, calls = _held_cached_llm(cache_ledger, waiters=3)
    with instrument(ledger) as handler:
        texts = run_threads_together(lambda: llm.chat([user("same")]).message.content, 4)
    assert texts == ["shared"] * 4 and len(calls) == 1
    owner = [e for e in handler.events if not e.cache_hit]
    waiters = [e for e in handler.events if e.cache_hit]
    assert len(owner) == 1 and owner[0].cost
    assert len(waiters) == 3
    assert all(e.extra == {"cache": "coalesced"} and e.cost == 0 and e.saved == owner[0].cost for e in waiters)
    assert handler.total_cost == owner[0].cost and cache_ledger.events() == []


def test_a_guarded_runs_hit_is_one_of_its_events_at_no_cost(cache_ledger: Ledger) -> None:
    from decimal import Decimal

    from llama_index.core.agent.workflow import FunctionAgent

    from agentcost_core import Budget
    from agentcost_llamaindex import guard
    from agentcost_llamaindex.testing import ScriptedLLM

    llm = CachedLLM(ScriptedLLM(script=["Paris."]), "memory://", ledger=cache_ledger, scope=())
    guarded = guard(FunctionAgent(tools=[], llm=llm, streaming=False), budgets=Budget(usd=Decimal(1), per="run"),
                    ledger="memory://")  # fmt: skip

    async def main():  # type: ignore[no-untyped-def]
        return await guarded.run("Capital of France?"), await guarded.run("Capital of France?")

    first, second = asyncio.run(main())
    assert second.answer == first.answer == "Paris."
    (hit,) = second.events
    assert hit.cache_hit and hit.cost == 0 and hit.saved == first.cost > 0 and hit.extra == {"cache": "exact"}
    assert second.cost == 0 and cache_ledger.events() == []
