"""``TieredMemory`` for LlamaIndex: a token budget by priority for every model call.

A :class:`~llama_index.core.memory.BaseMemory`, so it goes where LlamaIndex's own memories go::

    memory = TieredMemory(8_000, model="gpt-4o-mini", summarizer=OpenAI(model="gpt-4o-mini"))
    await agent.run("…", memory=memory)          # FunctionAgent / AgentWorkflow / ReActAgent
    chat_engine = index.as_chat_engine(memory=memory)

It keeps the full history (``get_all()``) and answers ``get()`` with the budgeted view of it — the
same selection as :meth:`TieredMemory.fit`, built by the core's
:class:`~agentcost_core.context.TieredContext`: system and pinned messages, the summary and the
current input are never cut; old turns are folded into a structured summary (or dropped), then
recent turns shrink, then the latest tool outputs are clipped. Tool-call blocks count (LlamaIndex's
own ``Memory`` skips them), and an assistant message that calls tools is never separated from its
results. The history is read incrementally: a ``get()`` after ``put()`` converts only the new
messages.

The summarizer is any LlamaIndex LLM (a cheap one) or a core summarizer callable; an LLM's calls
are ledger events with ``feature="memory"``. Mark a message
``additional_kwargs={"agentcost_priority": "pinned"}`` (never cut, kept in the stable prefix) or
``"high"`` (a retrieved document).

``FunctionAgent`` sends a few things outside memory. It keeps the tool calls and results of the
run in progress in its scratchpad (written to memory when the run ends) and appends them to what
``aget`` returns: ``aget`` called from a workflow step reads that scratchpad
(``Context.get_step_context()``, key ``scratchpad_key``) and leaves room for it, so the history
shrinks as the run's steps grow. Its ``system_prompt`` is prepended too: pass it (or a token count)
as ``reserve=``. Tool schemas are not counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.memory.types import BaseMemory

from agentcost_core.context import (
    ContextBudgetError,
    ContextPlan,
    ContextReport,
    Item,
    StructuredSummary,
    TieredContext,
)
from agentcost_core.errors import ConfigurationError
from agentcost_core.tokens import ChatMessage as CoreMessage

from .messages import message_text
from .summarizer import LlmSummarizer, llm_summarizer

__all__ = ["LlmSummarizer", "TieredMemory", "llm_summarizer", "to_item"]

logger = logging.getLogger("agentcost.llamaindex")

PRIORITY_KEY = "agentcost_priority"
_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}


# --- messages ------------------------------------------------------------------------------
def _role(message: Any) -> str:
    role = getattr(message, "role", "user")
    return _ROLES.get(str(getattr(role, "value", role)), "user")


def _call_ids(message: Any, extra: dict[str, Any]) -> tuple[str, ...]:
    ids = [
        b.tool_call_id for b in getattr(message, "blocks", None) or () if getattr(b, "block_type", None) == "tool_call"
    ]
    for c in extra.get("tool_calls") or ():  # OpenAI-style calls kept in additional_kwargs
        ids.append(c.get("id") if isinstance(c, dict) else getattr(c, "id", None))
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def to_item(message: ChatMessage) -> Item:
    """A LlamaIndex message as the core's :class:`Item`: tool-call blocks are part of its text (so
    their tokens count) and its tool-call ids are kept (so calls and results stay together)."""
    extra = message.additional_kwargs or {}
    role = _role(message)
    name = extra.get("name")
    priority = extra.get(PRIORITY_KEY)
    call_id = extra.get("tool_call_id") if role == "tool" else None
    return Item(
        role,
        message_text(message),
        message,
        name if isinstance(name, str) else None,
        tool_call_ids=_call_ids(message, extra) if role == "assistant" else (),
        tool_call_id=call_id if isinstance(call_id, str) else None,
        priority=priority if priority in ("pinned", "high") else None,
    )


def _from_items(items: Sequence[Item], drop: Any = None) -> list[ChatMessage]:
    """Back to LlamaIndex: unchanged messages are the very objects, clipped ones copies with the
    clipped text, the summary a system message; ``drop`` (a transient input) is left out."""
    out: list[ChatMessage] = []
    for item in items:
        message = item.ref
        if message is None:  # the summary
            out.append(ChatMessage(role=MessageRole.SYSTEM, content=item.text))
        elif message is drop:
            continue
        elif item.clipped_text is not None:
            out.append(message.model_copy(update={"blocks": [TextBlock(text=item.clipped_text)]}))
        else:
            out.append(message)
    return out


def _user_text(message: ChatMessage) -> str:
    """The text of a user message the way agents write ``user_msg_str`` (text blocks joined)."""
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock))


# --- the memory ------------------------------------------------------------------------------------
class TieredMemory(BaseMemory):
    """``TieredMemory(max_tokens, *, model=None, summarizer=None, recent_turns=5, high_share=0.30,
    medium_share=0.25, summarize_every=10)``.

    ``model`` names the model whose tokenizer counts (default: o200k). ``summarizer`` is a
    LlamaIndex LLM or a core summarizer callable ``(previous, transcript, first_turn) ->
    StructuredSummary``. Further options: ``reserve`` — tokens sent outside memory on every call
    (an int, or the text of the agent's ``system_prompt`` to count), taken off the budget;
    ``on_overflow`` (``"error"`` / ``"warn"`` when protected messages alone exceed the budget);
    ``archive`` — called with the messages of turns dropped without a summarizer; ``ledger`` —
    where the summarizer's calls go when no ``instrument()`` handler records them;
    ``scratchpad_key`` — the store key of the agent's in-progress steps (None: not read).
    """

    max_tokens: int
    model: str | None = None
    summarizer: Any = Field(default=None, exclude=True)
    recent_turns: int = 5
    high_share: float = 0.30
    medium_share: float = 0.25
    summarize_every: int = 10
    on_overflow: str = "error"
    reserve: int = 0
    archive: Any = Field(default=None, exclude=True)
    ledger: Any = Field(default=None, exclude=True)
    scratchpad_key: str | None = "scratchpad"

    _context: TieredContext = PrivateAttr()
    _history: list[ChatMessage] = PrivateAttr(default_factory=list)
    _items: dict = PrivateAttr(default_factory=dict)  # id(message) -> Item, for re-reads
    _lock: Any = PrivateAttr(default_factory=threading.RLock)
    _summarize: Any = PrivateAttr(default=None)
    _last_report: ContextReport | None = PrivateAttr(default=None)
    _last_n_stable: int = PrivateAttr(default=0)

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
        reserve: int | str = 0,
        archive: Callable[[list[ChatMessage]], Any] | None = None,
        ledger: Any = None,
        scratchpad_key: str | None = "scratchpad",
        **kwargs: Any,
    ) -> None:
        if isinstance(summarizer, BaseLLM):
            core_summarizer: Any = llm_summarizer(summarizer, ledger)
        elif summarizer is None or callable(summarizer):
            core_summarizer = summarizer
        else:
            raise ConfigurationError(
                f"summarizer must be a LlamaIndex LLM or a callable (previous, transcript, first_turn) -> "
                f"StructuredSummary, got {type(summarizer).__name__}"
            )
        if archive is not None and not callable(archive):
            raise ConfigurationError("archive must be a callable receiving the dropped messages")
        context = TieredContext(  # validates the options now, with the core's clear errors
            max_tokens, model=model, summarizer=core_summarizer, recent_turns=recent_turns,
            high_share=high_share, medium_share=medium_share, summarize_every=summarize_every,
            on_overflow=on_overflow,
            archive=(lambda items: archive([i.ref for i in items])) if archive is not None else None,
        )  # fmt: skip
        if isinstance(reserve, str):
            reserve = context.counter.message_tokens(CoreMessage("system", reserve))
        if isinstance(reserve, bool) or not isinstance(reserve, int) or not 0 <= reserve < max_tokens - 3:
            raise ConfigurationError(
                f"reserve must be a token count >= 0 leaving room in max_tokens={max_tokens}, got {reserve!r}"
            )
        super().__init__(
            max_tokens=max_tokens, model=model, summarizer=summarizer, recent_turns=recent_turns,
            high_share=high_share, medium_share=medium_share, summarize_every=summarize_every,
            on_overflow=on_overflow, reserve=reserve, archive=archive, ledger=ledger,
            scratchpad_key=scratchpad_key, **kwargs,
        )  # fmt: skip
        self._context = context
        self._summarize = core_summarizer

    @classmethod
    def class_name(cls) -> str:
        return "AgentCostTieredMemory"

    def __deepcopy__(self, memo: dict[int, Any]) -> TieredMemory:
        """A memory with the same options and a copy of the history; its context starts afresh (a
        summary is written again when needed; the summarizer is shared)."""
        import copy

        options = {k: getattr(self, k) for k in type(self).model_fields if k != "max_tokens"}
        clone = type(self)(self.max_tokens, **options)
        clone._history = copy.deepcopy(self._history, memo)
        return clone

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        chat_history: list[ChatMessage] | None = None,
        llm: Any = None,
        max_tokens: int | None = None,
        token_limit: int | None = None,
        **kwargs: Any,
    ) -> TieredMemory:
        """LlamaIndex-style construction: ``max_tokens`` (or ``token_limit``; by default 3/4 of
        ``llm``'s context window, like ``ChatMemoryBuffer``), optional starting ``chat_history``."""
        budget = max_tokens if max_tokens is not None else token_limit
        if budget is None and llm is not None:
            budget = int(llm.metadata.context_window * 0.75)
            kwargs.setdefault("model", getattr(llm.metadata, "model_name", None))
        if budget is None:
            raise ConfigurationError("TieredMemory.from_defaults needs max_tokens (or token_limit, or llm)")
        memory = cls(budget, **kwargs)
        if chat_history:
            memory.set(chat_history)
        return memory

    # --- the selection -----------------------------------------------------------------------
    @property
    def last_report(self) -> ContextReport | None:
        """What the last selection kept per tier and what it summarized, dropped or clipped."""
        return self._last_report

    @property
    def last_n_stable(self) -> int:
        """How many leading messages of the last selection are the stable prefix (system, pinned,
        summary): where provider cache breakpoints belong."""
        return self._last_n_stable

    @property
    def summary(self) -> StructuredSummary | None:
        """The running summary of the history no longer shown verbatim."""
        return self._context.summary

    @property
    def context(self) -> TieredContext:
        return self._context

    def _convert(self, message: ChatMessage) -> Item:
        item = self._items.get(id(message))
        if item is None or item.ref is not message:
            item = self._items[id(message)] = to_item(message)
        return item

    def fit(self, messages: Sequence[ChatMessage], *, reserve: int | None = None) -> list[ChatMessage]:
        """The budgeted view of ``messages`` (``reserve``: tokens sent elsewhere, e.g. a system prompt
        the framework adds itself; default: the memory's own ``reserve``)."""
        source, budget, drop = self._request(list(messages), self.reserve if reserve is None else reserve)
        return self._view(self._context.fit(source=source, convert=self._convert, budget=budget), drop)

    async def afit(self, messages: Sequence[ChatMessage], *, reserve: int | None = None) -> list[ChatMessage]:
        """:meth:`fit` on an event loop: a summary is awaited (the LLM's ``achat``)."""
        source, budget, drop = self._request(list(messages), self.reserve if reserve is None else reserve)
        return self._view(await self._context.afit(source=source, convert=self._convert, budget=budget), drop)

    def _request(
        self, messages: list[ChatMessage], reserve: int, drop: Any = None
    ) -> tuple[list[ChatMessage], int, Any]:
        """What to select from, and the budget: the history is a snapshot, so the selection (and a
        summary) runs without holding the memory's lock."""
        with self._lock:
            if len(self._items) > max(4096, 4 * len(self._history)):  # foreign lists passed to fit()
                self._items.clear()
        if reserve > self.max_tokens - 4:
            message = (
                f"{reserve} tokens are sent outside the memory's view (reserve, initial_token_count, the "
                f"run's steps in progress), leaving no room in max_tokens={self.max_tokens}"
            )
            if self.on_overflow == "error":
                raise ContextBudgetError(message + ": raise max_tokens")
            logger.warning("agentcost memory: %s; sending the protected messages alone", message)
            reserve = self.max_tokens - 4
        return messages, self.max_tokens - reserve, drop

    def _view(self, plan: ContextPlan, drop: Any) -> list[ChatMessage]:
        self._last_report = plan.report
        self._last_n_stable = sum(1 for i in plan.items[: plan.n_stable] if drop is None or i.ref is not drop)
        return _from_items(plan.items, drop)

    def _has_input(self, text: str) -> bool:
        """Is ``text`` the latest user message of the history (put before ``get``, as agents do)?"""
        for message in reversed(self._history):
            if _role(message) == "user" and (message.additional_kwargs or {}).get(PRIORITY_KEY) not in (
                "pinned",
                "high",
            ):
                have = _user_text(message)
                # an agent with state rewrites the message as "<state prompt>\n<message>"
                return have == text or have.endswith("\n" + text)
        return False

    # --- BaseMemory ------------------------------------------------------------------------------
    def get(self, input: str | ChatMessage | None = None, **kwargs: Any) -> list[ChatMessage]:
        """The budgeted view of the history.

        ``input`` is the current query. Agents put it before calling ``get`` (then it is the latest
        user message and protected as such); chat engines call ``get(input=message)`` first and
        send the message themselves after the history: then it is budgeted as the protected
        current input but not returned, so it is not sent twice. ``initial_token_count`` (what
        ``ChatMemoryBuffer`` accepts: tokens the caller adds) is taken off the budget.
        """
        source, budget, drop = self._get_request(input, kwargs)
        return self._view(self._context.fit(source=source, convert=self._convert, budget=budget), drop)

    async def aget(self, input: str | ChatMessage | None = None, **kwargs: Any) -> list[ChatMessage]:
        """:meth:`get`; inside an agent's step, room is left for the steps of the run in progress. A
        summary is awaited (the LLM's ``achat``), never run on the event loop."""
        pending = await self._scratchpad_tokens()
        if pending:
            kwargs["initial_token_count"] = int(kwargs.get("initial_token_count") or 0) + pending
        source, budget, drop = self._get_request(input, kwargs)
        return self._view(await self._context.afit(source=source, convert=self._convert, budget=budget), drop)

    def _get_request(self, input: str | ChatMessage | None, kwargs: dict[str, Any]) -> tuple[list[ChatMessage], int, Any]:
        reserve = self.reserve + int(kwargs.get("initial_token_count") or 0)
        with self._lock:
            history = list(self._history)
            if input is not None:
                text = input if isinstance(input, str) else _user_text(input)
                if text and not self._has_input(text):
                    message = (
                        input if isinstance(input, ChatMessage) else ChatMessage(role=MessageRole.USER, content=text)
                    )
                    return self._request([*history, message], reserve, drop=message)
        return self._request(history, reserve)

    async def _scratchpad_tokens(self) -> int:
        """Tokens of the agent's in-progress steps, which it appends after the memory's view."""
        if not self.scratchpad_key:
            return 0
        try:
            from llama_index.core.workflow import Context

            ctx = Context.get_step_context()
        except Exception:  # not called from a workflow step
            return 0
        try:
            pad = await ctx.store.get(self.scratchpad_key, default=None)
        except Exception:
            return 0
        if not isinstance(pad, list):
            return 0
        counter = self._context.counter
        total = 0
        for m in pad:
            if isinstance(m, ChatMessage):
                item = to_item(m)
                total += counter.message_tokens(CoreMessage(item.role, item.text, item.name))
        return total

    def get_all(self) -> list[ChatMessage]:
        """The full history, everything ever put (a copy of the list; the messages themselves)."""
        with self._lock:
            return list(self._history)

    async def aget_all(self) -> list[ChatMessage]:
        return self.get_all()

    def put(self, message: ChatMessage) -> None:
        with self._lock:
            self._history.append(message)

    async def aput(self, message: ChatMessage) -> None:
        self.put(message)

    def put_messages(self, messages: list[ChatMessage]) -> None:
        with self._lock:
            self._history.extend(messages)

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        self.put_messages(messages)

    def set(self, messages: list[ChatMessage]) -> None:
        """Replace the history. Where the new list starts like the old one (equal messages, e.g. an
        agent's ``chat_history`` passed again with new messages appended) the messages already held
        are kept, so the summary survives and only the new part is read; a different conversation
        resets the context."""
        with self._lock:
            old, new = self._history, list(messages)
            k = 0
            for k, (a, b) in enumerate(zip(old, new)):
                if a is not b and a != b:
                    break
            else:
                k = min(len(old), len(new))
            changed = k < len(old)
            old[k:] = new[k:]
            if not old:
                self._context.reset()
            elif changed:  # not an extension of what was read: read it again (the core keeps the
                self._context.reset(conversation=False)  # summary if the first message is the same)
            keep = {id(m) for m in old}
            self._items = {i: item for i, item in self._items.items() if i in keep}

    async def aset(self, messages: list[ChatMessage]) -> None:
        self.set(messages)

    def reset(self) -> None:
        """Forget everything: the history, the summary and the context."""
        with self._lock:
            self._history.clear()
            self._items.clear()
            self._context.reset()
            self._last_report = None
            self._last_n_stable = 0

    async def areset(self) -> None:
        self.reset()
