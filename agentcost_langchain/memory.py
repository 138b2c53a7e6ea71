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
``feature="memory"``. Under an async agent (``ainvoke`` / ``astream``, the async hooks
``awrap_model_call`` / ``abefore_model``, ``afit``, ``aget_messages``) it is called with
``ainvoke``: a summary never blocks the event loop.

Per-conversation state (one context per agent thread id and per history session) is bounded:
``max_sessions`` (1,000) conversations are kept, the least recently used is forgotten first and
rebuilt from the agent's state or the store when it comes back (its summary is written again). Mark a message ``additional_kwargs={"agentcost_priority": "pinned"}`` (never
cut, kept in the stable prefix) or ``"high"`` (a retrieved document).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
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

from agentcost_core.context import ContextPlan, ContextReport, Item, StructuredSummary, TieredContext, parse_summary, summary_prompt
from agentcost_core.context.caching import CacheBreaker, CacheBreakerDetector
from agentcost_core.context.message_log import SqliteMessageLog
from agentcost_core.context.sessions import SessionMap
from agentcost_core.errors import ConfigurationError

from .caching import add_cache_breakpoints, detect_cache_breakers
from .messages import content_text, to_chat_message

logger = logging.getLogger("agentcost.context")

try:  # create_agent middleware needs `langchain`; the rest only langchain-core
    from langchain.agents.middleware.types import AgentMiddleware as _Middleware
except ImportError:  # pragma: no cover - langchain not installed
    _Middleware = object  # type: ignore[assignment,misc]

__all__ = ["ChatModelSummarizer", "TieredChatMessageHistory", "TieredMemory", "chat_model_summarizer", "to_item"]

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


class ChatModelSummarizer:
    """A core summarizer from a LangChain chat model; each call is a ledger event (feature memory).
    Called plainly it uses ``invoke``; ``asummarize`` (what async callers await) uses ``ainvoke``."""

    def __init__(self, model: Any, ledger: Any = None) -> None:
        from .callbacks import CostCallbackHandler

        self.model = model
        self.handler = CostCallbackHandler(ledger, feature="memory")

    def _request(self, previous: StructuredSummary | None, transcript: list[tuple[str, str]], first: int) -> Any:
        prompt = [HumanMessage(content=summary_prompt(previous, transcript, first))]
        return prompt, {"callbacks": [self.handler], "run_name": "agentcost-summary"}

    def __call__(self, previous: StructuredSummary | None, transcript: list[tuple[str, str]], first: int) -> StructuredSummary:
        prompt, config = self._request(previous, transcript, first)
        return parse_summary(content_text(self.model.invoke(prompt, config=config).content))

    async def asummarize(
        self, previous: StructuredSummary | None, transcript: list[tuple[str, str]], first: int
    ) -> StructuredSummary:
        prompt, config = self._request(previous, transcript, first)
        return parse_summary(content_text((await self.model.ainvoke(prompt, config=config)).content))


def chat_model_summarizer(model: Any, ledger: Any = None) -> ChatModelSummarizer:
    """A core summarizer from a LangChain chat model (see :class:`ChatModelSummarizer`)."""
    return ChatModelSummarizer(model, ledger)


class TieredMemory(_Middleware):  # type: ignore[misc,valid-type]
    """``TieredMemory(max_tokens, *, model=None, summarizer=None, recent_turns=5, high_share=0.30,
    medium_share=0.25, summarize_every=10, max_sessions=1000)``; ``summarizer`` is a chat model or
    a core summarizer callable; ``model`` names the model whose tokenizer counts (default: o200k);
    ``max_sessions`` bounds the conversations (agent threads, history sessions) kept in memory."""

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
        max_sessions: int = 1000,
    ) -> None:
        if _Middleware is not object:
            super().__init__()
        if summarizer is not None and hasattr(summarizer, "invoke"):
            summarizer = ChatModelSummarizer(summarizer, ledger)
        self._options = dict(
            model=model, summarizer=summarizer, recent_turns=recent_turns, high_share=high_share,
            medium_share=medium_share, summarize_every=summarize_every, on_overflow=on_overflow,
            archive=(lambda items: archive([i.ref for i in items])) if archive is not None else None,
        )  # fmt: skip
        self.max_tokens = max_tokens
        self.context = TieredContext(max_tokens, **self._options)  # validates the options now
        self.max_sessions = max_sessions
        self._contexts: SessionMap[TieredContext] = SessionMap(max_sessions)  # validates max_sessions
        self._sessions: SessionMap[_Session] = SessionMap(max_sessions)  # session id -> its full history
        self._log: SqliteMessageLog | None = None
        self._log_lock = threading.Lock()
        self.store = store
        if store is not None and not (isinstance(store, str) and store.startswith("sqlite:///")):
            raise ConfigurationError(f"TieredMemory store must be a sqlite:///path URL, got {store!r}")
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

    async def afit(self, messages: Sequence[BaseMessage], *, reserve: int = 0) -> list[BaseMessage]:
        """:meth:`fit` on an event loop: a summary is awaited (the chat model's ``ainvoke``)."""
        return await self._afit(self.context, messages, reserve)

    def _fit(self, ctx: TieredContext, messages: Sequence[BaseMessage], reserve: int = 0) -> list[BaseMessage]:
        return self._view(ctx.fit(source=messages, convert=to_item, budget=self.max_tokens - reserve))

    async def _afit(self, ctx: TieredContext, messages: Sequence[BaseMessage], reserve: int = 0) -> list[BaseMessage]:
        return self._view(await ctx.afit(source=messages, convert=to_item, budget=self.max_tokens - reserve))

    def _view(self, plan: ContextPlan) -> list[BaseMessage]:
        self.last_report = plan.report
        self.last_n_stable = plan.n_stable
        out = _from_items(plan.items, plan.n_stable, plan.summary)
        if self.detector is not None and plan.n_stable:
            try:
                detect_cache_breakers(self.detector, out, plan.n_stable)
            except Exception as e:  # detection is advice: never break the call
                logger.error("cache-breaker detection failed: %r", e)
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

    @property
    def conversations(self) -> int:
        """How many conversations (agent threads, history sessions) have state held in memory; at
        most ``max_sessions`` of each kind."""
        return max(len(self._contexts), len(self._sessions))

    def _context_for(self, key: str) -> TieredContext:
        return self._contexts.get(key, lambda: TieredContext(self.max_tokens, **self._options))

    # --- create_agent middleware ---------------------------------------------------------------
    def _request_context(self, request: Any) -> tuple[TieredContext, int]:
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
        return ctx, reserve

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        if self.mode == "rewrite":
            return handler(request)
        ctx, reserve = self._request_context(request)
        return handler(request.override(messages=self._fit(ctx, request.messages, reserve)))

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        if self.mode == "rewrite":
            return await handler(request)
        ctx, reserve = self._request_context(request)
        return await handler(request.override(messages=await self._afit(ctx, request.messages, reserve)))

    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """``mode="rewrite"``: replace the state's messages by the budgeted view, the way
        ``SummarizationMiddleware`` does (older messages leave the state; the summary message
        carries the structured summary forward). ``mode="view"`` (default) leaves state alone."""
        if self.mode != "rewrite":
            return None
        messages, ctx = self._rewrite_context(state)
        return self._rewritten(messages, self._fit(ctx, messages))

    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self.mode != "rewrite":
            return None
        messages, ctx = self._rewrite_context(state)
        return self._rewritten(messages, await self._afit(ctx, messages))

    def _rewrite_context(self, state: Any) -> tuple[list[BaseMessage], TieredContext]:
        messages = list(state["messages"])
        summary = None
        for m in messages:
            marked = (m.additional_kwargs or {}).get(SUMMARY_KEY)
            if marked:
                summary = StructuredSummary.model_validate(marked)
        ctx = TieredContext(self.max_tokens, **self._options)  # the state itself is bounded: read it whole
        ctx.summary = summary
        self.context = ctx
        return messages, ctx

    @staticmethod
    def _rewritten(messages: list[BaseMessage], view: list[BaseMessage]) -> dict[str, Any] | None:
        from langchain_core.messages import RemoveMessage
        from langgraph.graph.message import REMOVE_ALL_MESSAGES

        if len(view) == len(messages) and all(a is b for a, b in zip(view, messages)):
            return None
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *view]}

    # --- RunnableWithMessageHistory ------------------------------------------------------------
    def history(self, session_id: str) -> TieredChatMessageHistory:
        """The chat message history of ``session_id`` (pass ``memory.history`` as
        ``get_session_history``)."""
        return TieredChatMessageHistory(self, session_id, self.store)

    def _message_log(self, store: str | None) -> SqliteMessageLog:
        if store is not None and store != self.store:
            return SqliteMessageLog(store)
        with self._log_lock:
            if self._log is None:
                self._log = SqliteMessageLog(self.store or "sqlite:///.agentcost/memory.db")
            return self._log


class _Session:
    """One session's full history as read from the store, in the store's order."""

    def __init__(self) -> None:
        self.messages: list[BaseMessage] = []
        self.epoch: int | None = None  # the session's epoch in the store when last read
        self.seen = -1  # the last sequence number read
        self.lock = threading.Lock()

    def sync(self, log: SqliteMessageLog, session_id: str) -> list[BaseMessage]:
        """Take in what any writer appended since the last read; the history, shared (not a copy).
        If another writer cleared the session since, start over from what the store holds now (a
        new list: the budgeted view sees a different conversation and is rebuilt)."""
        with self.lock:
            read = log.read_since(session_id, self.epoch, self.seen)
            if read.restart:
                self.messages, self.epoch, self.seen = [], read.epoch, -1
            if read.rows:
                self.messages.extend(messages_from_dict([json.loads(r[1]) for r in read.rows]))
                self.seen = read.rows[-1][0]
            return self.messages


class TieredChatMessageHistory(BaseChatMessageHistory):
    """Full history persisted in SQLite; ``messages`` is the budgeted view of it.

    Several writers on one session (history objects, threads, processes) are safe: every
    ``add_messages`` is one transaction numbered after the session's last message, and every
    reader takes in all writers' messages in that one order. A ``clear()`` by any of them is seen
    by every reader: its next read starts over from what the store holds."""

    def __init__(self, memory: TieredMemory, session_id: str, store: str | None = None) -> None:
        self.memory = memory
        self.session_id = session_id
        self.log = memory._message_log(store)
        self.path = self.log.path
        # One history per session for every history object of this memory (RunnableWithMessageHistory
        # asks for a new one per invocation): the same message objects, so the view is incremental
        # and the summary is not rebuilt.
        self._session = memory._sessions.get(session_id, _Session)

    def _full(self) -> list[BaseMessage]:
        return self._session.sync(self.log, self.session_id)

    @property
    def full_messages(self) -> list[BaseMessage]:
        """Everything ever added to this session (by any writer), in the store's order."""
        return list(self._full())

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The budgeted view: what reaches the model."""
        return self.memory._fit(self._context(), self._full())

    async def aget_messages(self) -> list[BaseMessage]:
        """The budgeted view, for async chains: the store is read in a worker thread and a summary
        is awaited (the chat model's ``ainvoke``)."""
        full = await asyncio.to_thread(self._full)
        return await self.memory._afit(self._context(), full)

    def _context(self) -> TieredContext:
        return self.memory._context_for(f"session:{self.session_id}")

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.log.append(self.session_id, [json.dumps(message_to_dict(m)) for m in messages])

    def clear(self) -> None:
        self.log.clear(self.session_id)
        self.memory._sessions.discard(self.session_id)
        self._session = self.memory._sessions.get(self.session_id, _Session)
        self._context().reset()
