"""The event half of the LlamaIndex integration: the handler the dispatcher calls with every event.

:class:`CostEventHandler` is what LlamaIndex sees (a pydantic ``BaseEventHandler``, attached to the
root dispatcher with its span handler); the per-call work — joining start and end events by span
id, reading usage, pricing and recording — is done by its
:class:`~agentcost_llamaindex.recording.LlmEventRecorder`.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import Dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from pydantic import ConfigDict, Field

from agentcost_core import CostRecorder, Ledger, PriceCatalog
from agentcost_core.accountant import Accountant
from agentcost_core.recorder import RecorderResults

from .calls import CallTable
from .recording import LlmEventRecorder
from .spans import CostSpanHandler

__all__ = ["CostEventHandler"]


class CostEventHandler(RecorderResults, BaseEventHandler):
    """Exact cost of every LLM call LlamaIndex makes, from the provider's reported usage.

    ``instrument()`` creates one and attaches it to the root dispatcher; or attach by hand with
    :meth:`attach`. ``total_cost`` (Decimal, priced calls only), ``events`` (its
    :class:`~agentcost_core.CostEvent` list in call order) and ``usage_by_model`` cover the calls
    this handler saw; every event also goes to the ledger. ``catalog`` prices the calls (or pass
    ``accountant``, an :class:`~agentcost_core.accountant.Accountant`, to share one with budgets);
    ``exporters=[OTelExporter(...)]`` send every call on as it is recorded. Used as a context manager it attaches
    on entry (if needed) and detaches on exit.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    # ``Any`` fields: pydantic keeps the objects as given (no copies, no validation on the hot path).
    recorder: Any = Field(default=None, exclude=True, repr=False)
    recording: Any = Field(default=None, exclude=True, repr=False)  # the LlmEventRecorder
    span_handler: Any = Field(default=None, exclude=True, repr=False)
    dispatcher: Any = Field(default=None, exclude=True, repr=False)

    def __init__(
        self,
        ledger: Ledger | str | None = None,
        *,
        catalog: PriceCatalog | None = None,
        accountant: Accountant | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        feature: str | None = None,
        agent_id: str | None = None,
        task_id: str | None = None,
        keep_events: bool = True,
        log_prompts: bool = False,
        exporters: Any = None,
        anomalies: Any = None,
    ) -> None:
        recorder = CostRecorder(
            ledger,
            catalog=catalog,
            accountant=accountant,
            framework="llamaindex",
            keep_events=keep_events,
            log_prompts=log_prompts,
            exporters=exporters,
            user_id=user_id,
            session_id=session_id,
            feature=feature,
            agent_id=agent_id,
            task_id=task_id,
            anomalies=anomalies,
        )
        table = CallTable()
        recording = LlmEventRecorder(table, recorder)
        super().__init__(recorder=recorder, recording=recording)
        self.span_handler = CostSpanHandler(table, recording.on_drop)

    @classmethod
    def class_name(cls) -> str:
        return "CostEventHandler"

    @property
    def table(self) -> CallTable:
        """The in-flight LLM calls and open spans (shared with the span handler)."""
        return self.recording.table

    # --- attaching ----------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self.dispatcher is not None

    def attach(self, dispatcher: Dispatcher | None = None) -> CostEventHandler:
        """Add the event and span handlers to ``dispatcher`` (default: the root dispatcher)."""
        d = dispatcher if dispatcher is not None else get_dispatcher()
        if self.dispatcher is d:
            return self
        if self.dispatcher is not None:
            self.detach()
        d.add_event_handler(self)
        d.add_span_handler(self.span_handler)
        self.dispatcher = d
        return self

    def detach(self) -> None:
        """Remove both handlers; calls still in flight (open streams) are not recorded. Idempotent."""
        d = self.dispatcher
        if d is None:
            return
        # New lists rather than in-place removal: other threads may be iterating the old ones.
        d.event_handlers = [h for h in d.event_handlers if h is not self]
        d.span_handlers = [h for h in d.span_handlers if h is not self.span_handler]
        self.dispatcher = None
        self.table.clear()

    def __enter__(self) -> CostEventHandler:
        if self.dispatcher is None:
            self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # --- events -------------------------------------------------------------------------
    def handle(self, event: Any, **kwargs: Any) -> None:
        """Every event of every dispatcher below the one attached to (never raises)."""
        self.recording.handle(event)
