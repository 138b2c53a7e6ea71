"""``TieredMemory`` for LangChain: a token budget by priority for every model call.

Three ways in, one selection (:meth:`TieredMemory.fit`):

* ``create_agent(model, tools, middleware=[memory])`` — a cost-aware replacement for
  ``SummarizationMiddleware``. The agent's state keeps the full history (and the checkpointer
  with it); each model call sees the budgeted view (``wrap_model_call``), so nothing is lost and
  the view is rebuilt incrementally (O(new messages) per call).
* ``RunnableWithMessageHistory(chain, memory.history)`` — ``memory.history(session_id)`` is a chat
  message history whose ``messages`` are the budgeted view and whose ``add_messages`` persists the
  full history (SQLite by default, ``.agentcost/memory.db``).
* ``memory.fit(messages)`` — the budgeted list, anywhere.

The summarizer is any chat model (a cheap one): its calls are recorded in the ledger with
``feature="memory"``. Mark a message ``additional_kwargs={"agentcost_priority": "pinned"}`` (never
cut, kept in the stable prefix) or ``"high"`` (a retrieved document).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from agentcost_core.context import ContextReport, Item, StructuredSummary, TieredContext, parse_summary, summary_prompt
from agentcost_core.context.caching import CacheBreaker, CacheBreakerDetector
from agentcost_core.errors import ConfigurationError

from .caching import add_cache_breakpoints, detect_cache_breakers
from .messages import content_text, to_chat_message

try:  # create_agent middleware needs `langchain`; the rest only langchain-core
    from langchain.agents.middleware.types import AgentMiddleware as _Middleware
except ImportError:  # pragma: no cover - langchain not installed
    _Middleware = object  # type: ignore[assignment,misc]

__all__ = ["TieredChatMessageHistory", "TieredMemory", "to_item"]

PRIORITY_KEY = "agentcost_priority"
#: ``additional_kwargs`` key of the summary message (its structured content, so a rewritten
#: state carries the summary forward).
SUMMARY_KEY = "agentcost_summary"


def to_item(message: BaseMessage) -> Item:
    """A LangChain message as the core's :class:`Item` (tool-call ids kept, so pairs stay whole)."""
    cm = to_chat_message(message)
    calls = tuple(c.get("id") or "" for c in getattr(message, "tool_calls", None) or ())
    extra = message.additional_kwargs or {}
    priority = "summary" if SUMMARY_KEY in extra else extra.get(PRIORITY_KEY)
    return Item(
        cm.role,
        cm.content,
        message,
        cm.name,
        tool_call_ids=calls,
        tool_call_id=message.tool_call_id if isinstance(message, ToolMessage) else None,
        priority=priority if priority in ("pinned", "high", "summary") else None,
    )


def _from_items(items: Sequence[Item], n_stable: int, summary: StructuredSummary | None = None) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    only_system = True
    for k, item in enumerate(items):
        if item.ref is None:  # the summary
            text = item.text
            marker = {SUMMARY_KEY: summary.model_dump()} if summary is not None else {}
            out.append(
                SystemMessage(content=text, additional_kwargs=marker)
                if only_system
                else HumanMessage(content=f"[agentcost] {text}", additional_kwargs=marker)
            )
            continue
        message = item.ref
        if item.clipped_text is not None:
            message = message.model_copy(update={"content": item.clipped_text})
        if k < n_stable and not isinstance(message, SystemMessage):
            only_system = False
        out.append(message)
    return out


def chat_model_summarizer(model: Any, ledger: Any = None) -> Callable[..., StructuredSummary]:
    """A core summarizer from a LangChain chat model; each call is a ledger event (feature memory)."""
    from .callbacks import CostCallbackHandler

    handler = CostCallbackHandler(ledger, feature="memory")

    def summarize(previous: StructuredSummary | None, transcript: list[tuple[str, str]], first: int) -> StructuredSummary:
        reply = model.invoke([HumanMessage(content=summary_prompt(previous, transcript, first))],
                             config={"callbacks": [handler], "run_name": "agentcost-summary"})  # fmt: skip
        return parse_summary(content_text(reply.content))

    summarize.handler = handler  # type: ignore[attr-defined]
    return summarize


class TieredMemory(_Middleware):  # type: ignore[misc,valid-type]
    """``TieredMemory(max_tokens, *, model=None, summarizer=None, recent_turns=5, high_share=0.30,
    medium_share=0.25, summarize_every=10)``; ``summarizer`` is a chat model or a core summarizer
    callable; ``model`` names the model whose tokenizer counts (default: o200k)."""

    def __init__(
        self,
        max_tokens: int,
        *,
        model: str | None = None,
        summarizer: Any = None,
        recent_turns: int = 5,
        high_share: float = 0.30,
        medium_share: float = 0.25,
        summarize_every: int = 10,
        on_overflow: str = "error",
        archive: Callable[[list[BaseMessage]], Any] | None = None,
        ledger: Any = None,
        store: str | None = None,
        cache_ttl: str | None = None,
        detect_cache_breakers: bool = True,
        mode: str = "view",
    ) -> None:
        if _Middleware is not object:
            super().__init__()
        if summarizer is not None and hasattr(summarizer, "invoke"):
            summarizer = chat_model_summarizer(summarizer, ledger)
        self._options = dict(
            model=model, summarizer=summarizer, recent_turns=recent_turns, high_share=high_share,
            medium_share=medium_share, summarize_every=summarize_every, on_overflow=on_overflow,
            archive=(lambda items: archive([i.ref for i in items])) if archive is not None else None,
        )  # fmt: skip
        self.max_tokens = max_tokens
        self.context = TieredContext(max_tokens, **self._options)  # validates the options now
        self._contexts: dict[str, TieredContext] = {}
        self._sessions: dict[str, list[BaseMessage]] = {}  # session id -> its full history, loaded once
        self._lock = threading.Lock()
        self.store = store
        if mode not in ("view", "rewrite"):
            raise ConfigurationError(f"mode must be 'view' or 'rewrite', got {mode!r}")
        self.mode = mode
        if cache_ttl not in (None, "5m", "1h"):
            raise ConfigurationError(f"cache_ttl must be None, '5m' or '1h', got {cache_ttl!r}")
        self.cache_ttl = cache_ttl
        self.detector = CacheBreakerDetector(model, ttl=cache_ttl) if detect_cache_breakers else None
        self.last_report: ContextReport | None = None
        self.last_n_stable = 0

    # --- the selection -----------------------------------------------------------------------
    def fit(self, messages: Sequence[BaseMessage], *, reserve: int = 0) -> list[BaseMessage]:
        """The budgeted view of ``messages`` (``reserve``: tokens already taken elsewhere, e.g. a
        system prompt the framework sends separately)."""
        return self._fit(self.context, messages, reserve)

    def _fit(self, ctx: TieredContext, messages: Sequence[BaseMessage], reserve: int = 0) -> list[BaseMessage]:
        plan = ctx.fit(source=messages, convert=to_item, budget=self.max_tokens - reserve)
        self.last_report = plan.report
        self.last_n_stable = plan.n_stable
        out = _from_items(plan.items, plan.n_stable, plan.summary)
        if self.detector is not None and plan.n_stable:
            try:
                detect_cache_breakers(self.detector, out, plan.n_stable)
            except Exception as e:  # detection is advice: never break the call
                import logging

                logging.getLogger("agentcost.context").error("cache-breaker detection failed: %r", e)
        if self.cache_ttl is not None and plan.n_stable:
            out = add_cache_breakpoints(out, plan.n_stable, self.cache_ttl)
        return out

    @property
    def cache_breakers(self) -> list[CacheBreaker]:
        """Changes inside the stable prefix seen between calls, each with what it costs per call."""
        return list(self.detector.breakers) if self.detector is not None else []

    @property
    def summary(self) -> StructuredSummary | None:
        return self.context.summary

    @property
    def summarizer_handler(self) -> Any:
        """The :class:`CostCallbackHandler` recording the summarizer's calls (feature ``memory``),
        when the summarizer is a chat model; its ``events`` and ``total_cost`` are the memory's own bill."""
        return getattr(self._options.get("summarizer"), "handler", None)

    def _context_for(self, key: str) -> TieredContext:
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is None:
                ctx = self._contexts[key] = TieredContext(self.max_tokens, **self._options)
            return ctx

    # --- create_agent middleware ---------------------------------------------------------------
    def _request_view(self, request: Any) -> Any:
        thread = None
        try:
            from langgraph.config import get_config

            thread = (get_config().get("configurable") or {}).get("thread_id")
        except Exception:
            pass
        ctx = self._context_for(f"thread:{thread}") if thread else self.context
        reserve = 0
        if request.system_message is not None:
            reserve = ctx.counter.message_tokens(to_chat_message(request.system_message))
        return request.override(messages=self._fit(ctx, request.messages, reserve))

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        return handler(request if self.mode == "rewrite" else self._request_view(request))

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        return await handler(request if self.mode == "rewrite" else self._request_view(request))

    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """``mode="rewrite"``: replace the state's messages by the budgeted view, the way
        ``SummarizationMiddleware`` does (older messages leave the state; the summary message
        carries the structured summary forward). ``mode="view"`` (default) leaves state alone."""
        if self.mode != "rewrite":
            return None
        from langchain_core.messages import RemoveMessage
        from langgraph.graph.message import REMOVE_ALL_MESSAGES

        messages = list(state["messages"])
        summary = None
        for m in messages:
            marked = (m.additional_kwargs or {}).get(SUMMARY_KEY)
            if marked:
                summary = StructuredSummary.model_validate(marked)
        ctx = TieredContext(self.max_tokens, **self._options)  # the state itself is bounded: read it whole
        ctx.summary = summary
        view = self._fit(ctx, messages)
        self.context = ctx
        if len(view) == len(messages) and all(a is b for a, b in zip(view, messages)):
            return None
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *view]}

    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.before_model(state, runtime)

    # --- RunnableWithMessageHistory ------------------------------------------------------------
    def _session_messages(self, session_id: str, load: Callable[[], list[BaseMessage]]) -> list[BaseMessage]:
        with self._lock:
            messages = self._sessions.get(session_id)
            if messages is None:
                messages = self._sessions[session_id] = load()
            return messages

    def history(self, session_id: str) -> TieredChatMessageHistory:
        """The chat message history of ``session_id`` (pass ``memory.history`` as
        ``get_session_history``)."""
        return TieredChatMessageHistory(self, session_id, self.store)


_DB_LOCK = threading.Lock()


class TieredChatMessageHistory(BaseChatMessageHistory):
    """Full history persisted in SQLite; ``messages`` is the budgeted view of it."""

    def __init__(self, memory: TieredMemory, session_id: str, store: str | None = None) -> None:
        self.memory = memory
        self.session_id = session_id
        url = store or "sqlite:///.agentcost/memory.db"
        if not url.startswith("sqlite:///"):
            raise ConfigurationError(f"TieredMemory store must be a sqlite:///path URL, got {url!r}")
        self.path = Path(url[len("sqlite:///") :])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _DB_LOCK, sqlite3.connect(self.path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS agentcost_memory "
                "(session_id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (session_id, seq))"
            )
        # One list per session for every history object of this memory (RunnableWithMessageHistory
        # asks for a new one per invocation): the same message objects, so the view is incremental
        # and the summary is not rebuilt.
        self._full: list[BaseMessage] = memory._session_messages(session_id, self._load)

    def _load(self) -> list[BaseMessage]:
        with _DB_LOCK, sqlite3.connect(self.path) as db:
            rows = db.execute(
                "SELECT message FROM agentcost_memory WHERE session_id = ? ORDER BY seq", (self.session_id,)
            ).fetchall()
        return messages_from_dict([json.loads(r[0]) for r in rows])

    @property
    def full_messages(self) -> list[BaseMessage]:
        """Everything ever added to this session."""
        return list(self._full)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The budgeted view: what reaches the model."""
        return self.memory._fit(self.memory._context_for(f"session:{self.session_id}"), self._full)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        start = len(self._full)
        rows = [(self.session_id, start + k, json.dumps(message_to_dict(m))) for k, m in enumerate(messages)]
        with _DB_LOCK, sqlite3.connect(self.path) as db:
            db.executemany("INSERT INTO agentcost_memory (session_id, seq, message) VALUES (?, ?, ?)", rows)
        self._full.extend(messages)

    def clear(self) -> None:
        with _DB_LOCK, sqlite3.connect(self.path) as db:
            db.execute("DELETE FROM agentcost_memory WHERE session_id = ?", (self.session_id,))
        del self._full[:]
        self.memory._context_for(f"session:{self.session_id}").reset()

