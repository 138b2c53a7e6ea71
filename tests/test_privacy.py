"""Privacy by default, end to end: an API key, passwords, an email and a prompt are planted in
every place a user's data can reach agentcost (provider errors, tool arguments of guarded tools,
a circuit breaker's quoted tool error, the URLs of the ledger and the budget stores, attribution
metadata that is not an attribution key). The LangChain and LlamaIndex paths then run for real
(the OpenAI SDK over an httpx MockTransport, create_agent and FunctionAgent under guard(), a
PostgreSQL ledger, Redis and PostgreSQL budget stores), and none of the planted values may appear
in the ledger rows (every column), our logs at DEBUG, the reprs of ledgers, stores and handlers,
our error messages, or the CLI's output and exports (table, JSON, CSV). With ``log_prompts=True``
the prompt may be kept (in the events and in the prompts table), the key and the passwords never.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

pytest.importorskip("langchain_openai")
pytest.importorskip("llama_index.llms.openai")

import openai
import psycopg
import redis
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.llms import ChatMessage as LIChatMessage
from llama_index.llms.openai import OpenAI as LIOpenAI

from agentcost_core import (
    AgentCostError,
    Budget,
    BudgetStoreUnavailable,
    CircuitBreaker,
    KillSwitch,
    Ledger,
    StuckDetector,
)
from agentcost_core.budgets.stores.postgres import PostgresStore
from agentcost_core.budgets.stores.redis import RedisStore
from agentcost_core.cli import main as cli
from agentcost_langchain import guard as lc_guard
from agentcost_langchain import track_costs
from agentcost_langchain.testing import ScriptedChatModel
from agentcost_llamaindex import guard as li_guard
from agentcost_llamaindex import instrument
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KEY = "sk-proj-PLANTEDKEY1234567890abcdefXYZ"
PASSWORD = "PlantedPassw0rd"  # in the user info of the ledger's and the Redis store's URLs
QUERY_PASSWORD = "PlantedQueryPw9"  # in ?password= of the PostgreSQL store's URL
EMAIL = "planted.person@example.org"
PROMPT = "PLANTED-PROMPT zebra quasar 7731"
NEVER = (KEY, PASSWORD, QUERY_PASSWORD)  # never kept, whatever the settings
PRIVATE = (*NEVER, EMAIL, PROMPT)  # not kept unless prompt logging is on (and emails never in our texts)

#: Run metadata: attribution keys, and keys that are not attribution (never stored).
METADATA = {"user_id": "u-privacy", "api_key": KEY, "email": EMAIL, "password": PASSWORD, "note": PROMPT}
TOOL_ARGS = {"query": f"{PROMPT} for {EMAIL} with {KEY}"}


def with_password(url: str, password: str, user: str | None = None) -> str:
    parts = urlsplit(url)
    user = user or parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_query_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, f"password={password}") if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def openai_errors(request: httpx.Request) -> httpx.Response:
    """An OpenAI server that rejects the key (echoing it) or the prompt (echoing it)."""
    body = json.loads(request.content)
    said = json.dumps(body["messages"])
    if request.headers.get("authorization") == f"Bearer {KEY}" and "reject the key" in said:
        message = f"Incorrect API key provided: {KEY}. Ask {EMAIL} for a new one."
        error = {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}
        return httpx.Response(401, json={"error": error})
    message = f"Invalid prompt: {said[:200]} (contact {EMAIL})"
    return httpx.Response(400, json={"error": {"message": message, "type": "invalid_request_error"}})


@tool
def search(query: str) -> str:
    """Search the order database."""
    return "order #4417 shipped"


@tool
def flaky(query: str) -> str:
    """A backend that fails, quoting what it was sent."""
    raise ValueError(f"backend refused {query!r} (api key {KEY}, password {PASSWORD})")


def looping_model() -> ScriptedChatModel:
    flaky_call = AIMessage(content="", tool_calls=[{"name": "flaky", "args": TOOL_ARGS, "id": "f"}])
    same_call = AIMessage(content="", tool_calls=[{"name": "search", "args": TOOL_ARGS, "id": "s"}])
    return ScriptedChatModel(script=[flaky_call, flaky_call, flaky_call] + [same_call] * 20 + ["done"])


class Collected:
    """Everything agentcost showed or stored during one scenario, as text."""

    def __init__(self) -> None:
        self.places: dict[str, list[str]] = {}

    def add(self, place: str, text: Any) -> None:
        self.places.setdefault(place, []).append(text if isinstance(text, str) else repr(text))

    def leaks(self, secrets: tuple[str, ...]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for place, texts in self.places.items():
            for secret in secrets:
                if any(secret in t for t in texts):
                    found.setdefault(place, []).append(secret)
        return found

    def text(self, place: str) -> str:
        return "\n".join(self.places.get(place, []))


@pytest.fixture
def services(postgres_url: str, redis_url: str):  # type: ignore[no-untyped-def]
    unique = uuid.uuid4().hex[:10]
    table = f"agentcost_privacy_{unique}"
    prefix = f"agentcost-privacy:{unique}:"
    yield {
        "feature": f"privacy-{unique}",
        "ledger_url": with_password(postgres_url, PASSWORD),
        "pg_store_url": with_query_password(postgres_url, QUERY_PASSWORD),
        "redis_store_url": with_password(redis_url, PASSWORD, user="default"),
        "table": table,
        "prefix": prefix,
        "postgres_url": postgres_url,
    }
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}_holds")
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def run_scenario(
    services: dict[str, Any], caplog: pytest.LogCaptureFixture, capsys: Any, *, log_prompts: bool
) -> Collected:
    seen = Collected()
    feature = services["feature"]
    caplog.set_level(logging.DEBUG)
    redis_store = RedisStore(services["redis_store_url"], prefix=services["prefix"])
    pg_store = PostgresStore(services["pg_store_url"], table=services["table"])
    budgets = [
        Budget(usd="50", per="session", store=redis_store, name="session-usd"),
        Budget(tokens=10**8, per="user_day", store=pg_store, name="user-tokens"),
    ]
    ledger_url = services["ledger_url"]
    mock = httpx.MockTransport(openai_errors)

    # --- LangChain: provider errors through track_costs (a URL: the process's shared ledger) ------
    chat = ChatOpenAI(model="gpt-4o-mini", api_key=KEY, max_retries=0, http_client=httpx.Client(transport=mock))
    with track_costs(ledger_url, feature=feature, log_prompts=log_prompts) as handler:
        with pytest.raises(openai.AuthenticationError):
            chat.invoke(f"{PROMPT}: reject the key", config={"metadata": METADATA})
        with pytest.raises(openai.BadRequestError):
            chat.invoke(PROMPT, config={"metadata": METADATA})
    seen.add("repr", handler)
    seen.add("repr", handler.ledger)
    handler.flush()

    # --- LangChain: guard(create_agent) with stores, a breaker and stuck detection -------------
    agent = create_agent(looping_model(), tools=[search, flaky])
    guarded = lc_guard(
        agent, budgets=budgets, stuck=StuckDetector(), breaker=CircuitBreaker(failure_threshold=2),
        ledger=ledger_url, feature=feature, log_prompts=log_prompts,
    )  # fmt: skip
    result = guarded.invoke({"messages": [HumanMessage(PROMPT)]}, config={"metadata": METADATA})
    assert result.termination_reason is not None and result.nudges  # nudged, then halted
    guarded.flush()

    # --- LlamaIndex: provider errors through instrument(), guard(FunctionAgent) ---------------
    li_llm = LIOpenAI(model="gpt-4o-mini", api_key=KEY, max_retries=0, http_client=httpx.Client(transport=mock))
    with instrument(ledger_url, feature=feature, log_prompts=log_prompts) as li_handler, instrument_tags(METADATA):
        with pytest.raises(openai.AuthenticationError):
            li_llm.chat([LIChatMessage(role="user", content=f"{PROMPT}: reject the key")])
        with pytest.raises(openai.BadRequestError):
            li_llm.chat([LIChatMessage(role="user", content=PROMPT)])
    seen.add("repr", li_handler)
    li_handler.flush()

    def lookup(query: str) -> str:
        """Look something up."""
        return "nothing new"

    scripted = ScriptedLLM(script=[{"tool": "lookup", "args": TOOL_ARGS}])
    li_agent = FunctionAgent(tools=[lookup], llm=scripted, streaming=False)
    li_guarded = li_guard(li_agent, stuck=True, ledger=ledger_url, feature=feature, log_prompts=log_prompts)
    with instrument_tags(METADATA):
        li_result = asyncio.run(li_guarded.run(PROMPT))
    assert li_result.halt is not None and li_result.nudges
    Ledger.shared(ledger_url).flush()

    # --- what was stored: every column of every row, read straight from PostgreSQL --------------
    with psycopg.connect(services["postgres_url"]) as conn:
        rows = conn.execute("SELECT * FROM agentcost_events WHERE feature = %s", (feature,)).fetchall()
        store_rows = conn.execute(f"SELECT * FROM {services['table']}").fetchall()
        # prompt logging's table: the calls' prompts and responses, only when it is on
        ids = [row[1] for row in rows]  # (seq, id, ...)
        prompt_rows = conn.execute("SELECT * FROM agentcost_events_prompts WHERE event_id = ANY(%s)", (ids,)).fetchall()
    assert len(rows) >= 8  # 4 provider errors, the agents' calls, nudges and halts
    kinds = {r for row in rows for r in row if r in ("guard.nudge", "halt", "guard.circuit_open")}
    assert kinds == {"guard.nudge", "halt", "guard.circuit_open"}
    seen.add("ledger", "\n".join(repr(row) for row in rows))
    seen.add("stores", "\n".join(repr(row) for row in store_rows))
    seen.add("prompts", "\n".join(repr(row) for row in prompt_rows))
    client = redis.Redis.from_url(services["redis_store_url"])
    for key in client.scan_iter(f"{services['prefix']}*"):
        value = (
            client.hgetall(key)
            if client.type(key) == b"hash"
            else client.get(key)
            if client.type(key) == b"string"
            else b""
        )
        seen.add("stores", f"{key!r} {value!r}")

    # --- reprs and our own error messages --------------------------------------------------------
    own = Ledger(ledger_url, sync=True)
    for obj in (redis_store, pg_store, *budgets, Ledger.shared(ledger_url), own):
        seen.add("repr", obj)
        seen.add("repr", str(obj))
    own.close()
    switch = KillSwitch(env=None, url=f"https://user:{PASSWORD}@127.0.0.1:1/switch?token={QUERY_PASSWORD}",
                        redis_url=services["redis_store_url"])  # fmt: skip
    seen.add("repr", switch)
    switch.close()
    refusing = [
        lambda: Ledger(with_password("postgresql://postgres@127.0.0.1:1/none", PASSWORD)),
        lambda: Ledger(f"nosuch://user:{PASSWORD}@host/x?password={QUERY_PASSWORD}"),
        lambda: Budget(usd="1", store=f"nosuch://user:{PASSWORD}@host/x"),
        lambda: KillSwitch(url=f"ftp://user:{PASSWORD}@host/switch?token={QUERY_PASSWORD}"),
        lambda: KillSwitch(redis_url=f"http://user:{PASSWORD}@host/0"),
        lambda: Budget(usd="1", per="session", store=RedisStore(f"redis://default:{PASSWORD}@127.0.0.1:1/0",
                                                                 timeout=0.5)).status(session_id="s"),
    ]  # fmt: skip
    for make in refusing:
        with pytest.raises((AgentCostError, BudgetStoreUnavailable)) as raised:
            make()
        seen.add("errors", str(raised.value))

    # --- the CLI: reports of the ledger in every format, and its failures -----------------------
    capsys.readouterr()
    for args in (
        ["report", "--ledger", ledger_url, "--where", f"feature={feature}", "--by", "user,model"],
        ["report", "--ledger", ledger_url, "--where", f"feature={feature}", "--by", "feature", "--format", "json"],
        ["report", "--ledger", ledger_url, "--where", f"feature={feature}", "--by", "session", "--format", "csv"],
        ["report", "--ledger", ledger_url, "--where", "feature=nothing-recorded-here"],
        ["report", "--ledger", services["pg_store_url"], "--where", "feature=nothing-recorded-here"],
        ["report", "--ledger", with_password("postgresql://postgres@127.0.0.1:1/none", PASSWORD)],
        ["report", "--ledger", f"redis://default:{PASSWORD}@127.0.0.1:6379/0"],
    ):
        code = cli(args)
        out = capsys.readouterr()
        seen.add("cli", f"{code}\n{out.out}\n{out.err}")
    assert "u-privacy" in seen.text("cli")  # the report did run on the recorded events
    assert "No events in postgresql://postgres:***@" in seen.text("cli")  # the URL is shown, redacted

    # --- our logs (openai's and httpx's own DEBUG logs are theirs, not ours) ---------------------
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    ours = [r for r in caplog.records if r.name.startswith("agentcost")]
    seen.add("logs", "\n".join(formatter.format(r) for r in ours))
    return seen


def test_nothing_private_is_kept_or_shown_by_default(services, caplog, capsys) -> None:  # type: ignore[no-untyped-def]
    seen = run_scenario(services, caplog, capsys, log_prompts=False)
    assert seen.leaks(PRIVATE) == {}
    ledger = seen.text("ledger")
    assert "AuthenticationError (401)" in ledger and "BadRequestError (400)" in ledger  # class and status
    assert "sha256:" in ledger  # tool arguments kept as their fingerprint
    assert seen.text("prompts") == ""  # no prompt record at all


def test_prompt_logging_keeps_the_prompt_but_never_keys_or_passwords(services, caplog, capsys) -> None:  # type: ignore[no-untyped-def]
    seen = run_scenario(services, caplog, capsys, log_prompts=True)
    assert seen.leaks(NEVER) == {}
    ledger = seen.text("ledger")
    assert PROMPT in ledger  # the 400's message and the tool arguments are kept
    assert "Incorrect API key provided: ***" in ledger  # the 401's message, its key redacted
    assert EMAIL not in ledger
    prompts = seen.text("prompts")  # the agents' prompts and responses, redacted
    assert PROMPT in prompts and "order #4417 shipped" in prompts and EMAIL not in prompts
