"""The memory's summarizer from a LlamaIndex LLM: each call a ledger event with ``feature="memory"``,
made with ``chat`` by sync callers and awaited with ``achat`` by async ones (never on the loop)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import active_instrument_tags, instrument_tags
from llama_index.core.instrumentation.events.llm import LLMChatStartEvent, LLMCompletionStartEvent

from agentcost_core.context import StructuredSummary, parse_summary, summary_prompt

from .handler import CostEventHandler

__all__ = ["LlmSummarizer", "llm_summarizer"]

_SUMMARY_TAG = "agentcost.memory_summary"  # marks the summarizer's own LLM calls
_ids = itertools.count(1)


class _SummaryHandler(CostEventHandler):
    """Records only LLM calls started under its own marker tag (the summarizer's)."""

    marker: Any = Field(default=None, exclude=True, repr=False)

    @classmethod
    def class_name(cls) -> str:
        return "AgentCostSummaryHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        starts = isinstance(event, (LLMChatStartEvent, LLMCompletionStartEvent))
        if starts and (event.tags or {}).get(_SUMMARY_TAG) != self.marker:
            return
        super().handle(event, **kwargs)


class _Recorder:
    """Makes sure each summarizer call lands in the ledger once, as ``feature="memory"``.

    The call always runs under ``instrument_tags({..., "feature": "memory"})``, so a handler the
    user attached with ``instrument()`` records it as memory. Our own handler, attached to the
    root dispatcher for the duration of the call only and recording only that call, is used when
    no attached handler already writes to the ledger asked for (``ledger=None``: when none is
    attached at all, then into the default ledger)."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.marker = f"summary-{next(_ids)}"
        self._handler: _SummaryHandler | None = None
        self._lock = threading.Lock()
        self._users = 0

    @property
    def handler(self) -> _SummaryHandler:
        """The handler that records summarizer calls no instrumented handler covers (created lazily:
        resolving the default ledger opens it)."""
        with self._lock:
            if self._handler is None:
                h = _SummaryHandler(self.ledger, feature="memory")
                h.marker = self.marker
                self._handler = h
            return self._handler

    def _needed(self) -> bool:
        attached = [
            h for h in get_dispatcher().event_handlers
            if isinstance(h, CostEventHandler) and not isinstance(h, _SummaryHandler)
        ]  # fmt: skip
        if not attached:
            return True
        if self.ledger is None:
            return False
        mine = self.handler.recorder.ledger.backend  # references to one shared ledger share its backend
        return not any(h.recorder.ledger.backend is mine for h in attached)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Around one summarizer call (sync or awaited): tagged as memory, recorded once."""
        tags = {**active_instrument_tags.get(), "feature": "memory", _SUMMARY_TAG: self.marker}
        own = self._needed()
        if own:
            handler = self.handler
            with self._lock:
                self._users += 1
                handler.attach()
        try:
            with instrument_tags(tags):
                yield
        finally:
            if own:
                with self._lock:
                    self._users -= 1
                    if self._users == 0:
                        handler.detach()


class LlmSummarizer:
    """A core summarizer from a LlamaIndex LLM; each call is a ledger event with ``feature="memory"``
    (``recorder.handler.events``: those recorded by the memory's own handler, when no
    ``instrument()`` handler covered them). Called plainly it uses ``chat``; ``asummarize`` (what
    async callers await) uses ``achat``."""

    def __init__(self, llm: BaseLLM, ledger: Any = None) -> None:
        self.llm = llm
        self.recorder = _Recorder(ledger)

    def __call__(
        self, previous: StructuredSummary | None, transcript: list[tuple[str, str]], first: int
    ) -> StructuredSummary:
        prompt = ChatMessage(role=MessageRole.USER, content=summary_prompt(previous, transcript, first))
        with self.recorder.recording():
            reply = self.llm.chat([prompt])
        return parse_summary(reply.message.content or "")

    async def asummarize(
        self, previous: StructuredSummary | None, transcript: list[tuple[str, str]], first: int
    ) -> StructuredSummary:
        prompt = ChatMessage(role=MessageRole.USER, content=summary_prompt(previous, transcript, first))
        with self.recorder.recording():
            reply = await self.llm.achat([prompt])
        return parse_summary(reply.message.content or "")


def llm_summarizer(llm: BaseLLM, ledger: Any = None) -> LlmSummarizer:
    """A core summarizer from a LlamaIndex LLM (see :class:`LlmSummarizer`)."""
    return LlmSummarizer(llm, ledger)
