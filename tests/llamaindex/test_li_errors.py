"""Failures: the user's exception is untouched and recorded without cost; our own faults stay ours."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("llama_index.core")

from li_fakes import CompletionOnlyLLM, OpenAIServer, RawChatLLM, anthropic_message, user  # noqa: E402


def test_llm_raising_is_recorded_and_propagates(handler) -> None:
    boom = RuntimeError("provider down")
    llm = RawChatLLM(model="claude-sonnet-4-5", error=boom)
    with pytest.raises(RuntimeError) as caught:
        llm.chat([user("hi")])
    assert caught.value is boom
    [e] = handler.events
    assert e.error == "RuntimeError"  # the class only: the message stays out of the ledger by default
    assert e.cost is None and not e.priced and e.usage.total == 0
    assert e.requested_model == "claude-sonnet-4-5" and e.model == "claude-sonnet-4-5"
    assert handler.total_cost == 0
    assert not handler.table.calls and not handler.table.parents


async def test_achat_raising(handler) -> None:
    llm = RawChatLLM(model="gpt-4o", error=TimeoutError())
    with pytest.raises(TimeoutError):
        await llm.achat([user("hi")])
    [e] = handler.events
    assert e.error == "TimeoutError" and e.cost is None


def test_openai_http_error_is_recorded_once(handler) -> None:
    import openai
    from llama_index.llms.openai import OpenAI

    server = OpenAIServer(status=500)
    llm = OpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0,
                 http_client=httpx.Client(transport=httpx.MockTransport(server)))
    with pytest.raises(openai.InternalServerError):
        llm.chat([user("hi")])
    [e] = handler.events
    assert e.error == "InternalServerError (500)"
    assert e.cost is None and e.requested_model == "gpt-4o-mini"


def test_stream_failing_midway(handler) -> None:
    llm = RawChatLLM(model="gpt-4o", text="one two three", error=ConnectionError("reset"))
    received = []
    with pytest.raises(ConnectionError):
        for chunk in llm.stream_chat([user("hi")]):
            received.append(chunk)
    assert len(received) == 2
    [e] = handler.events
    assert e.error == "ConnectionError" and e.cost is None
    assert not handler.table.calls and not handler.table.streams


def test_nested_failure_is_one_error_event(handler) -> None:
    from llama_index.core.llms.callbacks import llm_completion_callback

    class Failing(CompletionOnlyLLM):
        @llm_completion_callback()
        def complete(self, prompt, formatted=False, **kwargs):  # type: ignore[no-untyped-def]
            raise ValueError("bad request")

    with pytest.raises(ValueError):
        Failing(model="gpt-4o").chat([user("hi")])
    [e] = handler.events
    assert e.error == "ValueError"
    assert e.span_id.startswith("Failing.complete-")


def test_stream_closed_early_is_still_recorded(handler) -> None:
    raw = anthropic_message("x", input_tokens=10, output_tokens=50)
    llm = RawChatLLM(model="claude-sonnet-4-5", text="a b c d e f", raw=raw)
    gen = llm.stream_chat([user("hi")])
    next(gen)
    next(gen)
    gen.close()  # the consumer stops: the provider still billed the tokens so far
    [e] = handler.events
    assert e.error is None
    assert e.extra == {"stream_closed_early": True}
    assert e.estimated and e.usage.output > 0 and e.cost is not None and e.cost > 0
    assert not handler.table.calls and not handler.table.streams


def test_our_recorder_failing_never_breaks_the_call(handler, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise KeyError("ledger exploded")

    monkeypatch.setattr(handler.recorder, "record", broken)
    monkeypatch.setattr(handler.recorder, "record_outcome", broken)
    llm = RawChatLLM(model="gpt-4o", text="fine", raw=None)
    assert llm.chat([user("hi")]).message.content == "fine"
    assert [c.message.content for c in llm.stream_chat([user("hi")])][-1] == "fine"
    assert handler.internal_errors == 2
    assert "agentcost internal error" in caplog.text


def test_our_parser_failing_never_breaks_the_call_and_the_call_is_estimated(handler, monkeypatch) -> None:
    import agentcost_llamaindex.recording as mod

    def broken(response):
        raise AttributeError("parser bug")

    monkeypatch.setattr(mod, "from_chat_response", broken)
    assert RawChatLLM(model="gpt-4o", text="fine").chat([user("hi")]).message.content == "fine"
    assert handler.internal_errors == 1
    [e] = handler.events
    assert e.estimated and e.cost is not None and e.cost > 0
    assert "parser bug" in e.extra["usage_error"]


def test_failure_path_failing_never_hides_the_users_exception(handler, monkeypatch) -> None:
    monkeypatch.setattr(handler.recorder, "record_outcome", lambda *a, **k: 1 / 0)
    boom = RuntimeError("provider down")
    with pytest.raises(RuntimeError) as caught:
        RawChatLLM(model="gpt-4o", error=boom).chat([user("hi")])
    assert caught.value is boom
    assert handler.internal_errors == 1
