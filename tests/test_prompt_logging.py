"""Prompt logging, opt-in: off, no prompt text reaches the ledger (any table), our logs or the OTel
spans; on, a LangChain agent's and a LlamaIndex LLM's prompts (system, history, tool schemas) and
responses are kept beside their events and on their spans, with the planted secrets (an email, an
``sk-`` key, a bearer token, a card number, a custom pattern, a user hook's word) redacted. Real
classes throughout: ``create_agent`` with ``ChatOpenAI`` and llama-index's ``OpenAI`` over
``httpx.MockTransport``, real SQLite / PostgreSQL ledgers, the OTel SDK's in-memory exporter."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

pytest.importorskip("langchain_openai")
pytest.importorskip("llama_index.llms.openai")

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from llama_index.core.llms import ChatMessage as LIChatMessage
from llama_index.llms.openai import OpenAI as LIOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentcost_core import ConfigurationError, CostRecorder, Ledger, LedgerURLError, PromptLogging, PromptRecord
from agentcost_core.cli import main as cli
from agentcost_core.ledger.memory import MemoryBackend
from agentcost_core.ledger.prompts import PRUNE_EVERY_S, PromptWrites
from agentcost_core.otel import OTelExporter
from agentcost_langchain import CostCallbackHandler
from agentcost_llamaindex import instrument

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROMPT = "PLANTED-PROMPT zebra quasar 7731"
EMAIL = "planted.person@example.org"
KEY = "sk-proj-PLANTEDKEY1234567890abcdefXYZ"
TOKEN = "PLANTEDtoken.abc123XYZ987"
CARD = "4111 1111 1111 1111"  # passes the Luhn check
NOT_A_CARD = "4111 1111 1111 1112"  # fails it: kept
ORDER = "ORD-558812"  # the custom pattern's match
CODENAME = "Project Falcon"  # the user's redact= hook replaces it
SECRETS = (EMAIL, KEY, TOKEN, CARD, ORDER, CODENAME)

SYSTEM = f"You are the support bot of {CODENAME}. Escalate to {EMAIL}."
QUESTION = (
    f"{PROMPT}: card {CARD} (not {NOT_A_CARD}) was charged twice for {ORDER}; my key is {KEY}, "
    f"I call the API with Bearer {TOKEN}"
)
ANSWER = f"Refund issued for {ORDER} to card {CARD}; write to {EMAIL} with questions."


def settings() -> PromptLogging:
    return PromptLogging(patterns=[r"ORD-\d{6}"], redact=lambda text: text.replace(CODENAME, "[codename]"))


# --- a fake OpenAI server: a tool call, then the answer --------------------------------------------
def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1731000000, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "refusal": None, **message},
                         "logprobs": None, "finish_reason": finish}], "usage": usage}  # fmt: skip


class OpenAIServer:
    """Answers a request without a tool result with a ``lookup_order`` call, else with ANSWER."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if body.get("tools") and not any(m.get("role") == "tool" for m in body["messages"]):
            call = {"id": "call_1", "type": "function",
                    "function": {"name": "lookup_order", "arguments": json.dumps({"order": ORDER, "email": EMAIL})}}  # fmt: skip
            return httpx.Response(200, json=_completion({"content": None, "tool_calls": [call]}, "tool_calls"))
        return httpx.Response(200, json=_completion({"content": ANSWER}, "stop"))


@tool
def lookup_order(order: str, email: str) -> str:
    """Look an order up by its id and the customer's email."""
    return f"{order} for {email}: charged twice"


def run_langchain_agent(ledger: Ledger, log_prompts: Any, exporter: OTelExporter) -> CostCallbackHandler:
    server = OpenAIServer()
    model = ChatOpenAI(model="gpt-4o-mini", api_key=KEY, max_retries=0,
                       http_client=httpx.Client(transport=httpx.MockTransport(server)))  # fmt: skip
    agent = create_agent(model, tools=[lookup_order], system_prompt=SYSTEM)
    handler = CostCallbackHandler(ledger, log_prompts=log_prompts, exporters=[exporter])
    result = agent.invoke({"messages": [{"role": "user", "content": QUESTION}]}, config={"callbacks": [handler]})
    assert result["messages"][-1].content == ANSWER and len(server.requests) == 2
    ledger.flush()
    return handler


@pytest.fixture
def spans() -> Any:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def every_row(path: Any) -> str:
    """Every row of every table of a SQLite ledger, as text."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for t in tables for row in conn.execute(f"SELECT * FROM {t}"))
    finally:
        conn.close()


def span_text(memory: InMemorySpanExporter) -> str:
    out = []
    for s in memory.get_finished_spans():
        out.append(f"{s.name} {dict(s.attributes or {})}")
        out.extend(f"{e.name} {dict(e.attributes or {})}" for e in s.events)
    return "\n".join(out)


# --- off: nothing anywhere ----------------------------------------------------------------------
def test_with_prompt_logging_off_no_prompt_text_is_stored_logged_or_exported(tmp_path, spans, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    provider, memory = spans
    ledger = Ledger(f"sqlite:///{tmp_path}/off.db")
    handler = run_langchain_agent(
        ledger, False, OTelExporter(tracer_provider=provider, prompt_events=True, metrics=False)
    )
    calls = ledger.events(kind="llm")
    assert len(calls) == 2 and handler.total_cost > 0
    assert all(ledger.prompts(e.id) is None for e in calls)
    ledger.close()
    stored = every_row(tmp_path / "off.db")
    exported = span_text(memory)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("agentcost"))
    assert "chat gpt-4o-mini" in exported and "gen_ai.client.inference.operation.details" not in exported
    for text in (stored, exported, logged):
        for planted in (PROMPT, *SECRETS, "charged twice", "Refund issued"):
            assert planted not in text


# --- on: a LangChain agent ----------------------------------------------------------------------
def test_a_langchain_agents_prompts_and_responses_are_kept_redacted(tmp_path, spans) -> None:
    provider, memory = spans
    ledger = Ledger(f"sqlite:///{tmp_path}/on.db")
    run_langchain_agent(ledger, settings(), OTelExporter(tracer_provider=provider, prompt_events=True, metrics=False))
    first, second = (ledger.prompts(e.id) for e in ledger.events(kind="llm"))
    ledger.close()

    # the prompt: system, the user's question, then (second call) the tool call and its result
    assert [m["role"] for m in first.messages][:2] == ["system", "user"]
    assert len(second.messages) > len(first.messages) and "charged twice" in second.text
    assert "lookup_order" in first.tool_definitions and "customer's email" in first.tool_definitions
    assert PROMPT in first.text and "[codename]" in first.text
    # the response: a tool call, then the answer
    (call,) = [p for p in first.response[0]["parts"] if p["type"] == "tool_call"]
    assert call["name"] == "lookup_order" and call["arguments"] == {"order": "***", "email": "***@***"}
    assert second.response[0]["parts"][0]["content"].startswith("Refund issued for *** to card ***")
    # redacted everywhere: the Luhn-failing number stays, every planted secret is gone
    stored = every_row(tmp_path / "on.db")
    assert PROMPT in stored and NOT_A_CARD in stored and "Bearer ***" in stored
    exported = span_text(memory)
    assert exported.count("gen_ai.client.inference.operation.details") == 2 and PROMPT in exported
    for text in (stored, exported):
        for secret in SECRETS:
            assert secret not in text


def test_the_span_event_follows_the_genai_conventions(tmp_path, spans) -> None:
    provider, memory = spans
    ledger = Ledger("memory://")
    run_langchain_agent(ledger, True, OTelExporter(tracer_provider=provider, prompt_events=True, metrics=False))
    chat = [s for s in memory.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chat) == 2
    for span in chat:
        (event,) = span.events
        assert event.name == "gen_ai.client.inference.operation.details"
        record = ledger.prompts(span.attributes["agentcost.event_id"])
        assert json.loads(event.attributes["gen_ai.input.messages"]) == record.messages
        assert json.loads(event.attributes["gen_ai.output.messages"]) == record.response
        assert event.attributes["gen_ai.tool.definitions"] == record.tool_definitions
    # an exporter without prompt_events adds no event even with prompt logging on
    plain = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(plain))
    run_langchain_agent(Ledger("memory://"), True, OTelExporter(tracer_provider=tp, metrics=False))
    chat = [s for s in plain.get_finished_spans() if s.name.startswith("chat ")]
    assert [s.events for s in chat] == [(), ()] and PROMPT not in span_text(plain)


# --- on: a LlamaIndex call ----------------------------------------------------------------------
def test_a_llamaindex_calls_prompt_and_response_are_kept_redacted(tmp_path) -> None:
    server = OpenAIServer()
    llm = LIOpenAI(model="gpt-4o-mini", api_key=KEY, max_retries=0,
                   http_client=httpx.Client(transport=httpx.MockTransport(server)))  # fmt: skip
    ledger = Ledger(f"sqlite:///{tmp_path}/li.db")
    with instrument(ledger, log_prompts=settings(), feature="li-prompts") as handler:
        reply = llm.chat([LIChatMessage(role="system", content=SYSTEM), LIChatMessage(role="user", content=QUESTION)])
    assert reply.message.content == ANSWER
    (event,) = handler.events
    record = ledger.prompts(event.id)
    ledger.close()
    assert [m["role"] for m in record.messages] == ["system", "user"]
    assert record.messages[0]["parts"][0]["content"] == "You are the support bot of [codename]. Escalate to ***@***."
    assert PROMPT in record.text and NOT_A_CARD in record.text
    assert (
        record.response[0]["parts"][0]["content"]
        == "Refund issued for *** to card ***; write to ***@*** with questions."
    )
    stored = every_row(tmp_path / "li.db")
    for secret in SECRETS:
        assert secret not in stored


# --- the ledgers: memory, SQLite, PostgreSQL -----------------------------------------------------
def _record(event_id: str, ts: float, text: str = "hello") -> PromptRecord:
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
    return PromptRecord(event_id=event_id, ts=ts, input_messages=messages, output_messages="[]")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def ledger_url(request, tmp_path) -> Any:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/l.db"
    else:
        import psycopg

        from agentcost_core.ledger.postgres import PostgresBackend

        url = request.getfixturevalue("postgres_url")
        table = f"agentcost_prompts_{uuid.uuid4().hex[:8]}"
        yield lambda **kw: Ledger(backend=PostgresBackend(url, table=table), **kw)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
            conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))


def _open(ledger_url: Any, **kw: Any) -> Ledger:
    return ledger_url(**kw) if callable(ledger_url) else Ledger(ledger_url, **kw)


@pytest.mark.parametrize("durability", ["fast", "sync"])
def test_every_ledger_stores_reads_replaces_prunes_and_clears_prompt_records(ledger_url, durability) -> None:
    now = time.time()
    with _open(ledger_url, durability=durability) as ledger:
        ledger.record_prompt(_record("e-old", now - 3 * 86400, "old"))
        ledger.record_prompt(_record("e-new", now, "first"))
        ledger.record_prompt(_record("e-new", now, "second"))  # the same event again: replaces
        assert ledger.prompts("e-new").text == "second" and ledger.prompts("e-old").text == "old"
        assert ledger.prompts("nothing") is None
        assert ledger.prune_prompts(older_than_days=1) == 1
        assert ledger.prompts("e-old") is None and ledger.prompts("e-new") is not None
        ledger.clear()
        assert ledger.prompts("e-new") is None


def test_records_older_than_the_retention_are_pruned_when_a_ledger_opens(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    now = time.time()
    with Ledger(url, sync=True, prompt_retention_days=10) as ledger:
        ledger.record_prompt(_record("e-5d", now - 5 * 86400))
        ledger.record_prompt(_record("e-40d", now - 40 * 86400))
    with Ledger(url, sync=True, prompt_retention_days=10) as ledger:  # 10 days: the 5-day-old one stays
        assert ledger.prompts("e-40d") is None and ledger.prompts("e-5d") is not None
    with Ledger(url, sync=True, prompt_retention_days=1) as ledger:
        assert ledger.prompts("e-5d") is None


def test_the_writer_prunes_expired_records_hourly_while_prompts_are_written() -> None:
    clock = [1_000_000.0]
    backend = MemoryBackend()
    writes = PromptWrites(lambda events: None, backend, retention_days=1, clock=lambda: clock[0])
    writes.write([_record("e-1", clock[0])])
    clock[0] += 2 * 86400  # two days later: e-1 has expired, but the last prune was within the hour
    writes.prune()
    assert backend.prompt("e-1") is None
    writes.write([_record("e-2", clock[0] - 2 * 86400)])  # written already expired, pruned within the hour
    assert backend.prompt("e-2") is not None
    clock[0] += PRUNE_EVERY_S
    writes.write([_record("e-3", clock[0])])
    assert backend.prompt("e-2") is None and backend.prompt("e-3") is not None


def test_prompt_records_are_written_by_the_background_writer_not_the_callers_thread() -> None:
    threads: list[str] = []
    written = threading.Event()

    class Watched(MemoryBackend):
        def write_prompts(self, records: Any) -> None:
            threads.append(threading.current_thread().name)
            super().write_prompts(records)
            written.set()

    recorder = CostRecorder(Ledger(backend=Watched()), log_prompts=True)
    from agentcost_core.call import ModelCall, Outcome
    from agentcost_core.tokens import ChatMessage

    call = ModelCall("gpt-4o-mini", messages=[ChatMessage("user", PROMPT)])
    event, _ = recorder.record_outcome(call, Outcome(text="ok"))
    assert written.wait(timeout=10)  # stored by the writer's own time-based flush, no flush() asked
    assert threads and threading.current_thread().name not in threads
    assert recorder.ledger.prompts(event.id).text == f"{PROMPT}\nok"
    recorder.ledger.close()


def test_a_version_2_sqlite_ledger_gains_the_prompts_table_and_keeps_its_events(tmp_path) -> None:
    from agentcost_core import CostEvent

    path = tmp_path / "v2.db"
    with Ledger(f"sqlite:///{path}", sync=True) as ledger:
        ledger.record(CostEvent(model="gpt-4o", id="kept"))
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE prompts")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with Ledger(f"sqlite:///{path}", sync=True) as ledger:
        assert [e.id for e in ledger.events()] == ["kept"]
        ledger.record_prompt(_record("kept", time.time()))
        assert ledger.prompts("kept") is not None
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5  # and on to version 5 (money columns at 4, rollup tables at 5)
    conn.close()


def test_a_version_2_postgres_ledger_gains_the_prompts_table_and_keeps_its_events(postgres_url) -> None:
    import psycopg

    from agentcost_core import CostEvent
    from agentcost_core.ledger.postgres import PostgresBackend

    table = f"agentcost_v2_{uuid.uuid4().hex[:8]}"
    try:
        with Ledger(backend=PostgresBackend(postgres_url, table=table), sync=True) as ledger:
            ledger.record(CostEvent(model="gpt-4o", id="kept"))
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table}_prompts")
            conn.execute("UPDATE agentcost_meta SET schema_version = 2 WHERE name = %s", (table,))
        with Ledger(backend=PostgresBackend(postgres_url, table=table), sync=True) as ledger:
            assert [e.id for e in ledger.events()] == ["kept"]
            ledger.record_prompt(_record("kept", time.time()))
            assert ledger.prompts("kept") is not None
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (table,)).fetchone()
            assert row[0] == 5  # and on to version 5 (top_model at 4, rollup tables at 5)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
            conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))


# --- the command line ---------------------------------------------------------------------------
def test_the_cli_shows_a_prompt_and_prunes_old_ones(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    now = time.time()
    with Ledger(url, sync=True) as ledger:
        ledger.record_prompt(_record("e-1", now, PROMPT))
        ledger.record_prompt(_record("e-2", now - 3 * 86400))
    assert cli(["ledger", "prompts", "e-1", "--ledger", url]) == 0
    assert f"[user] {PROMPT}" in capsys.readouterr().out
    assert cli(["ledger", "prompts", "e-1", "--ledger", url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_messages"][0]["parts"][0]["content"] == PROMPT
    assert cli(["ledger", "prompts", "missing", "--ledger", url]) == 1
    assert "no logged prompt" in capsys.readouterr().err
    assert cli(["ledger", "prune-prompts", "--days", "1", "--ledger", url]) == 0
    assert "deleted 1 prompt record(s)" in capsys.readouterr().out
    assert cli(["ledger", "prune-prompts", "--days", "0", "--ledger", url]) == 2


# --- configuration ------------------------------------------------------------------------------
def test_bad_prompt_logging_settings_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="bad redaction pattern"):
        PromptLogging(patterns=["(unclosed"])
    with pytest.raises(ConfigurationError, match="redact= takes a callable"):
        PromptLogging(redact="not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="log_prompts must be"):
        CostRecorder("memory://", log_prompts="yes")  # type: ignore[arg-type]
    with pytest.raises(LedgerURLError, match="prompt_retention_days"):
        Ledger("memory://", prompt_retention_days=0)


# --- the built-in redactors ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("paid with 4111 1111 1111 1111 today", False),
        ("paid with 5500-0000-0000-0004 today", False),
        ("amex 378282246310005", False),
        ("typo 4111 1111 1111 1112", True),  # fails the Luhn check
        ("at 1733280000123456789 ns", True),  # a timestamp: starts with 1
        ("order 4111-1111", True),  # too short
    ],
)
def test_card_numbers_are_masked_only_when_they_pass_the_luhn_check(text: str, kept: bool) -> None:
    from agentcost_core.privacy import redact_prompt_text

    assert (redact_prompt_text(text) == text) is kept


@pytest.mark.parametrize(
    "text",
    ["AUTHORIZATION: Basic dXNlcjpwYXNz", "X-API-KEY: k-123456789", "my PASSWORD is Hunter22", "API_KEY=abc123",
     "github_pat_11ABCDEFG0123456789abcdef", "AKIAIOSFODNN7EXAMPLE"],
)  # fmt: skip
def test_the_built_in_redactors_ignore_case_where_the_secret_does(text: str) -> None:
    from agentcost_core.privacy import MASK, redact_prompt_text

    assert MASK in redact_prompt_text(text)
